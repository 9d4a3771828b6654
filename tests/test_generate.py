"""Scenario generation: value bands read from the rules, and the cartesian product."""
from __future__ import annotations

import math
from dataclasses import replace
from itertools import product

import numpy as np
import pandas as pd
import pytest

from lupus_rules import FACTS, MEASURES, load_rulebook
from lupus_rules.facts import compute_measures, validate_frame
from lupus_rules.generate import (
    SCENARIO_ID,
    GenerateError,
    band_columns,
    cartesian,
    count,
    estimate,
    iter_cartesian,
    resolve_facts,
    sample,
    sample_positions,
    value_bands,
    write_generated,
)

COMPARISONS = ("<", "<=", ">", ">=")


@pytest.fixture(scope="module")
def rulebook():
    return load_rulebook()


@pytest.fixture(scope="module")
def bands(rulebook):
    return value_bands(rulebook)


def thresholds(rulebook) -> dict[str, set[float]]:
    """Every number compared in a rule condition, by fact or measure (read independently of generate)."""
    found: dict[str, set[float]] = {}
    for rule in rulebook.rules:
        for c in rule.when:
            if c.kind == "fact" and c.op in COMPARISONS:
                found.setdefault(c.fact, set()).add(float(c.value))
    return found


def pair_key(measure: str) -> str:
    """The band holding a measure's (current, baseline) inputs."""
    key = resolve_facts(value_bands(load_rulebook()), [measure])[0]
    assert len(band_columns(key)) == 2
    return key


def measure_values(measure: str, pairs: list[tuple[float, float]]) -> np.ndarray:
    """The measure of each (current, baseline) pair, computed as the engines compute it."""
    current, baseline = band_columns(pair_key(measure))
    arrays = {name: np.full(len(pairs), np.nan) for name in FACTS if FACTS[name].kind == "number"}
    arrays[current] = np.array([p[0] for p in pairs], dtype=float)
    arrays[baseline] = np.array([p[1] for p in pairs], dtype=float)
    return compute_measures(arrays)[measure]


def direct_values(bands, fact: str) -> np.ndarray:
    """Every value a band gives ``fact`` (a plain number band, or one side of a pair band)."""
    for key, values in bands.items():
        columns = band_columns(key)
        if fact in columns:
            i = columns.index(fact)
            return np.array([v[i] if len(columns) == 2 else v for v in values], dtype=float)
    raise AssertionError(f"no band fills {fact}")


def neighbours(all_thresholds: set[float], t: float) -> tuple[float, float]:
    lower = max((x for x in all_thresholds if x < t), default=-math.inf)
    upper = min((x for x in all_thresholds if x > t), default=math.inf)
    return lower, upper


def test_categories_and_every_manifestation_subset(bands):
    for name, spec in FACTS.items():
        if spec.kind == "status":
            assert sorted(bands[name]) == sorted(spec.allowed)
        elif spec.kind == "bool":
            assert sorted(bands[name]) == [False, True]
    subsets = bands["manifestations"]
    members = FACTS["manifestations"].allowed
    assert len(subsets) == 2 ** len(members) == len(set(subsets))
    assert all(s <= set(members) for s in subsets)


def test_every_direct_threshold_exactly_with_values_just_around(rulebook, bands):
    found = {f: ts for f, ts in thresholds(rulebook).items() if f in FACTS}
    assert found, "the rulebook compares no plain number fact"
    for fact, ts in found.items():
        values = direct_values(bands, fact)
        assert np.isnan(values).any(), f"{fact}: unknown is not tested"
        for t in ts:
            assert t in values, f"{fact}: threshold {t} missing"
            lower, upper = neighbours(ts, t)
            spec = FACTS[fact]
            if t > spec.minimum:
                assert ((values < t) & (values > lower)).any(), f"{fact}: nothing just below {t}"
            if t < spec.maximum:
                assert ((values > t) & (values < upper)).any(), f"{fact}: nothing just above {t}"


def test_every_measure_threshold_reached_exactly_through_its_inputs(rulebook, bands):
    found = {f: ts for f, ts in thresholds(rulebook).items() if f in MEASURES}
    assert found, "the rulebook compares no measure"
    for measure, ts in found.items():
        pairs = bands[pair_key(measure)]
        assert all(isinstance(p, tuple) and len(p) == 2 for p in pairs)
        values = measure_values(measure, pairs)
        assert np.isnan(values).any(), f"{measure}: unknown is not tested"
        for t in ts:
            lower, upper = neighbours(ts, t)
            assert (values == t).any(), f"{measure}: threshold {t} not reached exactly"
            assert ((values < t) & (values > lower)).any(), f"{measure}: nothing just below {t}"
            assert ((values > t) & (values < upper)).any(), f"{measure}: nothing just above {t}"


