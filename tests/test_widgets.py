"""The scenario explorer driven without a browser: set controls, read the panels back."""
from __future__ import annotations

import html
import re

import ipywidgets as w
import pandas as pd
import pytest

from lupus_rules import FACTS, default_rulebook, evaluate
from lupus_rules.suite import load_suite
from lupus_rules.widgets import (
    RuleChangeLab,
    ScenarioExplorer,
    default_scenarios_dir,
    load_presets,
    plot_preferred_by_manifestation,
    plot_rule_frequency,
    preferred_by_manifestation,
    rule_frequency,
    with_threshold,
)

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


def test_presets_come_from_the_scenario_suite(tmp_path):
    (tmp_path / "suite.csv").write_text(
        "scenario_id,description,manifestations,methotrexate,planning_pregnancy,egfr,expect_preferred\n"
        "S1,nephritis pregnancy,nephritis,intolerant,true,75,azathioprine\n"
        "S2,joint,joint,nonresponse,false,,low_dose_glucocorticoid\n")
    presets = load_presets(tmp_path)
    assert list(presets) == ["S1: nephritis pregnancy", "S2: joint"]
    assert "expect_preferred" not in presets["S1: nephritis pregnancy"]
    explorer = ScenarioExplorer(presets=presets)
    explorer.load_preset("S1: nephritis pregnancy")
    expected = evaluate(presets["S1: nephritis pregnancy"])
    assert explorer.controls["planning_pregnancy"].value is True
    assert explorer.controls["egfr"].value == 75 and not explorer.unknown["egfr"].value
    assert explorer.result.fired_rules == expected.fired_rules
    explorer.preset.value = "S2: joint"
    assert explorer.controls["manifestations"].value == ("joint",)
    assert explorer.unknown["egfr"].value is True
    with pytest.raises(KeyError, match="S3"):
        explorer.load_preset("S3")


def test_shipped_suite_presets_are_offered():
    presets = load_presets()
    assert presets and all(": " in label for label in presets)
    assert len(ScenarioExplorer(presets=presets).preset.options) == len(presets) + 1


def test_a_bad_preset_is_reported_in_the_outcome_panel_not_raised():
    explorer = ScenarioExplorer(patient=NEPHRITIS, presets={"bad": {"methotrexate": "sometimes"}})
    explorer.preset.value = "bad"
    assert explorer.result is None
    assert "methotrexate" in explorer.error and "sometimes" in explorer.error
    assert "sometimes" in explorer.outcome_html


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


# --- rule-change lab ---------------------------------------------------------------------


def _suite_outcome_changes(book, edited) -> set[str]:
    """Scenario ids whose outcome differs, by evaluating every suite row with the durable engine."""
    changed = set()
    for scenario in load_suite(default_scenarios_dir()):
        a, b = evaluate(scenario.patient, book), evaluate(scenario.patient, edited)
        if (a.preferred, a.recommendations, a.flags, a.fired_rules) != (b.preferred, b.recommendations,
                                                                         b.flags, b.fired_rules):
            changed.add(scenario.id)
    return changed


def _threshold_rule():
    """A rule deriving a fact from one number comparison (found by structure, not by id)."""
    return next(r for r in default_rulebook().rules
                if len(r.when) == 1 and r.when[0].op in (">=", ">") and r.derive and r.when[0].fact in FACTS)


def test_lab_threshold_edit_lists_exactly_the_scenarios_that_change():
    book = default_rulebook()
    rule = _threshold_rule()
    lab = RuleChangeLab(book, rule_id=rule.id)
    assert lab.changes.empty and "0 of" in lab.summary_html
    lowered = rule.when[0].value * 0.75
    changes = lab.edit(thresholds={0: lowered})
    assert lab.edited.rule(rule.id).when[0].value == lowered
    expected = _suite_outcome_changes(book, with_threshold(book, rule.id, 0, lowered))
    assert expected, "the edit should change at least one suite scenario"
    assert set(changes["scenario_id"]) == expected
    for _, row in changes.iterrows():
        assert row["scenario_id"] in lab.table_html
        assert rule.id in row["rules"].split(";")


