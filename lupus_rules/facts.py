"""The patient fact schema: every fact a rule may test, and its validation.

A rulebook declares its facts (:class:`~lupus_rules.vocabulary.Vocabulary`,
``rulebook.vocabulary``); that table drives everything that needs to know the
facts: validation of a patient, the README data dictionary, the engines'
encoding, the scenario generator's value bands and the notebook controls.
:data:`FACTS` is the shipped rulebook's table. Every function here that reads
facts takes an optional ``vocabulary`` (a rulebook's); ``None`` means the
shipped one. Two
*measures* (:data:`MEASURES`) are computed from pairs of facts (change from
baseline) so that rules compare plain numbers; the engines use
:func:`compute_measures` (arrays) or its one-patient twin (plain floats, tested
to agree to the last bit).

Reading one patient (:func:`validate_patient`, :func:`read_cell`) imports no
numpy: a value can only be a numpy object once numpy is imported, so the
checks for numpy types look numpy up in ``sys.modules``. The many-patients
functions import numpy on first use.
"""
from __future__ import annotations

import math
import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from numbers import Real
from typing import Any

from .errors import FieldError, PatientValidationError
from .vocabulary import FactSpec, Vocabulary, shipped_vocabulary

__all__ = [
    "FactSpec",
    "FACTS",
    "MEASURES",
    "MEASURE_INPUTS",
    "STATUSES",
    "Patient",
    "validate_patient",
    "read_cell",
    "is_unknown",
    "compute_measures",
    "quantize",
    "csv_cell",
    "DECIMALS",
    "MEASURE_LIMIT",
    "fact_names",
]

_SHIPPED = shipped_vocabulary()
#: Every input fact of the shipped rulebook, by name, in data-dictionary order (declared in rulebook.yaml).
FACTS: dict[str, FactSpec] = _SHIPPED.facts
#: Numbers computed from two facts; rules may test them like facts. Absent when either input is.
MEASURES: dict[str, FactSpec] = _SHIPPED.measures
#: The (current, baseline) facts each measure is computed from.
MEASURE_INPUTS: dict[str, tuple[str, str]] = _SHIPPED.measure_inputs
#: Allowed values of a drug-status fact.
STATUSES: tuple[str, ...] = _SHIPPED.statuses


#: Numbers (facts, measures, rule thresholds) are rounded to this many decimals, so that every
#: engine compares the same values; durable-rules sees them as integers of 10**-DECIMALS units.
DECIMALS = 6
#: Measures are clipped to +/- this many percent (a tiny baseline would give absurd percentages).
MEASURE_LIMIT = 1e9


class _LazyNumpy:
    """Stands for numpy until a many-patients function first uses it; then numpy itself takes its place."""

    def __getattr__(self, name: str) -> object:
        import numpy

        globals()["np"] = numpy
        return getattr(numpy, name)


np: Any = _LazyNumpy()
_SCALE = 10.0 ** DECIMALS


