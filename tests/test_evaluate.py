"""Evaluating one patient: forward chaining, the response criteria at their boundaries, isolation, reload."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lupus_rules import DISCLAIMER, PatientValidationError, evaluate, load_rulebook
from lupus_rules.rulebook import DEFAULT_RULES_DIR


@pytest.fixture(scope="module")
def book():
    return load_rulebook()


def nephritis(**facts):
    """A lupus nephritis patient after methotrexate failure, with these facts added."""
    return {"methotrexate": "nonresponse", "manifestations": "nephritis", **facts}


def test_chaining_reaches_three_levels(book):
    result = evaluate({"methotrexate": "intolerant", "manifestations": "joint",
                       "low_dose_glucocorticoid_tried": True}, book)
    fired = result.fired_rules
    # fact -> needs_alternative -> mycophenolate recommended + treatment_change -> monitoring flag
    assert fired.index("R-SCOPE-01") < fired.index("R-JNT-02") < fired.index("R-MON-01")
    assert {"needs_alternative", "treatment_change", "immunosuppression"} <= set(result.derived)
    assert result.preferred == "mycophenolate"
    assert result.recommendations[:2] == ("mycophenolate", "azathioprine")
    assert {"monitoring_2_4_weeks", "side_effect_monitoring"} <= set(result.flags)
    step = next(s for s in result.trace if s.rule_id == "R-JNT-02")
    assert step.matched["needs_alternative"] is True and step.matched["teratogens_excluded"] is False
    assert step.citation == (4, 5)


def test_hydroxychloroquine_is_always_recommended_but_never_preferred(book):
    for patient in ({}, {"methotrexate": "intolerant"}, nephritis(planning_pregnancy=True)):
        result = evaluate(patient, book)
        assert "hydroxychloroquine" in result.recommendations
        assert result.preferred != "hydroxychloroquine"
    assert evaluate({}, book).preferred is None


def test_pregnancy_planning_switches_nephritis_to_azathioprine(book):
    plain = evaluate(nephritis(), book)
    pregnant = evaluate(nephritis(planning_pregnancy=True), book)
    assert plain.preferred == "mycophenolate"
    assert pregnant.preferred == "azathioprine"
    assert not {"mycophenolate", "cyclophosphamide", "leflunomide", "voclosporin"} & set(pregnant.recommendations)
    assert pregnant.avoided["mycophenolate"] == ("R-SAFE-01",)


def test_no_calcineurin_inhibitor_below_egfr_45(book):
    refractory = nephritis(mycophenolate="nonresponse")
    assert evaluate({**refractory, "egfr": 45}, book).preferred == "voclosporin"
    low = evaluate({**refractory, "egfr": 44.9}, book)
    calcineurin = {"voclosporin", "tacrolimus", "cyclosporine"}
    assert not calcineurin & set(low.recommendations) and calcineurin <= set(low.avoided)
    assert low.preferred == "belimumab"  # triple therapy leads once calcineurin inhibitors are out


def test_result_row_and_explanation(book):
    result = evaluate(nephritis(fertility_concern=True), book)
    row = result.to_row()
    assert row["preferred"] == "mycophenolate"
    assert row["fired_rules"].split(";") == list(result.fired_rules)
    assert "fertility_caution" in row["flags"].split(";")
    text = result.explain()
    assert text.startswith(DISCLAIMER)
    assert "R-SAFE-04 [1]" in text and book.version in text


def test_bad_patient_is_rejected_before_the_engine(book):
    with pytest.raises(PatientValidationError, match="egfr: got 'high'"):
        evaluate({"egfr": "high"}, book)


# -- response assessment at its boundaries ------------------------------------------

def response(book, **facts):
    base = nephritis(egfr=80, egfr_baseline=80, months_on_therapy=6, **facts)
    return evaluate(base, book)


@pytest.mark.parametrize(("upcr", "expected"), [(0.49, "response_complete"), (0.5, "response_partial")])
def test_complete_response_needs_upcr_below_half(book, upcr, expected):
    flags = response(book, upcr=upcr, upcr_baseline=4).flags
    assert expected in flags
    assert ("response_complete" in flags) == (upcr < 0.5)


@pytest.mark.parametrize(("upcr", "baseline", "partial"), [(2.0, 4.0, True), (2.0001, 4.0, False), (1.1, 2.2, True)])
def test_partial_response_at_exactly_half_the_baseline(book, upcr, baseline, partial):
    flags = response(book, upcr=upcr, upcr_baseline=baseline).flags
    assert ("response_partial" in flags) is partial
    assert ("response_none" in flags) is (not partial)


@pytest.mark.parametrize(("upcr", "partial"), [(2.99, True), (3.0, False)])
def test_partial_response_needs_upcr_below_3(book, upcr, partial):
    flags = response(book, upcr=upcr, upcr_baseline=10).flags
    assert ("response_partial" in flags) is partial


@pytest.mark.parametrize(("egfr", "stable"), [(68.0, True), (67.99, False)])
def test_kidney_function_stable_down_to_minus_15_percent(book, egfr, stable):
    result = evaluate(nephritis(egfr=egfr, egfr_baseline=80, upcr=0.3, upcr_baseline=3), book)
    assert ("response_complete" in result.flags) is stable
    assert ("response_none" in result.flags) is (not stable)


def test_no_grade_without_baselines(book):
    flags = evaluate(nephritis(upcr=0.3, egfr=80), book).flags
    assert not {"response_complete", "response_partial", "response_none"} & set(flags)


@pytest.mark.parametrize(("months", "switch"), [(3.99, False), (4, True)])
def test_switch_when_no_improvement_by_month_4(book, months, switch):
    # 20 % reduction: "no improvement" (< 25 %) but not yet the 12-month rule
    result = evaluate(nephritis(upcr=4, upcr_baseline=5, egfr=80, egfr_baseline=80, months_on_therapy=months), book)
    assert ("R-SW-01" in result.fired_rules) is switch
    assert ("switch_therapy" in result.flags) is switch


def test_improvement_of_25_percent_is_enough_at_month_4(book):
    result = evaluate(nephritis(upcr=3.75, upcr_baseline=5, egfr=80, egfr_baseline=80, months_on_therapy=4), book)
    assert "switch_therapy" not in result.flags


@pytest.mark.parametrize(("months", "switch"), [(11.9, False), (12, True)])
def test_switch_when_no_partial_response_by_month_12(book, months, switch):
    # 40 % reduction: improving (no R-SW-01) but not partial
    result = evaluate(nephritis(upcr=3, upcr_baseline=5, egfr=80, egfr_baseline=80, months_on_therapy=months), book)
    assert "response_none" in result.flags
    assert ("R-SW-02" in result.fired_rules) is switch


@pytest.mark.parametrize(("months", "switch"), [(23.9, False), (24, True)])
def test_switch_when_no_complete_response_by_year_2(book, months, switch):
    result = evaluate(nephritis(upcr=1, upcr_baseline=4, egfr=80, egfr_baseline=80, months_on_therapy=months), book)
    assert "response_partial" in result.flags
    assert ("switch_therapy" in result.flags) is switch


@pytest.mark.parametrize(("months", "flag"), [(35.9, True), (36, False), (None, True)])
def test_proliferative_nephritis_36_months(book, months, flag):
    result = evaluate(nephritis(proliferative_nephritis=True, months_on_therapy=months), book)
    assert ("minimum_36_months" in result.flags) is flag


@pytest.mark.parametrize(("dose", "taper", "withdraw"), [(7.5, True, False), (7.49, False, True), (0, False, False)])
def test_glucocorticoid_thresholds(book, dose, taper, withdraw):
    flags = evaluate({"prednisone_mg": dose}, book).flags
    assert ("glucocorticoid_taper" in flags) is taper
    assert ("glucocorticoid_withdraw" in flags) is withdraw


# -- isolation and reload ------------------------------------------------------------

def test_no_state_leaks_between_patients(book):
    a = nephritis(planning_pregnancy=True, egfr=30)
    b = {"methotrexate": "intolerant", "manifestations": "cutaneous", "bullous": True}
    first = evaluate(a, book)
    evaluate(b, book)
    again = evaluate(a, book)
    assert again.fired_rules == first.fired_rules and again.recommendations == first.recommendations
    assert "R-CUT-06" not in again.fired_rules


def test_edited_rule_file_is_used_after_reload(tmp_path: Path, book):
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules)
    patient = nephritis(egfr=50, upcr=4, egfr_baseline=50)
    before = evaluate(patient, load_rulebook(rules))
    assert before.preferred == "mycophenolate"
    path = rules / "20_second_line.yaml"
    path.write_text(path.read_text().replace("{fact: egfr, op: \">=\", value: 60}", "{fact: egfr, op: \">=\", value: 45}"))
    edited = load_rulebook(rules)
    after = evaluate(patient, edited)
    assert edited.version != before.rulebook_version
    assert after.preferred == "voclosporin" and after.rulebook_version == edited.version


def test_rulebook_may_be_a_folder_of_rule_files():
    by_path = evaluate({"manifestations": "nephritis"}, rulebook=str(DEFAULT_RULES_DIR))
    assert by_path.rulebook_version == evaluate({"manifestations": "nephritis"}).rulebook_version


@pytest.mark.parametrize("rulebook", [42, object(), ["rules"]], ids=repr)
def test_a_rulebook_of_the_wrong_type_is_an_option_error(rulebook):
    from lupus_rules.errors import OptionError

    with pytest.raises(OptionError, match=r"rulebook: got .*; allowed: a Rulebook, a folder of rule files, or None"):
        evaluate({}, rulebook=rulebook)


def test_python_engine_gives_the_durable_result_with_its_own_name(book):
    from lupus_rules.explain import condition_holds
    from lupus_rules.engines import python

    assert condition_holds is python.condition_holds  # one condition evaluator, shared by why-not
    patient = {"manifestations": "nephritis", "egfr": 40, "upcr": 2.5, "planning_pregnancy": True}
    durable, plain = evaluate(patient, book), evaluate(patient, book, engine="python")
    assert plain.engine == "python" and durable.engine == "durable"
    assert plain.to_row() == durable.to_row() and plain.trace == durable.trace
    assert plain.fired_rules  # the patient fires rules, so the comparison says something


def test_evaluate_refuses_an_unknown_engine_naming_the_allowed_ones(book):
    from lupus_rules.errors import OptionError

    with pytest.raises(OptionError, match=r"engine: got 'vectorised'; allowed: durable, python"):
        evaluate({}, book, engine="vectorised")
