"""Batches on a Dask cluster that keep results where they are: the workers read, evaluate and write.

:func:`run_on_cluster` splits a Parquet file (by row groups), a folder of
Parquet files, or CSV files (one partition per file) into partitions, sends
each partition's *description* (path and row groups, a few bytes) to a
worker of a ``distributed`` scheduler, and each worker reads its rows,
evaluates them with the same chunk code as :func:`~lupus_rules.batch.run_file`
(either engine; durable-rules runs in the worker process, one host per
process) and writes ``part-N.parquet`` into the output folder itself. Only a
small per-partition count (rows, failed rows by field, preferred agents)
travels back to the client, merged into a :class:`ClusterSummary`.

Input and output paths must be the same on the client and on every worker
(one machine, or shared storage such as NFS). Each part is written to a
temporary name and renamed when complete; the parts go to a hidden folder
beside the output, renamed onto the output only when every part is written,
so a failed or interrupted run leaves no output folder, never a partial one.

``dask`` and ``distributed`` (extra ``dask``) are imported only when a
cluster is used. Not for clinical use: results are for prototyping and teaching.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import signal
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batch import (
    BatchSummary,
    _Evaluator,
    _check_options,
    _read_chunks,
    _read_columns,
    _rebuild,
    _rulebook,
    check_columns,
    write_chunks,
)
from .errors import BatchInputError
from .output import SUFFIXES
from .rulebook import Rulebook

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_PARTITION_ROWS",
    "ClusterSummary",
    "check_output_dir",
    "input_files",
    "parse_scheduler",
    "run_on_cluster",
]

#: A Parquet partition gathers consecutive row groups until it holds at least this many rows.
DEFAULT_PARTITION_ROWS = 250_000
#: Seconds to wait for a scheduler to answer (and for it to have a worker).
DEFAULT_CONNECT_TIMEOUT = 10.0

_ALLOWED = "local:N (start N worker processes here, N >= 1) or a scheduler address such as tcp://host:8786"
_LOCAL = re.compile(r"local:([0-9][0-9_,]*)", re.IGNORECASE)
_DIGITS = re.compile(r"(\d+)")


# --- summary ----------------------------------------------------------------------------------


@dataclass
class ClusterSummary(BatchSummary):
    """A :class:`~lupus_rules.batch.BatchSummary` of a cluster run, plus what only a cluster has.

    ``preferred``: evaluated rows per preferred agent (``""``: no preferred
    agent; failed rows are not counted). ``partitions``: part files written in
    ``output`` (``part-N.parquet``, in input order). ``workers``: partitions per
    worker address. ``seconds``: reading, evaluating and writing (from the
    first task sent to the output in place); ``connect_seconds``: starting or
    reaching the cluster before that. Plain numbers and short texts only: a
    few hundred bytes whatever the number of rows.
    """

    preferred: dict[str, int] = field(default_factory=dict)
    partitions: int = 0
    scheduler: str = ""
    workers: dict[str, int] = field(default_factory=dict)
    connect_seconds: float = 0.0

    def format(self) -> str:
        """The summary as the CLI prints it, disclaimer first."""
        lines = [super().format()]
        if self.preferred:
            lines.append("preferred: " + ", ".join(
                f"{agent or 'none'} {n:,}" for agent, n in sorted(self.preferred.items(), key=lambda kv: (-kv[1], kv[0]))))
        lines.append(f"partitions: {self.partitions:,} written by {len(self.workers)} "
                     f"worker{'s' if len(self.workers) != 1 else ''}; scheduler {self.scheduler} "
                     f"(ready in {self.connect_seconds:.2f} s)")
        return "\n".join(lines)


def _merge(summary: ClusterSummary, counts: dict[str, Any]) -> None:
    summary.rows += counts["rows"]
    summary.failed += counts["failed"]
    for key, target in (("failures", summary.failures), ("preferred", summary.preferred)):
        for name, n in counts[key].items():
            target[name] = target.get(name, 0) + n
    summary.workers[counts["worker"]] = summary.workers.get(counts["worker"], 0) + 1
    summary.partitions += 1


# --- scheduler --------------------------------------------------------------------------------


def parse_scheduler(text: str) -> int | str:
    """``local:N`` as the number of worker processes ``N``; any other text as a scheduler address.

    Raises :class:`BatchInputError` for an empty value, ``local:`` without a
    whole number >= 1, or an address with spaces.
    """
    value = str(text).strip()
    if value.lower().startswith("local"):
        match = _LOCAL.fullmatch(value)
        workers = int(match.group(1).replace("_", "").replace(",", "")) if match else 0
        if workers < 1:
            raise BatchInputError(f"scheduler: got {text!r}; allowed: {_ALLOWED}")
        return workers
    if not value or any(c.isspace() for c in value):
        raise BatchInputError(f"scheduler: got {text!r}; allowed: {_ALLOWED}")
    return value


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise BatchInputError(f"a scheduler needs dask and distributed, which do not import ({exc}); "
                              "install them with: pip install 'lupus-rules[dask]'") from None
    return distributed


@contextmanager
def _client(scheduler: int | str, timeout: float) -> Iterator[Any]:
    """A connected ``distributed.Client`` with at least one worker; a ``local:N`` cluster is closed afterwards."""
    distributed = _distributed()
    if isinstance(scheduler, int):
        with _sigint_ignored_by_children():
            cluster = distributed.LocalCluster(n_workers=scheduler, threads_per_worker=1, processes=True,
                                               host="127.0.0.1", dashboard_address=None,
                                               silence_logs=logging.CRITICAL,
                                               # no dashboard; its HTTP server (health, metrics) on a free
                                               # port, not 8787, which another cluster may hold
                                               scheduler_kwargs={"dashboard": False,
                                                                 "dashboard_address": "127.0.0.1:0"})
        with cluster, distributed.Client(cluster, set_as_default=False) as client:
            yield client
        return
    from distributed.comm.addressing import get_address_host_port

    try:
        get_address_host_port(scheduler)
    except (ValueError, TypeError) as exc:
        raise BatchInputError(f"scheduler: got {scheduler!r} ({_reason(exc)}); allowed: {_ALLOWED}") from None
    try:
        client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise BatchInputError(
            f"scheduler {scheduler}: could not connect within {timeout:g} s ({_reason(exc)}); "
            f"start one with 'dask scheduler' (it prints its address) or use --scheduler local:N") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise BatchInputError(f"scheduler {scheduler} has no workers after {timeout:g} s ({_reason(exc)}); "
                                  f"start some with 'dask worker {scheduler}'") from None
        yield client


@contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """Ignore SIGINT while local workers are started, so that they inherit ignoring it (main thread only).

    Ctrl-C in a terminal signals the whole process group: the workers would
    each print a KeyboardInterrupt traceback. Ignored there (an ignored signal
    survives ``exec``, and Python then installs no handler), only this process
    is interrupted; it cancels the work and closes the cluster. A Ctrl-C
    during the start-up itself (about a second) is ignored too.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _worker_versions() -> tuple[str, str]:
    """(lupus_rules version, Python version) of the process this runs in (sent to every worker)."""
    import platform

    from . import __version__

    return __version__, platform.python_version()


