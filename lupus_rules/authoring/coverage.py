"""How well a scenario suite exercises the rules, and scenario rows for what it misses.

``coverage(scenarios)`` reports, per rule, how many scenarios fire it; per
condition, how often it came out true and false in the suite (both outcomes
should occur, or the condition is never really tested) and how often it alone
kept its rule from firing. For each rule no scenario fires it searches the
discretized fact space (exactly, see :mod:`lupus_rules.authoring.space`) for the
simplest patient that fires it and writes it as a suite row, ready to paste
into ``scenarios/``: id, description, fact cells and ``expect_fired``.
Not for clinical use.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..batch import check_columns
from ..engines.vectorized import fire_matrix
from ..evaluate import default_rulebook, evaluate
from ..facts import FACTS, validate_frame
from ..vocabulary import Vocabulary
from ..result import DISCLAIMER
from ..rulebook import Rule, Rulebook
from ..suite import DESCRIPTION_COLUMN, EXPECTATION_COLUMNS, ID_COLUMN
from .compare import read_scenarios
from ..engines.vectorized import condition_mask
from .space import DEFAULT_MAX_ROWS, FactSpace, schedule
from .sources import resolve_rulebook

__all__ = ["coverage", "CoverageReport", "propose_rows", "SUITE_COLUMNS", "suite_columns"]

#: Columns of a suite file, in the order the shipped scenario files use.
SUITE_COLUMNS = [ID_COLUMN, DESCRIPTION_COLUMN, *FACTS, *EXPECTATION_COLUMNS]


def suite_columns(vocabulary: Vocabulary | None = None) -> list[str]:
    """Columns of a suite file for a rulebook's facts (None = the shipped ones: :data:`SUITE_COLUMNS`)."""
    if vocabulary is None:
        return list(SUITE_COLUMNS)
    return [ID_COLUMN, DESCRIPTION_COLUMN, *vocabulary.facts, *EXPECTATION_COLUMNS]


@dataclass
class CoverageReport:
    """Rule and condition coverage of a suite, with proposed rows for the rules it never fires.

    ``rules``: rule_id, title, scenarios (how many fire it). ``conditions``:
    rule_id, condition (number in ``when``, from 1), text, true, false, both
    (both outcomes occur) and alone_false (rows where every other condition of
    the rule held and this one did not). ``proposals``: suite rows
    (:func:`suite_columns` of the rulebook's facts). ``unreachable``: uncovered rules for which no
    patient of the space fires at all (see ``lupus-rules lint``).
    """

    rules: pd.DataFrame
    conditions: pd.DataFrame
    proposals: pd.DataFrame
    unreachable: tuple[str, ...]
    scenarios: int
    invalid: int
    rulebook_version: str

    @property
    def uncovered(self) -> tuple[str, ...]:
        """Ids of the rules no scenario fires, in rule-file order."""
        return tuple(self.rules.loc[self.rules["scenarios"] == 0, "rule_id"])

    def one_sided(self) -> pd.DataFrame:
        """Conditions whose true or false outcome never occurs in the suite."""
        return self.conditions[~self.conditions["both"]]

    def __str__(self) -> str:
        return self.to_text()

    def to_text(self) -> str:
        """The report as the CLI prints it."""
        fired = int((self.rules["scenarios"] > 0).sum())
        lines = [DISCLAIMER, f"Coverage of {self.scenarios} scenarios (rulebook {self.rulebook_version}"
                 f"{f'; {self.invalid} invalid rows skipped' if self.invalid else ''})",
                 f"Rules fired by at least one scenario: {fired}/{len(self.rules)}", "",
                 self.rules.to_string(index=False), ""]
        one_sided = self.one_sided()
        lines.append(f"Conditions with only one outcome in the suite: {len(one_sided)}/{len(self.conditions)}")
        if len(one_sided):
            lines.append(one_sided.to_string(index=False))
        lines.append("")
        if self.unreachable:
            lines.append("Rules no patient can fire (run lupus-rules lint): " + ", ".join(self.unreachable))
        if len(self.proposals):
            lines.append(f"Proposed scenario rows for {len(self.proposals)} uncovered rules "
                         "(paste into a scenarios/*.csv file, then add the expectations you mean):")
            lines.append(self.proposals.to_csv(index=False).rstrip("\n"))
        elif not self.uncovered:
            lines.append("Every rule is fired by some scenario.")
        return "\n".join(lines)


