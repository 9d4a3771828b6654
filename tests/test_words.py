"""Why-not in plain words, the what-if comparison and the presets, all from the rule data."""
from __future__ import annotations

from types import SimpleNamespace

from lupus_rules import default_rulebook, evaluate
from lupus_rules.explain import why_not
from lupus_rules.presets import LABEL_CHARS, Preset, patient_label, short_label
from lupus_rules.whatif import compare_outcomes, outcome_list
from lupus_rules.words import plain_why_not, value_words

NEPHRITIS = {"manifestations": "nephritis", "methotrexate": "intolerant"}
PREGNANT = {**NEPHRITIS, "planning_pregnancy": True, "egfr": 40, "upcr": 4}


def _apply(patient, fix):
    return {**patient, fix.fact: fix.new}


def test_changes_that_alter_the_preferred_agent_come_first_and_are_true():
    result = evaluate(PREGNANT)
    items = why_not(result)
    plain = plain_why_not(result, items=items)
    assert len(plain) == len(items)
    kinds = [0 if p.alters_preferred else 1 if p.change else 2 for p in plain]
    assert kinds == sorted(kinds) and 0 in kinds and 2 in kinds
    fixes = {i.rule_id: i.fix for i in items}
    for p in plain:
        if p.change:
            after = evaluate(_apply(PREGNANT, fixes[p.rule_id]))
            assert p.rule_id in after.fired_rules
            assert (after.preferred != result.preferred) == p.alters_preferred


def test_a_rule_blocked_by_a_derived_fact_names_its_meaning_and_the_rule_behind_it():
    book = default_rulebook()
    result = evaluate(PREGNANT, book)
    blocked = [i for i in why_not(result, book) if len(i.failed) == 1 and i.failed[0].condition.kind == "not_derived"]
    assert blocked
    plain = {p.rule_id: p for p in plain_why_not(result, book)}
    for item in blocked:
        name = item.failed[0].condition.fact
        derivers = [r for r in result.fired_rules if name in book.rule(r).derive]
        sentence = plain[item.rule_id].sentence
        meaning = book.derived_facts[name].rstrip(".")
        assert sentence.startswith(f"{item.rule_id} {item.title} did not fire: ")
        assert meaning[1:] in sentence and all(r in sentence for r in derivers)


def test_words_use_yes_no_and_show_values_with_thresholds():
    result = evaluate(PREGNANT)
    texts = [r for p in plain_why_not(result) for r in p.reasons]
    assert not any("True" in t or "False" in t for t in texts)
    assert any("egfr is 40 mL/min/1.73 m², the rule needs at least" in t for t in texts)
    assert value_words(True) == "yes" and value_words(None) == "unknown" and value_words(60.0) == "60"


def test_what_if_lists_exactly_the_differences():
    a, b = evaluate(NEPHRITIS), evaluate({**NEPHRITIS, "planning_pregnancy": True})
    diff = compare_outcomes(a, b)
    assert diff.preferred == (a.preferred, b.preferred) and diff.preferred_changed
    assert diff.facts == (("planning_pregnancy", "no", "yes"),)
    recs = next(d for d in diff.lists if d.name == "recommendations")
    assert set(recs.added) == set(b.recommendations) - set(a.recommendations)
    assert set(recs.removed) == set(a.recommendations) - set(b.recommendations)
    assert compare_outcomes(a, a).same and not diff.same
    names = [d.name for d in diff.lists]
    assert {"continue", "cautions", "avoided", "fired_rules"} <= set(names)  # every list the outcome shows
    avoided = next(d for d in diff.lists if d.name == "avoided")
    assert set(avoided.added) == set(b.avoided) - set(a.avoided) and "mycophenolate" in avoided.added


def test_outcome_lists_are_read_when_a_result_has_them():
    extended = SimpleNamespace(cautions=(SimpleNamespace(agent="azathioprine"), "liver tests"))
    assert outcome_list(extended, "cautions") == ("azathioprine", "liver tests")
    assert outcome_list(extended, "continue") is None
    assert outcome_list(SimpleNamespace(continue_=("hydroxychloroquine",)), "continue") == ("hydroxychloroquine",)


def test_preset_labels_are_short_and_say_custom_after_an_edit():
    label = short_label("LN01-induction", "Nephritis, sub-nephrotic, never had mycophenolate: induction " * 3)
    assert len(label) <= LABEL_CHARS and label.startswith("LN01-induction: ") and label.endswith("…")
    preset = Preset("LN01", "06 nephritis", "LN01: short", "short", {})
    assert patient_label(preset, False) == "LN01: short"
    assert patient_label(preset, True) == "custom (from LN01)"
    assert patient_label(None, True) == "custom"