def _check_workers(client: Any, scheduler: int | str) -> None:
    """Every worker imports this lupus_rules version (else tasks would fail one by one, later)."""
    try:
        versions = client.run(_worker_versions)
    except Exception as exc:  # noqa: BLE001 (whatever the worker raised: missing package, old Python)
        raise BatchInputError(f"the workers of scheduler {scheduler} cannot run lupus_rules ({_reason(exc)}); "
                              "install the same lupus_rules (pip install 'lupus-rules[dask]') on every worker") from None
    mine = _worker_versions()[0]
    other = {address: v for address, (v, _) in versions.items() if v != mine}
    if other:
        address, version = next(iter(other.items()))
        raise BatchInputError(f"worker {address} runs lupus_rules {version}, this client {mine}; "
                              "install the same version on every worker")


# --- input and output paths -------------------------------------------------------------------


def input_files(path: str | Path) -> list[Path]:
    """The files a run reads: ``path`` itself, or every ``.parquet`` (or every ``.csv``) file under the folder.

    A folder's files are taken in natural order of their paths (``part-2``
    before ``part-10``); names starting with ``.`` or ``_`` (``_SUCCESS``,
    ``_metadata``, partial files) are skipped. Raises :class:`BatchInputError`
    for a missing path, an unsupported suffix, a folder without such files
    or one mixing CSV and Parquet.
    """
    source = Path(path)
    if source.is_file():
        if source.suffix.lower() not in SUFFIXES:
            raise BatchInputError(f"input {source}: suffix {source.suffix or '(none)'!r} not supported; "
                                  f"allowed: {', '.join(SUFFIXES)}, or a folder of them")
        return [source]
    if not source.is_dir():
        raise BatchInputError(f"input not found: {source}")
    files = [p for p in source.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
             and not any(part.startswith((".", "_")) for part in p.relative_to(source).parts)]
    if not files:
        raise BatchInputError(f"input folder {source} holds no {' or '.join(SUFFIXES)} files")
    kinds = {p.suffix.lower() for p in files}
    if len(kinds) > 1:
        raise BatchInputError(f"input folder {source} mixes {' and '.join(sorted(kinds))} files; "
                              "allowed: files of one kind")
    return sorted(files, key=lambda p: [int(t) if t.isdigit() else t for t in _DIGITS.split(str(p.relative_to(source)))])


