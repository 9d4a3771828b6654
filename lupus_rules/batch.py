"""Batches: evaluate many patients (one per row) with either engine, in memory or streamed from files.

:func:`run_batch` evaluates a pandas DataFrame (or a Dask DataFrame, partition by
partition) and returns the input columns plus the outcome columns
(:data:`OUTCOME_COLUMNS`). :func:`run_file` streams a CSV or Parquet file through
the same chunk code with bounded memory and a progress bar, writes CSV or
Parquet (by the output's suffix) and returns a :class:`BatchSummary`. There,
each chunk is written in a thread of its own while the next is read and
evaluated (pyarrow's writers release the GIL); one chunk at most waits for
the writer, so memory does not grow with the file.

A row with bad facts gets its ``error`` (naming each field, the value and what
is allowed) and empty outcome columns; every other row is still evaluated. An
unknown column is refused before anything is evaluated, so a misspelt fact is
never silently ignored.

Not for clinical use: results are for prototyping and teaching.
"""
from __future__ import annotations

import io
import math
import multiprocessing
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .csvtext import MAX_ROW_BYTES, _csv_records, _parse_record
from .csvtext import header_text as _header_text
from .errors import BatchInputError, EngineError, PatientValidationError
from .facts import validate_frame
from .output import SUFFIXES, atomic_output, check_output_path
from .rows import (
    OUTCOME_COLUMNS,
    PASSTHROUGH_COLUMNS,
    PASSTHROUGH_PREFIX,
    FILE_ENGINES,
    BatchSummary,
    _check_options,
    _check_paths,
    _reading,
    _rulebook,
    check_columns,
    failure_reasons,
)
from .plainrun import run_plain_file, takes_plain_path
from .rulebook import Rulebook, rulebook_from_documents

__all__ = [
    "OUTCOME_COLUMNS",
    "PASSTHROUGH_COLUMNS",
    "PASSTHROUGH_PREFIX",
    "MAX_ROW_BYTES",
    "POOL_MIN_ROWS",
    "SUFFIXES",
    "BatchInputError",
    "BatchSummary",
    "check_columns",
    "failure_reasons",
    "run_batch",
    "run_file",
    "write_chunks",
]

#: Below this many rows (in a run's first chunk) the durable engine runs in this process:
#: starting worker processes costs about a second.
POOL_MIN_ROWS = 500

_OUTCOMES = OUTCOME_COLUMNS[:OUTCOME_COLUMNS.index("error")]  # what an engine decides


# --- evaluating one chunk ---------------------------------------------------------------------


def _text(values: Sequence[str] | pd.Series, index: pd.Index) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.astype("str")
    return pd.Series(np.asarray(values, dtype=object), index=index, dtype="str")


def _outcome_frame(index: pd.Index, outcomes: dict[str, Sequence[str] | pd.Series],
                   errors: Sequence[str] | pd.Series, rulebook: Rulebook, engine: str) -> pd.DataFrame:
    """The outcome columns of one chunk, all text, indexed like the chunk."""
    columns = {name: _text(outcomes[name], index) for name in _OUTCOMES}
    columns["error"] = _text(errors, index)
    for name, value in (("rulebook_version", rulebook.version), ("engine", engine)):
        columns[name] = pd.Series(value, index=index, dtype="str")
    return pd.DataFrame(columns, index=index)


def _vectorized_outcomes(chunk: pd.DataFrame, facts: list[str], rulebook: Rulebook) -> pd.DataFrame:
    from .engines.vectorized import evaluate_frame

    typed, errors = validate_frame(chunk[facts], rulebook.vocabulary)
    outcomes = evaluate_frame(typed, rulebook)
    good = errors == ""
    if not good.all():
        outcomes = outcomes.where(good, "")
    return _outcome_frame(chunk.index, {name: outcomes[name] for name in _OUTCOMES}, errors, rulebook,
                          "vectorized")


def _records(chunk: pd.DataFrame, facts: list[str]) -> list[dict[str, object]]:
    """Each row's facts as a dict; missing cells (NaN, None, pd.NA) become None."""
    frame = chunk[facts].astype(object)
    frame = frame.where(frame.notna(), None)
    return frame.to_dict("records")


def _patient_rows(records: list[dict[str, object]], rulebook: Rulebook,
                  engine: str = "durable") -> list[tuple[str, ...]]:
    """The outcome cells then the error per record, one patient at a time (durable or python engine)."""
    from .evaluate import evaluate

    out: list[tuple[str, ...]] = []
    for record in records:
        try:
            row = evaluate(record, rulebook, engine).to_row()
        except PatientValidationError as exc:
            out.append(("",) * len(_OUTCOMES) + (str(exc),))
        else:
            out.append((*(row[name] for name in _OUTCOMES), ""))
    return out


