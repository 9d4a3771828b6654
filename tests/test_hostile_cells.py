"""Hostile cells: every path reads a cell exactly as :func:`read_cell` does.

(1) a table of odd cells per fact kind with their exact meaning; (2) each
cell through ``read_cell``, ``validate_frame`` (few and > 256 distinct
numbers, object and Arrow columns) and ``run_batch`` on both engines;
(3) hypothesis fuzzing of cells and mixed columns. See issue 9.
"""
from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lupus_rules
from lupus_rules.batch import run_batch
from lupus_rules.errors import LupusRulesError, PatientValidationError
from lupus_rules.facts import _MANY_UNIQUES, FACTS, read_cell, validate_frame

REFUSED = "refused"
NA_LIKES = [None, float("nan"), np.float32("nan"), np.float64("nan"), Decimal("NaN"), pd.NA, pd.NaT,
            np.datetime64("NaT")]

NUMBER_CELLS = [
    *[(na, None) for na in NA_LIKES],
    ("60", 60.0), (" 60 ", 60.0), ("\t60\n", 60.0), (60, 60.0), (60.0, 60.0), (np.int64(60), 60.0),
    (np.float32(60), 60.0), (Decimal("60"), 60.0), ("6e1", 60.0), ("", None), ("   ", None),
    ("\u00a060", 60.0), ("60\u2003", 60.0),  # Unicode spaces around a cell are stripped, as float() does
    ("60\x00", REFUSED), ("\x0060", REFUSED), ("\u200b60", REFUSED), ("\ufeff60", REFUSED), ("6\u200b0", REFUSED),
    ("٦٠", REFUSED), ("６０", REFUSED), ("⁶⁰", REFUSED), ("6 0", REFUSED),
    (10**400, REFUSED), ("1e400", REFUSED), (Decimal("1e400"), REFUSED), (-(10**400), REFUSED),
    (float("inf"), REFUSED), ("inf", REFUSED), ("nan", REFUSED), ("NaN", REFUSED), (201, REFUSED), ("-1", REFUSED),
    (True, REFUSED), (np.bool_(True), REFUSED), ([1], REFUSED), ("sixty", REFUSED), (object(), REFUSED),
    (complex(60, 0), REFUSED), ("0x3c", REFUSED), ("60_0", REFUSED),
]
BOOL_CELLS = [
    *[(na, False) for na in NA_LIKES],
    ("true", True), ("TRUE", True), ("True ", True), (" false ", False), (True, True), (np.bool_(True), True),
    (False, False), ("", False), (" yes ", REFUSED), ("1", REFUSED), ("0", REFUSED), (1, REFUSED), (1.0, REFUSED),
    ("tru\x00e", REFUSED), ("\ufefftrue", REFUSED), ("ｔｒｕｅ", REFUSED),
]
STATUS_CELLS = [
    *[(na, "not_tried") for na in NA_LIKES],
    ("effective", "effective"), (" effective ", "effective"), ("", "not_tried"), ("Effective", REFUSED),
    ("EFFECTIVE", REFUSED), ("effective\x00", REFUSED), ("\u200beffective", REFUSED), (1, REFUSED),
]
SET_CELLS = [
    *[(na, frozenset()) for na in NA_LIKES],
    ("joint", frozenset({"joint"})), ("joint ; nephritis", frozenset({"joint", "nephritis"})),
    ("joint;;", frozenset({"joint"})), (["joint"], frozenset({"joint"})), ({"nephritis"}, frozenset({"nephritis"})),
    (np.array(["joint", "nephritis"], dtype=object), frozenset({"joint", "nephritis"})),
    (np.array(["joint"]), frozenset({"joint"})), (np.array([["joint"]]), REFUSED), (np.array(["x"]), REFUSED),
    ("Joint", REFUSED), (" JOINT", REFUSED), ("joint,nephritis", REFUSED), ("joint\x00", REFUSED),
    (["joint", 1], REFUSED), (1, REFUSED),
]
TABLE = ([("egfr", c, m) for c, m in NUMBER_CELLS] + [("bullous", c, m) for c, m in BOOL_CELLS]
         + [("methotrexate", c, m) for c, m in STATUS_CELLS] + [("manifestations", c, m) for c, m in SET_CELLS])


