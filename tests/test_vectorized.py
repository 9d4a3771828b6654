"""The vectorized engine: each operator as a column mask, NaN semantics, stratified negation, outputs.

A tiny hand-made rulebook (built with ``rulebook_from_documents``) exercises
one operator per rule; the expected firings below are worked out by hand from
the rule semantics in docs/ARCHITECTURE.md, not read back from the engine.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from lupus_rules.engines import vectorized
from lupus_rules.engines.vectorized import evaluate_frame, fire_matrix, required_columns
from lupus_rules.errors import EngineError
from lupus_rules.facts import FACTS, STATUSES, validate_frame
from lupus_rules.rulebook import rulebook_from_documents

NAN = float("nan")

VOCABULARY = {
    "rulebook": {
        "name": "tiny",
        "references": {1: "A test reference."},
        "agents": {
            "alpha": {"name": "Alpha"},
            "beta": {"name": "Beta"},
            "gamma": {"name": "Gamma"},
            "base": {"name": "Base", "foundation": True},
        },
        "flags": {"f_low": "low", "f_high": "high", "f_none": "nothing derived"},
        "derived_facts": {"kidney": "nephritis present", "later": "derived from a derived fact"},
    }
}


def rule(rule_id: str, when: list, then: dict) -> dict:
    return {"id": rule_id, "title": rule_id, "section": "test", "citation": [1], "when": when,
            "then": then, "rationale": "test"}


#: One rule per operator. N-NOT is defined FIRST but tests a fact derived later:
#: only stratification makes it see the derivation.
TINY_RULES = [
    rule("N-NOT", [{"not_derived": "kidney"}], {"flag": ["f_none"]}),
    rule("B-EQ-T", [{"fact": "bullous", "op": "==", "value": True}], {"recommend": [{"agent": "alpha", "rank": 5}]}),
    rule("B-EQ-F", [{"fact": "bullous", "op": "==", "value": False}], {"recommend": [{"agent": "beta", "rank": 7}]}),
    rule("S-EQ", [{"fact": "ldn", "op": "==", "value": "effective"}], {"flag": ["f_high"]}),
    rule("S-NE", [{"fact": "ldn", "op": "!=", "value": "not_tried"}], {"flag": ["f_low"]}),
    rule("S-IN", [{"fact": "azathioprine", "op": "in", "value": ["intolerant", "nonresponse"]}],
         {"recommend": [{"agent": "gamma", "rank": 3}]}),
    rule("S-NOTIN", [{"fact": "azathioprine", "op": "not_in", "value": ["intolerant", "effective"]}],
         {"recommend": [{"agent": "beta", "rank": 4}]}),
    rule("M-HAS", [{"fact": "manifestations", "op": "has", "value": "nephritis"}], {"derive": ["kidney"]}),
    rule("M-LACKS", [{"fact": "manifestations", "op": "lacks", "value": "joint"}],
         {"recommend": [{"agent": "base", "rank": 1}]}),
    rule("X-LT", [{"fact": "egfr", "op": "<", "value": 45}], {"flag": ["f_low"]}),
    rule("X-LE", [{"fact": "egfr", "op": "<=", "value": 45}], {"flag": ["f_low"]}),
    rule("X-GT", [{"fact": "egfr", "op": ">", "value": 45}], {"flag": ["f_high"]}),
    rule("X-GE", [{"fact": "egfr", "op": ">=", "value": 45}], {"flag": ["f_high"]}),
    rule("X-KNOWN", [{"fact": "upcr", "op": "known"}], {"recommend": [{"agent": "gamma", "rank": 9}]}),
    rule("X-UNKNOWN", [{"fact": "upcr", "op": "unknown"}], {"recommend": [{"agent": "alpha", "rank": 9}]}),
    rule("X-MEASURE", [{"fact": "upcr_reduction_pct", "op": ">=", "value": 50}], {"flag": ["f_high"]}),
    rule("D-YES", [{"derived": "kidney"}, {"fact": "planning_pregnancy", "op": "==", "value": True}],
         {"derive": ["later"]}),
    rule("D-CHAIN", [{"derived": "later"}], {"recommend": [{"agent": "alpha", "rank": 2}]}),
    rule("ALWAYS", [], {"recommend": [{"agent": "base", "rank": 90}]}),
]


def tiny_rulebook(rules: list[dict] | None = None):
    docs = [("rulebook.yaml", copy.deepcopy(VOCABULARY)), ("rules.yaml", {"rules": rules or TINY_RULES})]
    return rulebook_from_documents(docs, source="tiny")


def fired_sets(rows: list[dict], rulebook) -> list[set[str]]:
    typed, errors = validate_frame(pd.DataFrame(rows))
    assert (errors == "").all(), errors.tolist()
    matrix = fire_matrix(typed, rulebook)
    return [{rulebook.rules[j].id for j in np.flatnonzero(row)} for row in matrix]


def test_matrix_has_one_column_per_rule_in_firing_order():
    book = tiny_rulebook()
    matrix = fire_matrix(validate_frame(pd.DataFrame([{}, {}, {}]))[0], book)
    assert matrix.shape == (3, len(book.rules)) and matrix.dtype == bool
    # everything defaulted: bullous false, no manifestations, unknown numbers, ldn/azathioprine not tried
    expected = {"N-NOT", "B-EQ-F", "S-NOTIN", "M-LACKS", "X-UNKNOWN", "ALWAYS"}
    assert [{book.rules[j].id for j in np.flatnonzero(r)} for r in matrix] == [expected] * 3


@pytest.mark.parametrize(("value", "fired"), [(True, "B-EQ-T"), (False, "B-EQ-F")])
def test_bool_equality(value, fired):
    got = fired_sets([{"bullous": value}], tiny_rulebook())[0]
    assert fired in got and ({"B-EQ-T", "B-EQ-F"} - {fired}).isdisjoint(got)


@pytest.mark.parametrize(
    ("ldn", "azathioprine", "expected"),
    [
        ("not_tried", "not_tried", {"S-NOTIN"}),
        ("effective", "intolerant", {"S-EQ", "S-NE", "S-IN"}),
        ("intolerant", "nonresponse", {"S-NE", "S-IN", "S-NOTIN"}),
        ("nonresponse", "effective", {"S-NE"}),
    ],
)
def test_status_operators(ldn, azathioprine, expected):
    status_rules = {"S-EQ", "S-NE", "S-IN", "S-NOTIN"}
    got = fired_sets([{"ldn": ldn, "azathioprine": azathioprine}], tiny_rulebook())[0]
    assert got & status_rules == expected


@pytest.mark.parametrize(
    ("manifestations", "has", "lacks"),
    [("", False, True), ("nephritis", True, True), ("joint;nephritis", True, False), ("joint", False, False)],
)
def test_set_operators(manifestations, has, lacks):
    got = fired_sets([{"manifestations": manifestations}], tiny_rulebook())[0]
    assert ("M-HAS" in got) == has and ("M-LACKS" in got) == lacks


@pytest.mark.parametrize(
    ("egfr", "expected"),
    [
        (44.9, {"X-LT", "X-LE"}),
        (45.0, {"X-LE", "X-GE"}),
        (45.1, {"X-GT", "X-GE"}),
        (NAN, set()),  # an unknown number satisfies no comparison, in either direction
        ("", set()),
    ],
)
def test_number_comparisons_and_unknown(egfr, expected):
    got = fired_sets([{"egfr": egfr}], tiny_rulebook())[0]
    assert got & {"X-LT", "X-LE", "X-GT", "X-GE"} == expected


@pytest.mark.parametrize(("upcr", "known"), [(0.0, True), (2.5, True), (NAN, False), ("", False)])
def test_known_and_unknown(upcr, known):
    got = fired_sets([{"upcr": upcr}], tiny_rulebook())[0]
    assert ("X-KNOWN" in got) == known and ("X-UNKNOWN" in got) == (not known)


@pytest.mark.parametrize(
    ("upcr", "baseline", "fires"),
    [(1.0, 2.0, True), (1.01, 2.0, False), (1.0, NAN, False), (1.0, 0.0, False), (NAN, 2.0, False)],
)
def test_measures_compare_like_numbers(upcr, baseline, fires):
    # reduction = (2.0 - 1.0) / 2.0 = 50 %: exactly at the threshold; no baseline (or 0) = unknown
    got = fired_sets([{"upcr": upcr, "upcr_baseline": baseline}], tiny_rulebook())[0]
    assert ("X-MEASURE" in got) == fires


def test_negation_sees_facts_derived_by_rules_defined_after_it():
    book = tiny_rulebook()
    assert book.rule("N-NOT").stratum > book.rule("M-HAS").stratum
    with_kidney, without = fired_sets([{"manifestations": "nephritis"}, {}], book)
    assert "M-HAS" in with_kidney and "N-NOT" not in with_kidney
    assert "N-NOT" in without


def test_derived_facts_chain_through_strata():
    rows = [{"manifestations": "nephritis", "planning_pregnancy": True},
            {"manifestations": "nephritis", "planning_pregnancy": False},
            {"planning_pregnancy": True}]
    chained, no_pregnancy, no_kidney = fired_sets(rows, tiny_rulebook())
    assert {"D-YES", "D-CHAIN"} <= chained
    assert not {"D-YES", "D-CHAIN"} & no_pregnancy
    assert not {"D-YES", "D-CHAIN"} & no_kidney


def test_evaluate_frame_outputs_strings_per_row():
    book = tiny_rulebook()
    rows = [
        {},
        {"bullous": True, "manifestations": "nephritis;joint", "planning_pregnancy": True,
         "egfr": 45, "upcr": 1, "upcr_baseline": 2, "azathioprine": "nonresponse"},
    ]
    typed, _ = validate_frame(pd.DataFrame(rows, index=[10, 20]))
    out = evaluate_frame(typed, book)
    assert list(out.columns) == ["preferred", "recommendations", "continue", "avoided", "cautions", "flags",
                                 "fired_rules"]
    assert list(out.index) == [10, 20]
    assert (out[["continue", "avoided", "cautions"]] == "").all().all()  # the tiny rulebook keeps/avoids nothing
    out = out.drop(columns=["continue", "avoided", "cautions"])
    # row 10: beta 7 (B-EQ-F), beta 4 (S-NOTIN), base 1 (M-LACKS), alpha 9 (X-UNKNOWN), base 90
    #         -> base(1, foundation) beta(4) alpha(9); preferred = first non-foundation = beta
    assert out.loc[10].to_dict() == {
        "preferred": "beta", "recommendations": "base;beta;alpha", "flags": "f_none",
        "fired_rules": "B-EQ-F;S-NOTIN;M-LACKS;X-UNKNOWN;ALWAYS;N-NOT",  # N-NOT: stratum 1, so last
    }
    # row 20: alpha 5 and 2 (D-CHAIN), gamma 3 (S-IN), beta 4 (S-NOTIN), gamma 9 (X-KNOWN), base 90
    #         flags: f_low (X-LE), f_high (X-GE, X-MEASURE), in vocabulary order
    assert out.loc[20].to_dict() == {
        "preferred": "alpha", "recommendations": "alpha;gamma;beta;base", "flags": "f_low;f_high",
        "fired_rules": "B-EQ-T;S-IN;S-NOTIN;M-HAS;X-LE;X-GE;X-KNOWN;X-MEASURE;ALWAYS;D-YES;D-CHAIN",
    }
    assert all(str(out[c].dtype) == "str" for c in out.columns)


def test_status_columns_accept_other_category_orders_and_codes():
    book = tiny_rulebook()
    typed, _ = validate_frame(pd.DataFrame([{"ldn": "effective"}, {"ldn": "intolerant"}]))
    expected = fire_matrix(typed, book)
    reordered = typed.copy()
    reordered["ldn"] = typed["ldn"].cat.reorder_categories(list(reversed(STATUSES)))
    assert (fire_matrix(reordered, book) == expected).all()
    as_codes = typed.copy()
    as_codes["ldn"] = typed["ldn"].cat.codes
    assert (fire_matrix(as_codes, book) == expected).all()


def test_missing_or_mistyped_column_is_named():
    book = tiny_rulebook()
    typed, _ = validate_frame(pd.DataFrame([{}]))
    with pytest.raises(EngineError, match="egfr"):
        fire_matrix(typed.drop(columns=["egfr"]), book)
    bad = typed.copy()
    bad["bullous"] = bad["bullous"].astype(int)
    with pytest.raises(EngineError, match="bullous"):
        fire_matrix(bad, book)
    bad = typed.copy()
    bad["ldn"] = "sometimes"
    with pytest.raises(EngineError, match="ldn"):
        fire_matrix(bad, book)


def test_required_columns_name_only_what_the_rules_read():
    columns = required_columns(tiny_rulebook())
    assert "manifestations__nephritis" in columns and "upcr_reduction_pct" in columns
    assert "g6pd_deficient" not in columns and "months_on_therapy" not in columns


def test_empty_frame():
    typed, errors = validate_frame(pd.DataFrame({name: [] for name in FACTS}))
    out = evaluate_frame(typed, tiny_rulebook())
    assert len(out) == 0 and list(out.columns) == list(vectorized.OUTPUT_COLUMNS)
    assert fire_matrix(typed, tiny_rulebook()).shape == (0, len(TINY_RULES))


def test_each_rulebook_version_gets_its_own_outcomes():
    book = tiny_rulebook()
    rows = pd.DataFrame([{"bullous": True}] * 3)
    typed, _ = validate_frame(rows)
    before = evaluate_frame(typed, book)
    # bullous: alpha rank 5 (B-EQ-T) loses to beta rank 4 (S-NOTIN); the edit gives alpha rank 2
    edited = book.replace_rule("B-EQ-T", recommend=(type(book.rule("B-EQ-T").recommend[0])("alpha", 2),))
    after = evaluate_frame(typed, edited)
    assert before["preferred"].tolist() == ["beta"] * 3
    assert after["preferred"].tolist() == ["alpha"] * 3
    assert evaluate_frame(typed, book)["preferred"].tolist() == ["beta"] * 3


def test_many_rules_and_patterns_keep_rows_apart():
    """More rules than one direct-indexed part (and than one 64-bit word), many distinct patterns."""
    rules = [rule(f"R{i:03d}", [{"fact": "egfr", "op": ">=", "value": float(i)}],
                  {"recommend": [{"agent": ("alpha", "beta", "gamma")[i % 3], "rank": 100 - i}]})
             for i in range(80)]
    book = tiny_rulebook(rules)
    egfr = np.array([NAN, 0, 0.5, 1, 19, 20, 21, 63, 64, 65, 79, 80, 150] * 3)
    typed, _ = validate_frame(pd.DataFrame({"egfr": egfr}))
    out = evaluate_frame(typed, book)
    for value, fired, preferred in zip(egfr, out["fired_rules"], out["preferred"]):
        expected = [f"R{i:03d}" for i in range(80) if value >= i]  # NaN >= i is False
        assert fired == ";".join(expected)
        top = max((i for i in range(80) if value >= i), default=None)  # highest i = lowest rank
        assert preferred == ("" if top is None else ("alpha", "beta", "gamma")[top % 3])


def test_grouping_puts_equal_patterns_together():
    rng = np.random.default_rng(7)
    for rules in (5, 20, 21, 64, 65, 130):
        bits = rng.random((rules, 500)) < 0.02
        bits[:, 250:] = bits[:, :250]  # every pattern appears at least twice
        codes, first, _ = vectorized._group(list(bits), 500)
        assert (bits[:, first][:, codes] == bits).all()
        assert len(first) == len({bits[:, c].tobytes() for c in range(500)})


def test_rows_evaluated_in_slices_give_the_same_frame(monkeypatch):
    book = tiny_rulebook()
    rng = np.random.default_rng(11)
    rows = pd.DataFrame({
        "bullous": rng.random(50) < 0.5,
        "egfr": np.where(rng.random(50) < 0.2, NAN, rng.uniform(30, 60, 50).round(0)),
        "manifestations": rng.choice(["", "nephritis", "joint;nephritis"], 50),
        "planning_pregnancy": rng.random(50) < 0.5,
    }, index=pd.RangeIndex(100, 150))
    typed, _ = validate_frame(rows)
    whole = evaluate_frame(typed, book)
    monkeypatch.setattr(vectorized, "_CHUNK_ROWS", 7)
    sliced = evaluate_frame(typed, book)
    pd.testing.assert_frame_equal(whole, sliced)


def test_threads_sharing_a_rulebook_get_the_same_answers():
    from concurrent.futures import ThreadPoolExecutor

    rules = [rule(f"T{i:02d}", [{"fact": "egfr", "op": ">=", "value": float(i)}],
                  {"flag": [("f_low", "f_high")[i % 2]]}) for i in range(45)]
    book = tiny_rulebook(rules)
    frames = [validate_frame(pd.DataFrame({"egfr": np.random.default_rng(seed).integers(0, 50, 3000).astype(float)}))[0]
              for seed in range(8)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda typed: evaluate_frame(typed, book), frames))
    for typed, out in zip(frames, together):
        expected = [";".join(f"T{i:02d}" for i in range(45) if value >= i) for value in typed["egfr"]]
        assert out["fired_rules"].tolist() == expected
