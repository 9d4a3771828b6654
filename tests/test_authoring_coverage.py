"""Suite coverage and proposed rows (authoring/coverage.py)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lupus_rules import FACTS, Condition, default_rulebook, evaluate
from lupus_rules.authoring import SUITE_COLUMNS, coverage, read_scenarios
from lupus_rules.rulebook import Rule
from lupus_rules.suite import check_suite, load_suite

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture(scope="module")
def book():
    return default_rulebook()


def test_condition_outcomes_are_counted(book):
    # R-GC-02: prednisone_mg > 0 and prednisone_mg < 7.5 (an unknown dose fails both).
    rows = pd.DataFrame({"scenario_id": list("abcd"), "prednisone_mg": ["0", "5", "10", ""]})
    report = coverage(rows, book, propose=False)
    gc02 = report.conditions[report.conditions["rule_id"] == "R-GC-02"].set_index("condition")
    assert gc02.loc[1, ["true", "false", "alone_false"]].tolist() == [2, 2, 1]  # 5,10 | 0,unknown | 0
    assert gc02.loc[2, ["true", "false", "alone_false"]].tolist() == [2, 2, 1]  # 0,5 | 10,unknown | 10
    assert gc02["both"].all()
    scenarios = report.rules.set_index("rule_id")["scenarios"]
    assert scenarios["R-GC-01"] == 1 and scenarios["R-GC-02"] == 1 and scenarios["R-FL-07"] == 4


def test_one_sided_conditions_are_listed(book):
    rows = pd.DataFrame({"scenario_id": ["a", "b"], "prednisone_mg": ["10", "20"]})
    one_sided = coverage(rows, book, propose=False).one_sided()
    gc01 = one_sided[one_sided["rule_id"] == "R-GC-01"]
    assert gc01[["true", "false"]].values.tolist() == [[2, 0]]


def _without_rule_firing(rule_id: str, book) -> pd.DataFrame:
    rows = read_scenarios(SCENARIOS)
    scenarios = {s.id: s for s in load_suite(SCENARIOS)}
    keep = [rule_id not in evaluate(scenarios[i].patient, book).fired_rules for i in rows["scenario_id"]]
    return rows[keep]


def test_uncovered_rule_gets_a_row_that_fires_it_and_loads_as_a_suite(book, tmp_path):
    rows = _without_rule_firing("R-SW-02", book)
    report = coverage(rows, book)
    assert "R-SW-02" in report.uncovered
    proposals = report.proposals
    assert list(proposals.columns) == SUITE_COLUMNS
    assert set(proposals["expect_fired"]) == set(report.uncovered)
    path = tmp_path / "proposed.csv"
    proposals.to_csv(path, index=False)
    suite = check_suite(path, book)  # pasted as is, every proposed row loads and passes
    assert not suite.failures and len(suite.checks) == len(proposals)
    row = proposals[proposals["expect_fired"] == "R-SW-02"].iloc[0]
    patient = {k: row[k] for k in row.index if k in FACTS}
    assert "R-SW-02" in evaluate(patient, book).fired_rules


def test_full_suite_fires_every_rule(book):
    report = coverage(SCENARIOS, book)
    assert report.uncovered == () and report.proposals.empty and report.invalid == 0


def test_rule_no_patient_can_fire_is_named_not_proposed(book):
    never = Rule(id="T-NEVER", title="never", section="test", citation=(1,), rationale="test",
                 when=(Condition("fact", "egfr", "<", 30.0), Condition("fact", "egfr", ">=", 60.0)),
                 flag=("glucocorticoid_taper",), file="99_test.yaml")
    edited = book.with_rules([*sorted(book.rules, key=lambda r: r.position), never])
    report = coverage(SCENARIOS, edited)
    assert report.uncovered == ("T-NEVER",) and report.unreachable == ("T-NEVER",)
    assert report.proposals.empty
    assert "T-NEVER" in report.to_text()