class _Evaluator:
    """Evaluates chunks with one engine and rulebook; owns the durable worker pool, if any.

    The pool is started on first use and reused for every chunk of a run, so a
    streamed file pays the workers' start-up once. Each worker process builds
    its own rulebook and durable host (durable-rules must never be shared).
    """

    def __init__(self, engine: str, rulebook: Rulebook, processes: int):
        self.engine = engine
        self.rulebook = rulebook
        self.processes = processes
        self._pool: Any = None

    def __enter__(self) -> _Evaluator:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if self._pool is not None:
            if kind is None:
                self._pool.close()
            else:  # a failed run must not wait for queued work
                self._pool.terminate()
            self._pool.join()
            self._pool = None

    def evaluate(self, chunk: pd.DataFrame, read_errors: Sequence[str] | None = None) -> pd.DataFrame:
        """The chunk's columns, unchanged, followed by :data:`OUTCOME_COLUMNS`.

        A row with a non-empty ``read_errors`` entry (a row the file reader
        could not read) is not evaluated: its ``error`` is that entry.
        """
        facts = check_columns(chunk.columns, self.rulebook.vocabulary)
        unread = None if read_errors is None else np.asarray(read_errors, dtype=object) != ""
        work = chunk
        if unread is not None and unread.any():
            work = chunk.copy()
            work.loc[unread, facts] = ""  # unknown: its cells are not facts
        if self.engine == "vectorized":
            outcomes = _vectorized_outcomes(work, facts, self.rulebook)
        else:
            outcomes = self._one_by_one_outcomes(work, facts)
        if unread is not None and unread.any():
            outcomes.loc[unread, list(_OUTCOMES)] = ""
            outcomes.loc[unread, "error"] = np.asarray(read_errors, dtype=object)[unread]
        return pd.concat([chunk, outcomes], axis=1)

    def _one_by_one_outcomes(self, chunk: pd.DataFrame, facts: list[str]) -> pd.DataFrame:
        """Outcomes one patient at a time: durable (in worker processes for many rows) or python (here)."""
        records = _records(chunk, facts)
        if self.engine == "python":
            rows = _patient_rows(records, self.rulebook, "python")
        elif self.processes == 1 or (self._pool is None and len(records) < POOL_MIN_ROWS):
            rows = _patient_rows(records, self.rulebook)
        else:
            rows = [row for part in self._pool_map(records) for row in part]
        columns = list(zip(*rows)) if rows else [()] * (len(_OUTCOMES) + 1)
        outcomes = dict(zip(_OUTCOMES, columns[:len(_OUTCOMES)]))
        return _outcome_frame(chunk.index, outcomes, columns[len(_OUTCOMES)], self.rulebook, self.engine)

    def _pool_map(self, records: list[dict[str, object]]) -> list[list[tuple[str, ...]]]:
        if self._pool is None:
            self._pool = _start_pool(self.rulebook, self.processes)
        size = max(1, math.ceil(len(records) / (self.processes * 4)))
        slices = [records[i:i + size] for i in range(0, len(records), size)]
        return self._pool.map(_worker_rows, slices)


# --- durable worker processes -----------------------------------------------------------------

_WORKER_RULEBOOK: Rulebook | None = None
_WORKER_FAILURE: Exception | None = None


def _start_pool(rulebook: Rulebook, processes: int) -> Any:
    """A pool of worker processes, each holding the rulebook rebuilt from its (plain data) documents.

    Uses the ``forkserver`` start method where available (``spawn`` elsewhere):
    forking a process that runs threads (progress bars, notebooks, Dask) is unsafe.
    As with any multiprocessing code, a script calling this needs the
    ``if __name__ == "__main__":`` guard.
    """
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":  # workers fork from a server with these imported
        context.set_forkserver_preload(["lupus_rules.batch", "lupus_rules.evaluate", "lupus_rules.engines.durable"])
    payload = (rulebook.to_documents(), rulebook.version, rulebook.source)
    return context.Pool(processes, initializer=_init_worker, initargs=payload)


def _init_worker(documents: list[tuple[str, dict[str, Any]]], version: str, source: str) -> None:
    # An initializer that raises makes the pool restart workers forever: keep the error for the first task.
    global _WORKER_RULEBOOK, _WORKER_FAILURE
    try:
        _WORKER_RULEBOOK = _rebuild(documents, version, source)
    except Exception as exc:  # noqa: BLE001 (re-raised by _worker_rows)
        _WORKER_FAILURE = exc


