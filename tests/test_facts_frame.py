"""validate_frame: many patients at once, judged exactly as validate_patient judges each row.

Part of the facts module's tests (validate_frame lives in lupus_rules/facts.py);
kept in its own file because it is the vectorized engine's input path.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lupus_rules.errors import PatientValidationError
from lupus_rules.facts import FACTS, MEASURES, STATUSES, member_column, validate_frame, validate_patient

NAN = float("nan")
MEMBERS = FACTS["manifestations"].allowed

# -- cells: every form validate_patient accepts, and the malformed ones it must reject --------------

_spaces = st.sampled_from(["", " ", "  ", "\t"])


def _spaced(text: str) -> st.SearchStrategy[str]:
    return st.tuples(_spaces, _spaces).map(lambda pad: pad[0] + text + pad[1])


_missing = st.sampled_from([None, NAN, "", "   "])
_set_text = st.lists(st.sampled_from(MEMBERS + ("Joint", "kidney", "", " ")), max_size=4).flatmap(
    lambda items: st.tuples(*[_spaced(i) for i in items]) if items else st.just(())
).map(";".join)
SET_CELLS = st.one_of(
    _missing,
    _set_text,
    st.just(" nephritis ; joint "),
    st.frozensets(st.sampled_from(MEMBERS)),
    st.lists(st.sampled_from(MEMBERS + ("kidney",)), max_size=3),
    st.sampled_from([1.0, True, 3]),
)
STATUS_CELLS = st.one_of(
    _missing,
    st.sampled_from(STATUSES).flatmap(_spaced),
    st.sampled_from(["Effective", "NOT_TRIED", "yes", "stopped", "not tried"]),
    st.sampled_from([1, 0.0, True]),
)
BOOL_CELLS = st.one_of(
    _missing,
    st.booleans(),
    st.sampled_from(["true", "false", "TRUE", "False", " true ", "yes", "no", "1", "0", "t"]),
    st.sampled_from([1, 0, 1.0, 0.0]),
)


def number_cells(name: str) -> st.SearchStrategy[object]:
    spec = FACTS[name]
    inside = st.floats(spec.minimum, spec.maximum, allow_nan=False)
    return st.one_of(
        _missing,
        inside,
        inside.map(repr).flatmap(_spaced),
        st.integers(-5, 1200),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(["45", " 3 ", "1e1", "1_0", "nan", "inf", "-inf", "abc", "4,5", "0x10", "-0.0", "+5", ".5",
                         "5.", "1E1", "Infinity", "+nan", "1e", "e5", "5\x1f", "\x1c5", "\u00a05", "٣", "1e-400",
                         "00.5", "5e+1", "1.5e-7"]),
        st.sampled_from([True, False, spec.maximum, spec.minimum, spec.maximum + 1e-9, -1e-9]),
    )


_KIND_CELLS = {"set": SET_CELLS, "status": STATUS_CELLS, "bool": BOOL_CELLS}
CELLS = {name: _KIND_CELLS[spec.kind] if spec.kind in _KIND_CELLS else number_cells(name)
         for name, spec in FACTS.items()}


@st.composite
def frames(draw, flavour: str) -> pd.DataFrame:
    """A frame of 1-8 rows over a random subset of facts.

    ``flavour`` "mixed": any cell anywhere (object columns); "columns": each
    column is all strings (CSV-like) or all typed, so the fast paths run.
    """
    rows = draw(st.integers(1, 8))
    names = draw(st.lists(st.sampled_from(list(FACTS)), unique=True, max_size=len(FACTS)))
    data = {}
    for name in names:
        if flavour == "mixed":
            data[name] = draw(st.lists(CELLS[name], min_size=rows, max_size=rows))
        else:
            data[name] = draw(st.lists(_homogeneous_cell(name, draw(st.booleans())), min_size=rows, max_size=rows))
    return pd.DataFrame(data, index=pd.RangeIndex(rows) * 3 + 7)


def _homogeneous_cell(name: str, as_text: bool) -> st.SearchStrategy[object]:
    spec = FACTS[name]
    if as_text:
        return st.one_of(st.just(NAN), CELLS[name].filter(lambda c: isinstance(c, str)))
    if spec.kind == "number":
        return st.one_of(st.just(NAN), st.floats(allow_nan=True, allow_infinity=True),
                         st.floats(spec.minimum, spec.maximum))
    if spec.kind == "bool":
        return st.booleans()
    return st.one_of(st.just(NAN), CELLS[name].filter(lambda c: isinstance(c, str)))


# -- the oracle: validate_patient on each record ---------------------------------------------------

def expected_row(record: dict) -> tuple[dict, str]:
    """validate_patient's verdict: (typed values, '' ) or (defaults, error text)."""
    try:
        return dict(validate_patient(record)), ""
    except PatientValidationError as error:
        return dict(validate_patient({})), str(error)


def assert_row_matches(typed: pd.Series, values: dict) -> None:
    for name in list(FACTS) + list(MEASURES):
        spec = FACTS.get(name) or MEASURES[name]
        value = values[name]
        if spec.kind == "set":
            assert {m for m in MEMBERS if typed[member_column(name, m)]} == set(value), name
        elif spec.kind == "number":
            got = typed[name]
            assert (math.isnan(got) and value is None) or got == value, (name, got, value)
            assert isinstance(got, float)
        else:
            assert typed[name] == value, (name, typed[name], value)


