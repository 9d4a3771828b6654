"""Scenario generation: the cartesian product of the fact values worth testing.

:func:`value_bands` reads every threshold the rulebook's conditions use and
returns, per fact, the values that probe them: each category of a status or
bool fact, every subset of ``manifestations``, and for numbers *unknown*
(NaN) plus values just below, exactly at and just above every threshold and a
typical value between thresholds. Nothing is hard-coded: edit a rule's
threshold and the bands follow.

A *measure* (``upcr_reduction_pct``, ``egfr_change_pct``) is computed from two
input facts, so its thresholds can only be reached through them: the current
value and its baseline form one joint band of ``(current, baseline)`` pairs
keyed by the current fact (``"upcr"``, ``"egfr"``), and
:func:`band_columns` says which columns a band fills.

:func:`cartesian` / :func:`iter_cartesian` build the product over chosen bands
(unchosen facts take their defaults) as scenario rows in CSV cell form, and
:func:`count` says how many rows that is without building anything.

Not for clinical use: generated scenarios exercise the rules; they are not patients.
"""
from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import GenerateError
from .facts import FactSpec, compute_measures
from .rulebook import Condition, Rulebook
from .vocabulary import Vocabulary, shipped_vocabulary

__all__ = [
    "Bands",
    "GenerateError",
    "value_bands",
    "band_columns",
    "resolve_facts",
    "count",
    "cartesian",
    "iter_cartesian",
    "sample_positions",
    "sample",
    "iter_sample",
    "iter_tables",
    "write_generated",
    "Estimate",
    "estimate",
    "SCENARIO_ID",
]