def _rebuild(documents: list[tuple[str, dict[str, Any]]], version: str, source: str) -> Rulebook:
    """The rulebook from its documents; refuses if the content hash differs (never mix rule versions)."""
    book = rulebook_from_documents(documents, source=source)
    if book.version != version:
        raise EngineError(f"rulebook rebuilt in a worker has version {book.version}, expected {version}")
    return book


def _worker_rows(records: list[dict[str, object]]) -> list[tuple[str, ...]]:
    if _WORKER_FAILURE is not None:
        raise _WORKER_FAILURE
    if _WORKER_RULEBOOK is None:
        raise EngineError("durable worker process started without its rulebook")
    return _patient_rows(records, _WORKER_RULEBOOK)


# --- in memory --------------------------------------------------------------------------------


def run_batch(data: Any, engine: str = "vectorized", rulebook: Rulebook | str | Path | None = None, *,
              chunk_size: int = 100_000, progress: bool = False, processes: int = 2) -> Any:
    """Evaluate every row of ``data`` (one patient per row, one column per fact).

    Returns the input columns unchanged plus :data:`OUTCOME_COLUMNS`:
    ``preferred``, ``recommendations``, ``flags``, ``fired_rules`` (lists
    ``';'``-separated, rules in firing order), ``error`` (``''`` when the row
    is fine, else every bad field with its value and what is allowed; the
    outcome columns are then empty), ``rulebook_version`` and ``engine``.

    ``engine``: ``"vectorized"`` (column masks, fast), ``"durable"``
    (durable-rules, one patient at a time, in ``processes`` worker processes;
    ``processes=1`` evaluates in this process) or ``"python"`` (the rules
    read directly, one patient at a time, in this process). ``rulebook``: a
    :class:`~lupus_rules.rulebook.Rulebook`, a path to rule files, or
    ``None`` for the shipped one. Rows are evaluated ``chunk_size`` at a time,
    with a tqdm progress bar when ``progress``.

    ``data`` may also be a Dask DataFrame (extra ``dask``): the result is then
    a *lazy* Dask DataFrame with the same columns, each partition evaluated by
    the same chunk code on the workers (durable: in each worker process,
    ``processes`` is ignored); call ``.compute()`` for pandas. ``progress`` is
    ignored there (use Dask's diagnostics).

    Raises :class:`BatchInputError` for an unknown column (before evaluating
    anything) or a bad option. Not for clinical use.
    """
    _check_options(engine, chunk_size, processes)
    book = _rulebook(rulebook)
    if _is_dask(data):
        return _run_dask(data, engine, book, chunk_size)
    if not isinstance(data, pd.DataFrame):
        raise BatchInputError(f"data: got {type(data).__name__}; allowed: a pandas or Dask DataFrame")
    check_columns(data.columns, book.vocabulary)
    with _Evaluator(engine, book, processes) as evaluator:
        parts = [evaluator.evaluate(chunk) for chunk in _progress(_slices(data, chunk_size), len(data), progress)]
    return parts[0] if len(parts) == 1 else pd.concat(parts)


def _slices(data: pd.DataFrame, chunk_size: int) -> Iterator[pd.DataFrame]:
    """Consecutive row slices; at least one (possibly empty) so the result always has its columns."""
    yield data.iloc[:chunk_size]
    for start in range(chunk_size, len(data), chunk_size):
        yield data.iloc[start:start + chunk_size]


def _progress(chunks: Iterable[pd.DataFrame], total: int | None, enabled: bool,
              desc: str = "evaluating") -> Iterator[pd.DataFrame]:
    """Yield the chunks while a tqdm bar (terminal or notebook) counts their rows."""
    if not enabled:
        yield from chunks
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="rows", unit_scale=True, desc=desc) as bar:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk))


# --- Dask -------------------------------------------------------------------------------------


def _is_dask(data: object) -> bool:
    return type(data).__module__.split(".")[0] in ("dask", "dask_expr")


def _run_dask(data: Any, engine: str, rulebook: Rulebook, chunk_size: int) -> Any:
    """Lazy per-partition evaluation; the rulebook travels as plain documents plus its version."""
    check_columns(data.columns, rulebook.vocabulary)
    payload = (rulebook.to_documents(), rulebook.version, rulebook.source)
    meta = _evaluate_partition(data._meta, engine, payload, chunk_size)
    return data.map_partitions(_evaluate_partition, engine, payload, chunk_size, meta=meta)


_PARTITION_RULEBOOKS: dict[str, Rulebook] = {}