def test_lab_drop_rule_and_a_refused_drop():
    book = default_rulebook()
    lab = RuleChangeLab(book)
    droppable = next(r for r in book.rules if r.avoid and set(r.derive) <= _derived_elsewhere(book, r))
    changes = lab.edit(droppable.id, drop=True)
    assert droppable.id not in lab.edited.rule_ids
    assert set(changes["scenario_id"]) == _suite_outcome_changes(book, book.without_rule(droppable.id))
    sole = _sole_producer(book)
    lab.edit(sole.id, drop=True)
    assert lab.edited is None and lab.changes.empty
    assert "refused" in lab.error and sole.derive[0] in lab.summary_html
    lab.rule.value = _rule_with_numbers(book, other_than=sole.id).id
    assert lab.drop.value is False and lab.thresholds and not lab.error


def _derived_elsewhere(book, rule) -> set[str]:
    return {name for other in book.rules if other.id != rule.id for name in other.derive}


def _sole_producer(book):
    producers = {}
    for rule in book.rules:
        for name in rule.derive:
            producers.setdefault(name, []).append(rule)
    return next(rules[0] for rules in producers.values() if len(rules) == 1 and len(rules[0].derive) == 1)


def _rule_with_numbers(book, other_than: str):
    return next(r for r in book.rules
                if r.id != other_than and any(c.op in ("<", "<=", ">", ">=") for c in r.when))


def test_with_threshold_refuses_a_condition_that_is_not_a_number_comparison():
    book = default_rulebook()
    rule = next(r for r in book.rules if r.when and r.when[0].kind != "fact")
    with pytest.raises(ValueError, match=rf"index: got 0; allowed for {rule.id}"):
        with_threshold(book, rule.id, 0, 1.0)


# --- batch helpers -----------------------------------------------------------------------


RESULTS = pd.DataFrame({
    "manifestations": ["nephritis", "joint;nephritis", "", "joint", "nephritis"],
    "preferred": ["mycophenolate", "azathioprine", "", "azathioprine", ""],
    "fired_rules": ["R-A;R-B", "R-A;R-C", "R-D", "R-A", ""],
    "error": ["", "", "", "", "methotrexate: got 'x'"],
    "rulebook_version": ["v123"] * 5,
})


def test_preferred_by_manifestation_counts_each_manifestation_of_a_row():
    counts = preferred_by_manifestation(RESULTS, percent=False)
    assert counts.loc["nephritis", "mycophenolate"] == 1 and counts.loc["nephritis", "azathioprine"] == 1
    assert counts.loc["joint", "azathioprine"] == 2
    assert counts.loc["(none)", "none"] == 1
    assert counts.to_numpy().sum() == 5  # 4 valid rows, one with two manifestations; the error row is left out
    shares = preferred_by_manifestation(RESULTS)
    assert shares.loc["nephritis"].sum() == pytest.approx(100)


def test_rule_frequency_counts_rows_per_rule():
    table = rule_frequency(RESULTS)
    assert table.loc["R-A", "rows"] == 3 and table.loc["R-D", "rows"] == 1
    assert table.loc["R-A", "percent"] == 75.0
    assert list(table.index[:1]) == ["R-A"]


def test_plots_carry_the_rulebook_version_and_the_disclaimer():
    import matplotlib

    matplotlib.use("Agg")
    for fig in (plot_preferred_by_manifestation(RESULTS), plot_rule_frequency(RESULTS)):
        texts = [fig.axes[0].get_title()] + [t.get_text() for t in fig.texts]
        assert any("v123" in t for t in texts[:1]) and any("Not for clinical use" in t for t in texts)


def test_why_not_filter_keeps_only_fixable_rules(explorer):
    fixable = [i.rule_id for i in explorer.why_not_items if i.fix]
    unfixable = [i.rule_id for i in explorer.why_not_items if not i.fix]
    assert fixable and unfixable
    explorer.fixable_only.value = True
    shown = re.findall(r"<code style='white-space:nowrap'>([^<]*)</code>", explorer.why_not_html)
    assert shown == fixable


def test_a_malformed_suite_leaves_the_explorer_usable(monkeypatch, tmp_path):
    (tmp_path / "bad.csv").write_text("scenario_id,description,methotrexate\nX1,bad,sometimes\n")
    monkeypatch.setattr("lupus_rules.widgets.default_scenarios_dir", lambda: tmp_path)
    explorer = ScenarioExplorer(patient=NEPHRITIS)
    assert explorer.presets == {} and "bad.csv" in explorer.preset_error
    assert explorer.result.fired_rules == evaluate(NEPHRITIS).fired_rules
