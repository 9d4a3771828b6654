"""The scenario explorer driven without a browser: set controls, read the panels back."""
from __future__ import annotations

import html
import re

import ipywidgets as w
import pytest

from lupus_rules import FACTS, default_rulebook, evaluate
from lupus_rules.widgets import ScenarioExplorer, load_presets

NEPHRITIS = {"manifestations": "nephritis", "methotrexate": "intolerant"}


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def _preferred_shown(explorer: ScenarioExplorer) -> str:
    return re.search(r"class='lr-preferred'>([^<]*)<", explorer.outcome_html).group(1)


def _rules_shown(explorer: ScenarioExplorer) -> list[str]:
    return re.findall(r"<code class='lr-rule'[^>]*>([^<]*)</code>", explorer.trace_html)


@pytest.fixture
def explorer() -> ScenarioExplorer:
    return ScenarioExplorer(patient=NEPHRITIS, presets={})


def test_one_control_per_fact_of_the_right_kind(explorer):
    assert set(explorer.controls) == set(FACTS)
    kinds = {"set": w.SelectMultiple, "status": w.Dropdown, "bool": w.Checkbox, "number": w.BoundedFloatText}
    for name, spec in FACTS.items():
        assert isinstance(explorer.controls[name], kinds[spec.kind]), name
        if spec.kind == "status":
            assert tuple(explorer.controls[name].options) == spec.allowed
    assert set(explorer.unknown) == {n for n, s in FACTS.items() if s.kind == "number"}


def test_initial_panels_show_the_patient_outcome(explorer):
    expected = evaluate(NEPHRITIS)
    assert explorer.result.fired_rules == expected.fired_rules
    assert _preferred_shown(explorer) == expected.preferred
    assert _rules_shown(explorer) == list(expected.fired_rules)
    for rec in expected.recommendation_details:
        assert rec.agent in explorer.outcome_html and all(f"[{c}]" in explorer.outcome_html for c in rec.citations)
    for flag in expected.flags:
        assert flag in explorer.flags_html
    for name in expected.derived:
        assert name in explorer.derived_html
    assert "Not for clinical use" in explorer.outcome_html


def test_planning_pregnancy_changes_preferred_agent_trace_and_why_not(explorer):
    before = explorer.result
    explorer.controls["planning_pregnancy"].value = True
    after = evaluate({**NEPHRITIS, "planning_pregnancy": True})
    assert before.preferred != after.preferred
    assert explorer.result.fired_rules == after.fired_rules
    assert _preferred_shown(explorer) == after.preferred
    assert _rules_shown(explorer) == list(after.fired_rules)
    for agent, rules in after.avoided.items():
        assert agent in explorer.avoided_html and all(r in explorer.avoided_html for r in rules)
    lost = [r for r in before.fired_rules if r not in after.fired_rules]
    assert lost
    why_not_text = _text(explorer.why_not_html)
    for rule_id in lost:
        row = next(line for line in why_not_text.split(rule_id)[1:2])
        assert "set planning_pregnancy to false" in row, rule_id
    assert {i.rule_id for i in explorer.why_not_items} >= set(lost)


def test_number_control_sets_a_known_value_and_unknown_clears_it(explorer):
    explorer.controls["egfr"].value = 40.0
    assert explorer.unknown["egfr"].value is False
    assert explorer.result.patient["egfr"] == 40.0
    assert explorer.result.fired_rules == evaluate({**NEPHRITIS, "egfr": 40}).fired_rules
    explorer.unknown["egfr"].value = True
    assert explorer.result.patient["egfr"] is None
    assert explorer.controls["egfr"].disabled


def test_manifestations_and_status_controls(explorer):
    explorer.controls["manifestations"].value = ("joint",)
    explorer.controls["mycophenolate"].value = "nonresponse"
    expected = evaluate({**NEPHRITIS, "manifestations": "joint", "mycophenolate": "nonresponse"})
    assert explorer.result.fired_rules == expected.fired_rules
    assert _preferred_shown(explorer) == (expected.preferred or "none")


def test_graph_panel_shows_mermaid_for_the_current_patient(explorer):
    explorer.controls["planning_pregnancy"].value = True
    (output,) = explorer.graph.outputs
    markdown = output["data"]["text/markdown"]
    assert markdown.startswith("```mermaid\nflowchart") and markdown.endswith("```")
    for rule_id in explorer.result.fired_rules:
        assert rule_id in markdown


def test_presets_load_patients_and_a_bad_preset_is_reported(tmp_path):
    (tmp_path / "suite.csv").write_text(
        "id,description,manifestations,methotrexate,planning_pregnancy,egfr,expected_preferred\n"
        "S1,nephritis pregnancy,nephritis,intolerant,true,75,azathioprine\n"
        "S2,bad status,joint,sometimes,false,,\n")
    presets = load_presets(tmp_path)
    assert list(presets) == ["S1: nephritis pregnancy", "S2: bad status"]
    assert "expected_preferred" not in presets["S1: nephritis pregnancy"]
    explorer = ScenarioExplorer(presets=presets)
    explorer.load_preset("S1: nephritis pregnancy")
    expected = evaluate(presets["S1: nephritis pregnancy"])
    assert explorer.controls["planning_pregnancy"].value is True
    assert explorer.controls["egfr"].value == 75 and not explorer.unknown["egfr"].value
    assert explorer.result.fired_rules == expected.fired_rules
    explorer.preset.value = "S2: bad status"
    assert explorer.result is None
    assert "methotrexate" in explorer.error and "sometimes" in explorer.error
    with pytest.raises(KeyError, match="S3"):
        explorer.load_preset("S3")


def test_explorer_uses_the_rulebook_it_is_given():
    book = default_rulebook()
    fired = evaluate(NEPHRITIS, book).fired_rules[0]
    edited = book.replace_rule(fired, title="Edited in a notebook")
    explorer = ScenarioExplorer(edited, patient=NEPHRITIS, presets={})
    assert edited.version != book.version and edited.version in explorer.outcome_html
    assert explorer.result.rulebook_version == edited.version
    assert "Edited in a notebook" in explorer.trace_html


def test_notebook_display_is_the_widget_with_a_stable_text(explorer):
    bundle = explorer._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    assert "ScenarioExplorer" in bundle["text/plain"]