def check_output_dir(path: str | Path, inputs: list[Path] | tuple[Path, ...] = ()) -> Path:
    """``path`` as the output folder if a run may create it; else raise :class:`BatchInputError` naming it.

    Refused: an existing file, a folder that is not empty, a missing or
    unwritable parent folder, a folder inside the input folder or holding an
    input file.
    """
    target = Path(path)
    if target.is_file() or target.is_symlink() and not target.is_dir():
        raise BatchInputError(f"output {target} exists and is a file; allowed: a new (or empty) folder "
                              "for the part files")
    if target.is_dir() and any(target.iterdir()):
        raise BatchInputError(f"output folder {target} exists and is not empty; choose a new folder "
                              "or remove it first")
    parent = target.absolute().parent
    if not parent.is_dir():
        raise BatchInputError(f"output folder's parent not found: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BatchInputError(f"output {target}: folder {parent} is not writable")
    resolved = target.resolve()
    for source in inputs:
        where = Path(source).resolve()
        if resolved == where or resolved in where.parents or where in resolved.parents:
            raise BatchInputError(f"output folder {target} overlaps the input {source}; choose a folder "
                                  "outside the input")
    return target


# --- partitions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    """One partition: a file, and for Parquet its row groups (``()``: an empty file). Sent to a worker."""

    index: int
    path: str
    row_groups: tuple[int, ...] | None  # None: the whole (CSV) file
    rows: int | None  # known for Parquet, for the progress bar


def _columns_of(files: list[Path]) -> list[str]:
    """The input's columns, checked (:func:`~lupus_rules.batch.check_columns`); every file must have the same."""
    first: list[str] | None = None
    for path in files:
        columns = _read_columns(path)
        check_columns(columns)
        if first is None:
            first = columns
        elif columns != first:
            raise BatchInputError(f"input {path}: columns {', '.join(columns)} differ from "
                                  f"{files[0]}'s {', '.join(first)}; allowed: the same columns in every file")
    return first or []


def _pieces(files: list[Path], partition_rows: int) -> list[_Piece]:
    """Partitions in input order: consecutive row groups of a Parquet file up to ``partition_rows``; a CSV file whole."""
    pieces: list[_Piece] = []
    for path in files:
        if path.suffix.lower() != ".parquet":
            pieces.append(_Piece(len(pieces), str(path), None, None))
            continue
        groups: list[int] = []
        rows = 0
        for group, size in enumerate(_row_group_sizes(path)):
            if groups and rows + size > partition_rows:
                pieces.append(_Piece(len(pieces), str(path), tuple(groups), rows))
                groups, rows = [], 0
            groups.append(group)
            rows += size
        pieces.append(_Piece(len(pieces), str(path), tuple(groups), rows))
    return pieces


def _row_group_sizes(path: Path) -> list[int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
    except pa.ArrowException as exc:
        raise BatchInputError(f"input {path} is not a readable Parquet file: {exc}") from None
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


# --- on a worker ------------------------------------------------------------------------------

_WORKER_RULEBOOKS: dict[str, Rulebook] = {}


def _pack(book: Rulebook) -> tuple[Any, str, str]:
    """The rulebook as every task carries it: its documents as compressed JSON (about 13 kB), version, source.

    Sent inside each task (scheduler to worker), so no task result has to be
    fetched between workers. Documents JSON cannot hold travel as they are.
    """
    documents = book.to_documents()
    try:
        packed: Any = zlib.compress(json.dumps(documents).encode("utf-8"), 6)
    except (TypeError, ValueError):
        packed = documents
    return packed, book.version, book.source


def _worker_rulebook(payload: tuple[Any, str, str]) -> Rulebook:
    """The payload's rulebook, rebuilt once per version in this process (its content hash checked)."""
    packed, version, source = payload
    book = _WORKER_RULEBOOKS.get(version)
    if book is None:
        documents = packed
        if isinstance(packed, bytes):
            documents = [tuple(item) for item in json.loads(zlib.decompress(packed).decode("utf-8"))]
        book = _WORKER_RULEBOOKS[version] = _rebuild(documents, version, source)
    return book


def _piece_chunks(piece: _Piece, chunk_size: int) -> Iterator[tuple[Any, list[str] | None]]:
    """The partition's rows ``chunk_size`` at a time, with read errors (CSV) as :func:`run_file` reads them.

    A read failure names the input (not the part being written).
    """
    import pyarrow as pa

    path = Path(piece.path)
    try:
        yield from _read_piece(piece, path, chunk_size)
    except pa.ArrowException as exc:
        raise BatchInputError(f"input {path} is not a readable Parquet file: {exc}") from None
    except OSError as exc:  # includes pyarrow's errors for damaged data (corrupt compressed pages)
        raise BatchInputError(f"input {path}: could not read ({exc.strerror or exc})") from None


def _read_piece(piece: _Piece, path: Path, chunk_size: int) -> Iterator[tuple[Any, list[str] | None]]:
    if piece.row_groups is None:
        yield from _read_chunks(path, chunk_size)
        return
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if not piece.row_groups:
        yield parquet.schema_arrow.empty_table().to_pandas(), None
        return
    for batch in parquet.iter_batches(batch_size=chunk_size, row_groups=list(piece.row_groups)):
        yield batch.to_pandas(), None


def _run_piece(piece: _Piece, folder: str, width: int, engine: str, payload: tuple, chunk_size: int) -> dict[str, Any]:
    """Evaluate one partition in this (worker) process and write it as ``part-N.parquet`` in ``folder``.

    Returns the partition's counts only: rows, failed, failures by field,
    preferred agents, the worker's address.
    """
    book = _worker_rulebook(payload)
    version = book.version
    counts = BatchSummary(version, engine)
    preferred: Counter[str] = Counter()

    def counted(results: Iterator[Any]) -> Iterator[Any]:
        for result in results:
            counts.add(result)
            preferred.update(result["preferred"][result["error"] == ""].astype(str).tolist())
            yield result

    target = Path(folder) / f"part-{piece.index:0{width}d}.parquet"
    with _Evaluator(engine, book, processes=1) as evaluator:
        results = (evaluator.evaluate(chunk, errors) for chunk, errors in _piece_chunks(piece, chunk_size))
        write_chunks(counted(results), target)
    return {"rows": counts.rows, "failed": counts.failed, "failures": dict(counts.failures),
            "preferred": dict(preferred), "worker": _worker_name()}


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):  # not in a worker (called directly)
        return f"pid {os.getpid()}"


# --- on the client ----------------------------------------------------------------------------


def run_on_cluster(input_path: str | Path, output_dir: str | Path, scheduler: str,
                   engine: str = "vectorized", rulebook: Rulebook | str | Path | None = None, *,
                   chunk_size: int = 100_000, partition_rows: int = DEFAULT_PARTITION_ROWS,
                   progress: bool = False, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> ClusterSummary:
    """Evaluate a Parquet (or CSV) input on a Dask cluster; the workers write the results, the client gets counts.

    ``input_path``: a ``.parquet`` or ``.csv`` file, or a folder of them
    (:func:`input_files`). Partitions: consecutive row groups of each Parquet
    file up to ``partition_rows`` rows (a file with one big row group is one
    partition), each CSV file whole. ``output_dir``: a new (or empty) folder
    (:func:`check_output_dir`); it receives ``part-N.parquet``, one per
    partition, numbered in input order, so the parts read in name order are
    the input rows in order with :data:`~lupus_rules.batch.OUTCOME_COLUMNS`
    (``rulebook_version`` on every row), exactly as
    :func:`~lupus_rules.batch.run_file` writes them. A row with bad facts (or
    a CSV row that cannot be read) gets its ``error``; every other row is
    evaluated.

    ``scheduler``: ``"local:N"`` starts a local cluster of N worker processes
    (one thread each) and closes it at the end; any other value is the address
    of a running scheduler (``"tcp://host:8786"``), reached within
    ``connect_timeout`` seconds. Paths must be the same on the client and on
    every worker (shared storage). ``engine``: ``"vectorized"`` or
    ``"durable"`` (durable-rules in each worker process, one host per process:
    give workers one thread each, ``dask worker ADDRESS --nthreads 1``).
    Rows are evaluated ``chunk_size`` at a time on a worker; ``progress``
    shows a tqdm bar advanced as partitions finish.

    Returns a :class:`ClusterSummary`. Raises :class:`BatchInputError`, before
    any work, for an unusable input, output, option or scheduler (bad
    ``local:x``, unreachable address, no workers, dask not installed). A
    script that uses ``local:N`` needs the ``if __name__ == "__main__":``
    guard (workers are started with ``spawn``). Not for clinical use.
    """
    _check_options(engine, chunk_size, 1)
    if isinstance(partition_rows, bool) or not isinstance(partition_rows, int) or partition_rows < 1:
        raise BatchInputError(f"partition_rows: got {partition_rows!r}; allowed: a whole number >= 1")
    if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, (int, float)) or not connect_timeout > 0:
        raise BatchInputError(f"connect_timeout: got {connect_timeout!r}; allowed: seconds > 0")
    spec = parse_scheduler(scheduler)
    files = input_files(input_path)
    _columns_of(files)
    target = check_output_dir(output_dir, [Path(input_path)])
    book = _rulebook(rulebook)
    pieces = _pieces(files, partition_rows)
    summary = ClusterSummary(book.version, engine, output=str(target), scheduler=str(scheduler).strip())
    started = time.perf_counter()
    with _client(spec, float(connect_timeout)) as client:
        _check_workers(client, spec if isinstance(spec, str) else f"local:{spec}")
        summary.connect_seconds = time.perf_counter() - started
        started = time.perf_counter()
        _run_pieces(client, pieces, target, engine, book, chunk_size, progress, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _run_pieces(client: Any, pieces: list[_Piece], target: Path, engine: str, book: Rulebook,
                chunk_size: int, progress: bool, summary: ClusterSummary) -> None:
    """Send every partition to the workers, merge their counts; the parts go to a hidden folder renamed onto ``target``."""
    distributed = _distributed()
    staging = target.absolute().parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(6)}.partial"
    staging.mkdir()
    futures: list[Any] = []
    try:
        payload = _pack(book)
        width = len(str(max(len(pieces) - 1, 0)))
        futures = client.map(_run_piece, pieces, folder=str(staging), width=width, engine=engine,
                             payload=payload, chunk_size=chunk_size, pure=False)
        total = sum(p.rows for p in pieces) if all(p.rows is not None for p in pieces) else None
        bar = _bar(total if total is not None else len(pieces), "rows" if total is not None else "parts", progress)
        try:
            for _, counts in distributed.as_completed(futures, loop=client.loop, with_results=True):
                _merge(summary, counts)
                if bar is not None:
                    bar.update(counts["rows"] if total is not None else 1)
        finally:
            if bar is not None:
                bar.close()
        _publish(staging, target)
    except BaseException:
        if futures:
            client.cancel(futures)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _bar(total: int, unit: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, desc="evaluating on the cluster")


def _publish(staging: Path, target: Path) -> None:
    """Rename the finished parts' folder onto ``target`` (absent or empty) and sync its parent folder."""
    try:
        os.replace(staging, target)
    except OSError as exc:
        raise BatchInputError(f"output folder {target}: could not put the parts in place "
                              f"({exc.strerror or exc}); it must be absent or empty") from None
    try:
        fd = os.open(target.absolute().parent, os.O_RDONLY)
    except OSError:  # pragma: no cover (platforms without directory handles)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
