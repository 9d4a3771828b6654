"""Bugs found once, pinned forever: each test names what went wrong."""
from __future__ import annotations

import pytest

from lupus_rules import evaluate, validate_patient
from lupus_rules.engines.durable import DurableEngine
from lupus_rules.errors import EngineError
from lupus_rules.facts import MEASURE_LIMIT


@pytest.mark.parametrize("facts", [{"egfr": 0.00001}, {"egfr": 1e-9, "egfr_baseline": 200},
                                   {"upcr": 30, "upcr_baseline": 1e-300, "manifestations": "nephritis"}])
def test_numbers_json_writes_in_exponent_form_reach_durable(facts):
    # durable-rules raised error 204 on 1e-05 and on 1e+17 (a percent change from a tiny baseline)
    result = evaluate(facts)
    assert "R-FL-07" in result.fired_rules


def test_measures_from_a_tiny_baseline_are_clipped():
    patient = validate_patient({"upcr": 30, "upcr_baseline": 0.000001})
    assert patient["upcr_reduction_pct"] == -MEASURE_LIMIT
    # below the rounding quantum a baseline is 0, and a change from 0 is unknown
    assert validate_patient({"upcr": 30, "upcr_baseline": 1e-300})["upcr_reduction_pct"] is None


def test_numbers_are_rounded_to_six_decimals_everywhere():
    assert validate_patient({"egfr": 44.9999999})["egfr"] == 45.0
    assert "R-SAFE-02" not in evaluate({"egfr": 44.9999999}).fired_rules
    assert "R-SAFE-02" in evaluate({"egfr": 44.999999}).fired_rules


def test_a_failed_cleanup_does_not_hide_the_engine_error():
    # delete_state raising (error 309) used to replace the real EngineError of a failed evaluation
    class Failing(DurableEngine):
        def _assert(self, ruleset, sid, fact):
            raise EngineError("the real failure")

    with pytest.raises(EngineError, match="the real failure"):
        Failing().fire(validate_patient({}), __import__("lupus_rules").load_rulebook())