def coverage(scenarios: str | Path | pd.DataFrame, rulebook: Rulebook | str | Path | None = None, *,
             propose: bool = True, max_rows: int = DEFAULT_MAX_ROWS) -> CoverageReport:
    """Rule and condition coverage of ``scenarios`` (a suite folder, file or DataFrame).

    An unknown column raises :class:`~lupus_rules.errors.BatchInputError`
    (naming it). Rows the fact schema rejects are skipped and counted. With ``propose``,
    each rule no scenario fires gets a proposed suite row (see module docstring).
    """
    book = resolve_rulebook(rulebook) if rulebook is not None else default_rulebook()
    rows = read_scenarios(scenarios)
    check_columns(rows.columns, book.vocabulary)  # a misspelt fact is refused, as `run` refuses it
    typed, errors = validate_frame(rows, book.vocabulary)
    valid = (errors == "").to_numpy()
    typed = typed[valid]
    fired = np.ascontiguousarray(fire_matrix(typed, book).T)
    derived = _derived(book, fired)
    ordered = sorted(book.rules, key=lambda r: r.position)
    column = {r.id: j for j, r in enumerate(book.rules)}
    rules = pd.DataFrame([{"rule_id": r.id, "title": r.title, "scenarios": int(fired[column[r.id]].sum())}
                          for r in ordered], columns=["rule_id", "title", "scenarios"])
    conditions = pd.DataFrame([row for r in ordered for row in _condition_rows(r, typed, derived, book.vocabulary)],
                              columns=["rule_id", "condition", "text", "true", "false", "both", "alone_false"])
    missing = [r.id for r in ordered if not fired[column[r.id]].any()]
    proposals, unreachable = (propose_rows(book, missing, max_rows=max_rows) if propose
                              else (_empty(book.vocabulary), ()))
    return CoverageReport(rules, conditions, proposals, unreachable, int(valid.sum()), int((~valid).sum()),
                          book.version)


def _derived(book: Rulebook, fired: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for j, rule in enumerate(book.rules):
        for name in rule.derive:
            out[name] = out.get(name, np.zeros(fired.shape[1], dtype=bool)) | fired[j]
    return out


def _condition_rows(rule: Rule, typed: pd.DataFrame, derived: dict[str, np.ndarray],
                    vocabulary: Vocabulary) -> list[dict]:
    masks = [condition_mask(c, typed, derived, vocabulary) for c in rule.when]
    rows = []
    for i, (condition, mask) in enumerate(zip(rule.when, masks)):
        others = np.logical_and.reduce([m for k, m in enumerate(masks) if k != i]) if len(masks) > 1 \
            else np.ones(len(typed), dtype=bool)
        true, false = int(mask.sum()), int((~mask).sum())
        rows.append({"rule_id": rule.id, "condition": i + 1, "text": condition.describe(), "true": true,
                     "false": false, "both": bool(true and false), "alone_false": int((others & ~mask).sum())})
    return rows


def _empty(vocabulary: Vocabulary | None = None) -> pd.DataFrame:
    return pd.DataFrame(columns=suite_columns(vocabulary))


def propose_rows(rulebook: Rulebook, rule_ids: list[str], *,
                 max_rows: int = DEFAULT_MAX_ROWS) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """A suite row per rule: the simplest patient of the discretized space that fires it.

    "Simplest" = fewest facts away from their defaults. Returns the rows
    (:func:`suite_columns` of the rulebook's facts, ``expect_fired`` = the rule) and the ids of rules
    no patient fires (no row for them).
    """
    if not rule_ids:
        return _empty(rulebook.vocabulary), ()
    space = FactSpace(rulebook)
    best: dict[str, tuple[int, dict]] = {}
    for plan, targets in schedule(space, (([r], (), r) for r in rule_ids), max_rows=max_rows):
        for chunk in space.chunks(plan):
            simplicity = chunk.nondefault_count()
            for rule_id in targets:
                hits = np.flatnonzero(chunk.fires(rule_id))
                if len(hits):
                    row = int(hits[np.argmin(simplicity[hits])])
                    if rule_id not in best or simplicity[row] < best[rule_id][0]:
                        best[rule_id] = (int(simplicity[row]), chunk.patient(row, full=True))
    rows = [_suite_row(rulebook, rule_id, best[rule_id][1]) for rule_id in rule_ids if rule_id in best]
    return (pd.DataFrame(rows, columns=suite_columns(rulebook.vocabulary)),
            tuple(r for r in rule_ids if r not in best))


def _suite_row(book: Rulebook, rule_id: str, patient: dict) -> dict:
    """The proposal as a suite row; re-checked with the durable engine, which must fire the rule too."""
    result = evaluate({k: v for k, v in patient.items()}, book)
    rule = book.rule(rule_id)
    row = {column: "" for column in suite_columns(book.vocabulary)}
    for name, value in patient.items():
        spec = book.facts[name]
        if (spec.kind == "bool" and value == "false") or (spec.kind == "status" and value == spec.default):
            continue  # left empty, as the suite writes defaults
        row[name] = format(value, ".15g") if isinstance(value, float) else value
    verdict = "" if rule_id in result.fired_rules else " WARNING: the durable engine does not fire it."
    row[ID_COLUMN] = f"COV-{rule_id}"
    row[DESCRIPTION_COLUMN] = (f"Proposed by lupus-rules coverage: fires {rule_id} ({rule.title}); currently "
                               f"preferred: {result.preferred or 'none'}. Review and add expectations.{verdict}")
    row["expect_fired"] = rule_id
    return row