def verdict(name: str, cell: object) -> tuple[str, object]:
    """('ok', value) or ('error', message) as read_cell gives them."""
    try:
        return "ok", read_cell(name, cell)
    except PatientValidationError as exc:
        return "error", str(exc)


@pytest.mark.parametrize(("name", "cell", "meaning"), TABLE, ids=lambda v: repr(v)[:24])
def test_cell_meaning(name, cell, meaning):
    kind, value = verdict(name, cell)
    if meaning is REFUSED:
        assert kind == "error"
        assert value.startswith(f"{name}: got ")
        assert "allowed: " + FACTS[name].allowed_text() in value
    else:
        assert (kind, value) == ("ok", meaning)


def test_refusals_say_why_for_invisible_and_foreign_digits():
    assert "U+0000" in verdict("egfr", "60\x00")[1]
    assert "U+200B" in verdict("egfr", "\u200b60")[1]
    assert "U+FEFF" in verdict("egfr", "\ufeff60")[1]
    assert "digits 0-9 only; found U+0666" in verdict("egfr", "٦٠")[1]
    assert "digits 0-9 only" in verdict("egfr", "６０")[1]


def test_huge_numbers_name_field_value_and_range():
    for cell in (10**400, "1e400", Decimal("1e400")):
        message = verdict("egfr", cell)[1]
        assert message.startswith("egfr: got ") and "a number from 0 to 200" in message


def _frame_verdict(name: str, cells: list, arrow: bool, tail: int | None = None) -> list[tuple[str, object]]:
    """validate_frame's verdict on each cell (the last ``tail`` only, if given), in read_cell's form."""
    column = pd.Series(cells, dtype=object)
    if arrow:
        column = column.astype("string[pyarrow]")
    typed, errors = validate_frame(pd.DataFrame({name: column}))
    out = []
    for i in range(len(cells) - (len(cells) if tail is None else tail), len(cells)):
        if errors.iloc[i]:
            out.append(("error", errors.iloc[i]))
        else:
            out.append(("ok", _typed_value(name, typed, i)))
    return out


def _typed_value(name: str, typed: pd.DataFrame, i: int) -> object:
    spec = FACTS[name]
    if spec.kind == "set":
        return frozenset(m for m in spec.allowed if typed[f"{name}__{m}"].iloc[i])
    value = typed[name].iloc[i]
    if spec.kind == "number":
        return None if math.isnan(value) else float(value)
    return bool(value) if spec.kind == "bool" else str(value)


def _fillers(name: str, many: bool) -> list[str]:
    if FACTS[name].kind == "number" and many:
        return [f"{i / 7:.4f}" for i in range(_MANY_UNIQUES + 50)]
    return {"number": ["1", "2"], "bool": ["true", "false"], "status": ["effective", ""],
            "set": ["joint", ""]}[FACTS[name].kind]


@pytest.mark.parametrize("many", [False, True], ids=["few", "many"])
@pytest.mark.parametrize(("name", "cell", "meaning"), TABLE, ids=lambda v: repr(v)[:24])
def test_frame_path_equals_read_cell(name, cell, meaning, many):
    cells = _fillers(name, many) + [cell]
    expected = [verdict(name, c) for c in cells]
    assert _frame_verdict(name, cells, arrow=False) == expected
    if isinstance(cell, str) or cell is None:
        assert _frame_verdict(name, cells, arrow=True) == expected


