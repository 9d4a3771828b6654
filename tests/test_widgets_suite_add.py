"""The explorer's "Add to suite" tab (widgets/suite_add_view.py): the patient on screen becomes a suite row."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lupus_rules.presets import default_scenarios_dir
from lupus_rules.suite import check_suite, load_suite
from lupus_rules.widgets import ScenarioExplorer
from lupus_rules.widgets.explorer import TABS


@pytest.fixture
def explorer(tmp_path: Path) -> ScenarioExplorer:
    folder = tmp_path / "scenarios"
    shutil.copytree(default_scenarios_dir(), folder)
    return ScenarioExplorer(presets={}, suite_dir=folder)


def _fill(explorer: ScenarioExplorer, file: str, scenario_id: str, description: str) -> None:
    form = explorer.suite_add
    form.file.value, form.scenario_id.value, form.description.value = file, scenario_id, description


def test_the_patient_on_screen_is_written_with_the_pinned_outcomes(explorer):
    assert "Add to suite" in TABS
    explorer.set_facts({"manifestations": {"nephritis"}, "methotrexate": "intolerant", "mycophenolate": "current",
                        "egfr": 80, "egfr_baseline": 80, "upcr": 3.6, "upcr_baseline": 4, "months_on_therapy": 5})
    _fill(explorer, "13_response_acts.csv", "RA90-from-explorer", "MMF taken now fails at month 5: stopped")
    assert explorer.suite_add.add() and "Added RA90-from-explorer" in explorer.suite_add.status.value
    suite = {s.id: s for s in load_suite(explorer.suite_dir)}
    row = suite["RA90-from-explorer"]
    assert float(row.facts["months_on_therapy"]) == 5 and row.expect.preferred == explorer.result.preferred == "voclosporin"
    assert "mycophenolate" in row.expect.avoided and "switch_therapy" in row.expect.flags
    report = check_suite(explorer.suite_dir)
    assert not report.failures and len(report.checks) == len(suite)


def test_a_refused_row_says_why_and_writes_nothing(explorer):
    before = (explorer.suite_dir / "13_response_acts.csv").read_bytes()
    explorer.set_facts({"manifestations": {"joint"}, "methotrexate": "intolerant"})
    _fill(explorer, "13_response_acts.csv", "RA01-month-2.99-not-graded", "an id the suite already has")
    assert not explorer.suite_add.add()
    assert "RA01-month-2.99-not-graded" in explorer.suite_add.status.value
    _fill(explorer, "../outside.csv", "RA91", "a path, not a file name")
    assert not explorer.suite_add.add() and "allowed: a file name ending in .csv" in explorer.suite_add.status.value
    for box in explorer.suite_add.pins.values():
        box.value = False
    _fill(explorer, "13_response_acts.csv", "RA92", "nothing pinned")
    assert not explorer.suite_add.add()
    assert (explorer.suite_dir / "13_response_acts.csv").read_bytes() == before
    assert not (explorer.suite_dir.parent / "outside.csv").exists()
