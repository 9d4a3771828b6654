"""What a rule edit does to the scenario suite: every changed scenario before/after, and its expectations.

``impact(base, edited, scenarios)`` runs the suite rows with both rulebooks (the
vectorized engine, :func:`lupus_rules.batch.run_batch`) and returns an
:class:`Impact`: one row per scenario whose outcome or trace differs, with

* before/after of every outcome (:data:`OUTCOME_FIELDS`: preferred agent,
  recommendations, continue, avoided, cautions, flags) and of the fired rules;
* ``kind``: ``outcome`` when an outcome differs, ``trace`` when only the fired
  rules do (the changes an author usually filters out);
* whether the row met its ``expect_*`` columns before and after, checked by the
  suite's own per-row check (:func:`lupus_rules.suite.unmet_expectations`), and
  the transition (``pass → FAIL`` first in the table);
* the rules responsible (fired under one rulebook only, or changed and fired under
  either: :func:`lupus_rules.authoring.compare.responsible_rules`);

plus counts over the whole suite. An editor evaluates the base once
(:func:`suite_outcomes`) and passes it as ``before`` to every later call, so each
edit costs one batch run of the edited rulebook. Not for clinical use.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..batch import run_batch
from ..rulebook import Rulebook
from ..suite import DESCRIPTION_COLUMN, EXPECTATION_COLUMNS, ID_COLUMN, Expectations, parse_expectations, \
    unmet_expectations
from .compare import read_scenarios, responsible_rules, rule_order
from .ruldiff import changed_rule_ids

__all__ = ["OUTCOME_FIELDS", "IMPACT_COLUMNS", "Suite", "SuiteOutcomes", "Impact", "load_impact_suite",
           "suite_outcomes", "impact"]

#: The outcome fields compared (a difference in one of them is an *outcome* change), in display order.
OUTCOME_FIELDS: tuple[str, ...] = ("preferred", "recommendations", "continue", "avoided", "cautions", "flags")
_FIELDS = OUTCOME_FIELDS + ("fired_rules",)

#: Columns of :attr:`Impact.rows`.
IMPACT_COLUMNS: list[str] = [
    ID_COLUMN, DESCRIPTION_COLUMN, "kind", "changed",
    *(f"{f}_{side}" for f in _FIELDS for side in ("before", "after")),
    "rules", "expect_before", "expect_after", "expectation", "mismatches_before", "mismatches_after"]

_PASS, _FAIL, _UNCHECKED = "pass", "FAIL", "not checked"


@dataclass(frozen=True)
class Suite:
    """Scenario rows ready to evaluate: the frame, each row's id, description and expectations (None: none)."""

    frame: pd.DataFrame
    ids: tuple[str, ...]
    descriptions: tuple[str, ...]
    expectations: tuple[Expectations | None, ...]
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)


def load_impact_suite(scenarios: str | Path | pd.DataFrame | Suite, rulebook: Rulebook | None = None, *,
                      check: bool = True) -> Suite:
    """The suite from a folder or file of scenario CSVs, or a DataFrame of rows (cells as text).

    Expectations are read by the suite's own parser
    (:func:`lupus_rules.suite.parse_expectations`); a bad cell raises
    :class:`~lupus_rules.errors.SuiteFormatError` naming the row and column.
    A row without any ``expect_*`` cell is evaluated but not checked.
    ``check=False`` reads no expectations at all: every row is evaluated and
    none is checked (for a caller that judges expectations its own way, such as
    the review dossier, which runs the suite loader on each rulebook).
    """
    if isinstance(scenarios, Suite):
        return scenarios
    frame = read_scenarios(scenarios).reset_index(drop=True)
    ids = (tuple(frame[ID_COLUMN].astype(str)) if ID_COLUMN in frame.columns
           else tuple(str(i) for i in range(len(frame))))
    descriptions = (tuple(frame[DESCRIPTION_COLUMN].astype(str)) if DESCRIPTION_COLUMN in frame.columns
                    else ("",) * len(frame))
    columns = [c for c in EXPECTATION_COLUMNS if c in frame.columns] if check else []
    expectations: list[Expectations | None] = []
    for ident, cells in zip(ids, frame[columns].astype(str).to_dict("records") if columns else [{}] * len(frame)):
        expect = parse_expectations({ID_COLUMN: ident, **cells}, rulebook) if columns else Expectations()
        expectations.append(None if expect.is_empty() else expect)
    source = "" if isinstance(scenarios, pd.DataFrame) else str(scenarios)
    return Suite(frame, ids, descriptions, tuple(expectations), source)