def _evaluate_partition(partition: pd.DataFrame, engine: str, payload: tuple, chunk_size: int) -> pd.DataFrame:
    """One Dask partition through the same chunk code as :func:`run_batch` (durable: in this process)."""
    documents, version, source = payload
    book = _PARTITION_RULEBOOKS.get(version)
    if book is None:
        book = _PARTITION_RULEBOOKS[version] = _rebuild(documents, version, source)
    with _Evaluator(engine, book, processes=1) as evaluator:
        parts = [evaluator.evaluate(chunk) for chunk in _slices(partition, chunk_size)]
    return parts[0] if len(parts) == 1 else pd.concat(parts)


# --- files ------------------------------------------------------------------------------------


def run_file(input_path: str | Path, output_path: str | Path, engine: str = "auto",
             rulebook: Rulebook | str | Path | None = None, chunk_size: int = 100_000,
             progress: bool = True, processes: int = 2, *, excel_safe: bool = False,
             scheduler: str | None = None) -> BatchSummary:
    """Stream a CSV or Parquet file of patients through :func:`run_batch`'s chunk code into a file.

    Reads ``chunk_size`` rows at a time (CSV: every cell as text, empty =
    unknown, LF, CRLF or CR line ends; Parquet: record batches), evaluates them
    and appends them to the output, CSV or Parquet by ``output_path``'s suffix,
    so memory stays bounded whatever the file size. Output rows keep the input
    order. A CSV row that cannot be read (a ragged row, a row over
    :data:`MAX_ROW_BYTES`, bytes that are not UTF-8) fails alone: it is written
    with its ``error`` naming its line and the problem, every other row is
    evaluated. The output location is checked before any work and the output
    appears only when complete (see :func:`write_chunks`). ``excel_safe`` (off
    by default, CSV output only): prefix formula-like text cells with ``'``, see
    :func:`write_chunks`. A Parquet input with list or struct columns can be
    written to Parquet only: a CSV output is refused before any work. Shows a tqdm bar when ``progress``. Returns a
    :class:`BatchSummary`. Raises :class:`BatchInputError` for unusable input
    (missing file, unusable output path, unknown suffix or column) before
    writing anything.

    ``scheduler`` (extra ``dask``): run on a Dask cluster instead, with
    :func:`lupus_rules.cluster.run_on_cluster`: ``"local:N"`` (N local worker
    processes) or a scheduler address (``"tcp://host:8786"``). The input may
    then also be a folder of Parquet (or CSV) files, ``output_path`` names a
    new folder that the workers fill with ``part-N.parquet`` files, nothing
    but counts returns to this process, and a
    :class:`~lupus_rules.cluster.ClusterSummary` is returned (``processes`` is
    not used; ``excel_safe`` is refused: the output is Parquet).

    ``engine``: ``"auto"`` (default): a CSV input of at most
    :data:`~lupus_rules.plainrun.SMALL_CSV_BYTES` (256 KiB) to a CSV output
    runs in pure Python with the python engine (no numpy, pandas or pyarrow:
    :mod:`lupus_rules.plainrun`, no progress bar), anything else with the
    vectorized engine; the output's ``engine`` column and the summary name the
    engine that ran, and the two paths write the same bytes but for that
    column. ``"python"``: CSV to CSV always takes the pure-Python path (other
    formats: the python engine chunk by chunk). ``"vectorized"``,
    ``"durable"``: that engine, as described above.
    """
    if scheduler is not None:
        if excel_safe:
            raise BatchInputError("excel_safe: applies to CSV output; with a scheduler the output is a "
                                  "folder of Parquet parts")
        from .cluster import run_on_cluster

        return run_on_cluster(input_path, output_path, scheduler, "vectorized" if engine == "auto" else engine,
                              rulebook, chunk_size=chunk_size, progress=progress)
    source, target = Path(input_path), Path(output_path)
    _check_options(engine, chunk_size, processes, FILE_ENGINES)
    _check_paths(source, target)
    book = _rulebook(rulebook)
    if takes_plain_path(engine, source, target):
        return run_plain_file(source, target, book, excel_safe=excel_safe)
    engine = "vectorized" if engine == "auto" else engine
    check_columns(_read_columns(source), book.vocabulary)
    _check_flat(source, target)
    summary = BatchSummary(book.version, engine, output=str(target), vocabulary=book.vocabulary)
    total = _count_rows(source) if progress else None
    started = time.perf_counter()
    with _Evaluator(engine, book, processes) as evaluator:
        chunks = _reading(source, _read_chunks(source, chunk_size))
        results = (evaluator.evaluate(chunk, errors) for chunk, errors in chunks)
        write_chunks(_counted(results, summary), target, total=total, progress=progress,
                     excel_safe=excel_safe, inputs=(source,))
    summary.seconds = time.perf_counter() - started
    return summary


