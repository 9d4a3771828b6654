"""Impact of a rule change: which scenarios get a different outcome, and which rules caused it.

``compare(a, b, scenarios)`` evaluates the same rows with two rulebooks (the
vectorized engine, through :func:`lupus_rules.batch.run_batch`) and lists every
row whose preferred agent, recommendations, flags or fired rules differ, with
before/after and the ids of the rules responsible: those that fired under one
rulebook and not the other, and those whose conditions or conclusions changed
and fired under either. Works on the scenario suite and on generated batches
of 100 000 rows alike. Not for clinical use.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..batch import run_batch
from ..errors import LupusRulesError
from ..rulebook import Rulebook
from .ruldiff import changed_rule_ids
from .sources import resolve_rulebook

__all__ = ["compare", "read_scenarios", "rule_order", "responsible_rules", "OUTCOMES", "ScenarioSourceError"]

#: The outcome columns compared, in report order.
OUTCOMES = ("preferred", "recommendations", "flags", "fired_rules")

_ID = "scenario_id"


class ScenarioSourceError(LupusRulesError, ValueError):
    """The scenarios to compare could not be read (missing path, no CSV files, unreadable file)."""


def read_scenarios(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Scenario rows from a DataFrame, a CSV or Parquet file, or a folder of CSV files (all cells as text).

    Rows keep their ``scenario_id`` (when present) and file order; a folder's
    files are read in name order, like the suite loader.
    """
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv")
        if not files:
            raise ScenarioSourceError(f"{path}: no *.csv scenario files in this folder")
        frames = [_read_file(f) for f in files]
        return pd.concat(frames, ignore_index=True).fillna("")  # a column one file lacks: unknown there
    if path.is_file():
        return _read_file(path)
    raise ScenarioSourceError(f"{path}: no such file or folder; give a scenario CSV, Parquet file or folder")


def _read_file(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ScenarioSourceError(f"{path}: not a readable scenario file ({exc})") from None


def compare(rulebook_a: Rulebook | str | Path, rulebook_b: Rulebook | str | Path,
            scenarios: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Every scenario whose outcome differs between two rulebooks, with before/after and the rules responsible.

    ``rulebook_a``/``rulebook_b``: a :class:`Rulebook`, a rule folder or file,
    ``WORKTREE``, or a git revision (``HEAD~1``, ``REV:path``). ``scenarios``: a
    DataFrame, or a CSV/Parquet file or folder of CSVs. Columns of the result:
    ``scenario_id`` (the row's id, or its position when there is none),
    ``changed`` (which of :data:`OUTCOMES` differ), ``<outcome>_before`` /
    ``<outcome>_after`` for each, and ``rules`` (';'-separated ids). The counts
    are in ``result.attrs``: ``total``, ``changed``, ``invalid`` (rows rejected
    by validation, identical under both), ``by_outcome`` and ``summary`` (one line).
    """
    book_a, book_b = resolve_rulebook(rulebook_a), resolve_rulebook(rulebook_b)
    rows = read_scenarios(scenarios)
    before = run_batch(rows, engine="vectorized", rulebook=book_a)
    after = run_batch(rows, engine="vectorized", rulebook=book_b)
    ids = rows[_ID].astype(str).to_numpy() if _ID in rows.columns else np.arange(len(rows)).astype(str)
    differs = {o: before[o].to_numpy(dtype=object) != after[o].to_numpy(dtype=object) for o in OUTCOMES}
    any_change = np.logical_or.reduce(list(differs.values())) if len(rows) else np.zeros(0, dtype=bool)
    table = _table(ids, before, after, differs, any_change, changed_rule_ids(book_a, book_b), book_a, book_b)
    _attach_counts(table, len(rows), int((before["error"] != "").sum()), differs)
    return table


def _table(ids: np.ndarray, before: pd.DataFrame, after: pd.DataFrame, differs: dict[str, np.ndarray],
           any_change: np.ndarray, changed: set[str], book_a: Rulebook, book_b: Rulebook) -> pd.DataFrame:
    where = np.flatnonzero(any_change)
    columns: dict[str, object] = {_ID: ids[where]}
    columns["changed"] = [";".join(o for o in OUTCOMES if differs[o][i]) for i in where]
    for outcome in OUTCOMES:
        columns[f"{outcome}_before"] = before[outcome].to_numpy(dtype=object)[where]
        columns[f"{outcome}_after"] = after[outcome].to_numpy(dtype=object)[where]
    order = rule_order(book_a, book_b)
    columns["rules"] = [responsible_rules(a, b, changed, order) for a, b in
                        zip(columns["fired_rules_before"], columns["fired_rules_after"])]  # type: ignore[arg-type]
    return pd.DataFrame(columns).reset_index(drop=True)


def rule_order(book_a: Rulebook, book_b: Rulebook) -> dict[str, int]:
    """A position for every rule id of either rulebook: ``book_b``'s rules in file order, then those only in ``book_a``.

    It sorts the ids :func:`responsible_rules` names, so a report lists them as the edited rulebook reads.
    """
    order: dict[str, int] = {}
    for book in (book_b, book_a):
        for rule in sorted(book.rules, key=lambda r: r.position):
            order.setdefault(rule.id, len(order))
    return order


def responsible_rules(before: str, after: str, changed: set[str], order: dict[str, int]) -> str:
    """The rules responsible for one scenario's change, ``;``-joined in ``order`` (:func:`rule_order`).

    ``before``/``after``: the scenario's ``fired_rules`` cells (``;``-joined ids) under each rulebook;
    ``changed``: ids of the rules whose content differs between them
    (:func:`~lupus_rules.authoring.ruldiff.changed_rule_ids`). Responsible are the rules fired under
    only one rulebook, plus the changed rules fired under either.
    """
    fired_a, fired_b = set(_split(before)), set(_split(after))
    rules = (fired_a ^ fired_b) | (changed & (fired_a | fired_b))
    return ";".join(sorted(rules, key=lambda r: order.get(r, len(order))))


def _split(cell: str) -> Iterable[str]:
    return (part for part in cell.split(";") if part)


def _attach_counts(table: pd.DataFrame, total: int, invalid: int, differs: dict[str, np.ndarray]) -> None:
    by_outcome = {o: int(d.sum()) for o, d in differs.items()}
    parts = ", ".join(f"{o.replace('_', ' ')} {n:,}" for o, n in by_outcome.items())
    summary = f"{len(table):,} of {total:,} scenarios changed ({parts})"
    if invalid:
        summary += f"; {invalid:,} rows rejected by validation under both rulebooks"
    table.attrs.update({"total": total, "changed": len(table), "invalid": invalid, "by_outcome": by_outcome,
                        "summary": summary})
