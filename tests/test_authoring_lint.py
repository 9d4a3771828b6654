"""Static checks (authoring/lint.py): defects planted in a copy of the rulebook are found.

Every example patient a finding gives is re-evaluated with the durable engine
(independent of the vectorized engine lint runs on), so a finding is only
accepted when the defect really shows for that patient.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lupus_rules import Condition, default_rulebook, evaluate
from lupus_rules.authoring import disease_modifying_agents, lint
from lupus_rules.explain import condition_holds
from lupus_rules.rulebook import RecommendationSpec, Rule

MUTATIONS = "99_planted.yaml"


def _rule(rule_id: str, when: list[Condition], **then) -> Rule:
    return Rule(id=rule_id, title=f"planted {rule_id}", section="test", citation=(1,), when=tuple(when),
                rationale="planted defect", file=MUTATIONS, **then)


def _fact(name: str, op: str, value=None) -> Condition:
    return Condition("fact", name, op, value)


@pytest.fixture(scope="module")
def shipped():
    return default_rulebook()


@pytest.fixture(scope="module")
def shipped_report(shipped):
    return lint(shipped)


@pytest.fixture(scope="module")
def planted(shipped):
    """The shipped rules plus: a contradiction, a tie, a rule that never fires, a shadowed rule, a new gap."""
    fl01 = shipped.rule("R-FL-01")
    rules = sorted(shipped.without_rule("R-LN-10").without_rule("R-ST-TAC-AVOID").rules,
                   key=lambda r: r.position)  # gap: nephritis in pregnancy; history: failed tacrolimus offered
    rules = [replace(r, recommend=(replace(r.recommend[0], rank=40),)) if r.id == "R-FL-03" else r
             for r in rules]  # tie: azathioprine now ranks with mycophenolate (40)
    rules += [
        _rule("T-CONTRA", [_fact("manifestations", "has", "joint"), _fact("planning_pregnancy", "==", True)],
              recommend=(RecommendationSpec("mycophenolate", 25),)),
        _rule("T-NEVER", [_fact("egfr", "<", 30.0), _fact("egfr", ">=", 60.0)], flag=("glucocorticoid_taper",)),
        replace(fl01, id="T-SHADOW", when=(*fl01.when, _fact("persistent_activity", "==", True)),
                file=MUTATIONS),
    ]
    return shipped.with_rules(rules)


@pytest.fixture(scope="module")
def planted_report(planted):
    return lint(planted)


def _rows(report, check, *rules, severity=None):
    found = report.findings[report.findings["check"] == check]
    if severity:
        found = found[found["severity"] == severity]
    return found.loc[np.array([all(x in r for x in rules) for r in found["rules"]], dtype=bool)]


def test_shipped_rulebook_has_zero_contradictions(shipped_report):
    problems = shipped_report.findings[shipped_report.findings["check"] == "contradiction"]
    assert problems.empty, "\n".join(problems["message"] + " | example: " + problems["example"])


def test_shipped_rulebook_every_rule_can_fire(shipped_report):
    assert _rows(shipped_report, "never_fires").empty


def test_shipped_lint_is_exhaustive(shipped_report):
    assert shipped_report.exhaustive
    assert shipped_report.coverage["description"].str.startswith("exhaustive").all()


def _no_disease_modifying_agent(result, book) -> bool:
    return not set(result.recommendations) & set(disease_modifying_agents(book))


def test_accepted_gaps_are_reported_once_each_with_a_matching_example(shipped, shipped_report):
    accepted = shipped_report.findings[shipped_report.findings["severity"] == "accepted"]
    gaps = {gap.id: gap for gap in shipped.accepted_gaps}
    assert ("GAP-SCOPE",) in set(accepted["rules"])
    assert len(accepted) == len(set(accepted["rules"]))
    for (gap_id,), classes, patient in zip(accepted["rules"], accepted["classes"], accepted["patient"]):
        result = evaluate(patient, shipped)
        assert classes > 0 and _no_disease_modifying_agent(result, shipped)
        assert all(condition_holds(c, result.patient, result.derived) for c in gaps[gap_id].when)


def test_open_gaps_are_outside_every_accepted_gap(shipped, shipped_report):
    for patient in _rows(shipped_report, "gap", severity="warning")["patient"]:
        if not patient:  # the "further classes not described" line has no example
            continue
        result = evaluate(patient, shipped)
        assert _no_disease_modifying_agent(result, shipped)
        for gap in shipped.accepted_gaps:
            assert not all(condition_holds(c, result.patient, result.derived) for c in gap.when)


def test_a_recommendation_a_safety_rule_avoids_is_no_new_start_and_no_contradiction(planted, planted_report):
    assert _rows(planted_report, "contradiction", "T-CONTRA").empty
    result = evaluate({"manifestations": "joint", "planning_pregnancy": True, "methotrexate": "intolerant"}, planted)
    assert "T-CONTRA" in result.fired_rules
    assert "mycophenolate" not in result.recommendations and "mycophenolate" in result.avoided


def test_planted_history_defect_is_found(planted, planted_report):
    found = _rows(planted_report, "history")
    assert len(found) >= 1 and (found["severity"] == "error").all()
    assert found["message"].str.startswith("tacrolimus is offered as a new start").all()
    for patient in found["patient"]:
        result = evaluate(patient, planted)
        assert "tacrolimus" in result.recommendations
        assert result.patient["tacrolimus"] not in ("not_tried",)


def test_shipped_rulebook_never_offers_an_agent_against_its_history(shipped_report):
    assert _rows(shipped_report, "history").empty


def test_planted_tie_between_preferred_agents_is_found(planted, planted_report):
    found = _rows(planted_report, "contradiction", "R-FL-01", "R-FL-03")
    assert len(found) >= 1 and found["message"].str.contains("tie at the best rank 40").all()
    for patient in found["patient"]:
        details = evaluate(patient, planted).recommendation_details
        best = [d.agent for d in details if d.rank == min(x.rank for x in details)]
        assert set(best) >= {"mycophenolate", "azathioprine"}


def test_planted_rule_that_never_fires_is_found(planted_report):
    found = _rows(planted_report, "never_fires")
    assert list(found["rules"]) == [("T-NEVER",)]
    assert "egfr < 30" in found["message"].iloc[0] or "egfr >= 60" in found["message"].iloc[0]


def test_planted_gap_is_found(shipped, planted, planted_report):
    new_gaps = []
    for patient in _rows(planted_report, "gap", severity="warning")["patient"]:
        if patient and _no_disease_modifying_agent(evaluate(patient, planted), planted):
            if not _no_disease_modifying_agent(evaluate(patient, shipped), shipped):
                new_gaps.append(patient)
    assert new_gaps, "no gap finding shows the gap planted by removing R-LN-10"
    assert all("nephritis" in p["manifestations"] and p["planning_pregnancy"] == "true" for p in new_gaps)


def test_planted_shadowed_rule_is_found(planted, planted_report):
    found = _rows(planted_report, "shadowed", "T-SHADOW")
    assert len(found) == 1
    fired = evaluate(found["patient"].iloc[0], planted).fired_rules
    assert "T-SHADOW" in fired and "R-FL-01" in fired


def test_errors_fail_lint_and_warnings_do_not(planted_report):
    assert not planted_report.passed
    assert set(planted_report.errors["check"]) == {"contradiction", "never_fires", "history"}
    text = planted_report.to_text()
    assert text.startswith("Not for clinical use") and "FAILED" in text


def test_sampled_lint_says_so(shipped):
    report = lint(shipped, max_rows=5_000)
    assert not report.exhaustive
    assert report.coverage["description"].str.contains("SAMPLED").any()


@pytest.mark.parametrize(("option", "value"), [("max_rows", 0), ("max_rows", -5), ("max_rows", True),
                                               ("max_rows", 1.5), ("max_regions", -1), ("seed", "x")])
def test_unusable_options_are_refused_by_name(shipped, option, value):
    from lupus_rules.errors import LupusRulesError, OptionError

    with pytest.raises(OptionError, match=f"{option}: got {value!r}; allowed: a whole number") as info:
        lint(shipped, **{option: value})
    assert isinstance(info.value, LupusRulesError) and isinstance(info.value, ValueError)


def test_the_gap_check_leaves_out_avoiders_that_never_fire_beside_a_keeper():
    """A status AVOID (failed) never fires with its KEEP (taken now): it cannot undo "kept", so it does not vary.

    A safety rule that can stop an agent taken now (dapsone with G6PD deficiency) stays.
    """
    from lupus_rules.authoring.lint import _continuing, disease_modifying_agents

    book = default_rulebook()
    keepers, avoiders = _continuing(book, set(disease_modifying_agents(book)))["dapsone"]
    assert "R-ST-DAP-KEEP" in keepers
    assert "R-ST-DAP-AVOID" not in avoiders and "R-SAFE-03" in avoiders
    _, rtx_avoiders = _continuing(book, set(disease_modifying_agents(book)))["rituximab"]
    assert "R-SW-RTX" in rtx_avoiders  # a met switch criterion stops rituximab taken now


def test_a_start_beside_a_flag_that_stops_it_is_a_conflict(shipped, shipped_report):
    """Without R-CUR-GC a dose taken now no longer makes the glucocorticoid current: joint step 1 starts it
    while R-GC-02 says to withdraw it, which the declared conflict names."""
    assert not (shipped_report.findings["check"] == "conflict").any()
    assert shipped_report.coverage["checks"].str.contains("conflict: low_dose_glucocorticoid").any()
    edited = shipped.without_rule("R-CUR-GC")
    found = lint(edited).findings
    conflicts = found[found["check"] == "conflict"]
    assert len(conflicts) and conflicts["severity"].eq("error").all()
    assert ("R-JNT-01",) in set(conflicts["rules"].map(tuple))
    example = conflicts[conflicts["rules"].map(tuple) == ("R-JNT-01",)].iloc[0]
    result = evaluate(example["patient"], edited)
    assert "low_dose_glucocorticoid" in result.recommendations and "glucocorticoid_withdraw" in result.flags