def quantize(values: np.ndarray | float) -> np.ndarray | float:
    """Round numbers to :data:`DECIMALS` decimals (NaN stays NaN); the one rounding every path uses.

    A plain ``int``/``float`` gives a float, by numpy's own steps (times
    10**DECIMALS, round half to even, divided back), so one patient needs no
    numpy and gets the same bits as an array; anything else gives an array.
    """
    if type(values) in (float, int):
        return _quantize_number(float(values))
    return np.round(np.asarray(values, dtype=float), DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def _quantize_number(number: float) -> float:
    scaled = number * _SCALE
    if not math.isfinite(scaled):
        return scaled / _SCALE + 0.0
    return float(round(scaled)) / _SCALE + 0.0


def _vocab(vocabulary: Vocabulary | None) -> Vocabulary:
    """The given vocabulary, or the shipped rulebook's when None."""
    return _SHIPPED if vocabulary is None else vocabulary


def fact_names(vocabulary: Vocabulary | None = None) -> tuple[str, ...]:
    """Names a rule condition may test: input facts, then measures (of ``vocabulary``; None = shipped)."""
    return _vocab(vocabulary).names()


def compute_measures(values: Mapping[str, np.ndarray], vocabulary: Vocabulary | None = None
                     ) -> dict[str, np.ndarray]:
    """Compute every measure of ``vocabulary`` (None = shipped) from arrays of its inputs (NaN = unknown).

    One implementation serves one patient (arrays of length 1) and a batch
    (long arrays), so the durable and vectorized engines see identical numbers.
    """
    vocabulary = _vocab(vocabulary)
    return {name: _percent_change(values[baseline], values[current], vocabulary.measure_signs[name])
            for name, (current, baseline) in vocabulary.measure_inputs.items()}


def _measure_value(baseline: float | None, current: float | None, sign: float) -> float | None:
    """One patient's measure, as :func:`_percent_change` computes it for arrays (None = unknown)."""
    if baseline is None or current is None or not baseline > 0:
        return None
    pct = sign * (current - baseline) / baseline * 100.0
    if math.isnan(pct):
        return None
    number = _quantize_number(min(max(pct, -MEASURE_LIMIT), MEASURE_LIMIT))
    return None if math.isnan(number) else number


def _percent_change(baseline: np.ndarray, current: np.ndarray, sign: float = -1.0) -> np.ndarray:
    """sign=-1: reduction from baseline; sign=+1: change from baseline; NaN when baseline <= 0."""
    baseline = np.asarray(baseline, dtype=float)
    current = np.asarray(current, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = sign * (current - baseline) / baseline * 100.0
    pct = np.where(baseline > 0, np.clip(pct, -MEASURE_LIMIT, MEASURE_LIMIT), np.nan)
    return quantize(pct)


class Patient(Mapping[str, object]):
    """One validated patient: every fact (defaults filled in) plus computed measures.

    Read it like a dict (``patient["egfr"]``); unknown numbers are ``None``.
    Build it with :func:`validate_patient`, which is the only way in; it keeps
    the vocabulary it was checked against (:attr:`vocabulary`).
    """

    __slots__ = ("_values", "_vocabulary")

    def __init__(self, values: dict[str, object], vocabulary: Vocabulary | None = None):
        self._values = values
        self._vocabulary = _vocab(vocabulary)

    @property
    def vocabulary(self) -> Vocabulary:
        """The facts this patient was validated against (a rulebook's, or the shipped ones)."""
        return self._vocabulary

    def __getitem__(self, key: str) -> object:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.facts().items() if v != self._vocabulary.facts[k].default}
        return f"Patient({shown!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Patient) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, str(v)) for k, v in self._values.items())))

    def facts(self) -> dict[str, object]:
        """The input facts only (no measures), as given or defaulted."""
        return {name: self._values[name] for name in self._vocabulary.facts}

    def to_row(self) -> dict[str, object]:
        """The input facts as CSV cells (see :func:`csv_cell`)."""
        return {name: csv_cell(name, self._values[name], self._vocabulary) for name in self._vocabulary.facts}


def csv_cell(name: str, value: object, vocabulary: Vocabulary | None = None) -> object:
    """One fact value as a CSV cell: sets ';'-joined, bools 'true'/'false', unknown numbers ''.

    The inverse of what :func:`validate_patient` reads, used wherever rows are written for people
    (scenario files, proposed suite rows, trace tables). ``vocabulary``: whose fact ``name`` is (None = shipped).
    """
    spec = _vocab(vocabulary).facts[name]
    if spec.kind == "set":
        return ";".join(m for m in spec.allowed if m in value)  # type: ignore[operator]
    if spec.kind == "bool":
        return "true" if value else "false"
    if spec.kind == "number":
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return "" if missing else float(value)  # type: ignore[arg-type]
    return value


def validate_patient(data: Mapping[str, object] | Patient, vocabulary: Vocabulary | None = None) -> Patient:
    """Check and type one patient's facts; raise with every bad field named.

    Accepts Python values (``True``, ``{"nephritis"}``, ``45.0``) and CSV cell
    strings (``"true"``, ``"joint;nephritis"``, ``"45"``, ``""``), each read by
    :func:`read_cell` (whose docstring states the reading rules).
    Missing facts take their defaults. Raises :class:`PatientValidationError`
    listing each field, the value given and what is allowed; anything that is
    not a mapping of fact names (``None``, a string) is refused the same way.
    ``vocabulary``: the facts to check against (a rulebook's; None = shipped). A
    :class:`Patient` checked against another vocabulary is checked again.
    """
    vocabulary = _vocab(vocabulary)
    if isinstance(data, Patient):
        if data.vocabulary is vocabulary or data.vocabulary == vocabulary:
            return data
        data = data.facts()
    facts, measure_inputs = vocabulary.facts, vocabulary.measure_inputs
    if not isinstance(data, Mapping):
        if not (hasattr(data, "keys") and hasattr(data, "items")):  # a pandas Series (one row) is read as a mapping
            raise PatientValidationError([FieldError("patient", _shown(data), _PATIENT_ALLOWED)])
        data = dict(data.items())
    errors: list[FieldError] = []
    values: dict[str, object] = {}
    for key in data:
        if key not in facts:
            errors.append(FieldError(str(key), _shown(data[key]), "a known fact: " + ", ".join(facts)))
    for name, spec in facts.items():
        raw = data.get(name, None)
        try:
            values[name] = _read(spec, raw)
        except _Refused as refused:
            errors.append(FieldError(name, _shown(raw), spec.allowed_text() + refused.note))
    if errors:
        raise PatientValidationError(errors)
    for name, (current, baseline) in measure_inputs.items():
        values[name] = _measure_value(values[baseline], values[current],  # type: ignore[arg-type]
                                      vocabulary.measure_signs[name])
    return Patient(values, vocabulary)


_PATIENT_ALLOWED = "a mapping of fact names to values, e.g. {'egfr': 45, 'manifestations': 'nephritis'}"


def read_cell(name: str | FactSpec, raw: object, vocabulary: Vocabulary | None = None) -> object:
    """What one cell means for fact ``name``: the typed value, or the fact's default when unknown.

    The one reading every path shares (:func:`validate_patient`,
    :func:`validate_frame` and so ``run_batch`` on both engines); the frame
    path's fast paths are tested to give the same verdict cell for cell
    (tests/test_hostile_cells.py). The rules:

    * **Unknown** (:func:`is_unknown`): ``None``, ``''``, whitespace only,
      and every library's NA (``float('nan')``, numpy NaNs, ``Decimal('NaN')``,
      ``pd.NA``, ``pd.NaT``, ``np.datetime64('NaT')``) mean the fact's
      default: unknown (``None``) for a number, ``False``, ``'not_tried'``,
      the empty set. Text ``'nan'`` is not a marker and is refused.
    * **Text**: whitespace around the cell is stripped (``str.strip``: ASCII
      and Unicode spaces such as no-break space, as ``float()`` does). Any
      control or invisible character anywhere (NUL, zero-width space, BOM,
      bidi marks) is refused, the message naming it (``U+200B``).
    * **Numbers**: ASCII digits with optional sign, point and exponent
      (``'60'``, ``'6e1'``), or a Python/numpy int, float or ``Decimal``;
      finite and within the fact's range, else refused with the range named
      (``10**400``, ``'1e400'``, ``inf``). Non-ASCII digits (``'٦٠'``,
      ``'６０'``, superscripts) are refused, the message saying so. A bool
      is never a number.
    * **Bools**: ``True``/``False`` (Python or numpy) or the text ``true`` /
      ``false`` in any ASCII case; ``'yes'``, ``'1'``, ``1``, ``1.0`` are refused.
    * **Statuses**: exactly one of :data:`STATUSES` (case matters).
    * **Sets**: a set, list, tuple or 1-D numpy array (a Parquet list cell) of members, or ``';'``-separated text
      whose parts are stripped and empty parts ignored; members as spelt in
      :data:`MANIFESTATIONS` (case matters).

    A number comes back as a float rounded by :func:`quantize` (``None`` =
    unknown), a set as a frozenset. Raises :class:`PatientValidationError`
    (one :class:`FieldError` naming field, value and what is allowed) for a
    cell the fact does not allow; never another exception.

    ``name`` is a fact of ``vocabulary`` (a rulebook's; None = shipped), or the
    fact's :class:`FactSpec` itself.
    """
    spec = name if isinstance(name, FactSpec) else _vocab(vocabulary).facts[name]
    try:
        return _read(spec, raw)
    except _Refused as refused:
        raise PatientValidationError([FieldError(spec.name, _shown(raw), spec.allowed_text() + refused.note)]) from None


def is_unknown(raw: object) -> bool:
    """Whether a cell means "unknown": ``None``, blank text, or a missing-value marker of any library.

    Blank text is empty or only whitespace (spaces, tabs, line breaks,
    Unicode spaces such as no-break space). Markers: NaN of any float type
    (``float``, numpy, ``Decimal('NaN')`` and ``Decimal('sNaN')``),
    ``pd.NA``, ``pd.NaT`` and numpy's ``NaT``. Any other value is known (and
    may still be refused by the fact).
    """
    if raw is None:
        return True
    if isinstance(raw, str):
        return raw == "" or (raw.isspace() and _invisible(raw) is None)
    if isinstance(raw, float):
        return math.isnan(raw)
    if isinstance(raw, Decimal):
        return raw.is_nan()
    numpy = sys.modules.get("numpy")  # a numpy value exists only once numpy is imported
    if numpy is not None and isinstance(raw, numpy.floating):
        return math.isnan(raw)
    if numpy is not None and isinstance(raw, (numpy.datetime64, numpy.timedelta64)):
        return bool(numpy.isnat(raw))
    pandas = sys.modules.get("pandas")  # pd.NA and pd.NaT exist only once pandas is imported
    return pandas is not None and (raw is pandas.NA or raw is pandas.NaT)


class _Refused(ValueError):
    """A cell the fact does not allow; ``note`` adds why, when the allowed text alone would not show it."""

    def __init__(self, note: str = ""):
        super().__init__(note)
        self.note = note


class _Described:
    """Stands in for a value whose repr cannot be built (an int of more than 4300 digits)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Described) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


_REPR_DIGITS = 4000  # Python refuses int -> text beyond 4300 digits (sys.int_info.default_max_str_digits)


def _shown(raw: object) -> object:
    """The value an error message shows: ``raw`` (numpy scalars unboxed) unless its repr would fail.

    Unboxing makes the message the same whichever path read the cell (a frame hands out Python scalars).
    """
    if _is_numpy(raw, "generic"):
        raw = raw.item()  # type: ignore[attr-defined]
    if isinstance(raw, int) and raw.bit_length() > _REPR_DIGITS * 3.32:
        return _Described(f"<an integer of about {int(raw.bit_length() / 3.3219)} digits>")
    return raw


#: ASCII whitespace; Python's str.strip() also removes it (and Unicode spaces) around a cell.
_PAD = " \t\n\v\f\r"
_INVISIBLE = ("Cc", "Cf", "Cs")  # control, format (zero-width space, BOM, bidi marks), lone surrogate
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def _invisible(text: str) -> str | None:
    """The first control or invisible character in ``text`` (tab and line breaks excepted), if any."""
    if text.isprintable():
        return None
    for char in text:
        if char not in _PAD and unicodedata.category(char) in _INVISIBLE:
            return char
    return None


def _read(spec: FactSpec, raw: object) -> object:
    """Turn one raw cell into the fact's type (its default when unknown), or raise _Refused."""
    if isinstance(raw, str):
        return _read_text(spec, raw)
    if is_unknown(raw):
        return spec.default
    if spec.kind == "set":
        return _read_members(spec, raw)
    if spec.kind == "bool":
        if isinstance(raw, bool) or _is_numpy(raw, "bool_"):
            return bool(raw)
        raise _Refused()
    if spec.kind == "status":
        raise _Refused()
    return _in_range(spec, _typed_number(raw))


def _read_text(spec: FactSpec, raw: str) -> object:
    char = _invisible(raw)
    if char is not None:
        position = raw.index(char) + 1
        raise _Refused(f" (no control or invisible characters; found U+{ord(char):04X} at character {position})")
    text = raw.strip()
    if text == "":
        return spec.default
    if spec.kind == "set":
        return _read_members(spec, [part.strip() for part in text.split(";") if part.strip()])
    if spec.kind == "bool":
        lowered = text.lower() if text.isascii() else ""
        if lowered in ("true", "false"):
            return lowered == "true"
        raise _Refused()
    if spec.kind == "status":
        if text in spec.allowed:
            return text
        raise _Refused()
    if not _NUMBER.match(text):
        digit = next((c for c in text if c.isdigit() and not c.isascii()), None)
        raise _Refused("" if digit is None else f" (digits 0-9 only; found U+{ord(digit):04X})")
    return _in_range(spec, float(text))


def _read_members(spec: FactSpec, raw: object) -> frozenset[str]:
    if _is_numpy(raw, "ndarray") and raw.ndim == 1:  # type: ignore[attr-defined]  # a Parquet/Arrow list cell
        raw = raw.tolist()  # type: ignore[attr-defined]
    if not isinstance(raw, (set, frozenset, list, tuple)):
        raise _Refused()
    if any(not isinstance(item, str) or item not in spec.allowed for item in raw):
        raise _Refused()
    return frozenset(raw)


def _typed_number(raw: object) -> float:
    """A Python or numpy number as a float; bools, dates, durations, complex and the rest are refused."""
    if (isinstance(raw, bool) or _is_numpy(raw, "bool_", "datetime64", "timedelta64")
            or not isinstance(raw, (Real, Decimal))):
        raise _Refused()
    try:
        return float(raw)  # type: ignore[arg-type]
    except (OverflowError, ValueError, TypeError):  # an int beyond float's range
        raise _Refused() from None


def _in_range(spec: FactSpec, number: float) -> float:
    assert spec.minimum is not None and spec.maximum is not None
    if not (math.isfinite(number) and spec.minimum <= number <= spec.maximum):
        raise _Refused()
    return _quantize_number(number)


def _is_numpy(raw: object, *kinds: str) -> bool:
    """Whether ``raw`` is an instance of one of numpy's ``kinds`` (False while numpy is not imported)."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(raw, tuple(getattr(numpy, kind) for kind in kinds))


# --- Many patients at once: vectorized validation ------------------------------------------------

from typing import TYPE_CHECKING  # noqa: E402  (appended section)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

from functools import lru_cache  # noqa: E402

__all__ += ["validate_frame", "member_column"]

_MANY_UNIQUES = 256  # above this many distinct number strings, numpy parses them in one C loop


def member_column(fact: str, member: str) -> str:
    """Name of the bool column holding ``member in fact`` (e.g. ``manifestations__nephritis``)."""
    return f"{fact}__{member}"


def validate_frame(df: pd.DataFrame, vocabulary: Vocabulary | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Check and type many patients at once; one bad row never loses the others.

    ``df`` has one column per fact (CSV strings or typed values, as
    :func:`validate_patient` accepts them); missing columns take the facts'
    defaults and extra columns are ignored (the caller reports them). Row ``i``
    is judged exactly as ``validate_patient`` judges ``df.to_dict("records")[i]``
    restricted to the fact columns. ``vocabulary``: the facts to check against
    (a rulebook's; None = shipped).

    Returns ``(typed, errors)``, both indexed like ``df``:

    * ``typed``: for a set fact one numpy bool column per member
      (:func:`member_column`, e.g. ``manifestations__joint``); a status fact as a
      pandas Categorical whose categories are exactly :data:`STATUSES`; a bool
      fact as numpy bool; numbers and :data:`MEASURES` as float64 (NaN =
      unknown). A rejected row holds every fact's default (and NaN measures),
      so nothing half-valid is ever evaluated by accident.
    * ``errors``: ``''`` for a good row, else each bad field formatted like
      ``str(FieldError(...))``, in fact order, joined by ``'; '``.
    """
    import pandas as pd  # imported on use: `import lupus_rules` stays light

    vocabulary = _vocab(vocabulary)
    facts = vocabulary.facts
    n = len(df)
    columns: dict[str, np.ndarray] = {}
    bad_fields: list[tuple[np.ndarray, np.ndarray]] = []  # (rows, messages) per fact, fact order
    for name, spec in facts.items():
        if name in df.columns:
            values, bad_rows, messages = _validate_column(spec, df[name])
        else:
            values, bad_rows, messages = _default_values(spec, n), np.empty(0, np.intp), np.empty(0, object)
        columns.update(_typed_columns(spec, values))
        if len(bad_rows):
            bad_fields.append((bad_rows, messages))
    bad_rows, messages = _join_errors(bad_fields)
    if len(bad_rows):
        bad = np.zeros(n, dtype=bool)
        bad[bad_rows] = True
        for name, spec in facts.items():
            _reset_to_default(spec, columns, bad)
    for name, spec in facts.items():
        if spec.kind == "number":
            columns[name] = quantize(columns[name])
    inputs = {key: columns[key] for pair in vocabulary.measure_inputs.values() for key in pair}
    columns.update(compute_measures(inputs, vocabulary))
    typed = pd.DataFrame(_to_frame_columns(columns, vocabulary), index=df.index, copy=False)
    errors = pd.Series(_error_texts(n, bad_rows, messages), index=df.index, dtype="str", name="errors", copy=False)
    return typed, errors


def _default_values(spec: FactSpec, n: int) -> np.ndarray:
    """The fact's typed default for n rows (set: n × members bool; status: int8 codes)."""
    if spec.kind == "set":
        return np.zeros((n, len(spec.allowed)), dtype=bool)
    if spec.kind == "status":
        return np.full(n, spec.allowed.index(spec.default), dtype=np.int8)
    if spec.kind == "bool":
        return np.zeros(n, dtype=bool)
    return np.full(n, np.nan)


def _typed_columns(spec: FactSpec, values: np.ndarray) -> dict[str, np.ndarray]:
    if spec.kind == "set":
        return {member_column(spec.name, m): values[:, i].copy() for i, m in enumerate(spec.allowed)}
    return {spec.name: values}


def _reset_to_default(spec: FactSpec, columns: dict[str, np.ndarray], bad: np.ndarray) -> None:
    if spec.kind == "set":
        for member in spec.allowed:
            columns[member_column(spec.name, member)][bad] = False
        return
    columns[spec.name][bad] = _default_values(spec, 1)[0]


def _to_frame_columns(columns: dict[str, np.ndarray], vocabulary: Vocabulary) -> dict[str, object]:
    import pandas as pd

    out: dict[str, object] = {}
    facts, categories = vocabulary.facts, list(vocabulary.statuses)
    for name, values in columns.items():
        if name in facts and facts[name].kind == "status":
            out[name] = pd.Categorical.from_codes(values, categories=categories)
        else:
            out[name] = values
    return out


def _join_errors(bad_fields: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, list[str]]:
    """Rows with a bad field (ascending) and, for each, its messages in fact order joined by '; '."""
    if not bad_fields:
        return np.empty(0, dtype=np.intp), []
    rows = np.unique(np.concatenate([r for r, _ in bad_fields]))
    joined = [""] * len(rows)
    for field_rows, field_messages in bad_fields:
        for i, message in zip(np.searchsorted(rows, field_rows).tolist(), field_messages):
            joined[i] = message if not joined[i] else joined[i] + "; " + message
    return rows, joined


def _error_texts(n: int, bad_rows: np.ndarray, messages: list[str]) -> pa.Array:
    """The errors column as one Arrow take: '' everywhere but the bad rows."""
    import pyarrow as pa

    codes = np.zeros(n, dtype=np.int32)
    codes[bad_rows] = np.arange(1, len(bad_rows) + 1, dtype=np.int32)
    return pa.array([""] + messages, type=pa.string()).take(pa.array(codes))


def _native(value: object) -> object:
    """The Python value ``DataFrame.to_dict`` hands out for a cell (numpy scalars unboxed, pd.NA as None)."""
    import pandas as pd

    if value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


def _message(spec: FactSpec, raw: object) -> str:
    """The error text validate_patient gives for this cell (same value shown, same allowed text and note)."""
    raw = _native(raw)
    try:
        _read(spec, raw)
        note = ""  # not reached for a refused cell; kept total for safety
    except _Refused as refused:
        note = refused.note
    return str(FieldError(spec.name, _shown(raw), spec.allowed_text() + note))


def _validate_column(spec: FactSpec, column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Typed values, bad row positions and their messages for one fact's column.

    Fast paths cover numeric, bool and all-string columns; anything else
    (mixed Python objects, lists of members) goes cell by cell through the same
    coercion :func:`validate_patient` uses, so the outcome never differs.
    """
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype == bool:
        return _from_bools(spec, column.to_numpy())
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return _from_numbers(spec, column.to_numpy())
    if _all_strings(column):
        fast = _from_arrow(spec, column)
        return fast if fast is not None else _from_strings(spec, column)
    return _from_objects(spec, _object_cells(column))


def _object_cells(column: pd.Series) -> np.ndarray:
    """The cells as Python objects, as ``tolist`` gives them (a categorical of ints keeps its ints)."""
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype(object).to_numpy()
    return column.to_numpy(dtype=object)


def _all_strings(column: pd.Series) -> bool:
    """Text cells only, missing ones aside (pandas' missing markers are all unknowns, see is_unknown)."""
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.api.types.infer_dtype(dtype.categories, skipna=True) in ("string", "empty")
    if pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, np.dtype):
        return True
    if dtype != object:
        return False
    try:
        return pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")
    except (TypeError, ArithmeticError):  # e.g. Decimal('sNaN') cannot be compared: judge cell by cell
        return False


def _from_bools(spec: FactSpec, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(values)
    if spec.kind == "bool":
        return values.astype(bool, copy=True), np.empty(0, np.intp), np.empty(0, object)
    rows = np.arange(n)  # a bool is never a number, a status or a set
    return _default_values(spec, n), rows, _messages_for(spec, values, rows)


def _from_numbers(spec: FactSpec, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(values)
    numbers = values.astype(float)
    missing = np.isnan(numbers)
    if spec.kind != "number":
        rows = np.flatnonzero(~missing)
        return _default_values(spec, n), rows, _messages_for(spec, values, rows)
    with np.errstate(invalid="ignore"):
        ok = missing | (np.isfinite(numbers) & (numbers >= spec.minimum) & (numbers <= spec.maximum))
    rows = np.flatnonzero(~ok)
    numbers[rows] = np.nan
    return numbers, rows, _messages_for(spec, values, rows)


def _messages_for(spec: FactSpec, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.array([_message(spec, values[i]) for i in rows], dtype=object)


def _from_strings(spec: FactSpec, column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factorize, coerce each distinct string once, spread the outcome back to the rows."""
    import pandas as pd

    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    distinct = np.asarray(uniques, dtype=object)
    texts = _arrow_texts(distinct) if spec.kind == "number" and len(distinct) > _MANY_UNIQUES else None
    if texts is not None:
        typed, bad = _number_verdicts(spec, texts)
    else:
        typed, bad = _coerce_each(spec, distinct)
    default = _default_values(spec, 1)
    table = np.concatenate([typed, default]) if len(typed) else default
    values = table[codes]  # code -1 (missing) picks the default appended last
    bad_codes = np.flatnonzero(bad)
    if not len(bad_codes):
        return values, np.empty(0, np.intp), np.empty(0, object)
    is_bad = np.zeros(len(distinct) + 1, dtype=bool)
    is_bad[bad_codes] = True
    rows = np.flatnonzero(is_bad[codes])
    text = {code: _message(spec, distinct[code]) for code in bad_codes}
    return values, rows, np.array([text[c] for c in codes[rows]], dtype=object)


def _from_arrow(spec: FactSpec, column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Arrow-backed text columns (CSV reads, pandas' default ``str``): parsed by Arrow kernels.

    Numbers: see :func:`_number_verdicts`. Other facts look their cells up
    among the canonical spellings (``true``, ``effective``,
    ``joint;nephritis`` ...), typed once by :func:`read_cell`'s own reading.
    Any other cell goes the general way. ``None``: not an Arrow column.
    """
    import pandas as pd
    import pyarrow as pa

    dtype = column.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return None
    cells = pa.array(column.array)
    if isinstance(cells, pa.ChunkedArray):
        cells = cells.combine_chunks()
    if spec.kind == "number":
        return _arrow_numbers(spec, cells)
    return _arrow_lookup(spec, column, cells)


def _arrow_numbers(spec: FactSpec, cells: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    numbers, bad = _number_verdicts(spec, cells)
    rows = np.flatnonzero(bad)
    return numbers, rows, _arrow_messages(spec, cells, rows)


def _arrow_messages(spec: FactSpec, cells: pa.Array, rows: np.ndarray) -> np.ndarray:
    """The error text of each bad row, built once per distinct bad cell."""
    import pyarrow.compute as pc

    if not len(rows):
        return np.empty(0, object)
    encoded = pc.dictionary_encode(cells.take(rows))
    texts = [_message(spec, cell) for cell in encoded.dictionary.to_pylist()]
    return np.array(texts, dtype=object)[np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)]


def _number_verdicts(spec: FactSpec, cells: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(numbers, bad) for text cells of a number fact, equal to :func:`read_cell` cell by cell.

    Clean columns take one Arrow cast: for finite values Arrow's grammar is
    the module's number grammar (ASCII digits, sign, point, exponent) and its
    result is correctly rounded like ``float()``; tests/test_hostile_cells.py
    checks both. A column with any other cell (padding, typos, control or
    non-ASCII characters) takes :func:`_careful_verdicts`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    blank = pc.fill_null(pc.equal(cells, ""), True)
    try:
        parsed = pc.cast(pc.if_else(blank, pa.scalar(None, pa.string()), cells), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _careful_verdicts(spec, cells)
    numbers = np.array(parsed.to_numpy(zero_copy_only=False), dtype=float)
    return _range_verdicts(spec, numbers, np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool))


def _range_verdicts(spec: FactSpec, numbers: np.ndarray, unknown: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        ok = unknown | (np.isfinite(numbers) & (numbers >= spec.minimum) & (numbers <= spec.maximum))
    numbers[~ok] = np.nan
    return numbers, ~ok


def _careful_verdicts(spec: FactSpec, cells: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """ASCII cells by the grammar (after trimming ASCII spaces) and Arrow; the rest by read_cell, once each."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ascii_ = pc.fill_null(pc.string_is_ascii(cells), True)
    trimmed = pc.utf8_trim(cells, characters=_PAD)
    blank = pc.and_(ascii_, pc.fill_null(pc.equal(trimmed, ""), True))
    grammar = pc.and_(ascii_, pc.fill_null(pc.match_substring_regex(trimmed, "^" + _NUMBER.pattern[:-2] + "$"),
                                           False))
    parsed = pc.cast(pc.if_else(grammar, trimmed, pa.scalar(None, pa.string())), pa.float64())
    numbers = np.array(parsed.to_numpy(zero_copy_only=False), dtype=float)
    numbers, bad = _range_verdicts(spec, numbers, np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool))
    other = np.flatnonzero(~np.asarray(pc.or_(blank, grammar).to_numpy(zero_copy_only=False), dtype=bool))
    if len(other):
        encoded = pc.dictionary_encode(cells.take(other))
        typed, refused = _coerce_each(spec, np.array(encoded.dictionary.to_pylist() + [None], dtype=object)[:-1])
        codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)
        numbers[other], bad[other] = typed[codes], refused[codes]
    return numbers, bad


def _arrow_texts(distinct: np.ndarray) -> pa.Array | None:
    """Distinct Python strings as an Arrow array; None when Arrow cannot hold one (a lone surrogate)."""
    import pyarrow as pa

    try:
        return pa.array(distinct, type=pa.string(), from_pandas=False)
    except (pa.ArrowException, UnicodeError, TypeError):
        return None


def _canonical(spec: FactSpec) -> list[str]:
    """The usual spellings of a non-number fact's values (as CSV files and ``to_row`` write them)."""
    if spec.kind == "bool":
        return ["", "true", "false", "True", "False", "TRUE", "FALSE"]
    if spec.kind == "status":
        return ["", *spec.allowed]
    members = spec.allowed
    return [";".join(m for i, m in enumerate(members) if k >> i & 1) for k in range(1 << len(members))]


@lru_cache(maxsize=256)
def _spellings(spec: FactSpec) -> tuple[np.ndarray, pa.Array]:
    """A fact's canonical spellings, typed by validate_patient's own coercion, and as an Arrow value set.

    Cached by the spec (its kind and allowed values decide the spellings), so each vocabulary's facts share it.
    """
    import pyarrow as pa

    spellings = np.array(_canonical(spec), dtype=object)
    typed, bad = _coerce_each(spec, spellings)
    assert not bad.any(), "a canonical spelling must be valid"
    typed.flags.writeable = False
    return typed, pa.array(list(spellings), type=pa.string())


def _arrow_lookup(spec: FactSpec, column: pd.Series, cells: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import pyarrow.compute as pc

    typed, value_set = _spellings(spec)
    found = pc.fill_null(pc.index_in(cells, value_set=value_set), -1)
    index = np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.intp)
    other = np.flatnonzero(index < 0)
    values = typed[np.maximum(index, 0)]
    if not len(other):
        return values, np.empty(0, np.intp), np.empty(0, object)
    rest, rest_rows, messages = _from_strings(spec, column.iloc[other])
    values[other] = rest
    return values, other[rest_rows], messages


def _coerce_each(spec: FactSpec, distinct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Typed values (bad ones default) and a bad mask for each distinct raw value."""
    typed = _default_values(spec, len(distinct))
    bad = np.zeros(len(distinct), dtype=bool)
    for i, raw in enumerate(distinct):
        try:
            value = _read(spec, raw)
        except _Refused:
            bad[i] = True
            continue
        if spec.kind == "set":
            typed[i] = [m in value for m in spec.allowed]
        elif spec.kind == "status":
            typed[i] = spec.allowed.index(value)
        else:
            typed[i] = np.nan if value is None else value
    return typed, bad


def _from_objects(spec: FactSpec, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell by cell (mixed types, lists): slow but exactly :func:`validate_patient`'s judgement."""
    typed = _default_values(spec, len(values))
    rows: list[int] = []
    messages: list[str] = []
    for i, raw in enumerate(values):
        raw = _native(raw)
        one, bad = _coerce_each(spec, _single(raw))
        if bad[0]:
            rows.append(i)
            messages.append(_message(spec, raw))
        else:
            typed[i] = one[0]
    return typed, np.array(rows, dtype=np.intp), np.array(messages, dtype=object)


def _single(raw: object) -> np.ndarray:
    holder = np.empty(1, dtype=object)
    holder[0] = raw
    return holder
