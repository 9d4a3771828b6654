"""Sensitivity sweeps: re-evaluate a population while one threshold walks a range of values.

A *threshold* is the number in one or more rule conditions such as
``egfr >= 60`` (R-KID-01, the workbench's definition of "preserved kidney
function"). :func:`find_threshold` names it in one of two ways:

* by rule: ``rule="R-KID-01"`` (and ``condition=i``, the index in its ``when``
  list, when the rule compares more than one number);
* by fact: ``fact="egfr", at=60``: every comparison of ``egfr`` with 60 in any
  rule, so a definition shared by several rules moves as one (``at`` may be
  left out when the rules compare that fact with one value only).

:func:`sweep` builds, for each value, a variant rulebook from the rule data
(:meth:`~lupus_rules.rulebook.Rulebook.replace_rule` with the condition's
``value`` changed; nothing is hand-written), evaluates the population once
with the base rulebook and once per variant with the vectorized engine, and
counts per value the patients whose preferred agent, recommendations, flags
(and any other outcome the engine reports) differ from the base, plus the
transitions of the preferred agent ("from -> to: count"). Every row of the
result names the base and the variant rulebook versions.

Not for clinical use: a sweep shows how the rulebook reacts to a definition;
it says nothing about real patients.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .batch import check_columns
from .errors import LupusRulesError
from .facts import validate_frame
from .notice import DISCLAIMER
from .rulebook import Condition, Rule, Rulebook

__all__ = [
    "SweepError",
    "Threshold",
    "SweepResult",
    "find_threshold",
    "parse_values",
    "variant_rulebook",
    "read_population",
    "sweep",
    "COMPARISONS",
    "MAX_VALUES",
    "NONE",
]

#: Operators whose value is a threshold a sweep can move.
COMPARISONS: tuple[str, ...] = ("<", "<=", ">", ">=")
#: Most values one sweep evaluates (each is one evaluation of the whole population).
MAX_VALUES = 1000
#: How an empty preferred agent (no disease-modifying agent preferred) is named in transitions.
NONE = "none"
#: The engine output that tells *why*, not *what*: counted, but not part of "changed".
_TRACE = "fired_rules"


class SweepError(LupusRulesError, ValueError):
    """A sweep cannot run: unknown rule or fact, no threshold there, a bad or out-of-range value."""


@dataclass(frozen=True)
class Threshold:
    """The rule conditions a sweep moves: ``(rule id, index in its when list)`` pairs sharing one value."""

    fact: str
    value: float
    conditions: tuple[tuple[str, int], ...]
    descriptions: tuple[str, ...]

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """The rules holding the moved conditions, in rulebook order, each once."""
        return tuple(dict.fromkeys(rule_id for rule_id, _ in self.conditions))

    def label(self, rulebook: Rulebook) -> str:
        """In words, e.g. ``egfr >= 60 in R-KID-01 (Preserved kidney function)``."""
        rules = ", ".join(f"{r} ({rulebook.rule(r).title})" for r in self.rule_ids)
        tests = " / ".join(dict.fromkeys(self.descriptions))
        return f"{tests} in {rules}"


# --- naming the threshold ---------------------------------------------------------------------


def find_threshold(rulebook: Rulebook, *, rule: str | None = None, condition: int | None = None,
                   fact: str | None = None, at: float | None = None) -> Threshold:
    """The conditions a sweep moves, named by ``rule`` (and ``condition``) or by ``fact`` (and ``at``).

    Both may be given (the rule's conditions on that fact). Raises
    :class:`SweepError` naming what was asked and what is allowed: an unknown
    rule or fact, a condition index that is not a number comparison, or an
    ambiguous choice (listing the candidates).
    """
    if rule is None and fact is None:
        raise SweepError("threshold: name a rule (rule='R-KID-01') or a fact (fact='egfr', at=60)")
    candidates = _candidates(rulebook, rule, condition, fact)
    if at is not None:
        wanted = _number("at", at)
        candidates = [c for c in candidates if c[2].value == wanted]
        if not candidates:
            raise SweepError(f"at: no {_where(rule, fact)} compares with {wanted:g}; allowed: "
                             f"{_values_text(_candidates(rulebook, rule, condition, fact))}")
    values = sorted({c[2].value for c in candidates})
    if len(values) > 1:
        listed = "; ".join(f"{rid} when[{i}] {c.describe()}" for rid, i, c in candidates)
        hint = "condition=N (--condition N)" if rule is not None else "at=VALUE (--at VALUE)"
        raise SweepError(f"threshold: {_where(rule, fact)} has {len(candidates)} thresholds ({listed}); "
                         f"choose one with {hint}")
    chosen = candidates[0][2]
    return Threshold(chosen.fact, float(chosen.value), tuple((rid, i) for rid, i, _ in candidates),
                     tuple(c.describe() for _, _, c in candidates))


def _candidates(rulebook: Rulebook, rule: str | None, condition: int | None,
                fact: str | None) -> list[tuple[str, int, Condition]]:
    if fact is not None and rulebook.vocabulary.spec(fact) is None:
        raise SweepError(f"fact: unknown fact {fact!r}{_close(fact, rulebook.vocabulary.names())}; allowed: "
                         f"{', '.join(_number_facts(rulebook))}")
    rules = rulebook.rules if rule is None else (_rule(rulebook, rule),)
    found = [(r.id, i, c) for r in rules for i, c in enumerate(r.when)
             if c.kind == "fact" and c.op in COMPARISONS and (fact is None or c.fact == fact)]
    if condition is not None:
        found = _at_index(rulebook, rule, condition, found)
    if not found:
        raise SweepError(f"threshold: {_where(rule, fact)} compares no number ({', '.join(COMPARISONS)}); "
                         f"facts with thresholds: {', '.join(_number_facts(rulebook))}")
    return found


def _rule(rulebook: Rulebook, rule_id: str) -> Rule:
    try:
        return rulebook.rule(rule_id)
    except KeyError:
        raise SweepError(f"rule: no rule {rule_id!r}{_close(rule_id, rulebook.rule_ids)}; allowed: a rule id such "
                         f"as {', '.join(rulebook.rule_ids[:3])} (see docs/RULES.md)") from None


def _at_index(rulebook: Rulebook, rule: str | None, condition: int,
              found: list[tuple[str, int, Condition]]) -> list[tuple[str, int, Condition]]:
    if rule is None:
        raise SweepError("condition: needs a rule (the index is a position in that rule's when list)")
    picked = [c for c in found if c[1] == condition]
    if not picked:
        allowed = ", ".join(f"{i} ({c.describe()})" for _, i, c in found) or "none: it compares no number"
        raise SweepError(f"condition: got {condition!r}; allowed for {rule}: {allowed}")
    return picked


def _where(rule: str | None, fact: str | None) -> str:
    if rule is not None and fact is not None:
        return f"rule {rule} on {fact}"
    return f"rule {rule}" if rule is not None else f"fact {fact}"


def _values_text(candidates: list[tuple[str, int, Condition]]) -> str:
    return ", ".join(f"{c.value:g} ({rid})" for rid, _, c in candidates)


def _number_facts(rulebook: Rulebook) -> list[str]:
    return sorted({c.fact for r in rulebook.rules for c in r.when if c.kind == "fact" and c.op in COMPARISONS})


def _close(name: str, choices: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- values -----------------------------------------------------------------------------------


def parse_values(text: str) -> list[float]:
    """``"45:75:5"`` (start:stop:step, stop included) or ``"45,50,60"``; SweepError names a bad part."""
    text = str(text).strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise SweepError(f"values: got {text!r}; allowed: START:STOP:STEP (e.g. 45:75:5) or a list 45,50,60")
        start, stop, step = (_decimal(p, text) for p in parts)
        if step <= 0 or stop < start:
            raise SweepError(f"values: got {text!r}; allowed: STEP > 0 and STOP >= START")
        steps = int((stop - start) / step)
        if steps + 1 > MAX_VALUES:
            raise SweepError(f"values: {text!r} gives {steps + 1:,} values; allowed: at most {MAX_VALUES:,}")
        return [float(start + i * step) for i in range(steps + 1)]
    values = [float(_decimal(p, text)) for p in text.split(",") if p.strip()]
    if not values:
        raise SweepError("values: none given; allowed: START:STOP:STEP (e.g. 45:75:5) or a list 45,50,60")
    return values


def _decimal(part: str, text: str) -> Decimal:
    try:
        value = Decimal(part.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise SweepError(f"values: {part.strip()!r} in {text!r} is not a number; allowed: START:STOP:STEP "
                         "(e.g. 45:75:5) or a list 45,50,60")
    return value


def _number(name: str, value: Any) -> float:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok:
        raise SweepError(f"{name}: got {value!r}; allowed: a finite number")
    return float(value)


def _check_values(rulebook: Rulebook, threshold: Threshold, values: Sequence[float]) -> list[float]:
    spec = rulebook.vocabulary.spec(threshold.fact)
    checked = [_number("values", v) for v in values]
    if not checked:
        raise SweepError("values: none given")
    if len(checked) > MAX_VALUES:
        raise SweepError(f"values: {len(checked):,} given; allowed: at most {MAX_VALUES:,}")
    low = -math.inf if spec.minimum is None else spec.minimum
    high = math.inf if spec.maximum is None else spec.maximum
    outside = [v for v in checked if not low <= v <= high]
    if outside:
        unit = f" {spec.unit}" if spec.unit else ""
        raise SweepError(f"values: {', '.join(f'{v:g}' for v in outside)} outside the range of {spec.name}; "
                         f"allowed: {low:g} to {high:g}{unit}")
    return list(dict.fromkeys(checked))


def variant_rulebook(rulebook: Rulebook, threshold: Threshold, value: float) -> Rulebook:
    """``rulebook`` with every condition of ``threshold`` comparing with ``value`` instead (re-checked rule data)."""
    book = rulebook
    for rule_id in threshold.rule_ids:
        rule = book.rule(rule_id)
        moved = {i for rid, i in threshold.conditions if rid == rule_id}
        when = tuple(replace(c, value=float(value)) if i in moved else c for i, c in enumerate(rule.when))
        book = book.replace_rule(rule_id, when=when)
    return book


# --- the population ---------------------------------------------------------------------------


def read_population(path: str | Path) -> pd.DataFrame:
    """Patients from a CSV (every cell as text, empty = unknown) or Parquet file; SweepError if unreadable."""
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise SweepError(f"population {source}: suffix {source.suffix or '(none)'!r} not supported; "
                         "allowed: .csv, .parquet")
    if not source.is_file():
        raise SweepError(f"population file not found: {source}")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(source)
        return pd.read_csv(source, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SweepError(f"population {source}: not readable ({exc})") from None


# --- the sweep --------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """What moving one threshold does to a population, value by value.

    ``table``: one row per value with ``value``, ``base`` (the rulebook's own
    value), ``rulebook_version`` (the variant's), ``base_rulebook_version``,
    ``patients`` (rows evaluated), ``changed`` (preferred agent,
    recommendations, continue, avoided, cautions or flags differ from the base), ``<outcome>_changed`` for
    every engine outcome (``fired_rules_changed`` counts changed traces) and
    ``transitions`` (``'from -> to: n; ...'``). ``transitions``: long form,
    ``value``, ``from``, ``to``, ``count`` (preferred agent only, ``none`` for
    no agent), most frequent first. ``rejected``: population rows that failed
    validation (not counted anywhere else).
    """

    threshold: Threshold
    label: str
    base_rulebook_version: str
    table: pd.DataFrame
    transitions: pd.DataFrame
    patients: int
    rejected: int
    rule_titles: dict[str, str] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The per-value table (what ``--format csv`` writes)."""
        return self.table.copy()

    def to_json(self) -> str:
        """Everything as one JSON document: threshold, versions, per-value counts and transitions."""
        values = []
        for row in self.table.to_dict("records"):
            moves = self.transitions[self.transitions["value"] == row["value"]]
            values.append({**{k: _plain(v) for k, v in row.items() if k != "transitions"},
                           "transitions": [{"from": f, "to": t, "count": int(n)}
                                           for f, t, n in zip(moves["from"], moves["to"], moves["count"])]})
        document = {"disclaimer": DISCLAIMER, "threshold": {
            "fact": self.threshold.fact, "base_value": self.threshold.value, "label": self.label,
            "conditions": [{"rule": r, "condition": i, "title": self.rule_titles.get(r, "")}
                           for r, i in self.threshold.conditions]},
            "base_rulebook_version": self.base_rulebook_version, "patients": self.patients,
            "rejected": self.rejected, "values": values}
        return json.dumps(document, indent=2, ensure_ascii=False)

    def to_text(self) -> str:
        """A table for the terminal: one line per value, then the preferred-agent transitions."""
        lines = [DISCLAIMER, f"Sweep of {self.label}",
                 f"base rulebook_version {self.base_rulebook_version}; {self.patients:,} patients"
                 + (f" ({self.rejected:,} rows rejected by validation, not counted)" if self.rejected else "")]
        shown = self.table.drop(columns=["transitions", "base_rulebook_version"])
        shown = shown.assign(value=[f"{v:g}" + (" (base)" if b else "") for v, b in zip(shown["value"], shown["base"])])
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            lines.append(shown.drop(columns=["base"]).to_string(index=False))
        for row in self.table.itertuples():
            if row.transitions:
                lines.append(f"{row.value:g}: {row.transitions}")
        return "\n".join(lines)

    def plot(self, top: int = 6) -> Any:
        """A figure: patients changed per value (left), top preferred-agent transitions (right)."""
        return _plot(self, top)


def _plot(result: SweepResult, top: int) -> Any:
    import matplotlib.pyplot as plt

    table = result.table
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    outcomes = [c for c in table.columns if c.endswith("_changed") and c != f"{_TRACE}_changed"]
    left.plot(table["value"], table["changed"], color="#222", linewidth=5, alpha=0.25, label="any of these")
    for column, marker in zip(outcomes, "osd^v<>"):
        left.plot(table["value"], table[column], marker=marker, label=column.removesuffix("_changed").replace("_", " "))
    for axis in (left, right):
        axis.axvline(result.threshold.value, color="#888", linestyle="--", linewidth=1)
        axis.set_xlabel(f"{result.threshold.fact} threshold (base {result.threshold.value:g}, dashed)")
    left.set_ylabel(f"patients changed (of {result.patients:,})")
    left.set_title("Patients whose outcome changes vs the base", fontsize=10)
    left.legend(fontsize=8)
    moves = result.transitions.assign(move=result.transitions["from"] + " -> " + result.transitions["to"])
    wide = moves.pivot_table(index="value", columns="move", values="count", aggfunc="sum", fill_value=0)
    wide = wide.reindex(table["value"], fill_value=0)
    keep = list(wide.sum().sort_values(ascending=False).index[:top])
    for move in keep:
        right.plot(wide.index, wide[move], marker="o", label=move)
    right.set_ylabel("patients")
    right.set_title(f"Preferred agent: from (base) -> to (variant), top {len(keep)}", fontsize=10)
    if keep:
        right.legend(fontsize=8)
    fig.suptitle(f"Sweep of {result.label} — base rulebook {result.base_rulebook_version}", fontsize=11)
    fig.text(0.01, 0.005, f"{result.patients:,} patients · base rulebook {result.base_rulebook_version}, one "
             "variant rulebook per value (versions in the table) · Not for clinical use", fontsize=7, color="#555")
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def sweep(population: pd.DataFrame, values: Sequence[float] | str, *, rule: str | None = None,
          condition: int | None = None, fact: str | None = None, at: float | None = None,
          rulebook: Rulebook | None = None) -> SweepResult:
    """Evaluate ``population`` with the base rulebook and with the threshold moved to each of ``values``.

    ``population``: a DataFrame of patients (one per row, fact columns as
    :func:`~lupus_rules.batch.run_batch` takes them). The threshold is named as
    in :func:`find_threshold`; ``values`` is a sequence of numbers or the text
    ``"45:75:5"``/``"45,50"`` (:func:`parse_values`), each inside the fact's
    declared range. Patients are validated once; rows that fail are counted in
    ``rejected`` and left out. Returns a :class:`SweepResult`. Raises
    :class:`SweepError` (or :class:`~lupus_rules.errors.BatchInputError` for an
    unknown column) before evaluating anything. Not for clinical use.
    """
    from .engines.vectorized import evaluate_frame

    book = rulebook if rulebook is not None else _default_rulebook()
    if not isinstance(population, pd.DataFrame):
        raise SweepError(f"population: got {type(population).__name__}; allowed: a pandas DataFrame")
    threshold = find_threshold(book, rule=rule, condition=condition, fact=fact, at=at)
    wanted = _check_values(book, threshold, parse_values(values) if isinstance(values, str) else values)
    variants = [(v, variant_rulebook(book, threshold, v)) for v in wanted]
    typed, errors = validate_frame(population[check_columns(population.columns, book.vocabulary)], book.vocabulary)
    good = (errors == "").to_numpy()
    typed = typed[good]
    base = evaluate_frame(typed, book)
    rows = [_compare(value, threshold.value, variant, book.version, base, evaluate_frame(typed, variant))
            for value, variant in variants]
    table = pd.DataFrame([r[0] for r in rows])
    transitions = pd.concat([r[1] for r in rows], ignore_index=True)
    return SweepResult(threshold, threshold.label(book), book.version, table, transitions,
                       int(good.sum()), int((~good).sum()), {r: book.rule(r).title for r in threshold.rule_ids})


def _default_rulebook() -> Rulebook:
    from .evaluate import default_rulebook

    return default_rulebook()


def _compare(value: float, base_value: float, variant: Rulebook, base_version: str, base: pd.DataFrame,
             after: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    differs = {name: (base[name] != after[name]).to_numpy(dtype=bool) for name in base.columns}
    advice = [d for name, d in differs.items() if name != _TRACE]
    changed = np.logical_or.reduce(advice) if len(base) else np.zeros(0, dtype=bool)
    moves = _transitions(value, base["preferred"].to_numpy(dtype=object)[differs["preferred"]],
                         after["preferred"].to_numpy(dtype=object)[differs["preferred"]])
    row: dict[str, Any] = {"value": value, "base": value == base_value, "rulebook_version": variant.version,
                           "base_rulebook_version": base_version, "patients": len(base),
                           "changed": int(changed.sum())}
    row.update({f"{name}_changed": int(d.sum()) for name, d in differs.items()})
    row["transitions"] = "; ".join(f"{f} -> {t}: {n:,}" for f, t, n in
                                   zip(moves["from"], moves["to"], moves["count"]))
    return row, moves


def _transitions(value: float, before: np.ndarray, after: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"from": before, "to": after}).replace("", NONE)
    counts = frame.value_counts(sort=False).reset_index(name="count")
    counts = counts.sort_values(["count", "from", "to"], ascending=[False, True, True], kind="stable")
    counts.insert(0, "value", value)
    return counts.astype({"from": str, "to": str, "count": int}).reset_index(drop=True)