@dataclass(frozen=True)
class _RowOutcome:
    """One batch row as the outcome attributes the suite's check reads."""

    preferred: str | None
    recommendations: tuple[str, ...]
    continue_: tuple[str, ...]
    avoided: tuple[str, ...]
    cautions: tuple[str, ...]
    flags: tuple[str, ...]
    fired_rules: tuple[str, ...]

    @classmethod
    def of(cls, cells: Mapping[str, str]) -> _RowOutcome:
        def items(name: str) -> tuple[str, ...]:
            return tuple(x for x in str(cells[name]).split(";") if x)

        avoided = tuple(x.split(":", 1)[0].strip() for x in items("avoided"))  # cell: "agent: first rule"
        return cls(cells["preferred"] or None, items("recommendations"), items("continue"), avoided,
                   items("cautions"), items("flags"), items("fired_rules"))


@dataclass(frozen=True)
class SuiteOutcomes:
    """One rulebook's outcome on every suite row (``;``-joined cells) and each row's expectation check."""

    rulebook: Rulebook
    cells: dict[str, np.ndarray]
    errors: np.ndarray
    status: tuple[str, ...]
    mismatches: tuple[str, ...]

    @property
    def failing(self) -> int:
        """Rows whose expectations are not met."""
        return self.status.count(_FAIL)


def suite_outcomes(rulebook: Rulebook, suite: Suite) -> SuiteOutcomes:
    """Evaluate every suite row with ``rulebook`` and check each row's expectations."""
    out = run_batch(suite.frame, engine="vectorized", rulebook=rulebook)
    cells = {f: out[f].to_numpy(dtype=object) for f in _FIELDS}
    errors = out["error"].to_numpy(dtype=object)
    status, mismatches = [], []
    for i, expect in enumerate(suite.expectations):
        if expect is None or errors[i]:
            status.append(_UNCHECKED)
            mismatches.append(str(errors[i]) if errors[i] else "")
            continue
        unmet = unmet_expectations(expect, _RowOutcome.of({f: cells[f][i] for f in _FIELDS}))
        status.append(_FAIL if unmet else _PASS)
        mismatches.append("; ".join(map(str, unmet)))
    return SuiteOutcomes(rulebook, cells, errors, tuple(status), tuple(mismatches))


@dataclass(frozen=True)
class Impact:
    """The changed scenarios of an edit (:data:`IMPACT_COLUMNS`) and the counts over the whole suite."""

    rows: pd.DataFrame
    total: int
    invalid: int
    checked: int
    failing_before: int
    failing_after: int
    base_version: str
    edited_version: str
    by_field: dict[str, int] = field(default_factory=dict)

    @property
    def outcome_changes(self) -> pd.DataFrame:
        """Scenarios whose preferred agent, recommendations, continue, avoided, cautions or flags changed."""
        return self.rows[self.rows["kind"] == "outcome"]

    @property
    def trace_changes(self) -> pd.DataFrame:
        """Scenarios where only the fired rules changed."""
        return self.rows[self.rows["kind"] == "trace"]

    @property
    def new_failures(self) -> pd.DataFrame:
        """Scenarios that met their expectations before the edit and do not after it."""
        return self.rows[self.rows["expectation"] == f"{_PASS} → {_FAIL}"]

    @property
    def fixed(self) -> pd.DataFrame:
        """Scenarios that failed their expectations before the edit and meet them after it."""
        return self.rows[self.rows["expectation"] == f"{_FAIL} → {_PASS}"]

    def shown(self, outcome_only: bool = True) -> pd.DataFrame:
        """The rows an author looks at: outcome changes only (default), or every change."""
        return self.outcome_changes if outcome_only else self.rows

    @property
    def counts(self) -> dict[str, int]:
        """Total, changed, outcome, trace-only, pass → FAIL, FAIL → pass, failing before/after, invalid."""
        return {"total": self.total, "changed": len(self.rows), "outcome": len(self.outcome_changes),
                "trace": len(self.trace_changes), "pass_to_fail": len(self.new_failures),
                "fail_to_pass": len(self.fixed), "failing_before": self.failing_before,
                "failing_after": self.failing_after, "checked": self.checked, "invalid": self.invalid}

    @property
    def summary(self) -> str:
        """One line: how many scenarios changed, how, and what it does to the suite's expectations."""
        c = self.counts
        text = (f"{c['changed']} of {c['total']} scenarios changed: {c['outcome']} outcome, {c['trace']} "
                f"trace-only; {c['pass_to_fail']} pass → FAIL, {c['fail_to_pass']} FAIL → pass; suite "
                f"failures {c['failing_before']} → {c['failing_after']} of {c['checked']} checked")
        if c["invalid"]:
            text += f"; {c['invalid']} rows rejected by validation"
        return text