def _counted(results: Iterable[pd.DataFrame], summary: BatchSummary) -> Iterator[pd.DataFrame]:
    for result in results:
        summary.add(result)
        yield result


def write_chunks(chunks: Iterable[pd.DataFrame], path: str | Path, *, total: int | None = None,
                 progress: bool = False, desc: str = "evaluating", excel_safe: bool = False,
                 inputs: Iterable[str | Path] = ()) -> int:
    """Write frames one after another to one CSV or Parquet file (by suffix); returns the rows written.

    Each chunk is written in a writer thread while the next one is made
    (pyarrow's writers release the GIL), so memory holds at most three chunks:
    one being made, one waiting, one being written. The location is checked before the
    first chunk is made (suffix, folder exists and is writable, not one of
    ``inputs``); the rows go to a partial file unique to this run beside
    ``path``, which is fsynced and renamed into place only when complete
    (:func:`~lupus_rules.output.atomic_output`), so a failed, interrupted or
    concurrent run never leaves a truncated or mixed output. CSV: no index,
    empty cell = unknown (NaN). Parquet: the first chunk fixes the schema.
    ``total`` rows, if known, sizes the progress bar.

    ``excel_safe`` (CSV only): prefix every text cell that a spreadsheet would
    run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR, and
    not a plain number such as ``-1.5``) with a single quote ``'``. Off by
    default, so the output holds exactly the input's cells and reads back
    (``check-suite``, ``diff``, pandas) unchanged; turn it on for a file that
    will be opened in a spreadsheet. Numeric columns are never touched.
    """
    target = Path(path)
    with atomic_output(target, suffixes=SUFFIXES, inputs=inputs) as partial:
        with _Writer(partial, target.suffix.lower(), excel_safe=excel_safe) as writer:
            return _write_ahead(writer, _progress(chunks, total, progress, desc))


#: Write each chunk in a thread of its own while the next is made (off: in turn; private, for benchmarks).
_WRITE_AHEAD = True


def _write_ahead(writer: _Writer, chunks: Iterable[pd.DataFrame]) -> int:
    """Write every chunk with ``writer``, in order; returns the rows written.

    Each chunk goes to a writer thread while this thread makes the next one:
    pyarrow's writers release the GIL, so on two cores evaluating and writing
    overlap. At most one made chunk waits for the writer, so memory holds three
    chunks at most whatever the file size. A failed write stops the run at the
    next chunk and is raised here; a failure making chunks stops the writer
    before it writes anything more.
    """
    if not _WRITE_AHEAD:
        rows = 0
        for chunk in chunks:
            writer.write(chunk)
            rows += len(chunk)
        return rows
    handoff: queue.Queue[pd.DataFrame | None] = queue.Queue(maxsize=1)
    failed: list[BaseException] = []
    stop = threading.Event()
    thread = threading.Thread(target=_drain, args=(writer, handoff, failed, stop), name="lupus-rules-writer",
                              daemon=True)
    thread.start()
    rows = 0
    try:
        for chunk in chunks:
            if failed:
                break
            handoff.put(chunk)
            rows += len(chunk)
    except BaseException:
        stop.set()
        raise
    finally:
        handoff.put(None)
        thread.join()
    if failed:
        raise failed[0]
    return rows


def _drain(writer: _Writer, handoff: queue.Queue[pd.DataFrame | None], failed: list[BaseException],
           stop: threading.Event) -> None:
    """The writer thread: write chunks until ``None``; after a failure (or ``stop``) only take them."""
    while (chunk := handoff.get()) is not None:
        if failed or stop.is_set():
            continue
        try:
            writer.write(chunk)
        except BaseException as exc:  # noqa: BLE001 (raised in the calling thread by _write_ahead)
            failed.append(exc)


def _check_flat(source: Path, target: Path) -> None:
    """Refuse a CSV output of a Parquet input with nested (list, struct, map) columns: CSV cannot hold them."""
    if source.suffix.lower() != ".parquet" or target.suffix.lower() != ".csv":
        return
    import pyarrow.parquet as pq

    import pyarrow as pa

    schema = pq.read_schema(source)
    nested = [f.name for f in schema if f.type.num_fields > 0 or pa.types.is_binary(f.type)
              or pa.types.is_large_binary(f.type) or pa.types.is_fixed_size_binary(f.type)]
    if nested:
        raise BatchInputError(
            f"input {source}: column{'s' if len(nested) > 1 else ''} {', '.join(map(repr, nested))} "
            f"hold{'' if len(nested) > 1 else 's'} lists, structs or raw bytes, which CSV cannot hold; "
            f"allowed: a .parquet output {target.with_suffix('.parquet')}, or flatten the column")