def test_run_batch_engines_agree_on_every_hostile_cell():
    rows = [{name: cell} for name, cell, _ in TABLE if not isinstance(cell, (list, set))]
    df = pd.DataFrame({name: pd.Series([r.get(name) for r in rows], dtype=object) for name in FACTS
                       if any(name in r for r in rows)})
    vec = run_batch(df, "vectorized")
    dur = run_batch(df, "durable", processes=1)
    assert len(vec) == len(dur) == len(df)
    assert list(vec["error"]) == list(dur["error"])
    assert list(vec["fired_rules"]) == list(dur["fired_rules"])
    for i, row in enumerate(rows):
        ((name, cell),) = row.items()
        kind, text = verdict(name, cell)
        assert (vec["error"].iloc[i] != "") == (kind == "error"), (name, cell)
        if kind == "error":
            assert vec["error"].iloc[i] == text


TYPED_COLUMNS = {
    "Int64": pd.array([60, None, 300], dtype="Int64"),
    "Float64": pd.array([60.5, None, float("inf")], dtype="Float64"),
    "boolean": pd.array([True, None, False], dtype="boolean"),
    "float32": np.array([60, np.nan, 1e38], dtype=np.float32),
    "categorical text": pd.Categorical(["60", None, "x"]),
    "categorical ints": pd.Categorical([60, None, 300]),
    "datetime": pd.to_datetime(["2020-01-01", None, None]),
    "uint64": np.array([60, 2**64 - 1, 0], dtype=np.uint64),
    "python strings": pd.array(["60", None, "٦٠"], dtype="string[python]"),
}


@pytest.mark.parametrize("name", ["egfr", "bullous", "methotrexate", "manifestations"])
@pytest.mark.parametrize("dtype", list(TYPED_COLUMNS))
def test_typed_columns_read_like_their_cells(name, dtype):
    column = pd.Series(TYPED_COLUMNS[dtype])
    typed, errors = validate_frame(pd.DataFrame({name: column}))
    for i, cell in enumerate(column.tolist()):
        kind, text = verdict(name, cell)
        assert errors.iloc[i] == (text if kind == "error" else ""), (dtype, cell)


@pytest.mark.parametrize("bad", [None, "egfr", 42, {"egfr": 10**400}, {1: 2}, {"egfr": [1]},
                                 {"egfr": object()}, {"egfr": "1e400"}, {"egfr": Decimal("1e400")}],
                         ids=repr)
def test_evaluate_refuses_bad_input_with_the_documented_error(bad):
    with pytest.raises(PatientValidationError) as caught:
        lupus_rules.evaluate(bad)
    field = caught.value.errors[0]
    assert field.field and field.allowed


def test_evaluate_treats_na_likes_as_unknown():
    for na in NA_LIKES:
        assert lupus_rules.evaluate({"egfr": na}).patient["egfr"] is None


CELLS = st.one_of(st.text(), st.floats(), st.integers(), st.decimals(), st.sampled_from(NA_LIKES), st.booleans(),
                  st.text(alphabet="0123456789.eE+- \t\u00a0\u200b\ufeff\x00٦６"))


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(list(FACTS)), cells=st.lists(CELLS, min_size=1, max_size=8))
def test_fuzzed_mixed_columns_read_like_read_cell(name, cells):
    expected = []
    for cell in cells:
        try:
            expected.append(verdict(name, cell))
        except LupusRulesError:  # pragma: no cover - read_cell raises only PatientValidationError
            raise
    assert _frame_verdict(name, cells, arrow=False) == expected
    if all(isinstance(c, str) for c in cells):
        try:
            arrow = _frame_verdict(name, cells, arrow=True)
        except UnicodeError:  # a lone surrogate cannot be an Arrow string at all
            return
        assert arrow == expected


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.text(alphabet="0123456789.eE+- \t\u00a0\u200b\x00٦", max_size=12), min_size=1, max_size=10))
def test_fuzzed_number_text_on_the_many_uniques_fast_path(cells):
    column = _fillers("egfr", many=True) + cells
    expected = [verdict("egfr", c) for c in cells]
    assert _frame_verdict("egfr", column, arrow=False, tail=len(cells)) == expected
    assert _frame_verdict("egfr", column, arrow=True, tail=len(cells)) == expected