def check_frame(df: pd.DataFrame) -> None:
    typed, errors = validate_frame(df)
    assert list(typed.index) == list(df.index) and list(errors.index) == list(df.index)
    for (label, row), record in zip(typed.iterrows(), df.to_dict("records")):
        values, error = expected_row(record)
        assert errors[label] == error
        assert_row_matches(row, values)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames("mixed"))
def test_mixed_cells_agree_with_validate_patient(df):
    check_frame(df)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames("columns"))
def test_homogeneous_columns_agree_with_validate_patient(df):
    check_frame(df)


# -- the shape of the output -------------------------------------------------------------------------

def test_typed_columns_and_dtypes():
    typed, errors = validate_frame(pd.DataFrame({"egfr": ["45"], "colour": ["red"]}))
    assert "colour" not in typed.columns  # extra columns are the caller's to report
    for name, spec in FACTS.items():
        if spec.kind == "set":
            assert all(typed[member_column(name, m)].dtype == bool for m in spec.allowed)
        elif spec.kind == "status":
            assert list(typed[name].cat.categories) == list(STATUSES)
        elif spec.kind == "bool":
            assert typed[name].dtype == bool
        else:
            assert typed[name].dtype == np.float64
    assert all(typed[name].dtype == np.float64 for name in MEASURES)
    assert errors.tolist() == [""]


def test_bad_row_is_reset_to_defaults_and_others_survive():
    df = pd.DataFrame({
        "manifestations": ["nephritis", " nephritis ; joint ", "nephritis"],
        "methotrexate": ["intolerant", "Intolerant", "effective"],
        "egfr": ["45", "250", ""],
        "upcr": [1.0, 2.0, 3.0],
        "upcr_baseline": [2.0, 4.0, 4.0],
    })
    typed, errors = validate_frame(df)
    assert errors[0] == "" and errors[2] == ""
    assert errors[1] == ("methotrexate: got 'Intolerant'; allowed: " + FACTS["methotrexate"].allowed_text()
                         + "; egfr: got '250'; allowed: " + FACTS["egfr"].allowed_text())
    assert not typed.loc[1, "manifestations__nephritis"] and math.isnan(typed.loc[1, "upcr"])
    assert math.isnan(typed.loc[1, "upcr_reduction_pct"])
    assert typed.loc[0, "egfr"] == 45.0 and typed.loc[0, "upcr_reduction_pct"] == 50.0
    assert typed.loc[2, "methotrexate"] == "effective" and math.isnan(typed.loc[2, "egfr"])


@pytest.mark.parametrize("bad", [None, "abc", " ", "1e999"])
def test_many_distinct_number_strings(bad):
    """Over 256 distinct strings take the one-C-loop parse; its verdicts must equal float()'s."""
    rng = np.random.default_rng(3)
    cells = [f"{v:.3f}" for v in rng.uniform(-10, 210, 1000)] + ["1_0", " 7 ", "５", "", "nan", "inf", "200", "0"]
    if bad is not None:
        cells.append(bad)
    df = pd.DataFrame({"egfr": cells})
    typed, errors = validate_frame(df)
    for cell, got, error in zip(cells, typed["egfr"], errors):
        values, expected_error = expected_row({"egfr": cell})
        assert error == expected_error
        assert (math.isnan(got) and values["egfr"] is None) or got == values["egfr"]


def test_measures_equal_the_single_patient_path():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"upcr": rng.uniform(0, 30, 500).round(3), "upcr_baseline": rng.uniform(0, 30, 500).round(3),
                       "egfr": rng.uniform(0, 200, 500).round(1), "egfr_baseline": rng.uniform(0, 200, 500).round(1)})
    df.iloc[::7, 1] = 0.0
    typed, _ = validate_frame(df)
    for i, record in enumerate(df.to_dict("records")):
        patient = validate_patient(record)
        for name in MEASURES:
            got = typed[name].iloc[i]
            assert (patient[name] is None and math.isnan(got)) or patient[name] == got


def test_pandas_extension_dtypes_agree_with_validate_patient():
    """Nullable and categorical columns: pd.NA is unknown, as DataFrame.to_dict hands it out (None)."""
    df = pd.DataFrame({
        "bullous": pd.array([True, None, False, True], dtype="boolean"),
        "egfr": pd.array([45.5, None, 250.0, 0.0], dtype="Float64"),
        "months_on_therapy": pd.array([3, None, 700, 12], dtype="Int64"),
        "methotrexate": pd.Categorical(["intolerant", None, "Effective", "effective"]),
        "ldn": pd.array(["effective", None, " nonresponse ", "no"], dtype=pd.StringDtype("python")),
        "manifestations": pd.array(["joint;nephritis", None, "nephritis ; joint", "skin"], dtype=pd.StringDtype("pyarrow")),
        "upcr": pd.array(["0.5", None, " 7 ", "1_0"], dtype=pd.StringDtype("pyarrow")),
    })
    check_frame(df)
    _, errors = validate_frame(df)
    assert errors[0] == "" and errors[1] == "" and errors[2] != "" and errors[3] != ""