def _read_columns(source: Path) -> list[str]:
    if source.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(source)
        except pa.ArrowException as exc:
            raise BatchInputError(f"input {source} is not a readable Parquet file: {exc}") from None
        index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
        return [name for name in schema.names if name not in index]  # pandas restores those as the index
    try:
        return list(pd.read_csv(io.StringIO(_header_text(source)), nrows=0).columns)
    except pd.errors.EmptyDataError:
        raise BatchInputError(f"input {source} is empty: a CSV needs a header row of fact names") from None
    except pd.errors.ParserError as exc:
        raise BatchInputError(f"input {source} has an unreadable header row: {exc}") from None



_Chunk = tuple[pd.DataFrame, "list[str] | None"]


def _read_chunks(source: Path, chunk_size: int) -> Iterator[_Chunk]:
    """(rows, read errors or None) ``chunk_size`` rows at a time; always at least one (possibly empty) chunk."""
    if source.suffix.lower() == ".parquet":
        for frame in _read_parquet(source, chunk_size):
            yield frame, None
        return
    yield from _read_csv(source, chunk_size, _read_columns(source))


def _read_parquet(source: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source)
        empty = True
        for batch in parquet.iter_batches(batch_size=chunk_size):
            empty = False
            yield batch.to_pandas()
        if empty:
            yield parquet.schema_arrow.empty_table().to_pandas()
    except pa.ArrowException as exc:
        raise BatchInputError(f"input {source} is not a readable Parquet file: {exc}") from None


def _count_rows(source: Path) -> int | None:
    """Rows in the file, for the progress bar: exact for Parquet; CSV lines after the header (cheap)."""
    if source.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(source).metadata.num_rows
    lf = cr = 0
    last = b"\n"
    with source.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lf += block.count(b"\n")
            cr += block.count(b"\r")
            last = block[-1:]
    lines = max(lf, cr) + (last not in (b"\n", b"\r"))
    return max(lines - 1, 0)


# --- CSV: a fast reader, and a careful one for the rows it refuses ----------------------------------
#
# pyarrow's streaming reader reads clean files. When it refuses a block (a ragged
# row, bytes that are not UTF-8, a row longer than its block), every row it handed
# over before is kept; the careful reader below then splits the rest of the file
# into records itself (the same rules as pyarrow: LF, CRLF and CR end a record
# outside quotes, a quote opens a quoted value only at the start of a cell, blank
# lines are skipped), skips the rows already read, fails each bad row alone with
# its line number, and hands back to pyarrow after a run of good rows.

#: A CSV row longer than this (bytes) fails with an error instead of being read; pyarrow's block size.
_CAREFUL_WINDOW = 2_000


def _cells() -> Any:
    """The Arrow type CSV cells are read as: large strings, what pandas' ``str`` holds, so none is converted."""
    import pyarrow as pa

    return pa.large_string()


def _text_bytes(table: Any) -> int:
    """At least the bytes of all cells of ``table``: its size, less 8 per offset when every column is :func:`_cells`."""
    if any(kind != _cells() for kind in table.schema.types):
        return table.nbytes
    return table.nbytes - 8 * table.num_rows * table.num_columns


def _read_csv(source: Path, chunk_size: int, columns: list[str]) -> Iterator[_Chunk]:
    """CSV rows as text (empty cell = ''), with read errors per row; re-cut to ``chunk_size``.

    Columns are named as pandas names them (a repeated header becomes
    ``x.1``, so a repeated fact is refused as an unknown column); quoted
    values may hold line ends.
    """
    names = [str(i) for i in range(len(columns))]
    tables: list[Any] = []
    errors: list[list[str] | None] = []
    held, yielded = 0, False
    for table, table_errors in _csv_pieces(source, names):
        tables.append(table)
        errors.append(table_errors)
        held += table.num_rows
        while held >= chunk_size:
            whole, whole_errors = _joined(tables, errors, names)
            yield _named(whole.slice(0, chunk_size), columns), _cut(whole_errors, 0, chunk_size)
            yielded = True
            tables, errors = [whole.slice(chunk_size)], [_cut(whole_errors, chunk_size, None)]
            held -= chunk_size
    if held or not yielded:
        whole, whole_errors = _joined(tables, errors, names) if tables else (_text_table([], names), None)
        yield _named(whole, columns), whole_errors


