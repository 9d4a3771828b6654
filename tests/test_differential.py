"""Three engines, one rulebook, proven equal.

The durable-rules engine (forward chaining, one patient at a time, via
``lupus_rules.evaluate``), the vectorized engine (column masks over a
frame) and the pure-Python engine (``evaluate(..., engine="python")``, the
rules read directly) must agree on every row: the same preferred agent, the same
recommendations in the same rank order, the same flags, the same set of fired
rules, and the same firing order. Checked on

* every row of the scenario suite (``scenarios/*.csv``),
* 20 000 seeded random rows over every fact value, including values exactly
  at, just below and just above every threshold the rulebook uses, and unknowns,
* two edited rulebooks (a rule dropped, a threshold moved),
* hypothesis-generated patients.

Cost: the durable side is ~1-2 ms per row; the 20 000 rows run in two worker
processes (about 15-25 s on two idle cores, more on a busy machine).
"""
from __future__ import annotations

import math
import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lupus_rules import default_rulebook, evaluate
from lupus_rules.engines.vectorized import evaluate_frame
from lupus_rules.facts import FACTS, STATUSES, validate_frame
from lupus_rules.generate import band_columns, value_bands
from lupus_rules.rulebook import Rulebook, rulebook_from_documents

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
GENERATED_ROWS = 20_000
OUTCOMES = ("preferred", "recommendations", "flags", "fired_rules")


# -- both engines -------------------------------------------------------------------------------------

def _durable_rows(payload: tuple[list, list[dict]], engine: str = "durable") -> list[tuple[str, str, str, str]]:
    """Durable outcomes as CSV strings; runs in a worker process, so the rulebook travels as documents."""
    documents, records = payload
    book = rulebook_from_documents(documents) if documents else default_rulebook()
    rows = []
    for record in records:
        result = evaluate(record, book, engine=engine)
        assert result.engine == engine
        cells = result.to_row()
        rows.append(tuple(cells[name] for name in OUTCOMES))
    return rows


def python_frame(df: pd.DataFrame, rulebook: Rulebook | None = None) -> pd.DataFrame:
    documents = rulebook.to_documents() if rulebook is not None else []
    rows = _durable_rows((documents, df.to_dict("records")), engine="python")
    return pd.DataFrame(rows, columns=list(OUTCOMES), index=df.index)


def durable_frame(df: pd.DataFrame, rulebook: Rulebook | None = None, processes: int = 1) -> pd.DataFrame:
    records = df.to_dict("records")
    documents = rulebook.to_documents() if rulebook is not None else []
    if processes == 1:
        rows = _durable_rows((documents, records))
    else:
        chunks = [records[i::processes * 4] for i in range(processes * 4)]
        # forkserver, not fork: forking a process that runs threads (pytest plugins, dask) can deadlock
        with multiprocessing.get_context("forkserver").Pool(processes) as pool:
            parts = pool.map(_durable_rows, [(documents, chunk) for chunk in chunks])
        rows = [None] * len(records)
        for i, part in enumerate(parts):
            rows[i::processes * 4] = part
    return pd.DataFrame(rows, columns=list(OUTCOMES), index=df.index)


def vectorized_frame(df: pd.DataFrame, rulebook: Rulebook) -> pd.DataFrame:
    typed, errors = validate_frame(df)
    assert (errors == "").all(), errors[errors != ""].head().tolist()
    return evaluate_frame(typed, rulebook)


def assert_engines_agree(df: pd.DataFrame, rulebook: Rulebook | None = None, processes: int = 1) -> None:
    book = rulebook if rulebook is not None else default_rulebook()
    durable = durable_frame(df, rulebook, processes)
    problems = []
    for other, frame in (("vectorized", vectorized_frame(df, book)), ("python", python_frame(df, rulebook))):
        problems += _disagreements(durable, frame, other)
    assert not problems, f"{len(problems)} disagreements, first ones:\n" + "\n".join(problems[:10])


def _disagreements(durable: pd.DataFrame, frame: pd.DataFrame, other: str) -> list[str]:
    problems = []
    for label in durable.index:
        d, v = durable.loc[label], frame.loc[label]
        for name in ("preferred", "recommendations", "flags"):
            if d[name] != v[name]:
                problems.append(f"row {label}: {name} durable={d[name]!r} {other}={v[name]!r}")
        d_fired, v_fired = d["fired_rules"].split(";"), v["fired_rules"].split(";")
        if set(d_fired) != set(v_fired):
            problems.append(f"row {label}: fired rules differ: only durable {sorted(set(d_fired) - set(v_fired))}, "
                            f"only {other} {sorted(set(v_fired) - set(d_fired))}")
        elif d_fired != v_fired:
            problems.append(f"row {label}: firing order differs: durable {d_fired} {other} {v_fired}")
    return problems


# -- (a) the scenario suite ---------------------------------------------------------------------------

def scenario_files() -> list[Path]:
    return sorted(SCENARIOS.glob("*.csv")) if SCENARIOS.is_dir() else []