class Bands(dict):
    """A band key -> the values worth testing, and the facts they were read from.

    Plain facts hold scalars (frozenset, str, bool or float with NaN = unknown);
    paired facts hold (current, baseline) tuples. ``vocabulary`` is the
    rulebook's (:func:`value_bands` sets it), so the rows built from the bands
    have that rulebook's columns; a plain dict of bands means the shipped facts.
    """

    def __init__(self, *args: Any, vocabulary: Vocabulary | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.vocabulary: Vocabulary = shipped_vocabulary() if vocabulary is None else vocabulary

    def __reduce__(self) -> tuple:
        return (_bands, (dict(self), self.vocabulary))


def _bands(values: dict, vocabulary: Vocabulary) -> Bands:
    return Bands(values, vocabulary=vocabulary)


def _vocabulary_of(bands: Bands | dict) -> Vocabulary:
    return getattr(bands, "vocabulary", None) or shipped_vocabulary()

#: Name of the scenario id column :func:`cartesian` writes first.
SCENARIO_ID = "scenario_id"

_THRESHOLD_OPS = ("<", "<=", ">", ">=")


# --- bands ------------------------------------------------------------------------------------


def value_bands(rulebook: Rulebook) -> Bands:
    """The values worth testing for every fact, read from ``rulebook``'s conditions.

    Keys follow the order of the rulebook's facts (``rulebook.vocabulary``); a baseline fact has no
    key of its own but travels with its current fact (``"upcr"`` holds
    ``(upcr, upcr_baseline)`` pairs reaching every threshold on ``upcr`` *and*
    on ``upcr_reduction_pct``). Values are deduplicated; numbers come unknown
    (NaN) first, then ascending.
    """
    thresholds = _thresholds(rulebook)
    vocabulary = rulebook.vocabulary
    layout = _layout(vocabulary)
    bands = Bands(vocabulary=vocabulary)
    for name, spec in vocabulary.facts.items():
        if name in layout.baselines:
            continue
        if name in layout.pair_of:
            bands[name] = _pair_band(layout.pair_of[name], thresholds, vocabulary)
        elif spec.kind == "set":
            bands[name] = _subsets(spec)
        elif spec.kind == "status":
            bands[name] = list(spec.allowed)
        elif spec.kind == "bool":
            bands[name] = [False, True]
        else:
            bands[name] = [math.nan, *_number_values(spec, thresholds.get(name, []))]
    return bands


def band_columns(key: str, vocabulary: Vocabulary | None = None) -> tuple[str, ...]:
    """The scenario columns band ``key`` fills: one fact, or (current, baseline) for a pair.

    ``vocabulary``: the rulebook's facts (None = the shipped ones; ``bands.vocabulary`` for bands).
    """
    vocabulary = shipped_vocabulary() if vocabulary is None else vocabulary
    layout = _layout(vocabulary)
    if key in layout.pair_of:
        return _pair_names(layout.pair_of[key], vocabulary)
    if key not in vocabulary.facts or key in layout.baselines:
        raise GenerateError(f"{key!r} is not a band; bands: {', '.join(layout.band_keys)}")
    return (key,)


def resolve_facts(bands: Bands, facts: Iterable[str] | None) -> list[str]:
    """Band keys for fact names (``None`` = every band).

    A baseline fact or a measure selects its pair's band (``upcr_baseline`` and
    ``upcr_reduction_pct`` both mean ``upcr``). Unknown names raise
    :class:`GenerateError` listing the allowed ones.
    """
    if facts is None:
        return list(bands)
    aliases = _layout(_vocabulary_of(bands)).aliases
    keys: list[str] = []
    for raw in facts:
        name = str(raw).strip()
        key = aliases.get(name, name)
        if key not in bands:
            allowed = ", ".join(list(bands) + sorted(aliases))
            raise GenerateError(f"unknown fact {name!r}; allowed: {allowed}")
        if key not in keys:
            keys.append(key)
    return keys


def count(bands: Bands, facts: Iterable[str] | None = None) -> int:
    """How many scenarios :func:`cartesian` would build for these facts, without building them."""
    return math.prod(len(bands[key]) for key in resolve_facts(bands, facts))


def cartesian(bands: Bands, facts: Iterable[str] | None = None) -> pd.DataFrame:
    """The product of the chosen facts' bands as one scenario frame (see :func:`iter_cartesian`).

    Builds everything in memory: check :func:`count` first, or stream with
    :func:`iter_cartesian` for large products.
    """
    chunks = list(iter_cartesian(bands, facts, chunk_size=max(1, count(bands, facts))))
    return chunks[0]


def iter_cartesian(bands: Bands, facts: Iterable[str] | None = None,
                   chunk_size: int = 100_000) -> Iterator[pd.DataFrame]:
    """Yield the product of the chosen facts' bands in chunks of at most ``chunk_size`` rows.

    Columns: ``scenario_id`` (``gen-0001`` ...) then every fact of the
    bands' vocabulary (``bands.vocabulary``, the rulebook's) in CSV cell form, ready for
    ``lupus-rules run``: sets ``';'``-joined, bools ``'true'``/``'false'``,
    statuses as text, numbers as floats with NaN = unknown (write with
    ``na_rep=''``). Unchosen facts take their defaults. The last chosen fact
    varies fastest. Always yields at least one chunk (possibly with no rows).
    """
    keys = resolve_facts(bands, facts)
    total = count(bands, keys)
    width = len(str(total))
    sizes = [len(bands[key]) for key in keys]
    step = max(1, int(chunk_size))
    for start in range(0, max(total, 1), step):
        stop = min(start + step, total)
        yield _chunk(bands, keys, sizes, start, stop, width)


#: Above this many rows a product's positions no longer fit NumPy's int64 arithmetic.
_MAX_INT64_TOTAL = 2**62


def sample_positions(total: int, n: int, seed: int) -> np.ndarray:
    """``n`` distinct positions of a product of ``total`` rows, drawn uniformly with ``seed``, ascending.

    The same ``(total, n, seed)`` always gives the same positions. ``n`` at or
    above ``total`` gives every position. :class:`GenerateError` for ``n < 1``
    or a seed that is not a whole number >= 0.
    """
    for name, value, low in (("sample", n, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise GenerateError(f"{name}: got {value!r}; allowed: a whole number >= {low}")
    if n >= total:
        return np.arange(total, dtype=np.int64)
    if total > _MAX_INT64_TOTAL:  # positions beyond int64: Python integers (slower, still no loop per fact)
        rng, chosen = random.Random(int(seed)), set()
        while len(chosen) < n:  # n is far below total here, so redraws are rare
            chosen.add(rng.randrange(int(total)))
        return np.array(sorted(chosen), dtype=object)
    chosen = np.random.default_rng(int(seed)).choice(int(total), size=int(n), replace=False, shuffle=False)
    return np.sort(chosen.astype(np.int64))


def sample(bands: Bands, facts: Iterable[str] | None, n: int, seed: int) -> pd.DataFrame:
    """``n`` distinct rows of the product drawn with ``seed`` (see :func:`iter_sample`), in one frame."""
    return pd.concat(list(iter_sample(bands, facts, n, seed, chunk_size=max(1, n))), ignore_index=True)


def iter_sample(bands: Bands, facts: Iterable[str] | None, n: int, seed: int,
                chunk_size: int = 100_000) -> Iterator[pd.DataFrame]:
    """A seeded random sample of the product instead of all of it: ``n`` distinct rows, in chunks.

    Rows come in product order and keep the product's ids (``gen-<position>``),
    so the row with id ``gen-K`` equals row ``K`` of :func:`cartesian`: a sample
    never leaves the space. Deterministic per ``seed``; huge spaces (10**12
    rows) are sampled without building them.
    """
    keys = resolve_facts(bands, facts)
    total = count(bands, keys)
    positions = sample_positions(total, n, seed)
    sizes = [len(bands[key]) for key in keys]
    width = len(str(total))
    step = max(1, int(chunk_size))
    for start in range(0, max(len(positions), 1), step):
        yield _rows_at(bands, keys, sizes, positions[start:start + step], width)


def _chunk(bands: Bands, keys: list[str], sizes: list[int], start: int, stop: int,
           width: int) -> pd.DataFrame:
    return _rows_at(bands, keys, sizes, np.arange(start, max(start, stop), dtype=np.int64), width)


def _picks(keys: list[str], sizes: list[int], index: np.ndarray) -> dict[str, np.ndarray]:
    """Per band, which of its values each row takes: ``index`` in mixed radix, the last band fastest."""
    picks: dict[str, np.ndarray] = {}
    for key, size in zip(reversed(keys), reversed(sizes)):
        picks[key] = (index % size).astype(np.int64)  # index may hold Python integers (huge products)
        index = index // size
    return picks


def _rows_at(bands: Bands, keys: list[str], sizes: list[int], index: np.ndarray, width: int) -> pd.DataFrame:
    """The rows at positions ``index`` of the product (0-based), ids ``gen-<position + 1>``."""
    n = len(index)
    picks = _picks(keys, sizes, index)
    columns: dict[str, object] = {SCENARIO_ID: [f"gen-{i + 1:0{width}d}" for i in index.tolist()]}
    vocabulary = _vocabulary_of(bands)
    for name, spec in vocabulary.facts.items():
        columns[name] = _default_column(spec, n)
    for key in keys:
        for column, cells in zip(band_columns(key, vocabulary), _cells(key, bands[key], vocabulary)):
            columns[column] = cells[picks[key]]
    return pd.DataFrame(columns)


# --- Arrow tables at writing speed -------------------------------------------------------------


def iter_tables(bands: Bands, facts: Iterable[str] | None = None, *, positions: np.ndarray | None = None,
                chunk_size: int = 100_000, numbers_as_text: bool = False) -> Iterator[Any]:
    """The rows of :func:`iter_cartesian` (or, with ``positions``, of a sample) as pyarrow Tables.

    Same columns, cells and ids as :func:`iter_cartesian`, built without a Python
    loop per row: text facts are dictionary arrays over the band's cells
    (the row's band index is the dictionary index), numbers float64 with null =
    unknown, ids written digit by digit into one buffer. ``numbers_as_text``:
    numbers too as dictionaries of their text (formatted once per band value,
    by Arrow, as its CSV writer formats a float64), which is what CSV output
    uses. For writing files (:func:`write_generated`).
    """
    maker = _TableMaker(bands, resolve_facts(bands, facts), numbers_as_text)
    step = max(1, int(chunk_size))
    if positions is None:
        for start in range(0, max(maker.total, 1), step):
            yield maker.table(np.arange(start, min(start + step, maker.total), dtype=np.int64))
        return
    for start in range(0, max(len(positions), 1), step):
        part = positions[start:start + step]
        yield maker.table(part if part.dtype == object else np.asarray(part, dtype=np.int64))


class _TableMaker:
    """Builds the Arrow table of any rows of one product; per-band cell arrays are made once."""

    def __init__(self, bands: Bands, keys: list[str], numbers_as_text: bool = False):
        import pyarrow as pa

        self.keys = keys
        self.sizes = [len(bands[key]) for key in keys]
        self.total = math.prod(self.sizes)
        self.width = len(str(self.total))
        vocabulary = self.vocabulary = _vocabulary_of(bands)
        facts = vocabulary.facts
        self.floats = {name for name, spec in facts.items() if spec.kind == "number" and not numbers_as_text}
        self.columns: dict[str, tuple[str, Any]] = {}
        for name, spec in facts.items():  # unchosen facts: their default, as a one-value dictionary
            default = None if spec.kind == "number" else _cell(spec, spec.default)
            self.columns[name] = ("default", None if name in self.floats else pa.array([default], pa.string()))
        for key in keys:
            for column, cells in zip(band_columns(key, vocabulary), _cells(key, bands[key], vocabulary)):
                self.columns[column] = (key, self._dictionary(column, cells))
        self.schema = pa.schema([pa.field(SCENARIO_ID, pa.string())] + [
            pa.field(name, pa.float64() if name in self.floats else pa.dictionary(pa.int32(), pa.string()))
            for name in facts])

    def _dictionary(self, column: str, cells: np.ndarray) -> Any:
        import pyarrow as pa

        if column in self.floats:
            return cells
        if self.vocabulary.facts[column].kind == "number":
            return pa.array(cells, type=pa.float64(), from_pandas=True).cast(pa.string())
        return pa.array(cells.tolist(), pa.string())

    def table(self, index: np.ndarray) -> Any:
        """The rows at these positions of the product."""
        import pyarrow as pa

        n = len(index)
        picks = {k: p.astype(np.int32) for k, p in _picks(self.keys, self.sizes, index).items()}
        zeros = np.zeros(n, dtype=np.int32)
        arrays = [_ids(index, self.width)]
        for name, (source, cells) in self.columns.items():
            if name in self.floats:
                values = np.full(n, np.nan) if source == "default" else cells[picks[source]]
                arrays.append(pa.array(values, type=pa.float64(), from_pandas=True))
            else:
                chosen = zeros if source == "default" else picks[source]
                arrays.append(pa.DictionaryArray.from_arrays(pa.array(chosen, pa.int32()), cells))
        return pa.Table.from_arrays(arrays, schema=self.schema)


def _ids(index: np.ndarray, width: int) -> Any:
    """``gen-<position + 1>`` zero-padded to ``width`` digits, as one Arrow string array (no loop per row)."""
    import pyarrow as pa

    n = len(index)
    size = len("gen-") + width
    text = np.empty((n, size), dtype=np.uint8)
    text[:, :4] = np.frombuffer(b"gen-", dtype=np.uint8)
    number = index + 1
    for digit in range(size - 1, 3, -1):
        text[:, digit] = number % 10 + ord("0")
        number = number // 10
    offsets = np.arange(0, (n + 1) * size, size, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


@dataclass(frozen=True)
class Estimate:
    """What a generation will write, measured on a probe of its first rows: rows, bytes and seconds."""

    rows: int
    bytes: float
    seconds: float

    def format(self) -> str:
        """E.g. ``1,000,000 rows, about 188 MB, about 0.6 s``."""
        return f"{self.rows:,} rows, about {_size_text(self.bytes)}, about {_time_text(self.seconds)}"


def estimate(bands: Bands, facts: Iterable[str] | None, suffix: str, *, rows: int | None = None,
             probe_rows: int = 20_000) -> Estimate:
    """Size and time of writing ``rows`` rows (default: the whole product) as ``suffix``, from a timed probe.

    The probe builds and serializes up to ``probe_rows`` rows in memory the way
    :func:`write_generated` does (the first rows of the product, or random rows
    when ``rows`` is a sample of it) and scales bytes and seconds per row;
    the time is divided by the threads writing uses.
    """
    import pyarrow as pa

    maker = _TableMaker(bands, resolve_facts(bands, facts), numbers_as_text=suffix == ".csv")
    total = maker.total if rows is None else int(rows)
    n = max(1, min(probe_rows, total, maker.total))
    if total < maker.total:
        probe = sample_positions(maker.total, n, 0)
    else:
        probe = np.arange(n, dtype=np.int64)
    started = time.perf_counter()
    sink = pa.BufferOutputStream()
    _serialize(maker.table(probe), suffix, sink, header=True)
    seconds = time.perf_counter() - started
    return Estimate(total, sink.getvalue().size / n * total, seconds / n * total / _threads())


def write_generated(path: str | Path, bands: Bands, facts: Iterable[str] | None = None, *,
                    sample: int | None = None, seed: int = 0, chunk_size: int = 100_000,
                    progress: bool = False) -> int:
    """Write the product of the chosen facts' bands (or a seeded ``sample`` of it) to a CSV or Parquet file.

    The rows and ids are those of :func:`iter_cartesian` / :func:`iter_sample`.
    Chunks are built as Arrow tables (:func:`iter_tables`) and serialized on two
    threads (CSV: each chunk to bytes in parallel, written in order; Parquet:
    the next chunk is built while one is written). The file appears only when
    complete (:func:`~lupus_rules.output.atomic_output`). Returns the rows written.
    """
    from .output import SUFFIXES, atomic_output

    keys = resolve_facts(bands, facts)
    positions = None if sample is None else sample_positions(count(bands, keys), sample, seed)
    total = count(bands, keys) if positions is None else len(positions)
    target = Path(path)
    tables = iter_tables(bands, keys, positions=positions, chunk_size=chunk_size,
                         numbers_as_text=target.suffix.lower() == ".csv")
    with atomic_output(target, suffixes=SUFFIXES) as partial:
        rows = _write_tables(tables, partial, target.suffix.lower(), _bar(total, progress))
    return rows


def _threads() -> int:
    return 2 if (os.cpu_count() or 1) > 1 else 1


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="rows", unit_scale=True, desc="generating")


def _write_tables(tables: Iterator[Any], path: Path, suffix: str, bar: Any) -> int:
    from concurrent.futures import ThreadPoolExecutor

    rows = 0
    pool = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="lupus-generate")
    try:
        if suffix == ".parquet":
            rows = _write_parquet(tables, path, pool, bar)
        else:
            rows = _write_csv(tables, path, pool, bar)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    return rows


def _write_csv(tables: Iterator[Any], path: Path, pool: Any, bar: Any) -> int:
    """Each chunk serialized to CSV bytes on a worker thread; bytes written in order by this one."""
    from collections import deque

    pending: deque = deque()
    rows = 0
    with open(path, "wb") as handle:
        for i, table in enumerate(tables):
            pending.append((table.num_rows, pool.submit(_csv_bytes, table, i == 0)))
            if len(pending) > 2 * _threads():
                rows += _flush(pending.popleft(), handle, bar)
        while pending:
            rows += _flush(pending.popleft(), handle, bar)
    return rows


def _flush(item: tuple[int, Any], handle: Any, bar: Any) -> int:
    n, future = item
    handle.write(future.result())
    if bar is not None:
        bar.update(n)
    return n


def _csv_bytes(table: Any, header: bool) -> Any:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    _serialize(table, ".csv", sink, header=header)
    return sink.getvalue()


def _serialize(table: Any, suffix: str, sink: Any, *, header: bool) -> None:
    """One table as CSV (text quoted, unknown empty) or as a whole Parquet file into ``sink``."""
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, sink, store_schema=False)
        return
    import pyarrow as pa
    import pyarrow.csv as pc

    # Dictionary columns as they are (decoding them first costs more CPU than the writer saves);
    # unquoted, since no generated cell holds a comma, quote or line break (else quoted as needed).
    try:
        pc.write_csv(table, sink, pc.WriteOptions(include_header=header, quoting_style="none"))
    except pa.ArrowInvalid:
        pc.write_csv(table, sink, pc.WriteOptions(include_header=header))


def _write_parquet(tables: Iterator[Any], path: Path, pool: Any, bar: Any) -> int:
    """Row groups written in order while a worker thread builds the next chunk.

    Dictionary columns are stored as Parquet dictionary pages; the Arrow schema
    is not stored, so readers see plain text columns.
    """
    import pyarrow.parquet as pq

    rows = 0
    upcoming = pool.submit(next, tables, None)
    writer = None
    try:
        while (table := upcoming.result()) is not None:
            upcoming = pool.submit(next, tables, None)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, store_schema=False)
            writer.write_table(table)
            rows += table.num_rows
            if bar is not None:
                bar.update(table.num_rows)
    finally:
        if writer is not None:
            writer.close()
    return rows