def _named(table: Any, columns: list[str]) -> pd.DataFrame:
    frame = table.to_pandas()
    frame.columns = columns
    return frame


def _joined(tables: list[Any], errors: list[list[str] | None], names: list[str]) -> tuple[Any, list[str] | None]:
    import pyarrow as pa

    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    if all(e is None for e in errors):
        return table, None
    joined: list[str] = []
    for part, part_errors in zip(tables, errors):
        joined.extend(part_errors if part_errors is not None else [""] * part.num_rows)
    return table, joined


def _cut(errors: list[str] | None, start: int, stop: int | None) -> list[str] | None:
    if errors is None:
        return None
    part = errors[start:stop]
    return part if any(part) else None


def _text_table(rows: list[list[str]], names: list[str]) -> Any:
    import pyarrow as pa

    columns = [pa.array([row[i] for row in rows], type=_cells()) for i in range(len(names))]
    return pa.Table.from_arrays(columns, schema=pa.schema([pa.field(n, _cells()) for n in names]))


def _csv_pieces(source: Path, names: list[str]) -> Iterator[tuple[Any, list[str] | None]]:
    """The file's rows in order, as text tables with positional column names, with read errors (or None)."""
    import pyarrow as pa

    start: tuple[int, int] | None = None  # (byte offset, line number) to resume at; None: the start
    while True:
        delivered = 0
        try:
            for table in _arrow_tables(source, names, None if start is None else start[0]):
                fits = _rows_that_fit(table)
                delivered += fits
                yield table.slice(0, fits), None
                if fits < table.num_rows:
                    raise pa.ArrowInvalid("a row over MAX_ROW_BYTES")
            return
        except pa.ArrowInvalid:
            pass  # the careful reader finds the row pyarrow refused
        start = yield from _careful_rows(source, names, start, delivered)
        if start is None:
            return


def _rows_that_fit(table: Any) -> int:
    """How many leading rows of ``table`` have cells of at most :data:`MAX_ROW_BYTES` in all."""
    import pyarrow.compute as pc

    if _text_bytes(table) <= MAX_ROW_BYTES - table.num_columns:  # then no row can be over: skip counting
        return table.num_rows
    sizes = None
    for column in table.columns:
        length = pc.fill_null(pc.binary_length(column), 0)
        sizes = length if sizes is None else pc.add(sizes, length)
    over = pc.greater(sizes, MAX_ROW_BYTES - table.num_columns).to_numpy(zero_copy_only=False)
    return int(over.argmax()) if over.any() else table.num_rows


def _arrow_tables(source: Path, names: list[str], offset: int | None) -> Iterator[Any]:
    """pyarrow's streaming reader from the start (header row) or from ``offset`` (a record start, no header)."""
    import pyarrow as pa
    import pyarrow.csv as pc

    if offset is None:
        if _header_only(source):  # pyarrow cannot parse a lone header without its line end
            return
        read = pc.ReadOptions(encoding="utf-8", block_size=MAX_ROW_BYTES)
        types = _header_types(source)
    else:
        read = pc.ReadOptions(encoding="utf-8", block_size=MAX_ROW_BYTES, column_names=names)
        types = dict.fromkeys(names, _cells())
    convert = pc.ConvertOptions(column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False)
    with source.open("rb") as handle:
        if offset is not None:
            handle.seek(offset)
        with pc.open_csv(handle, read_options=read, convert_options=convert,
                         parse_options=pc.ParseOptions(newlines_in_values=True)) as reader:
            for batch in reader:
                if batch.num_columns != len(names):
                    raise pa.ArrowInvalid(f"expected {len(names)} columns, got {batch.num_columns}")
                yield pa.Table.from_batches([batch]).rename_columns(names)


def _header_only(source: Path) -> bool:
    with source.open("rb") as handle:
        head = handle.read(1 << 16)
    body = head.rstrip(b"\r\n")
    return len(head) < 1 << 16 and b"\n" not in body and b"\r" not in body


def _header_types(source: Path) -> dict[str, Any]:
    """Text type for every name in the header as written (pyarrow keys types by the raw names)."""
    import csv

    import pyarrow as pa

    header = next(csv.reader([_header_text(source)]), [])
    return dict.fromkeys(header, _cells())


