"""The durable-rules adapter: each pitfall measured in shared/notes/durable-rules.md is handled."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from lupus_rules import evaluate, load_rulebook, validate_patient
from lupus_rules.engines import durable
from lupus_rules.engines.durable import DurableEngine, compile_ruleset, encode_patient
from lupus_rules.errors import EngineError
from lupus_rules.rulebook import Condition, rulebook_from_documents

NEPHRITIS = {"methotrexate": "intolerant", "manifestations": "nephritis", "egfr": 70, "upcr": 3.5}


@pytest.fixture(scope="module")
def book():
    return load_rulebook()


def tiny_rulebook(rules: list[dict]):
    """A one-file rulebook with the shipped vocabulary and these rules."""
    meta = load_rulebook().meta
    return rulebook_from_documents([("rulebook.yaml", {"rulebook": meta}), ("t.yaml", {"rules": rules})])


def rule(rule_id, when, then):
    return {"id": rule_id, "title": rule_id, "section": "test", "citation": [1], "when": when,
            "then": then, "rationale": "test"}


def test_more_patients_than_the_1024_session_limit(book):
    engine = durable.shared()
    patient = validate_patient(NEPHRITIS)
    first = engine.fire(patient, book)
    for _ in range(1100):
        assert engine.fire(patient, book) == first
    assert engine.live_sessions() == 0


def test_no_background_threads_per_engine(book):
    before = threading.active_count()
    engines = [DurableEngine() for _ in range(5)]
    for engine in engines:
        engine.fire(validate_patient(NEPHRITIS), book)
    assert threading.active_count() == before


def test_threads_share_the_engine_safely(book):
    patients = [validate_patient({"methotrexate": s, "manifestations": m})
                for s in ("intolerant", "nonresponse", "effective") for m in ("joint", "nephritis", "cutaneous")]
    sequential = [evaluate(p, book).fired_rules for p in patients]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda p: evaluate(p, book).fired_rules, patients * 10))
    assert parallel == sequential * 10


def test_exceptions_inside_actions_are_raised_not_swallowed(book):
    class Failing(DurableEngine):
        def _action_for(self, rule_id):
            real = super()._action_for(rule_id)
            if rule_id != "R-MON-01":
                return real

            def explode(c):
                raise ValueError("boom in R-MON-01")

            return explode

    engine = Failing()
    with pytest.raises(EngineError, match="boom in R-MON-01"):
        engine.fire(validate_patient(NEPHRITIS), book)
    assert engine.live_sessions() == 0
    # the failure left nothing behind: a patient that never reaches R-MON-01 still works
    assert engine.fire(validate_patient({}), book) == ["R-FL-07", "R-SCOPE-04"]


def test_patient_matching_no_rule_is_not_an_error():
    book = tiny_rulebook([
        rule("T-1", [{"fact": "egfr", "op": ">=", "value": 60}], {"derive": ["preserved_kidney_function"]}),
        rule("T-2", [{"derived": "preserved_kidney_function"}], {"flag": ["switch_therapy"]}),
    ])
    assert evaluate({"egfr": 30}, book).fired_rules == ()
    assert evaluate({"egfr": 60}, book).fired_rules == ("T-1", "T-2")


def test_negation_only_rule_terminates(book):
    result = evaluate({}, book)
    assert result.fired_rules == ("R-FL-07", "R-SCOPE-04")
    assert result.flags == ("outside_guideline_scope",)


def test_negation_sees_facts_derived_by_earlier_strata():
    book = tiny_rulebook([
        rule("T-LATE", [{"not_derived": "teratogens_excluded"}], {"flag": ["switch_therapy"]}),
        rule("T-EARLY", [{"fact": "planning_pregnancy", "op": "==", "value": True}],
             {"derive": ["teratogens_excluded"]}),
    ])
    assert evaluate({"planning_pregnancy": True}, book).fired_rules == ("T-EARLY",)
    assert evaluate({}, book).fired_rules == ("T-LATE",)


def test_a_fact_derived_twice_is_asserted_once(book):
    # needs_alternative comes from both R-SCOPE-01 and R-SCOPE-03; durable raises on a duplicate fact
    result = evaluate({"methotrexate": "intolerant", "manifestations": "nephritis"}, book)
    assert {"R-SCOPE-01", "R-SCOPE-03"} <= set(result.fired_rules)
    assert result.fired_rules.count("R-LN-01") == 1


def test_values_are_typed_before_durable_sees_them(book):
    fact = encode_patient(validate_patient({"egfr": "45", "manifestations": "joint"}), "s")
    assert fact["egfr"] == 45_000_000 and isinstance(fact["egfr"], int)  # micro-units: no JSON exponent
    assert fact["manifestations__joint"] is True and fact["manifestations__nephritis"] is False
    assert "upcr" not in fact  # unknown numbers are left out, so no comparison can match them
    assert "R-SAFE-02" not in evaluate({"egfr": "45"}, book).fired_rules
    assert "R-SAFE-02" in evaluate({"egfr": "44.9"}, book).fired_rules


def test_reload_after_edit_in_the_same_process(book):
    engine = DurableEngine()
    patient = validate_patient({"egfr": 50, "upcr": 4, "manifestations": "nephritis", "methotrexate": "intolerant"})
    assert "R-KID-01" not in engine.fire(patient, book)
    edited = book.replace_rule("R-KID-01", when=(Condition("fact", "egfr", ">=", 45.0),))
    fired = engine.fire(patient, edited)
    assert "R-KID-01" in fired and "R-SL-01" in fired
    assert "R-KID-01" not in engine.fire(patient, book)  # both versions usable side by side
    for threshold in (40.0, 41.0, 42.0, 43.0, 44.0, 46.0):
        engine.fire(patient, book.replace_rule("R-KID-01", when=(Condition("fact", "egfr", ">=", threshold),)))
    assert len(engine.registered()) <= 4  # old versions are unregistered from durable


def test_compiled_ruleset_uses_stage_facts_only_above_stratum_zero(book):
    compiled = compile_ruleset(book)
    assert "stage" not in str(compiled["R-SCOPE-01"]["all"])
    stratum = next(r.stratum for r in book.rules if r.id == "R-MON-01")
    stage = compiled["R-MON-01"]["all"][0]["stage"]["$and"]
    assert stratum > 0 and (stage[0], stage[-1]) == ({"t": "stage"}, {"n": stratum})
    assert all(set(test) == {"$nex"} for test in stage[1:-1])  # the group tree's always-true tests
    assert any("$not" in key for term in compiled["R-SCOPE-04"]["all"] for key in term)


def test_a_failed_compile_leaves_nothing_registered(book):
    from dataclasses import replace

    engine = DurableEngine()
    engine.fire(validate_patient(NEPHRITIS), book)
    copies = 4200 // len(book.rules) + 1  # more rules than durable's 4 096 per ruleset: error 106
    rules = tuple(replace(r, id=f"{r.id}-{i}") for i in range(copies) for r in book.rules)
    too_big = replace(book, rules=rules, version="toobig000000")
    for _ in range(3):
        with pytest.raises(EngineError, match="could not compile rulebook toobig000000"):
            engine.fire(validate_patient(NEPHRITIS), too_big)
        assert engine.compiled_entries() == len(engine.registered()) == 1
    assert engine.fire(validate_patient(NEPHRITIS), book) == durable.shared().fire(validate_patient(NEPHRITIS), book)


def test_more_than_256_rules_on_one_test_chain_compile():
    # durable links at most 256 rules to one alpha node (error 108); the adapter groups rules below that
    rules = [rule(f"S{i}", [{"fact": "egfr", "op": ">=", "value": 30}], {"flag": ["switch_therapy"]})
             for i in range(600)]
    rules += [rule("D", [{"fact": "egfr", "op": ">=", "value": 30}], {"derive": ["needs_alternative"]})]
    rules += [rule(f"N{i}", [{"derived": "needs_alternative"}], {"flag": ["switch_therapy"]}) for i in range(300)]
    fired = DurableEngine().fire(validate_patient({"egfr": 40}), tiny_rulebook(rules))
    assert fired == [f"S{i}" for i in range(600)] + ["D"] + [f"N{i}" for i in range(300)]
