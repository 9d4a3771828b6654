"""Output files you can trust: checked before any work, written whole or not at all.

:func:`check_output_path` refuses an output location before anything is
computed (folder missing or not writable, an existing directory, the input
file itself, a suffix not allowed). :func:`atomic_output` writes to a partial
file unique to the run (``.<name>.<pid>.<random>.partial`` in the same
folder), then flushes and fsyncs it, renames it into place (``os.replace``)
and fsyncs the folder, as SQLite does for its journal. On any failure,
including Ctrl-C, the partial file is removed and an existing output is left
as it was; after a hard kill at most a stale partial file with a unique name
remains, never a truncated output. Two runs writing the same output never
share a partial file: the last one to finish wins, whole.

Usage (any writer that takes a path)::

    with atomic_output(path, suffixes=(".csv",)) as partial:
        frame.to_csv(partial, index=False)

:func:`excel_safe_text` neutralizes spreadsheet formulas in text cells.
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import BatchInputError

__all__ = ["SUFFIXES", "FORMULA_PREFIXES", "atomic_output", "check_output_path", "excel_safe_text", "formula_like"]

#: File suffixes of the tables lupus_rules reads and writes (``run``, ``generate``).
SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
#: A text cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
#: A plain decimal number (``-1.5``, ``+2e3``) is left alone: a spreadsheet reads it as that number.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def check_output_path(path: str | Path, *, suffixes: Sequence[str] | None = None,
                      inputs: Iterable[str | Path] = (), role: str = "output") -> Path:
    """``path`` as a :class:`~pathlib.Path` if it can be written; else raise :class:`BatchInputError` naming it.

    Checked, in order: the suffix is one of ``suffixes`` (any if ``None``), the
    path is not an existing directory, its folder exists, the path is none of
    ``inputs`` (same file, even through a link), and the folder is writable (a
    file is really created there and removed, which also catches read-only
    mounts). Nothing is left behind.
    """
    target = Path(path)
    if suffixes is not None and target.suffix.lower() not in suffixes:
        raise BatchInputError(f"{role} {target}: suffix {target.suffix or '(none)'!r} not supported; "
                              f"allowed: {', '.join(suffixes)}")
    if target.is_dir():
        raise BatchInputError(f"{role} {target} is a directory; allowed: a file path")
    folder = target.parent
    if not folder.is_dir():
        raise BatchInputError(f"{role} folder not found: {folder}")
    for source in inputs:
        if _same_file(target, Path(source)):
            raise BatchInputError(f"{role} {target} is the input file {source}; choose another {role} path")
    _probe(target)
    return target


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return a.resolve() == b.resolve()


def _probe(target: Path) -> None:
    with _signals_deferred():  # a Ctrl-C/SIGTERM between create and unlink would leave the probe behind
        try:
            fd, probe = _create_partial(target, suffix=".probe")
        except OSError as exc:
            raise BatchInputError(f"output {target}: folder {target.parent} is not writable "
                                  f"({exc.strerror or exc})") from None
        try:
            os.close(fd)
        finally:
            os.unlink(probe)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (main thread on POSIX; elsewhere a no-op).

    Python runs a signal's handler between two bytecodes, so a file created
    just before a handler raises could never be named for removal; a held
    signal is delivered, and its handler run, right after the block.
    """
    block = getattr(signal, "pthread_sigmask", None)
    if block is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = block(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        block(signal.SIG_SETMASK, held)


def _create_partial(target: Path, suffix: str = ".partial") -> tuple[int, Path]:
    """A new, empty file beside ``target`` whose name no other run can pick (O_EXCL, pid and random part)."""
    while True:
        partial = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), partial
        except FileExistsError:  # pragma: no cover (48 random bits)
            continue


@contextmanager
def atomic_output(path: str | Path, *, suffixes: Sequence[str] | None = None,
                  inputs: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield a partial file path to write; on success it becomes ``path``, whole and on disk.

    The location is checked first with :func:`check_output_path`. The caller
    writes (and closes) the yielded path; on leaving the block normally the
    file is fsynced, renamed onto ``path`` and the folder fsynced. On any
    exception (or ``KeyboardInterrupt``) the partial file is removed and the
    exception propagates; an ``OSError`` while writing (full disk, ...)
    becomes a :class:`BatchInputError` naming ``path``.
    """
    target = check_output_path(path, suffixes=suffixes, inputs=inputs)
    partial: Path | None = None
    try:
        with _signals_deferred():
            fd, partial = _create_partial(target)
            os.close(fd)
        yield partial
        _fsync_file(partial)
        os.replace(partial, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        raise BatchInputError(f"output {target}: could not write ({exc.strerror or exc})") from None
    finally:
        if partial is not None:
            try:
                os.unlink(partial)
            except FileNotFoundError:
                pass


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover (platforms without directory handles)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover (file systems that cannot sync a directory)
        pass
    finally:
        os.close(fd)


def formula_like(text: str) -> bool:
    """Whether a spreadsheet would run ``text`` as a formula (starts with ``= + - @``, tab or CR, and is no number)."""
    return text.startswith(FORMULA_PREFIXES) and _NUMBER.fullmatch(text) is None


def excel_safe_text(text: str) -> str:
    """``text`` with a leading ``'`` if it is :func:`formula_like`, else unchanged."""
    return "'" + text if formula_like(text) else text
