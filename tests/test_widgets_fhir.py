"""The scenario explorer loads a FHIR bundle file: each patient becomes a preset, the first is shown."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from lupus_rules.widgets import ScenarioExplorer

BUNDLE = Path(__file__).parent / "data" / "fhir" / "nephritis_labs.json"


def test_explorer_loads_a_bundle():
    explorer = ScenarioExplorer(presets={})
    labels = explorer.load_bundle(BUNDLE, as_of=dt.date(2026, 1, 1))
    assert labels == ["Patient/ln1", "Patient/ln2"]
    assert explorer.picker.current.id == labels[0] and explorer.picker.group.value == "FHIR nephritis_labs.json"
    # ln1 takes mycophenolate now, but UPCR fell only 20 % by month 7: it is stopped (R-SW-MMF)
    assert explorer.result.preferred == "voclosporin" and "mycophenolate" in explorer.result.avoided
    facts = explorer.facts()
    assert (facts["egfr"], facts["egfr_baseline"], facts["manifestations"]) == (58.0, 72.0, frozenset({"nephritis"}))
    assert "mycophenolate" in explorer.outcome_html  # under Continue
    assert len(explorer.bundle_problems) == 2
    assert explorer.bundle_provenance[labels[0]]["egfr"]["sources"][0]["resource"] == "Observation/ln1-egfr-now"
    explorer.load_preset(labels[1])
    assert explorer.facts()["voclosporin"] == "current"