def _size_text(size: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size:,.0f} bytes"


def _time_text(seconds: float) -> str:
    for unit, scale in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * scale:
            return f"{seconds / scale:,.1f} {unit}"
    return f"{seconds:.1f} s"


# --- cell form --------------------------------------------------------------------------------


def _cells(key: str, values: list, vocabulary: Vocabulary) -> list[np.ndarray]:
    """One numpy array of CSV cells per column the band fills."""
    if key in _layout(vocabulary).pair_of:
        pairs = np.array(values, dtype=float).reshape(len(values), 2)
        return [pairs[:, 0], pairs[:, 1]]
    return [_cell_array(vocabulary.facts[key], values)]


def _cell_array(spec: FactSpec, values: Sequence) -> np.ndarray:
    if spec.kind == "number":
        return np.array(values, dtype=float)
    return np.array([_cell(spec, v) for v in values], dtype=object)


def _cell(spec: FactSpec, value: object) -> object:
    if spec.kind == "set":
        return ";".join(m for m in spec.allowed if m in value)  # type: ignore[operator]
    if spec.kind == "bool":
        return "true" if value else "false"
    return value


def _default_column(spec: FactSpec, n: int) -> np.ndarray:
    if spec.kind == "number":
        return np.full(n, np.nan)
    return np.full(n, _cell(spec, spec.default), dtype=object)


