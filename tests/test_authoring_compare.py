"""Impact of a change (authoring/compare.py): exactly the affected scenarios are reported.

"Affected" is computed independently here, with the durable engine one
patient at a time; compare itself runs the vectorized engine.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lupus_rules import Condition, default_rulebook, evaluate
from lupus_rules.authoring import OUTCOMES, ScenarioSourceError, compare, read_scenarios
from lupus_rules.generate import iter_cartesian, value_bands
from lupus_rules.suite import load_suite

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture(scope="module")
def book():
    return default_rulebook()


@pytest.fixture(scope="module")
def lowered(book):
    """Preserved kidney function from eGFR 45 instead of 60."""
    return book.replace_rule("R-KID-01", when=(Condition("fact", "egfr", ">=", 45.0),))


def _outcome(patient, book) -> tuple:
    result = evaluate(patient, book)
    return (result.preferred, result.recommendations, result.flags, result.fired_rules)


def test_threshold_change_reports_exactly_the_affected_scenarios(book, lowered):
    expected = {s.id for s in load_suite(SCENARIOS) if _outcome(s.patient, book) != _outcome(s.patient, lowered)}
    table = compare(book, lowered, SCENARIOS)
    assert expected and set(table["scenario_id"]) == expected
    assert len(table) == len(expected)
    assert all("R-KID-01" in rules.split(";") for rules in table["rules"])
    assert table.attrs["summary"].startswith(f"{len(expected)} of {len(read_scenarios(SCENARIOS))} scenarios changed")


def test_before_and_after_match_each_rulebook(book, lowered):
    table = compare(book, lowered, SCENARIOS)
    scenarios = {s.id: s for s in load_suite(SCENARIOS)}
    for _, row in table.iterrows():
        patient = scenarios[row["scenario_id"]].patient
        for suffix, rules in (("before", book), ("after", lowered)):
            preferred, recommendations, flags, fired = _outcome(patient, rules)
            assert row[f"preferred_{suffix}"] == (preferred or "")
            assert row[f"recommendations_{suffix}"] == ";".join(recommendations)
            assert row[f"fired_rules_{suffix}"] == ";".join(fired)
        changed = set(row["changed"].split(";"))
        assert changed == {o for o in OUTCOMES if row[f"{o}_before"] != row[f"{o}_after"]}


def test_same_rulebook_changes_nothing(book):
    table = compare(book, book, SCENARIOS)
    assert table.empty and table.attrs["changed"] == 0 and table.attrs["total"] > 100


def test_generated_batch_of_100000_rows(book, lowered):
    facts = ["months_on_therapy", "mycophenolate", "planning_pregnancy", "egfr", "upcr", "manifestations"]
    rows = next(iter_cartesian(value_bands(book), facts, chunk_size=100_000))
    rows = rows.assign(methotrexate="intolerant")
    assert len(rows) == 100_000
    table = compare(book, lowered, rows)
    assert table.attrs["total"] == 100_000 and table.attrs["changed"] == len(table) > 0
    reported = set(table["scenario_id"])
    sample = rows.sample(150, random_state=7)
    sample = pd.concat([sample, rows[rows["scenario_id"].isin(table["scenario_id"].head(50))]])
    for _, row in sample.iterrows():
        patient = {k: v for k, v in row.items() if k != "scenario_id"}
        differs = _outcome(patient, book) != _outcome(patient, lowered)
        assert differs == (row["scenario_id"] in reported), row["scenario_id"]


def test_invalid_rows_are_counted_not_lost(book, lowered):
    rows = pd.DataFrame({"scenario_id": ["ok", "bad"], "manifestations": ["nephritis", "nephritis"],
                         "methotrexate": ["intolerant", "intolerant"], "egfr": ["50", "fifty"],
                         "upcr": ["4", "4"]})
    table = compare(book, lowered, rows)
    assert table.attrs["invalid"] == 1
    assert list(table["scenario_id"]) == ["ok"]
    assert "1 rows rejected by validation" in table.attrs["summary"]


def test_rows_without_ids_are_numbered(book, lowered):
    rows = pd.DataFrame({"manifestations": ["nephritis", "nephritis"], "egfr": ["30", "50"], "upcr": ["4", "4"]})
    table = compare(book, lowered, rows)
    assert list(table["scenario_id"]) == ["1"]


def test_missing_scenarios_are_refused(book, tmp_path):
    with pytest.raises(ScenarioSourceError, match="no such file or folder"):
        compare(book, book, tmp_path / "missing.csv")
    with pytest.raises(ScenarioSourceError, match="no \\*.csv scenario files"):
        compare(book, book, tmp_path)


def test_responsible_rules_include_changed_rules_that_fired_in_both(book):
    # R-FL-01 now ranks mycophenolate 42, after azathioprine (41): same rules fire, the preferred agent moves.
    fl01 = book.rule("R-FL-01")
    edited = book.replace_rule("R-FL-01", recommend=(replace(fl01.recommend[0], rank=42),))
    rows = pd.DataFrame({"scenario_id": ["a"], "methotrexate": ["intolerant"]})
    table = compare(book, edited, rows)
    assert list(table["rules"]) == ["R-FL-01"] and list(table["changed"]) == ["preferred;recommendations"]
    assert (table["preferred_before"].iloc[0], table["preferred_after"].iloc[0]) == ("mycophenolate", "azathioprine")
    assert np.all(table["fired_rules_before"] == table["fired_rules_after"])