def impact(base: Rulebook, edited: Rulebook, scenarios: str | Path | pd.DataFrame | Suite, *,
           before: SuiteOutcomes | None = None) -> Impact:
    """The impact of changing ``base`` into ``edited`` on a scenario suite (see the module docstring).

    ``before``: the base's :func:`suite_outcomes` on the same suite, when already computed.
    """
    suite = load_impact_suite(scenarios, base)
    if before is None or before.rulebook is not base:
        before = suite_outcomes(base, suite)
    after = before if edited is base else suite_outcomes(edited, suite)
    differs = {f: before.cells[f] != after.cells[f] for f in _FIELDS}
    changed = np.logical_or.reduce(list(differs.values())) if len(suite) else np.zeros(0, dtype=bool)
    rows = _rows(suite, before, after, differs, np.flatnonzero(changed), base, edited)
    checked = sum(s != _UNCHECKED for s in after.status)
    return Impact(rows, len(suite), int(sum(bool(e) for e in after.errors)), checked, before.failing,
                  after.failing, base.version, edited.version, {f: int(d.sum()) for f, d in differs.items()})


def _rows(suite: Suite, before: SuiteOutcomes, after: SuiteOutcomes, differs: dict[str, np.ndarray],
          where: np.ndarray, base: Rulebook, edited: Rulebook) -> pd.DataFrame:
    changed_ids = changed_rule_ids(base, edited)
    order = rule_order(base, edited)
    rows = []
    for i in where:
        record: dict[str, object] = {ID_COLUMN: suite.ids[i], DESCRIPTION_COLUMN: suite.descriptions[i]}
        record["kind"] = "outcome" if any(differs[f][i] for f in OUTCOME_FIELDS) else "trace"
        record["changed"] = ";".join(f for f in _FIELDS if differs[f][i])
        for f in _FIELDS:
            record[f"{f}_before"], record[f"{f}_after"] = before.cells[f][i], after.cells[f][i]
        record["rules"] = responsible_rules(before.cells["fired_rules"][i], after.cells["fired_rules"][i],
                                       changed_ids, order)
        record["expect_before"], record["expect_after"] = before.status[i], after.status[i]
        record["expectation"] = _transition(before.status[i], after.status[i])
        record["mismatches_before"], record["mismatches_after"] = before.mismatches[i], after.mismatches[i]
        rows.append(record)
    frame = pd.DataFrame(rows, columns=IMPACT_COLUMNS)
    rank = {f"{_PASS} → {_FAIL}": 0, f"{_FAIL} → {_PASS}": 1, f"{_FAIL} → {_FAIL}": 2}
    key = frame["expectation"].map(lambda e: rank.get(e, 3)) * 2 + (frame["kind"] != "outcome")
    return frame.assign(_key=key).sort_values("_key", kind="stable").drop(columns="_key").reset_index(drop=True)


def _transition(before: str, after: str) -> str:
    if _UNCHECKED in (before, after):
        return _UNCHECKED
    return _PASS if before == after == _PASS else f"{before} → {after}"