# --- thresholds -------------------------------------------------------------------------------


def _thresholds(rulebook: Rulebook) -> dict[str, list[float]]:
    """Every number a comparison in the rules (and accepted gaps) uses, by fact or measure."""
    found: dict[str, set[float]] = {}
    conditions: list[Condition] = [c for rule in rulebook.rules for c in rule.when]
    conditions += [c for gap in rulebook.accepted_gaps for c in gap.when]
    for condition in conditions:
        if condition.kind == "fact" and condition.op in _THRESHOLD_OPS:
            found.setdefault(condition.fact, set()).add(float(condition.value))
    return {name: sorted(values) for name, values in found.items()}


def _step(thresholds: Sequence[float]) -> float:
    """'Just below/above' distance: a hundredth of the order of magnitude of the smallest threshold or gap."""
    sizes = [abs(t) for t in thresholds] + [b - a for a, b in zip(thresholds, thresholds[1:])]
    smallest = min((s for s in sizes if s > 0), default=1.0)
    return 10.0 ** (math.floor(math.log10(smallest)) - 2)


def _digits(step: float) -> int:
    return max(0, -int(round(math.log10(step)))) + 1


def _number_values(spec: FactSpec, thresholds: Sequence[float]) -> list[float]:
    """Known values worth testing for one number: around each threshold, and typical ones between."""
    lo, hi = _range(spec)
    if not thresholds:
        return [_typical(lo, hi)]
    step = _step(thresholds)
    digits = _digits(step)
    values: list[float] = []
    for t in thresholds:
        values += [round(t - step, digits), t, round(t + step, digits)]
    values += _typicals(thresholds, step, lo, hi, digits)
    return sorted(_unique(v for v in values if lo <= v <= hi))


