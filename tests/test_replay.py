"""The step-by-step replay agrees with the engine's trace for every suite scenario."""
from __future__ import annotations

import pytest

from lupus_rules import default_rulebook, evaluate
from lupus_rules.presets import default_scenarios_dir
from lupus_rules.replay import replay
from lupus_rules.suite import load_suite

NEPHRITIS = {"manifestations": "nephritis", "methotrexate": "intolerant"}


def test_every_suite_scenario_replays_to_the_engine_result():
    book = default_rulebook()
    for scenario in load_suite(default_scenarios_dir()):
        result = evaluate(scenario.patient, book)
        steps = replay(result, book)
        fired = result.fired_rules
        assert len(steps) == len(fired) + 1
        for k, step in enumerate(steps):
            assert step.number == k and step.total == len(fired)
            assert step.just_fired == (fired[k - 1] if k else None)
            if k < len(fired):
                assert step.next_rule == fired[k] and fired[k] in step.activated
                assert all(book.rule(r).stratum == step.stratum for r in step.activated)
                assert step.activated[0] == fired[k]  # the agenda is in firing order
        final = steps[-1]
        assert set(final.derived) == set(result.derived) and final.next_rule is None
        assert set(final.recommended) == set(result.recommendations)
        assert set(final.flags) == set(result.flags) and set(final.avoided) == set(result.avoided)
        strata = [s.stratum for s in steps]
        assert strata == sorted(strata)


def test_a_step_says_why_the_next_rule_fires_with_the_patient_values():
    result = evaluate({**NEPHRITIS, "egfr": 75})
    steps = replay(result)
    book = default_rulebook()
    for step in steps[:-1]:
        rule = book.rule(step.next_rule)
        assert len(step.next_because) == max(len(rule.when), 1)
    number_steps = [s for s in steps[:-1] if any(c.fact == "egfr" for c in book.rule(s.next_rule).when)]
    assert number_steps and any("egfr is 75" in w for w in number_steps[0].next_because)
    assert "planning_pregnancy = yes" not in steps[0].facts and "egfr = 75" in steps[0].facts


def test_a_result_of_another_rulebook_is_refused():
    book = default_rulebook()
    edited = book.replace_rule(book.rules[0].id, title="edited")
    with pytest.raises(ValueError, match="result: comes from rulebook"):
        replay(evaluate(NEPHRITIS, book), edited)