def _careful_rows(source: Path, names: list[str], start: tuple[int, int] | None,
                  skip: int) -> Iterator[tuple[Any, list[str] | None]]:
    """Rows from ``start`` on, after skipping ``skip`` rows, each read alone; returns where to resume pyarrow.

    Yields text tables with their read errors; stops after
    :data:`_CAREFUL_WINDOW` good rows following the last bad one and returns
    (offset, line) of the next record, or ``None`` at the end of the file.
    """
    import csv

    csv.field_size_limit(max(csv.field_size_limit(), MAX_ROW_BYTES))  # process-wide; only ever raised
    rows: list[list[str]] = []
    errors: list[str] = []
    good_run = 0
    with source.open("rb") as handle:
        offset, line = start if start is not None else (0, 1)
        handle.seek(offset)
        records = _csv_records(handle, offset, line)
        if start is None:
            next(records, None)  # the header row
        for record in records:
            if skip:
                skip -= 1
                continue
            cells, error = _parse_record(record, len(names))
            rows.append(cells)
            errors.append(error)
            good_run = 0 if error else good_run + 1
            if len(rows) >= _CAREFUL_WINDOW or good_run >= _CAREFUL_WINDOW:
                yield _text_table(rows, names), errors
                rows, errors = [], []
            if good_run >= _CAREFUL_WINDOW:
                return record.end, record.next_line
    if rows:
        yield _text_table(rows, names), errors
    return None


# --- writing ------------------------------------------------------------------------------------


class _Writer:
    """Appends result chunks to one CSV or Parquet file (by suffix), both written by pyarrow.

    The first chunk fixes the schema (a column with no values yet is text);
    later chunks are cast to it. pyarrow's CSV writer is about 20 times faster
    than pandas' and writes a missing value as an empty cell; it quotes text.
    ``excel_safe`` (CSV only) prefixes formula-like text cells with ``'``.
    """

    def __init__(self, path: Path, suffix: str, *, excel_safe: bool = False):
        self.path = path
        self.suffix = suffix
        self.excel_safe = excel_safe and suffix == ".csv"
        self._writer: Any = None
        self._schema: Any = None

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()

    def write(self, frame: pd.DataFrame) -> None:
        """Append one chunk (the first one also writes the CSV header or Parquet schema)."""
        import pyarrow as pa

        if self._writer is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
            self._schema = pa.schema(fields)
            self._writer = self._open(self._schema)
        try:
            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise BatchInputError(f"output {self.path.name}: a chunk does not fit the first chunk's columns "
                                  f"and types: {exc}") from None
        self._writer.write_table(_excel_safe(table) if self.excel_safe else table)

    def _open(self, schema: Any) -> Any:
        if self.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetWriter(self.path, schema, use_dictionary=_dictionary_columns(schema))
        import pyarrow.csv as pc

        return pc.CSVWriter(self.path, schema.remove_metadata())


#: Outcome columns whose texts are nearly all distinct in a real batch: Parquet gets them plain. pyarrow
#: would build a dictionary for each and drop it when it outgrows a page; the values read back are the same.
_PLAIN_COLUMNS = frozenset({"avoided", "fired_rules"})


def _dictionary_columns(schema: Any) -> bool | list[str]:
    """pyarrow's ``use_dictionary`` for a result: every column but :data:`_PLAIN_COLUMNS` (all of a nested schema)."""
    if any(f.type.num_fields > 0 for f in schema) or not _PLAIN_COLUMNS & set(schema.names):
        return True  # a nested column's dictionary is keyed by its leaf paths: keep pyarrow's default
    return [name for name in schema.names if name not in _PLAIN_COLUMNS]


def _excel_safe(table: Any) -> Any:
    """The table with every formula-like text cell prefixed by ``'`` (see :func:`~lupus_rules.output.formula_like`).

    Text columns and dictionary-encoded (categorical) text columns; other types are left alone.
    """
    import pyarrow as pa

    columns = []
    for column in table.columns:
        if _is_text(column.type):
            column = _safe_text(column)
        elif pa.types.is_dictionary(column.type) and _is_text(column.type.value_type):
            column = pa.chunked_array([pa.DictionaryArray.from_arrays(chunk.indices, _safe_text(chunk.dictionary))
                                       for chunk in column.chunks], type=column.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=table.schema)


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _safe_text(column: Any) -> Any:
    """A text array with its formula-like cells prefixed by ``'``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    risky = pc.and_(pc.match_substring_regex(column, r"^[=+\-@\t\r]"),
                    pc.invert(pc.match_substring_regex(column, _NUMBER_PATTERN)))
    quote, empty = pa.scalar("'", column.type), pa.scalar("", column.type)
    return pc.if_else(pc.fill_null(risky, False), pc.binary_join_element_wise(quote, column, empty), column)


_NUMBER_PATTERN = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