def _typicals(thresholds: Sequence[float], step: float, lo: float, hi: float, digits: int) -> list[float]:
    """One value inside every interval the thresholds cut the range into (when there is room)."""
    gaps = [b - a for a, b in zip(thresholds, thresholds[1:])]
    spread = max(gaps) if gaps else max(abs(thresholds[0]), 1.0)
    below = thresholds[0] - spread / 2
    if below < lo:
        below = (lo + thresholds[0]) / 2
    above = thresholds[-1] + spread / 2
    if above > hi:
        above = (hi + thresholds[-1]) / 2
    middles = [(a + b) / 2 for a, b in zip(thresholds, thresholds[1:])]
    out = []
    for value, low, high in [(below, -math.inf, thresholds[0]), (above, thresholds[-1], math.inf),
                             *[(m, a, b) for m, a, b in zip(middles, thresholds, thresholds[1:])]]:
        value = round(value, digits)
        if low + step < value < high - step:
            out.append(value)
    return out


def _range(spec: FactSpec) -> tuple[float, float]:
    lo = -math.inf if spec.minimum is None else float(spec.minimum)
    hi = math.inf if spec.maximum is None else float(spec.maximum)
    return lo, hi


def _typical(lo: float, hi: float) -> float:
    """A middle value of a range; 0 (no change) clamped into it when the range is open."""
    if math.isfinite(lo) and math.isfinite(hi):
        return (lo + hi) / 2
    return min(max(0.0, lo), hi)


