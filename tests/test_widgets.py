"""The scenario explorer driven without a browser: set controls as a user does, read the panels back."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, fields

import pandas as pd
import pytest

from lupus_rules import default_rulebook, evaluate
from lupus_rules.facts import FACTS
from lupus_rules.presets import Preset
from lupus_rules.result import Result
from lupus_rules.suite import load_suite
from lupus_rules.widgets import (
    TABS,
    RuleChangeLab,
    ScenarioExplorer,
    default_scenarios_dir,
    load_presets,
    outcome_html,
    plot_preferred_by_manifestation,
    plot_rule_frequency,
    preferred_by_manifestation,
    rule_frequency,
    with_threshold,
)
from lupus_rules.widgets.controls import BoolControl, NumberControl, SetControl, StatusControl, group_css

NEPHRITIS = {"manifestations": "nephritis", "methotrexate": "intolerant"}


def _text(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def _preferred_shown(explorer: ScenarioExplorer) -> str:
    return re.search(r"class='lr-preferred'>([^<]*)<", explorer.outcome_html).group(1)


def _rules_shown(explorer: ScenarioExplorer) -> list[str]:
    return re.findall(r"<code class='lr-rule'[^>]*>([^<]*)</code>", explorer.trace_html)


@pytest.fixture
def explorer() -> ScenarioExplorer:
    return ScenarioExplorer(patient=NEPHRITIS, presets={})


def _number_fact() -> str:
    """A number fact some rule compares with a threshold (found by structure, not by name)."""
    return next(c.fact for r in default_rulebook().rules for c in r.when
                if c.kind == "fact" and c.fact in FACTS and FACTS[c.fact].kind == "number" and c.op in (">=", "<"))


def _outcome_changing_bool(patient) -> str:
    """A boolean fact whose flip changes the preferred agent of ``patient``."""
    base = evaluate(patient).preferred
    return next(n for n, s in FACTS.items()
                if s.kind == "bool" and evaluate({**patient, n: True}).preferred != base)


# --- controls ----------------------------------------------------------------------------


def test_one_control_per_declared_fact_grouped_as_the_rulebook_groups_them(explorer):
    book = default_rulebook()
    assert list(explorer.controls) == list(book.facts)
    kinds = {"set": SetControl, "status": StatusControl, "bool": BoolControl, "number": NumberControl}
    for name, spec in book.facts.items():
        assert isinstance(explorer.controls[name], kinds[spec.kind]), name
    groups = book.vocabulary.groups()
    assert list(explorer.panel.group_boxes) == list(groups)
    for group, names in groups.items():
        box = explorer.panel.group_boxes[group]
        assert [c for c in box.children[1:]] == [explorer.controls[n].widget for n in names]
        assert group_css(group) in box._dom_classes
    assert group_css("kidney function") == "lr-group-kidney-function" and group_css("") == "lr-group-other"


def test_initial_outcome_shows_the_patient_outcome_and_the_disclaimer(explorer):
    expected = evaluate(NEPHRITIS)
    assert explorer.result.fired_rules == expected.fired_rules
    assert _preferred_shown(explorer) == expected.preferred
    assert _rules_shown(explorer) == list(expected.fired_rules)
    shown = explorer.outcome_html
    for rec in expected.recommendation_details:
        assert rec.agent in shown and all(f"[{c}]" in shown for c in rec.citations)
    for flag in expected.flags:
        assert flag in shown
    assert "Not for clinical use" in shown
    for name in expected.derived:
        assert name in explorer.derived_html


def test_a_boolean_change_updates_outcome_trace_and_why_not(explorer):
    fact = _outcome_changing_bool(NEPHRITIS)
    before = explorer.result
    explorer.controls[fact].box.value = True
    after = evaluate({**NEPHRITIS, fact: True})
    assert before.preferred != after.preferred
    assert _preferred_shown(explorer) == after.preferred
    assert _rules_shown(explorer) == list(after.fired_rules)
    avoided = _text(explorer.outcome_html).split("Avoided")[1]
    for agent in after.avoided:
        assert avoided.count(agent) == 1, agent  # each avoided agent once, with all its rules
    why_not = _text(explorer.why_not_html)
    lost = [r for r in before.fired_rules if r not in after.fired_rules]
    assert lost and all(f"{r} " in why_not for r in lost)
    assert f"set {fact} to no (now yes)" in why_not
    assert "True" not in why_not and "False" not in why_not


def test_a_number_starts_unknown_and_is_never_invented():
    name = _number_fact()
    explorer = ScenarioExplorer(patient=NEPHRITIS, presets={})
    control = explorer.controls[name]
    assert control.value is None and control.text.value == "" and explorer.result.patient[name] is None
    control.slide(40.0)
    assert explorer.result.patient[name] == 40.0 and control.text.value == "40"
    control.type("71.5")
    assert explorer.result.patient[name] == 71.5 and control.slider.value == 71.5
    control.set_unknown()
    assert explorer.result.patient[name] is None and control.text.value == ""
    assert explorer.result.fired_rules == evaluate(NEPHRITIS).fired_rules
    control.type("")
    assert explorer.result.patient[name] is None


def test_a_bad_typed_number_names_field_value_and_allowed(explorer):
    name = _number_fact()
    explorer.controls[name].type("abc")
    assert explorer.result is None
    assert f"{name}: got 'abc'; allowed: a number from" in explorer.error
    assert "abc" in explorer.outcome_html
    explorer.controls[name].type("45")
    assert explorer.error == "" and explorer.result.patient[name] == 45.0


def test_manifestation_buttons_toggle_one_member_each(explorer):
    control = explorer.controls["manifestations"]
    members = FACTS["manifestations"].allowed
    first = control.selected[0]
    other = next(m for m in members if m not in control.selected)
    control.toggle(other)
    assert set(control.selected) == {first, other}
    assert explorer.result.patient["manifestations"] == frozenset({first, other})
    control.toggle(first)
    assert control.selected == (other,)
    with pytest.raises(ValueError, match="manifestations: got 'skin'; allowed: "):
        control.toggle("skin")


# --- presets -----------------------------------------------------------------------------


def _presets() -> dict[str, list[Preset]]:
    return {"01 demo": [Preset("S1", "01 demo", "S1: nephritis pregnancy", "nephritis pregnancy",
                               {"manifestations": "nephritis", "methotrexate": "intolerant",
                                "planning_pregnancy": "true", "egfr": "75"})],
            "02 other": [Preset("S2", "02 other", "S2: joint", "joint",
                                {"manifestations": "joint", "methotrexate": "nonresponse"}),
                         Preset("BAD", "02 other", "BAD: bad", "bad", {"methotrexate": "sometimes"})]}


def test_presets_by_file_and_custom_label_after_an_edit():
    explorer = ScenarioExplorer(patient=NEPHRITIS, presets=_presets())
    assert list(explorer.picker.group.options)[1:] == ["01 demo", "02 other"]
    explorer.load_preset("S1")
    expected = evaluate(_presets()["01 demo"][0].facts)
    assert explorer.result.fired_rules == expected.fired_rules
    assert explorer.controls["egfr"].value == 75 and explorer.controls["planning_pregnancy"].value is True
    assert explorer.picker.text == "S1: nephritis pregnancy" and "S1: nephritis pregnancy" in explorer.picker.label.value
    explorer.controls["planning_pregnancy"].box.value = False
    assert explorer.picker.text == "custom (from S1)" and "custom (from S1)" in explorer.picker.label.value
    explorer.load_preset("S2")
    assert explorer.picker.text == "S2: joint" and explorer.controls["egfr"].value is None
    assert [label for label, _ in explorer.picker.scenario.options][1:] == ["S2: joint", "BAD: bad"]
    with pytest.raises(KeyError, match="S3"):
        explorer.load_preset("S3")


def test_a_bad_preset_is_reported_not_raised():
    explorer = ScenarioExplorer(patient=NEPHRITIS, presets=_presets())
    explorer.load_preset("BAD")
    assert explorer.result is None
    assert "methotrexate" in explorer.error and "sometimes" in explorer.error


def test_shipped_suite_presets_are_grouped_by_file_with_short_labels():
    presets = load_presets()
    files = sorted(default_scenarios_dir().glob("*.csv"))
    assert len(presets) == len(files)
    assert sum(len(v) for v in presets.values()) == len(load_suite(default_scenarios_dir()))
    assert all(len(p.label) <= 46 for ps in presets.values() for p in ps)


def test_a_malformed_suite_leaves_the_explorer_usable(monkeypatch, tmp_path):
    (tmp_path / "bad.csv").write_text("scenario_id,description,methotrexate\nX1,bad,sometimes\n")
    monkeypatch.setattr("lupus_rules.presets.default_scenarios_dir", lambda: tmp_path)
    explorer = ScenarioExplorer(patient=NEPHRITIS)
    assert explorer.picker.by_id == {} and "bad.csv" in explorer.preset_error
    assert explorer.result.fired_rules == evaluate(NEPHRITIS).fired_rules


# --- tabs --------------------------------------------------------------------------------


def test_tabs_follow_every_change_even_when_drawn_later(explorer):
    fact = _outcome_changing_bool(NEPHRITIS)
    assert explorer.tabs.titles == TABS
    explorer.show_tab("Graph")
    explorer.controls[fact].box.value = True
    after = evaluate({**NEPHRITIS, fact: True})
    assert _rules_shown(explorer) == list(after.fired_rules)  # the trace tab was stale and is redrawn
    assert all(f"data-node='r:{r}'" in explorer.graph_svg for r in after.fired_rules)


def test_graph_tab_unfired_rules_zoom_and_full_screen(explorer):
    explorer.show_tab("Graph")
    book = default_rulebook()
    fired = set(explorer.result.fired_rules)
    drawn = set(re.findall(r"data-node='r:([^']+)'", explorer.graph_svg))
    assert drawn == fired
    explorer.graph.show_unfired.value = True
    assert set(re.findall(r"data-node='r:([^']+)'", explorer.graph_svg)) == set(book.rule_ids)
    width = float(re.search(r"width='([0-9.]+)'", explorer.graph.picture.value).group(1))
    explorer.graph.zoom.value = 1.5
    assert float(re.search(r"width='([0-9.]+)'", explorer.graph.picture.value).group(1)) == pytest.approx(
        width * 1.5, abs=1)
    explorer.graph.fullscreen.value = True
    assert "lr-fullscreen" in explorer.graph.widget._dom_classes
    explorer.graph.fullscreen.value = False
    assert "lr-fullscreen" not in explorer.graph.widget._dom_classes


def test_step_button_walks_the_whole_trace(explorer):
    stepper = explorer.stepper_view
    trace = explorer.result.fired_rules
    assert stepper.step == 0 and stepper.back.disabled
    seen = []
    for k in range(1, len(trace) + 1):
        stepper.forward.click()
        assert stepper.step == k
        seen.append(re.search(r"Just fired</b>: <code>([^<]+)</code>", stepper.card.value).group(1))
        assert f"data-node='r:{trace[k - 1]}'" in stepper.picture.value
        assert f"lr-state-current' data-node='r:{trace[k - 1]}'" in stepper.picture.value
    assert seen == list(trace)
    assert stepper.forward.disabled and "evaluation finished" in stepper.card.value
    stepper.back.click()
    assert stepper.step == len(trace) - 1 and f"Fires next</b> (stratum" in stepper.card.value


def test_what_if_pins_a_patient_and_marks_the_differences(explorer):
    fact = _outcome_changing_bool(NEPHRITIS)
    explorer.show_tab("What if")
    before = explorer.result
    explorer.whatif.pin.click()
    explorer.controls[fact].box.value = True
    after = explorer.result
    shown = explorer.whatif.html.value
    assert "The preferred agent changes" in shown
    assert f"<b>{before.preferred}</b>" in shown and f"<b class='lr-add'>{after.preferred}</b>" in shown
    for agent in set(after.recommendations) - set(before.recommendations):
        assert f"<span class='lr-add'>{agent}</span>" in shown
    for agent in set(before.recommendations) - set(after.recommendations):
        assert f"<span class='lr-del'>{agent}</span>" in shown
    assert f"{fact}: no &rarr; <b>yes</b>" in shown
    explorer.whatif.unpin.click()
    assert explorer.whatif.pinned is None


def test_outcome_shows_what_to_continue_and_the_cautions():
    book = default_rulebook()
    result = evaluate({"methotrexate": "intolerant", "mycophenolate": "intolerant", "hydroxychloroquine": "current"})
    assert result.continue_ == ("hydroxychloroquine",) and "tpmt_before_azathioprine" in result.cautions
    shown = outcome_html(result, book)
    assert "Continue" in shown and "<code title='Hydroxychloroquine (continue as foundation)'>hydroxychloroquine" in shown
    assert "Cautions" in shown and book.cautions["tpmt_before_azathioprine"] in shown


def test_explorer_uses_the_rulebook_it_is_given():
    book = default_rulebook()
    fired = evaluate(NEPHRITIS, book).fired_rules[0]
    edited = book.replace_rule(fired, title="Edited in a notebook")
    explorer = ScenarioExplorer(edited, patient=NEPHRITIS, presets={})
    assert edited.version != book.version and edited.version in explorer.outcome_html
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


def test_why_not_marks_the_conditions_that_held_and_failed():
    explorer = ScenarioExplorer(presets={}, patient={"manifestations": {"joint"}, "methotrexate": "intolerant"})
    explorer.show_tab("Why not")
    html = explorer.why_not_html
    item = html[html.index("data-rule='R-JNT-02'"):]
    item = item[:item.index("</li>")]
    assert "lr-clause-held" in item and "manifestations has joint" in item
    assert "lr-clause-failed" in item and "derived joint_step1_done" in item


def test_no_preferred_agent_says_when_a_disease_modifying_agent_is_continued():
    from lupus_rules.widgets.outcome import preferred_html

    book = default_rulebook()
    under_way = evaluate({"manifestations": {"joint"}, "methotrexate": "intolerant", "mycophenolate": "nonresponse",
                          "azathioprine": "intolerant", "low_dose_glucocorticoid_tried": True,
                          "leflunomide": "current", "egfr": 90})
    assert under_way.preferred is None and "no new start: leflunomide continued" in preferred_html(under_way, book)
    outside = evaluate({})
    assert outside.preferred is None and "no disease-modifying agent" in preferred_html(outside, book)
