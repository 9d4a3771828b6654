"""Exit codes and error messages shared by every ``lupus-rules`` command.

0 ok; 1 some rows failed or a check failed (each command documents which);
2 unusable input (one message naming the file, rule, column or option);
3 internal error (one line, full traceback written to a crash file);
130 interrupted (Ctrl-C); 143 terminated (SIGTERM, e.g. ``kill`` or a job scheduler's time limit).
In both cases output files are removed half-written, never left truncated.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
import _thread
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import LupusRulesError

__all__ = [
    "EXIT_OK", "EXIT_FAILED", "EXIT_INPUT", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_TERMINATED",
    "did_you_mean", "positive_int", "non_negative_int", "with_column_suggestions", "write_crash_file", "run_guarded",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

#: Longest line of a message printed whole; a longer one (echoing a huge input) is elided.
MAX_LINE = 1000
_UNKNOWN_NAMES = re.compile(r"unknown (?:columns?|facts?) ((?:'[^']*'(?:, )?)+)")


def positive_int(text: str) -> int:
    """An ``argparse`` type: a whole number >= 1 (``_`` and ``,`` allowed as separators), else a usage error."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """An ``argparse`` type: a whole number >= 0 (a seed, a condition index), else a usage error."""
    return _whole_number(text, 0)


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a whole number >= {minimum}")
    return value


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` to ``name``, or ``""`` if none is close."""
    import difflib  # error paths import their modules on use: start-up stays short

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def with_column_suggestions(message: str) -> str:
    """``message`` with a did-you-mean after the unknown columns or facts it names, for each close to a known one.

    Known names: the facts, plus every name the message lists after ``allowed:``.
    """
    import difflib

    from ..facts import FACTS

    found = _UNKNOWN_NAMES.search(message)
    if not found:
        return message
    _, _, allowed = message.partition("allowed:")
    known = list(dict.fromkeys([*FACTS, *re.findall(r"[A-Za-z_]\w*", allowed)]))
    hints = []
    for name in re.findall(r"'([^']*)'", found.group(1)):
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            hints.append(f"{close[0]!r} for {name!r}" if len(found.group(1)) > len(name) + 2 else repr(close[0]))
    if not hints:
        return message
    cut = found.end()
    return f"{message[:cut]} (did you mean {', '.join(hints)}?){message[cut:]}"


def _shorten(text: str) -> str:
    lines = [line if len(line) <= MAX_LINE else line[:MAX_LINE // 5] + f"... ({len(line):,} characters)"
             for line in text.splitlines() or [""]]
    return "\n".join(lines)


def write_crash_file(exc: BaseException) -> Path:
    """Write ``exc``'s full traceback to a new file in the temp folder (unique per crash) and return its path."""
    import tempfile
    import traceback

    stamp = time.strftime("%Y%m%d-%H%M%S")
    fd, name = tempfile.mkstemp(prefix=f"lupus-rules-crash-{stamp}-{os.getpid()}-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"lupus-rules {' '.join(sys.argv[1:])}\n")
        handle.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return Path(name)


def _os_message(exc: OSError) -> str:
    path = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or str(exc)
    return f"{path}: {reason}" if path else reason


def _input_message(exc: BaseException) -> str | None:
    """The one-message description of an input error, or ``None`` if ``exc`` is not one."""
    if isinstance(exc, LupusRulesError):
        return with_column_suggestions(str(exc))
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
                        FileExistsError)) or (isinstance(exc, OSError) and exc.filename is not None):
        return _os_message(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8"
    return None


class _Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so every ``finally`` (partial output files) runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated()


def _redeliver_lost_signals(previous_hook: Callable[[object], object]) -> Callable[[object], object]:
    """An ``unraisablehook`` that delivers again a Ctrl-C or SIGTERM that landed where it could not propagate.

    A handler's exception raised while Python runs a ``__del__`` or a weakref
    callback (garbage collection, at any bytecode) is printed as "Exception
    ignored" and dropped, and the command would run on; the signal is
    simulated again so that it unwinds the command at the next bytecode.
    """
    def hook(unraisable: object) -> None:
        kind = getattr(unraisable, "exc_type", None)
        signum = signal.SIGINT if kind is KeyboardInterrupt else signal.SIGTERM if kind is _Terminated else None
        if signum is None:
            previous_hook(unraisable)
            return
        # From another thread a moment later, so that the handler runs after this
        # hook (whose own exceptions are dropped too); landing in a callback again repeats this.
        threading.Thread(target=_interrupt_main_soon, args=(signum,), daemon=True).start()
    return hook


def _interrupt_main_soon(signum: int) -> None:
    time.sleep(0.005)
    _thread.interrupt_main(signum)


def run_guarded(command: str, func: Callable[[], int], *, debug: bool = False) -> int:
    """Run ``func`` and turn any exception into a message on stderr and the contract's exit code."""
    previous = _on_sigterm(_raise_terminated)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _redeliver_lost_signals(previous_hook)
    try:
        return int(func() or 0)
    except _Terminated:
        print(f"lupus-rules {command}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"lupus-rules {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 (the one place every error is reported)
        message = _input_message(exc)
        if debug:
            import traceback

            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        if message is not None:
            print(f"lupus-rules {command}: {_shorten(message)}", file=sys.stderr)
            return EXIT_INPUT
        crash = write_crash_file(exc)
        print(f"lupus-rules {command}: internal error: {type(exc).__name__}: {_shorten(str(exc))}; "
              f"full traceback written to {crash}", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        sys.unraisablehook = previous_hook
        _on_sigterm(previous)


def _on_sigterm(handler: object) -> object:
    """Install ``handler`` for SIGTERM (main thread only, as Python requires); the previous one, or None."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout replaced (tests) or already closed
        pass