def _unique(values: Iterable) -> list:
    seen: set[str] = set()
    out = []
    for value in values:
        key = repr(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _subsets(spec: FactSpec) -> list[frozenset[str]]:
    """Every subset of a set fact's members, smallest first."""
    members = spec.allowed
    return [frozenset(c) for size in range(len(members) + 1) for c in combinations(members, size)]


# --- paired facts (measures) ------------------------------------------------------------------


def _pair_names(measure: str, vocabulary: Vocabulary) -> tuple[str, str]:
    """(current, baseline) fact names of a measure."""
    current, baseline = vocabulary.measure_inputs[measure]
    return current, baseline


def _pair_band(measure: str, thresholds: dict[str, list[float]], vocabulary: Vocabulary
               ) -> list[tuple[float, float]]:
    """(current, baseline) pairs reaching every threshold on the current fact, the baseline and the measure.

    Besides unknown/known combinations, every current value is paired with a
    baseline putting the measure just below, exactly at and just above each
    of its thresholds (and at typical values between them), so joint
    conditions such as ``upcr < 3`` *and* ``upcr_reduction_pct >= 50`` are probed.
    """
    current, baseline = _pair_names(measure, vocabulary)
    facts = vocabulary.facts
    currents = _number_values(facts[current], thresholds.get(current, []))
    baselines = _number_values(facts[baseline], thresholds.get(baseline, []))
    typical_current = _typical_of(facts[current], thresholds.get(current, []))
    typical_baseline = _typical_of(facts[baseline], thresholds.get(baseline, []))
    pairs: list[tuple[float, float]] = [(math.nan, math.nan), (typical_current, math.nan),
                                        (math.nan, typical_baseline)]
    limits = thresholds.get(measure, [])
    targets = _number_values(vocabulary.measures[measure], limits)
    grid_current = np.repeat(np.asarray(currents, dtype=float), len(targets))
    grid_target = np.tile(np.asarray(targets, dtype=float), len(currents))
    exact = np.isin(grid_target, limits)
    tolerance = _step(limits) / 10 if limits else 1.0
    found = _baselines_for(measure, grid_current, grid_target, exact, tolerance, vocabulary)
    pairs += [(c, b) for c, b in zip(grid_current.tolist(), found.tolist()) if not math.isnan(b)]
    if thresholds.get(baseline):
        pairs += [(typical_current, b) for b in baselines]
    return _unique(pairs)


def _typical_of(spec: FactSpec, thresholds: Sequence[float]) -> float:
    """A value away from every threshold, for the side of a pair that is not being probed."""
    lo, hi = _range(spec)
    if not thresholds:
        return _typical(lo, hi)
    step = _step(thresholds)
    typicals = _typicals(thresholds, step, lo, hi, _digits(step))
    return typicals[len(typicals) // 2] if typicals else thresholds[0]


def _measure(measure: str, current: np.ndarray, baseline: np.ndarray, vocabulary: Vocabulary) -> np.ndarray:
    """The measure exactly as the engines compute it (:func:`compute_measures`)."""
    name_current, name_baseline = _pair_names(measure, vocabulary)
    arrays = {name: np.full(len(baseline), np.nan) for pair in vocabulary.measure_inputs.values() for name in pair}
    arrays[name_current] = np.asarray(current, dtype=float)
    arrays[name_baseline] = np.asarray(baseline, dtype=float)
    return compute_measures(arrays, vocabulary)[measure]


def _baselines_for(measure: str, current: np.ndarray, target: np.ndarray, exact: np.ndarray,
                   tolerance: float, vocabulary: Vocabulary) -> np.ndarray:
    """Per (current, target): a short decimal baseline giving the target; NaN when out of range.

    ``exact`` targets must be reached exactly, the others within ``tolerance``.
    Solved by bisection over the baseline fact's range with the engines' own
    formula, so the value reached is the value the rules will see.
    """
    _, baseline_name = _pair_names(measure, vocabulary)
    lo, hi = _range(vocabulary.facts[baseline_name])
    a = np.full(len(target), max(lo, 1e-9))
    b = np.full(len(target), hi)
    f_a, f_b = _measure(measure, current, a, vocabulary), _measure(measure, current, b, vocabulary)
    reachable = (np.fmin(f_a, f_b) <= target) & (target <= np.fmax(f_a, f_b))
    rising = f_b > f_a
    for _ in range(200):
        mid = (a + b) / 2
        below = (_measure(measure, current, mid, vocabulary) < target) == rising
        a = np.where(below, mid, a)
        b = np.where(below, b, mid)
    chosen = np.full(len(target), np.nan)
    center = (a + b) / 2
    for candidate in [*(np.round(center, d) for d in range(16)), center, a, b]:
        value = _measure(measure, current, candidate, vocabulary)
        good = np.where(exact, value == target, np.abs(value - target) <= tolerance)
        take = reachable & good & np.isnan(chosen)
        chosen[take] = candidate[take]
    return chosen


@dataclass(frozen=True)
class _Layout:
    """How a vocabulary's facts form bands: measures pair their current and baseline facts."""

    pair_of: dict[str, str]  # current fact -> its measure
    baselines: frozenset[str]  # baseline facts (no band of their own)
    aliases: dict[str, str]  # baseline fact or measure -> the band key (its current fact)
    band_keys: tuple[str, ...]


@lru_cache(maxsize=16)
def _layout(vocabulary: Vocabulary) -> _Layout:
    """The band layout of one vocabulary (its measure_inputs list each measure's (current, baseline))."""
    inputs = vocabulary.measure_inputs
    baselines = frozenset(baseline for _, baseline in inputs.values())
    aliases = {**{baseline: current for current, baseline in inputs.values()},
               **{m: current for m, (current, _) in inputs.items()}}
    return _Layout({current: m for m, (current, _) in inputs.items()}, baselines, aliases,
                   tuple(name for name in vocabulary.facts if name not in baselines))