@pytest.mark.skipif(not SCENARIOS.is_dir(), reason="scenarios/ folder not present")
def test_scenario_folder_has_files():
    assert scenario_files(), f"no *.csv in {SCENARIOS}"


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: p.name)
def test_engines_agree_on_scenario_suite(path):
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    facts = table[[c for c in table.columns if c in FACTS]]
    facts.index = table["scenario_id"] if "scenario_id" in table.columns else facts.index
    assert len(facts) > 0
    assert_engines_agree(facts)


# -- (b) seeded random rows over every value band ---------------------------------------------------

def generated_rows(n: int, seed: int, rulebook: Rulebook) -> pd.DataFrame:
    """n patients: each fact drawn from its value band (thresholds, just off them, unknown) or at random."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for key, band in value_bands(rulebook).items():
        columns = band_columns(key)
        picks = [band[i] for i in rng.integers(0, len(band), n)]
        if len(columns) == 2:
            for position, name in enumerate(columns):
                data[name] = np.array([pair[position] for pair in picks], dtype=float)
        elif FACTS[key].kind == "set":
            data[key] = [";".join(sorted(value)) for value in picks]
        elif FACTS[key].kind == "number":
            data[key] = np.array(picks, dtype=float)
        else:
            data[key] = picks
    for name, spec in FACTS.items():  # a quarter of the numbers anywhere in range, some unknown
        if spec.kind == "number":
            free = rng.random(n) < 0.25
            values = np.round(rng.uniform(spec.minimum, min(spec.maximum, 120.0), n), 2)
            values[rng.random(n) < 0.1] = np.nan
            data[name] = np.where(free, values, data[name])
    return pd.DataFrame(data)


def test_generated_rows_reach_every_threshold_and_unknowns():
    book = default_rulebook()
    df = generated_rows(GENERATED_ROWS, seed=20240611, rulebook=book)
    for rule in book.rules:
        for condition in rule.when:
            if condition.kind == "fact" and condition.fact in df.columns and isinstance(condition.value, float):
                assert (df[condition.fact] == condition.value).any(), (rule.id, condition.describe())
    for name, spec in FACTS.items():
        if spec.kind == "number":
            assert df[name].isna().any() and df[name].notna().any(), name


def test_engines_agree_on_generated_rows():
    book = default_rulebook()
    df = generated_rows(GENERATED_ROWS, seed=20240611, rulebook=book)
    assert_engines_agree(df, processes=2)


@pytest.mark.parametrize("edit", ["drop R-SAFE-02", "move R-KID-01 threshold"])
def test_engines_agree_on_edited_rulebooks(edit):
    book = default_rulebook()
    if edit.startswith("drop"):
        edited = book.without_rule("R-SAFE-02")
    else:
        condition = book.rule("R-KID-01").when[0]
        edited = book.replace_rule("R-KID-01", when=(type(condition)("fact", "egfr", ">", 52.5),))
    assert edited.version != book.version
    assert_engines_agree(generated_rows(1_500, seed=7, rulebook=book), edited, processes=2)


# -- (c) hypothesis-generated patients ---------------------------------------------------------------

def _thresholds(book: Rulebook) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for rule in book.rules:
        for c in rule.when:
            if c.kind == "fact" and isinstance(c.value, float):
                found.setdefault(c.fact, []).append(c.value)
    return found


def _number(name: str, thresholds: list[float]) -> st.SearchStrategy[float]:
    """Unknown, anywhere in range (tiny values included), or at/just off a threshold."""
    spec = FACTS[name]
    near = [t + d for t in thresholds for d in (-0.01, 0.0, 0.01) if spec.minimum <= t + d <= spec.maximum]
    anywhere = st.floats(spec.minimum, spec.maximum)
    options = [st.just(math.nan), anywhere]
    if near:
        options.append(st.sampled_from(near))
    return st.one_of(*options)


def patients(book: Rulebook) -> st.SearchStrategy[dict]:
    thresholds = _thresholds(book)
    fields = {}
    for name, spec in FACTS.items():
        if spec.kind == "set":
            fields[name] = st.frozensets(st.sampled_from(spec.allowed)).map(lambda s: ";".join(sorted(s)))
        elif spec.kind == "status":
            fields[name] = st.sampled_from(STATUSES)
        elif spec.kind == "bool":
            fields[name] = st.booleans()
        else:
            fields[name] = _number(name, thresholds.get(name, []))
    return st.fixed_dictionaries(fields)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(patients(default_rulebook()), min_size=1, max_size=25))
def test_engines_agree_on_hypothesis_patients(rows):
    assert_engines_agree(pd.DataFrame(rows))


# Regression: durable-rules cannot parse JSON numbers in exponent form (error 204), which json.dumps
# writes below 1e-4 and for percent changes from a tiny baseline; the adapter now sends integers.
@pytest.mark.parametrize("row", [{"egfr": 0.00001}, {"upcr": 1.0, "upcr_baseline": 2.2e-311},
                                 {"egfr": 200.0, "egfr_baseline": 1e-15}])
def test_numbers_json_writes_in_exponent_form(row):
    assert_engines_agree(pd.DataFrame([row]))
