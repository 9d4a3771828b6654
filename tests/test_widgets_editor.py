"""The rule editor as an author uses it: edit -> impact -> refused value -> diff -> save -> reload -> suite."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lupus_rules import evaluate
from lupus_rules.authoring.editing import add_rule, drop_rule, edit_rule
from lupus_rules.authoring.impact import impact
from lupus_rules.errors import LupusRulesError
from lupus_rules.presets import default_scenarios_dir
from lupus_rules.rulebook import DEFAULT_RULES_DIR, OPERATORS, load_rulebook, rulebook_from_documents
from lupus_rules.suite import check_suite, load_suite
from lupus_rules.widgets import RuleEditor
from lupus_rules.widgets.rule_form import parse_value, value_text

SUITE = default_scenarios_dir()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the shipped rule folder the test may write into."""
    target = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, target)
    return target


def _texts(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.yaml"))}


def _ids_in(html: str, ids) -> set[str]:
    return {i for i in ids if f">{i}<" in html}


def test_threshold_edit_impact_refused_value_diff_save_reload(folder: Path) -> None:
    original = _texts(folder)
    editor = RuleEditor(folder, SUITE, rule_id="R-KID-01")
    base = editor.base
    assert editor.impact.rows.empty and "0 of" in editor.impact_view.summary.value
    condition = editor.form.conditions[0]
    assert condition.subject.value == "fact:egfr" and condition.op.value == ">=" and condition.value.value == "60"

    condition.value.value = "45"  # what typing does: one change of the text field
    expected = impact(base, edit_rule(base, "R-KID-01", when=[{"fact": "egfr", "op": ">=", "value": 45}]), SUITE)
    assert list(editor.impact.rows["scenario_id"]) == list(expected.rows["scenario_id"])
    assert not expected.new_failures.empty and not expected.trace_changes.empty
    html = editor.impact_view.table_html
    all_ids = set(expected.rows["scenario_id"])
    assert _ids_in(html, all_ids) == set(expected.outcome_changes["scenario_id"]), "outcome changes only"
    assert html.count("pass → FAIL") == len(expected.new_failures)
    assert f"{len(expected.trace_changes)} trace-only" in html
    editor.impact_view.outcome_only.value = False
    assert _ids_in(editor.impact_view.table_html, all_ids) == all_ids
    assert "✎ R-KID-01" in dict((v, k) for k, v in editor.rule.options)["R-KID-01"]
    assert "note still says 60" in editor.changes_html.value
    shown, edited = editor.impact, editor.edited

    condition.value.value = "-5"  # refused by the loader: its message under the form, the impact untouched
    assert "when[0].value: got -5; allowed: a number from 0 to 200 (the range of egfr)" in editor.form.error
    assert "allowed: a number from 0 to 200" in editor.form.message.value
    assert editor.impact is shown and editor.edited is edited
    assert "not updated" in editor.impact_view.status.value
    condition.value.value = "sixty"
    assert "got 'sixty'" in editor.form.error and editor.impact is shown
    condition.value.value = "45"
    assert editor.form.error == "" and editor.edited.version == edited.version
    assert editor.impact_view.status.value == ""
    assert _texts(folder) == original, "nothing is written before Save"

    plan = editor.show_diff()
    assert plan.files == ("20_second_line.yaml",) and not editor.save_button.disabled
    diff = plan.diff()
    assert '-      - {fact: egfr, op: ">=", value: 60}' in diff and '+      - {fact: egfr, op: ">=", value: 45}' in diff
    assert sum(line.startswith(("+", "-")) and line[:3] not in ("+++", "---") for line in diff.splitlines()) == 2
    assert "value: 45" in editor.diff_area.value

    written = editor.save()
    assert written == [folder / "20_second_line.yaml"]
    after = _texts(folder)
    assert {n for n in after if after[n] != original[n]} == {"20_second_line.yaml"}
    reloaded = load_rulebook(folder)
    assert reloaded.version == edited.version
    assert [r.to_data() for r in reloaded.rules] == [r.to_data() for r in edited.rules]
    report = check_suite(SUITE, reloaded)
    assert {c.scenario.id for c in report.failures} == set(expected.new_failures["scenario_id"])
    assert "Wrote 20_second_line.yaml" in editor.save_html.value
    assert editor.base.version == reloaded.version and editor.impact.rows.empty, "the folder is the new base"


def test_every_field_is_checked_by_the_loader(folder: Path) -> None:
    editor = RuleEditor(folder, SUITE, rule_id="R-FL-01")
    form, shown = editor.form, editor.impact
    assert form.recommend, "R-FL-01 recommends an agent"
    rank = form.recommend[0].rank.value
    form.recommend[0].rank.value = "abc"
    assert "rank: got 'abc'; allowed: a whole number from 1 to 1,000,000" in form.error
    form.recommend[0].rank.value = rank
    form.citation.value = "1, 9"
    assert "citation: unknown reference 9; allowed: 1, 2, 3, 4, 5" in form.error
    form.citation.value = "1"
    form.title.value = ""
    assert "title: missing" in form.error
    form.title.value = "First-line alternative"
    form.derive.value = [*form.derive.value, "needs_alternative"]  # the rule tests it: a cycle
    assert "dependency cycle through derived facts: R-FL-01" in form.error
    form.derive.value = [d for d in form.derive.value if d != "needs_alternative"]
    assert form.error == ""
    with pytest.raises(Exception, match="not allowed"):  # the tag boxes only take codes of the vocabulary
        form.avoid.value = ["aspirin"]
    assert editor.impact is not shown  # an accepted edit recomputes; the refused ones above did not count
    assert editor.edited.rule("R-FL-01").title == "First-line alternative"


def test_condition_rows_follow_the_fact_kind(folder: Path) -> None:
    editor = RuleEditor(folder, SUITE, rule_id="R-KID-01")
    row = editor.form.conditions[0]
    assert row.op.options == OPERATORS["number"]
    row.subject.value = "fact:methotrexate"
    assert row.op.options == ("==", "!=", "in", "not_in")
    row.op.value = "in"
    row.value.value = "intolerant, nonresponse"
    assert editor.form.error == ""
    assert editor.edited.rule("R-KID-01").when[0].value == ("intolerant", "nonresponse")
    row.subject.value = "derived:needs_alternative"
    assert row.op.options == ("holds", "does not hold") and row.value.disabled
    editor.form.add_condition({"fact": "egfr", "op": "known"})
    assert editor.form.error == "" and len(editor.edited.rule("R-KID-01").when) == 2
    editor.form.conditions[1].remove.click()
    assert len(editor.edited.rule("R-KID-01").when) == 1
    assert parse_value("number", ">=", "59.99") == 59.99 and parse_value("bool", "==", "yes") is True
    assert value_text(60.0) == "60" and value_text(("a", "b")) == "a, b" and value_text(True) == "true"


def test_add_a_rule_then_save_and_reload(folder: Path) -> None:
    editor = RuleEditor(folder, SUITE, rule_id="R-KID-01")
    base = editor.base
    form = editor.new_rule()
    assert "title: missing" in form.error and "then: missing" in form.error
    assert editor.edited is base or editor.edited.version == base.version, "an invalid new rule is not added"
    flag = next(iter(base.flags))
    form.title.value = "Low eGFR needs a look"
    form.rationale.value = "Teaching example added by the test."
    form.add_condition({"fact": "egfr", "op": "<", "value": 30})
    form.flag.value = [flag]
    assert form.error == "", form.error
    new_id = form.id.value
    edited = editor.edited
    assert new_id in edited.rule_ids and edited.rule(new_id).file == "20_second_line.yaml"
    expected = add_rule(base, {"id": new_id, "title": "Low eGFR needs a look", "section": base.rule(
        "R-KID-01").section, "citation": list(base.rule("R-KID-01").citation), "rationale":
        "Teaching example added by the test.", "when": [{"fact": "egfr", "op": "<", "value": 30}],
        "flag": [flag]}, after="R-KID-01")
    assert edited.version == expected.version
    fires = {s.id for s in load_suite(SUITE) if new_id in evaluate(s.patient, edited).fired_rules}
    assert fires and fires <= set(editor.impact.rows["scenario_id"])
    assert any(v == new_id and k.startswith("+ ") for k, v in editor.rule.options)

    editor.save()
    reloaded = load_rulebook(folder)
    assert reloaded.version == edited.version
    order = [r.id for r in sorted(reloaded.rules, key=lambda r: r.position)]
    assert order[order.index("R-KID-01") + 1] == new_id
    assert check_suite(SUITE, reloaded).checks


def test_drop_a_rule_a_refused_drop_and_edits_add_up(folder: Path) -> None:
    editor = RuleEditor(folder, SUITE, rule_id="R-KID-01")
    base = editor.base
    editor.form.conditions[0].value.value = "45"
    assert editor.drop_rule("R-SAFE-02")
    both = drop_rule(edit_rule(base, "R-KID-01", when=[{"fact": "egfr", "op": ">=", "value": 45}]), "R-SAFE-02")
    assert editor.edited.version == both.version
    assert list(editor.impact.rows["scenario_id"]) == list(impact(base, both, SUITE).rows["scenario_id"])
    assert "R-SAFE-02" not in {v for _, v in editor.rule.options}
    assert "<b>dropped</b>: R-SAFE-02" in editor.changes_html.value
    kept = editor.edited
    assert not editor.drop_rule("R-KID-02")
    assert "is not derived by any rule" in editor.error and editor.edited is kept
    assert "Cannot drop R-KID-02" in editor.form.message.value
    plan = editor.show_diff()
    assert set(plan.files) == {base.rule("R-KID-01").file, base.rule("R-SAFE-02").file}
    editor.discard()
    assert editor.edited.version == base.version and editor.impact.rows.empty


def test_editor_needs_a_rule_folder() -> None:
    book = rulebook_from_documents(load_rulebook().to_documents(), source="")
    with pytest.raises(LupusRulesError, match="not a rule folder"):
        RuleEditor(book, SUITE)


def test_picking_a_file_lists_its_rules_and_opens_the_first(folder: Path) -> None:
    editor = RuleEditor(folder, SUITE, rule_id="R-KID-01")
    safety = editor.base.rule("R-SAFE-02").file
    editor.file.value = safety
    in_file = [r.id for r in sorted(editor.base.rules, key=lambda r: r.position) if r.file == safety]
    assert [v for _, v in editor.rule.options] == in_file
    assert editor.form.id.value == in_file[0]
    editor.rule.value = "R-SAFE-02"
    assert editor.form.id.value == "R-SAFE-02" and editor.form.error == ""
    assert "R-SAFE-02" in editor.form.widget.children[0].value  # the heading names the rule being edited


def test_the_lab_refuses_out_of_range_thresholds_and_locks_them_when_dropping() -> None:
    from lupus_rules.widgets import RuleChangeLab

    lab = RuleChangeLab(rule_id="R-KID-01")
    lab.edit(thresholds={0: -5})
    assert lab.edited is None and "got -5" in lab.error and "allowed: a number from 0 to 200" in lab.error
    lab.edit(thresholds={0: 60}, drop=True)
    assert all(control.disabled for control in lab.thresholds.values())
    lab.edit(drop=False)
    assert not any(control.disabled for control in lab.thresholds.values())


def test_an_edit_after_show_diff_needs_a_new_diff_before_save(folder: Path) -> None:
    original = _texts(folder)
    editor = RuleEditor(folder, SUITE, rule_id="R-KID-01")
    threshold = editor.form.conditions[0].value
    threshold.value = "45"
    editor.show_diff()
    assert not editor.save_button.disabled
    threshold.value = "50"
    assert editor.plan is None and editor.save_button.disabled and "Show diff again" in editor.save_html.value
    threshold.value = "sixty"  # refused: nothing to plan from it, the last accepted edit (50) stands
    assert editor.edited.rule("R-KID-01").when[0].value == 50
    assert _texts(folder) == original
    editor.save()  # saving plans the accepted edit first, then writes it
    assert load_rulebook(folder).rule("R-KID-01").when[0].value == 50


def test_continue_and_caution_are_edited_through_the_form(folder: Path) -> None:
    """The ``continue`` and ``caution`` tag boxes edit the rule; the impact follows; the diff and save carry it."""
    editor = RuleEditor(folder, SUITE, rule_id="R-SAFE-HCQ-DOSE")
    base = editor.base
    form = editor.form
    assert list(form.caution.value) == list(base.rule("R-SAFE-HCQ-DOSE").caution) and list(form.keep.value) == []
    assert set(form.caution.allowed_tags) == set(base.cautions)
    with pytest.raises(Exception, match="not allowed"):  # only caution codes of the vocabulary
        form.caution.value = ["no_such_caution"]
    form.caution.value = [*form.caution.value, "egfr_before_cni"]
    assert form.error == "" and editor.edited.rule("R-SAFE-HCQ-DOSE").caution == ("hcq_dose_kidney", "egfr_before_cni")
    one = edit_rule(base, "R-SAFE-HCQ-DOSE", caution=["hcq_dose_kidney", "egfr_before_cni"])
    expected = impact(base, one, SUITE)
    assert not expected.outcome_changes.empty
    assert list(editor.impact.rows["scenario_id"]) == list(expected.rows["scenario_id"])
    assert set(editor.impact.outcome_changes["changed"]) == {"cautions"}
    assert _ids_in(editor.impact_view.table_html, set(expected.rows["scenario_id"])) \
        == set(expected.outcome_changes["scenario_id"])

    form = editor.select("R-ST-LDN-KEEP")
    shown = editor.impact
    form.keep.value = []  # its only conclusion: refused by the loader, the impact stays
    assert "then: missing: a rule needs at least one conclusion" in form.error and editor.impact is shown
    form = editor.select("R-FL-02")
    assert list(form.keep.value) == ["mycophenolate"]
    form.keep.value = [*form.keep.value, "azathioprine"]
    assert form.error == "" and editor.edited.rule("R-FL-02").keep == ("mycophenolate", "azathioprine")
    both = edit_rule(one, "R-FL-02", keep=["mycophenolate", "azathioprine"])
    assert editor.edited.version == both.version
    expected = impact(base, both, SUITE)
    assert list(editor.impact.rows["scenario_id"]) == list(expected.rows["scenario_id"])
    fires = {s.id for s in load_suite(SUITE) if "R-FL-02" in evaluate(s.patient, base).fired_rules}
    assert fires and set(editor.impact.outcome_changes.query("changed == 'continue'")["scenario_id"]) == fires
    assert "continue mycophenolate, azathioprine" in form.preview.value

    plan = editor.show_diff()
    changed = [line for line in plan.diff().splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert sorted(changed) == sorted(["-      caution: [hcq_dose_kidney]",
                                      "+      caution: [hcq_dose_kidney, egfr_before_cni]",
                                      "-      continue: [mycophenolate]",
                                      "+      continue: [mycophenolate, azathioprine]"])
    editor.save()
    reloaded = load_rulebook(folder)
    assert [r.to_data() for r in reloaded.rules] == [r.to_data() for r in both.rules]


def test_a_renamed_rule_is_shown_under_its_new_id(folder: Path) -> None:
    """Editing the id renames the rule in the picker, the form heading and the edits list; renaming back undoes it."""
    editor = RuleEditor(folder, SUITE, rule_id="R-KID-01")
    base = editor.base
    file = base.rule("R-KID-01").file
    editor.form.id.value = "R-KID-45"
    assert editor.form.error == "" and "R-KID-45" in editor.edited.rule_ids
    labels = dict((v, k) for k, v in editor.rule.options)
    assert "R-KID-01" not in labels and editor.rule.value == "R-KID-45"
    assert labels["R-KID-45"].startswith("✎ R-KID-45 (was R-KID-01) · ")
    assert editor.rule.label == labels["R-KID-45"]
    assert editor.form.heading.value.count("R-KID-45") == 1 and "Editing R-KID-45 (was R-KID-01)" in \
        editor.form.heading.value and f"({file})" in editor.form.heading.value
    assert "<b>renamed</b>: R-KID-01 → R-KID-45" in editor.changes_html.value
    assert "<b>added</b>" not in editor.changes_html.value and "<b>dropped</b>" not in editor.changes_html.value

    editor.form.id.value = "R-KID-02"  # another rule's id: refused, the last accepted name stays
    assert "duplicate rule id" in editor.form.error and editor.rule.value == "R-KID-45"
    editor.form.id.value = "R-KID-46"
    assert editor.rule.value == "R-KID-46" and "R-KID-45" not in {v for _, v in editor.rule.options}
    assert "<b>renamed</b>: R-KID-01 → R-KID-46" in editor.changes_html.value

    editor.select("R-KID-02")  # reopened later, the renamed rule still says what it was
    editor.rule.value = "R-KID-46"
    assert "Editing R-KID-46 (was R-KID-01)" in editor.form.heading.value
    editor.form.id.value = "R-KID-01"  # renamed back: nothing left to show
    assert dict((v, k) for k, v in editor.rule.options)["R-KID-01"].startswith("R-KID-01 · ")
    assert "Editing R-KID-01 (" in editor.form.heading.value and "was" not in editor.form.heading.value
    assert editor.edited.version == base.version and "none yet" in editor.changes_html.value

    editor.form.id.value = "R-KID-47"
    editor.save()
    assert "R-KID-47" in load_rulebook(folder).rule_ids and "R-KID-01" not in load_rulebook(folder).rule_ids
    assert dict((v, k) for k, v in editor.rule.options)["R-KID-47"].startswith("R-KID-47 · "), "saved: the new base"
