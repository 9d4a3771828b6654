"""authoring.impact: what a rule edit does to the suite, checked against the durable engine and check_suite."""
from __future__ import annotations

import pandas as pd
import pytest

from lupus_rules import default_rulebook, evaluate
from lupus_rules.authoring import read_scenarios
from lupus_rules.authoring.editing import drop_rule, edit_rule
from lupus_rules.authoring.impact import IMPACT_COLUMNS, OUTCOME_FIELDS, impact, load_impact_suite, suite_outcomes
from lupus_rules.errors import SuiteFormatError
from lupus_rules.presets import default_scenarios_dir
from lupus_rules.suite import check_suite, load_suite, parse_expectations, unmet_expectations

SUITE = default_scenarios_dir()


def _outcome(result) -> tuple:
    return (result.preferred, result.recommendations, result.continue_, tuple(result.avoided), result.cautions,
            result.flags)


def _durable_changes(book, edited) -> tuple[set[str], set[str]]:
    """(ids whose outcome differs, ids where only the fired rules differ), one patient at a time with durable."""
    outcome, trace = set(), set()
    for scenario in load_suite(SUITE):
        a, b = evaluate(scenario.patient, book), evaluate(scenario.patient, edited)
        if _outcome(a) != _outcome(b):
            outcome.add(scenario.id)
        elif a.fired_rules != b.fired_rules:
            trace.add(scenario.id)
    return outcome, trace


def _failing(book) -> set[str]:
    return {c.scenario.id for c in check_suite(SUITE, book).failures}


@pytest.fixture(scope="module")
def lowered():
    book = default_rulebook()
    return book, edit_rule(book, "R-KID-01", when=[{"fact": "egfr", "op": ">=", "value": 45}])


def test_threshold_edit_lists_every_changed_scenario_split_into_outcome_and_trace(lowered):
    book, edited = lowered
    result = impact(book, edited, SUITE)
    outcome, trace = _durable_changes(book, edited)
    assert outcome and trace, "60 -> 45 both changes outcomes and only traces of suite rows"
    assert list(result.rows.columns) == IMPACT_COLUMNS
    assert set(result.outcome_changes["scenario_id"]) == outcome
    assert set(result.trace_changes["scenario_id"]) == trace
    assert set(result.shown(outcome_only=True)["scenario_id"]) == outcome
    assert set(result.shown(outcome_only=False)["scenario_id"]) == outcome | trace
    for row in result.rows.to_dict("records"):
        assert "R-KID-01" in row["rules"].split(";")
        differs = [f for f in OUTCOME_FIELDS if row[f"{f}_before"] != row[f"{f}_after"]]
        assert bool(differs) == (row["kind"] == "outcome")
        assert set(row["changed"].split(";")) == set(differs) | (
            {"fired_rules"} if row["fired_rules_before"] != row["fired_rules_after"] else set())
    assert result.counts["changed"] == len(outcome | trace) and result.total == len(load_suite(SUITE))


def test_expectations_before_and_after_agree_with_check_suite(lowered):
    book, edited = lowered
    result = impact(book, edited, SUITE)
    before, after = _failing(book), _failing(edited)
    assert result.failing_before == len(before) and result.failing_after == len(after)
    newly = after - before
    assert newly, "the suite pins the 60 threshold (rows at eGFR 59.99 must not get a calcineurin inhibitor)"
    assert set(result.new_failures["scenario_id"]) == newly
    first = result.rows.iloc[: len(newly)]
    assert set(first["scenario_id"]) == newly, "pass → FAIL rows come first"
    for row in result.new_failures.to_dict("records"):
        assert row["expect_before"] == "pass" and row["expect_after"] == "FAIL"
        assert "expect_" in row["mismatches_after"] and row["mismatches_before"] == ""
    assert "pass → FAIL" in result.summary


def test_the_reverse_edit_reports_fail_to_pass(lowered):
    book, edited = lowered
    result = impact(edited, book, SUITE)
    assert set(result.fixed["scenario_id"]) == _failing(edited) - _failing(book)
    assert result.new_failures.empty and result.failing_after == len(_failing(book))


def test_dropping_a_rule_and_no_change():
    book = default_rulebook()
    dropped = drop_rule(book, "R-SAFE-02")
    result = impact(book, dropped, SUITE)
    outcome, trace = _durable_changes(book, dropped)
    assert set(result.rows["scenario_id"]) == outcome | trace
    assert set(result.new_failures["scenario_id"]) == _failing(dropped) - _failing(book)
    same = impact(book, book, SUITE)
    assert same.rows.empty and same.counts["changed"] == 0 and same.failing_after == same.failing_before


def test_base_outcomes_can_be_reused(lowered):
    book, edited = lowered
    suite = load_impact_suite(SUITE, book)
    before = suite_outcomes(book, suite)
    reused = impact(book, edited, suite, before=before)
    fresh = impact(book, edited, SUITE)
    pd.testing.assert_frame_equal(reused.rows, fresh.rows)


def test_rows_without_expectations_are_not_checked(lowered):
    book, edited = lowered
    rows = read_scenarios(SUITE)
    bare = rows[[c for c in rows.columns if not c.startswith("expect_")]]
    result = impact(book, edited, bare)
    assert len(result.rows) == len(impact(book, edited, SUITE).rows)
    assert set(result.rows["expectation"]) == {"not checked"} and result.checked == 0


def test_parse_expectations_uses_the_suite_messages():
    expect = parse_expectations({"expect_preferred": "mycophenolate", "expect_flags": "monitoring_2_4_weeks"})
    assert expect.preferred == "mycophenolate" and expect.flags == ("monitoring_2_4_weeks",)
    with pytest.raises(SuiteFormatError) as info:
        parse_expectations({"scenario_id": "X1", "expect_avoided": "aspirin"})
    problem = info.value.problems[0]
    assert problem.column == "expect_avoided" and "aspirin" in problem.message and "allowed" in problem.message


def test_unmet_expectations_is_the_check_the_suite_uses():
    book = default_rulebook()
    for scenario in load_suite(SUITE)[:40]:
        result = evaluate(scenario.patient, book)
        assert unmet_expectations(scenario.expect, result) == ()
    scenario = load_suite(SUITE)[0]
    wrong = parse_expectations({"expect_fired": "R-KID-01"}) if "R-KID-01" not in evaluate(
        scenario.patient, book).fired_rules else parse_expectations({"expect_not_fired": "R-KID-01"})
    unmet = unmet_expectations(wrong, evaluate(scenario.patient, book))
    assert len(unmet) == 1 and "R-KID-01" in str(unmet[0])