def test_measure_and_current_thresholds_are_combined(rulebook, bands):
    """Joint conditions (a threshold on upcr and one on its reduction) need pairs hitting both at once."""
    found = thresholds(rulebook)
    for measure in MEASURES:
        key = pair_key(measure)
        current = band_columns(key)[0]
        pairs = bands[key]
        values = measure_values(measure, pairs)
        currents = np.array([p[0] for p in pairs], dtype=float)
        for tc, tm in product(found.get(current, ()), found.get(measure, ())):
            assert ((currents == tc) & (values == tm)).any(), f"no pair with {current}={tc} and {measure}={tm}"


def test_bands_follow_a_rule_edit(rulebook):
    """Thresholds are read from the rules: changing one changes the bands."""
    before = value_bands(rulebook)
    for kind in (FACTS, MEASURES):
        rule, index, condition = next(
            (r, i, c) for r in rulebook.rules for i, c in enumerate(r.when)
            if c.kind == "fact" and c.op in COMPARISONS and c.fact in kind)
        new_value = condition.value + 1.25
        when = list(rule.when)
        when[index] = replace(condition, value=new_value)
        edited = value_bands(rulebook.replace_rule(rule.id, when=tuple(when)))
        if condition.fact in FACTS:
            old = direct_values(before, condition.fact)
            new = direct_values(edited, condition.fact)
        else:
            key = pair_key(condition.fact)
            old = measure_values(condition.fact, before[key])
            new = measure_values(condition.fact, edited[key])
        assert new_value in new and new_value not in old, condition.fact


def test_count_matches_cartesian_and_is_the_product(bands):
    for facts in (["methotrexate"], ["manifestations", "ldn", "planning_pregnancy"], ["upcr", "egfr"]):
        frame = cartesian(bands, facts)
        assert len(frame) == count(bands, facts) == math.prod(len(bands[f]) for f in facts)
    assert count(bands) == math.prod(len(v) for v in bands.values())


def test_cartesian_covers_every_combination_once_with_defaults_elsewhere(bands):
    facts = ["manifestations", "methotrexate", "upcr"]
    frame = cartesian(bands, facts)
    chosen = ["manifestations", "methotrexate", "upcr", "upcr_baseline"]
    assert not frame[chosen].astype(str).duplicated().any()
    assert frame[SCENARIO_ID].is_unique
    assert set(frame.columns) == {SCENARIO_ID, *FACTS}
    assert set(frame["ldn"]) == {FACTS["ldn"].default}
    assert set(frame["planning_pregnancy"]) == {"false"}
    assert frame["egfr"].isna().all()
    typed, errors = validate_frame(frame)
    assert (errors == "").all()
    members = [f"manifestations__{m}" for m in FACTS["manifestations"].allowed]
    assert len(typed[members].drop_duplicates()) == len(bands["manifestations"])


def test_iter_cartesian_chunks_add_up_to_cartesian(bands):
    facts = ["manifestations", "mycophenolate", "egfr"]
    whole = cartesian(bands, facts)
    chunks = list(iter_cartesian(bands, facts, chunk_size=97))
    assert max(len(c) for c in chunks) == 97 and len(chunks) == math.ceil(len(whole) / 97)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_aliases_select_the_pair_and_unknown_facts_are_refused(bands):
    for alias in ("upcr_baseline", "upcr_reduction_pct"):
        assert resolve_facts(bands, [alias]) == ["upcr"]
    assert resolve_facts(bands, ["egfr", "egfr_baseline"]) == ["egfr"]
    with pytest.raises(GenerateError, match="unknown fact 'egfrr'.*allowed: .*egfr"):
        resolve_facts(bands, ["egfrr"])


def test_no_facts_chosen_gives_one_default_scenario(bands):
    frame = cartesian(bands, [])
    assert len(frame) == 1 == count(bands, [])
    typed, errors = validate_frame(frame)
    assert errors.iloc[0] == ""


# --- seeded samples and the Arrow writer ------------------------------------------------------------

SAMPLED = ["manifestations", "methotrexate", "mycophenolate", "egfr", "upcr"]


