"""Outcome texts keyed on what determines them (issue 12): the same bytes as keying on fired-rule patterns.

The vectorized engine summarizes each outcome once per distinct value of a
few small columns (each agent's best rank, kept, first avoiding rule; each
raised flag or caution), and assembles list outcomes from parts of their
codes. The reference is the engine's older way, kept behind the private
``_BY_PATTERN`` switch: one summarize per distinct pattern of the rules an
outcome depends on. The avoided texts of the tiny rulebook are worked out by
hand from summarize's contract (vocabulary order, first avoiding rule).
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from lupus_rules import default_rulebook
from lupus_rules.engines import vectorized
from lupus_rules.engines.vectorized import OUTPUT_COLUMNS, evaluate_frame
from lupus_rules.facts import validate_frame
from lupus_rules.rulebook import Rulebook, rulebook_from_documents
from test_differential import generated_rows

ROWS = 4_000


def cold(book: Rulebook, label: str) -> Rulebook:
    """The same rules under a version no evaluation has used yet (no remembered texts)."""
    first = book.rules[0]
    return book.replace_rule(first.id, title=f"{first.title} ({label})")


@pytest.fixture(scope="module")
def book() -> Rulebook:
    return default_rulebook()


@pytest.fixture(scope="module")
def typed(book) -> pd.DataFrame:
    return validate_frame(generated_rows(ROWS, seed=12, rulebook=book))[0]


@pytest.fixture(scope="module")
def by_pattern(book, typed) -> pd.DataFrame:
    switch = pytest.MonkeyPatch()
    switch.setattr(vectorized, "_BY_PATTERN", True)
    try:
        return evaluate_frame(typed, cold(book, "by pattern"))
    finally:
        switch.undo()


def test_rows_show_many_outcomes(by_pattern):
    # the comparisons below only mean something if rows differ in every outcome
    assert by_pattern["avoided"].nunique() > 500
    assert by_pattern["continue"].nunique() > 100
    assert by_pattern["recommendations"].nunique() > 100
    assert by_pattern["flags"].nunique() > 20 and by_pattern["cautions"].nunique() > 10


def test_statistics_give_the_bytes_of_patterns(book, typed, by_pattern):
    got = evaluate_frame(typed, cold(book, "statistics"))
    pd.testing.assert_frame_equal(got, by_pattern)


def test_statistics_in_small_chunks_and_small_parts_give_the_same_bytes(book, typed, by_pattern, monkeypatch):
    # chunks reuse remembered texts; one-column parts join many pieces; a tiny memo restarts often
    monkeypatch.setattr(vectorized, "_CHUNK_ROWS", 333)
    monkeypatch.setattr(vectorized, "_PART_BITS", 1)
    monkeypatch.setattr(vectorized, "_MAX_MEMO", 50)
    got = evaluate_frame(typed, cold(book, "small parts"))
    pd.testing.assert_frame_equal(got, by_pattern)


def test_summaries_grow_with_outcomes_not_with_patterns(book, typed, monkeypatch):
    calls = {"count": 0}
    summarize = vectorized.summarize

    def counted(rulebook, fired):
        calls["count"] += 1
        return summarize(rulebook, fired)

    monkeypatch.setattr(vectorized, "summarize", counted)
    monkeypatch.setattr(vectorized, "_BY_PATTERN", True)
    evaluate_frame(typed, cold(book, "count patterns"))
    per_pattern = calls["count"]
    calls["count"] = 0
    monkeypatch.setattr(vectorized, "_BY_PATTERN", False)
    evaluate_frame(typed, cold(book, "count statistics"))
    assert calls["count"] * 3 < per_pattern, (calls["count"], per_pattern)


VOCABULARY = {
    "rulebook": {
        "name": "tiny",
        "references": {1: "A test reference."},
        "agents": {"alpha": {"name": "Alpha"}, "beta": {"name": "Beta"}, "gamma": {"name": "Gamma"}},
        "flags": {"f_low": "low"},
        "derived_facts": {},
    }
}


def rule(rule_id: str, when: list, then: dict) -> dict:
    return {"id": rule_id, "title": rule_id, "section": "test", "citation": [1], "when": when,
            "then": then, "rationale": "test"}


def egfr_below(value: float) -> list:
    return [{"fact": "egfr", "op": "<", "value": value}]


#: Avoiders in rule order: A1 (beta, gamma) then A2 (alpha, beta); A3 keeps gamma; R1 recommends all.
RULES = [
    rule("A1", egfr_below(30), {"avoid": ["gamma", "beta"]}),
    rule("A2", egfr_below(60), {"avoid": ["alpha", "beta"]}),
    rule("A3", egfr_below(90), {"continue": ["gamma", "alpha"]}),
    rule("R1", [], {"recommend": [{"agent": "gamma", "rank": 1}, {"agent": "beta", "rank": 2},
                                  {"agent": "alpha", "rank": 3}]}),
]


@pytest.mark.parametrize("part_bits", [1, 12])
def test_avoided_names_each_agent_first_avoider_in_vocabulary_order(part_bits, monkeypatch):
    monkeypatch.setattr(vectorized, "_PART_BITS", part_bits)
    book = rulebook_from_documents([("rulebook.yaml", copy.deepcopy(VOCABULARY)), ("rules.yaml", {"rules": RULES})],
                                   source=f"tiny {part_bits}")
    typed, _ = validate_frame(pd.DataFrame({"egfr": [20.0, 50.0, 80.0, 95.0, np.nan]}))
    out = evaluate_frame(typed, book)
    assert out["avoided"].tolist() == ["alpha: A2;beta: A1;gamma: A1", "alpha: A2;beta: A2", "", "", ""]
    # avoiding wins over continuing; kept and avoided agents are no new starts
    assert out["continue"].tolist() == ["", "gamma", "alpha;gamma", "", ""]
    assert out["recommendations"].tolist() == ["", "", "beta", "gamma;beta;alpha", "gamma;beta;alpha"]
    assert out["preferred"].tolist() == ["", "", "beta", "gamma", "gamma"]
    assert list(out.columns) == list(OUTPUT_COLUMNS)


def _column_by_row(column: vectorized._Column, fired: list[np.ndarray], n: int) -> list[int]:
    """Each row's value as the :class:`_Column` docstring defines it, row by row (the reference)."""
    values = []
    for i in range(n):
        hit = [j for j in column.rules if fired[j][i]]
        other = any(fired[j][i] for j in column.others)
        if column.kind == "first":
            values.append(column.rules.index(hit[0]) + 1 if hit else 0)
        elif other:
            values.append(0)
        else:
            ranks = [rank + 1 for j, rank in zip(column.rules, column.ranks) if fired[j][i]]
            values.append(min(ranks) if ranks else column.size - 1)
    return values


@pytest.mark.parametrize("size", [9, 300, 70_000])  # uint8 values, and int32 beyond 256
@pytest.mark.parametrize("kind", ["first", "rank"])
def test_column_values_match_their_definition_row_by_row(kind, size):
    rng = np.random.default_rng(size)
    n = 500
    fired = [rng.random(n) < p for p in (0.05, 0.2, 0.5, 0.3, 0.1, 0.6, 0.15)]
    if kind == "first":
        column = vectorized._Column("first", (4, 1, 6, 2), size=max(size, 5), others=())
    else:
        column = vectorized._Column("rank", (0, 3, 5, 1), size=size, others=(2, 6),
                                    ranks=(5, 2, size - 3, 2))
    values = vectorized._column_values(column, fired, n)
    assert values.dtype == (np.uint8 if column.size <= 256 else np.int32)
    assert values.tolist() == _column_by_row(column, fired, n)