def test_sample_is_deterministic_per_seed_distinct_and_inside_the_space(bands):
    whole = cartesian(bands, SAMPLED).set_index(SCENARIO_ID)
    first = sample(bands, SAMPLED, 500, seed=7)
    again = sample(bands, SAMPLED, 500, seed=7)
    other = sample(bands, SAMPLED, 500, seed=8)
    pd.testing.assert_frame_equal(first, again)
    assert set(first[SCENARIO_ID]) != set(other[SCENARIO_ID])
    assert len(first) == 500 and first[SCENARIO_ID].is_unique
    # every sampled row is the product's row with the same id, cell for cell
    pd.testing.assert_frame_equal(first.set_index(SCENARIO_ID), whole.loc[first[SCENARIO_ID]])
    typed, errors = validate_frame(first)
    assert (errors == "").all()


def test_sample_positions_of_a_huge_space_and_of_a_small_one(bands):
    total = count(bands)
    assert total > 10**12
    positions = sample_positions(total, 10_000, seed=1)
    assert len(np.unique(positions)) == 10_000 and positions.min() >= 0 and positions.max() < total
    assert (np.diff(positions) > 0).all()
    assert positions.max() > total // 2  # spread over the space, not its first rows
    assert list(sample_positions(5, 10, seed=1)) == [0, 1, 2, 3, 4]  # more than the space: all of it
    for bad in (dict(n=0, seed=1), dict(n=5, seed=-1), dict(n=True, seed=1)):
        with pytest.raises(GenerateError, match="allowed: a whole number"):
            sample_positions(total, **bad)


def test_a_sample_beyond_int64_positions_is_the_products_rows(bands):
    total = count(bands)
    assert total > 2**63  # every agent's status: the shipped space no longer fits int64 positions
    rows = sample(bands, None, 200, seed=5)
    keys = resolve_facts(bands, None)
    for row in rows.head(20).itertuples(index=False):
        position = int(row.scenario_id.removeprefix("gen-")) - 1
        for key in reversed(keys):  # mixed radix, the last band fastest, in Python integers
            position, pick = divmod(position, len(bands[key]))
            expected = cartesian({key: bands[key]}, [key]).iloc[pick]
            for column in band_columns(key):
                got, want = getattr(row, column), expected[column]
                assert (pd.isna(got) and pd.isna(want)) or got == want, (row.scenario_id, column)
    pd.testing.assert_frame_equal(rows, sample(bands, None, 200, seed=5))


def test_a_sample_of_the_whole_space_is_valid_and_reaches_every_band(bands):
    rows = sample(bands, None, 20_000, seed=3)
    typed, errors = validate_frame(rows)
    assert (errors == "").all() and rows[SCENARIO_ID].is_unique
    assert set(rows["methotrexate"]) == set(FACTS["methotrexate"].allowed)
    assert rows["egfr"].isna().any() and rows["egfr"].notna().any()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("sampled", [None, 300])
def test_write_generated_writes_the_same_rows_as_the_frames(tmp_path, bands, suffix, sampled):
    target = tmp_path / f"g{suffix}"
    facts = ["manifestations", "methotrexate", "egfr"] if sampled is None else SAMPLED
    rows = write_generated(target, bands, facts, sample=sampled, seed=4, chunk_size=97)
    expected = cartesian(bands, facts) if sampled is None else sample(bands, facts, sampled, seed=4)
    if suffix == ".csv":
        got = pd.read_csv(target, dtype=str, keep_default_na=False)
        expected = expected.astype(object).where(expected.notna(), "")
        expected = expected.apply(lambda c: c.map(lambda v: f"{v:g}" if isinstance(v, float) else v))
        got = got.apply(lambda c: c.map(lambda v: f"{float(v):g}" if c.name in NUMBERS and v else v))
    else:
        got = pd.read_parquet(target)
        assert all(not isinstance(t, pd.CategoricalDtype) for t in got.dtypes)  # plain text, not dictionaries
    assert rows == len(expected) == len(got)
    pd.testing.assert_frame_equal(got.astype(object).reset_index(drop=True),
                                  expected.astype(object).reset_index(drop=True), check_dtype=False)


NUMBERS = [name for name, spec in FACTS.items() if spec.kind == "number"]


def test_estimate_scales_with_rows(bands):
    small = estimate(bands, SAMPLED, ".csv", rows=10_000)
    large = estimate(bands, SAMPLED, ".csv", rows=1_000_000)
    assert small.rows == 10_000 and large.rows == 1_000_000
    assert 50 < small.bytes / small.rows < 1000 and large.bytes == pytest.approx(100 * small.bytes, rel=0.2)
    assert "1,000,000 rows, about" in large.format()
