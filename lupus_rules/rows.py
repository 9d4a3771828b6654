"""What a batch row holds, without pandas: the outcome columns, the column check, failure reasons, the summary.

Shared by :mod:`lupus_rules.batch` (pandas, pyarrow) and the pure-Python run of
a small CSV file (:mod:`lupus_rules.plainrun`), so both name the same columns,
refuse the same unknown columns and print the same summary.

Not for clinical use.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .engines import ENGINES
from .errors import BatchInputError
from .facts import FACTS
from .notice import DISCLAIMER
from .output import SUFFIXES, check_output_path
from .rulebook import Rulebook, load_rulebook
from .vocabulary import Vocabulary

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "OUTCOME_COLUMNS",
    "PASSTHROUGH_COLUMNS",
    "PASSTHROUGH_PREFIX",
    "FILE_ENGINES",
    "BatchSummary",
    "check_columns",
    "failure_reasons",
]

#: Columns every result row gets, after the input columns.
OUTCOME_COLUMNS: tuple[str, ...] = (
    "preferred", "recommendations", "continue", "avoided", "cautions", "flags", "fired_rules", "error",
    "rulebook_version", "engine",
)
#: Non-fact input columns passed through unchanged.
PASSTHROUGH_COLUMNS: tuple[str, ...] = ("scenario_id", "description", "patient_id", "provenance")
#: Input columns starting with this (expected outcomes of a scenario suite) are passed through too.
PASSTHROUGH_PREFIX = "expect_"
#: Engines a file run accepts: ``auto`` (the pure-Python path for a small CSV, else vectorized) and every engine.
FILE_ENGINES: tuple[str, ...] = ("auto", *ENGINES)

_OUTCOMES = OUTCOME_COLUMNS[:OUTCOME_COLUMNS.index("error")]  # what an engine decides


@lru_cache(maxsize=8)
def _reason_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """Matches a field name at the start of one message of an ``error`` cell."""
    return re.compile(r"(?:^|; )(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r"): got ")


# --- columns ----------------------------------------------------------------------------------


def check_columns(columns: Iterable[object], vocabulary: Vocabulary | None = None) -> list[str]:
    """The fact columns among ``columns``; raise :class:`BatchInputError` naming every unknown one.

    Allowed: the facts of ``vocabulary`` (a rulebook's; None = the shipped
    :data:`~lupus_rules.facts.FACTS`), ``scenario_id``, ``description`` and any
    column starting with ``expect_``.
    """
    known = FACTS if vocabulary is None else vocabulary.facts
    facts: list[str] = []
    unknown: list[str] = []
    for column in columns:
        name = str(column)
        if name in known:
            facts.append(name)
        elif name not in PASSTHROUGH_COLUMNS and not name.startswith(PASSTHROUGH_PREFIX):
            unknown.append(name)
    if unknown:
        raise BatchInputError(
            f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"allowed: the facts {', '.join(known)}; or {', '.join(PASSTHROUGH_COLUMNS)}, "
            f"{PASSTHROUGH_PREFIX}*")
    return facts


def failure_reasons(error: str, vocabulary: Vocabulary | None = None) -> list[str]:
    """The fields an ``error`` cell names (each bad field once, in order); ``['other']`` if none.

    Fields are the facts of ``vocabulary`` (a rulebook's; None = the shipped ones).
    """
    found = list(dict.fromkeys(_reason_pattern(tuple(FACTS if vocabulary is None else vocabulary.facts))
                               .findall(error)))
    return found or ["other"]


# --- summary ----------------------------------------------------------------------------------


@dataclass
class BatchSummary:
    """What a batch run did: rows, failed rows by reason (the field named), time, rules and engine.

    A row whose error names two fields counts once in ``failed`` and once under
    each field in ``failures``.
    """

    rulebook_version: str
    engine: str
    rows: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    output: str = ""
    vocabulary: Vocabulary | None = field(default=None, repr=False, compare=False)  # whose facts errors name

    @property
    def rows_per_second(self) -> float:
        """Throughput of the run (0 when nothing was timed)."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Whether every row was evaluated without error."""
        return self.failed == 0

    def add(self, result: pd.DataFrame) -> None:
        """Count one evaluated chunk (a :func:`run_batch` result)."""
        errors = result["error"].to_numpy(dtype=object)
        self.add_errors(len(result), errors[errors != ""])

    def add_errors(self, rows: int, errors: Iterable[str]) -> None:
        """Count ``rows`` evaluated rows whose non-empty ``error`` cells are ``errors``."""
        bad = list(errors)
        self.rows += rows
        self.failed += len(bad)
        counts = Counter(reason for error in bad for reason in failure_reasons(str(error), self.vocabulary))
        for reason, n in counts.items():
            self.failures[reason] = self.failures.get(reason, 0) + n

    def format(self) -> str:
        """The summary as the CLI prints it, disclaimer first."""
        lines = [DISCLAIMER,
                 f"rows: {self.rows:,}  evaluated: {self.rows - self.failed:,}  failed: {self.failed:,}"]
        if self.failures:
            lines.append("failed rows by field: " + ", ".join(
                f"{reason} {n:,}" for reason, n in sorted(self.failures.items(), key=lambda kv: (-kv[1], kv[0]))))
        lines.append(f"time: {self.seconds:.2f} s ({self.rows_per_second:,.0f} rows/s)")
        lines.append(f"engine: {self.engine}  rulebook_version: {self.rulebook_version}")
        if self.output:
            lines.append(f"output: {self.output}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()



# --- options ------------------------------------------------------------------------------------


def _rulebook(rulebook: Rulebook | str | Path | None) -> Rulebook:
    if isinstance(rulebook, Rulebook):
        return rulebook
    if rulebook is None:
        from .evaluate import default_rulebook

        return default_rulebook()
    return load_rulebook(rulebook)


def _check_options(engine: str, chunk_size: int, processes: int, engines: tuple[str, ...] = ENGINES) -> None:
    if engine not in engines:
        raise BatchInputError(f"engine: got {engine!r}; allowed: {', '.join(engines)}")
    for name, value in (("chunk_size", chunk_size), ("processes", processes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BatchInputError(f"{name}: got {value!r}; allowed: a whole number >= 1")


def _check_paths(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BatchInputError(f"input file not found: {source}")
    if source.suffix.lower() not in SUFFIXES:
        raise BatchInputError(f"input {source}: suffix {source.suffix or '(none)'!r} not supported; "
                              f"allowed: {', '.join(SUFFIXES)}")
    check_output_path(target, suffixes=SUFFIXES, inputs=(source,))


_Item = TypeVar("_Item")


def _reading(source: Path, items: Iterator[_Item]) -> Iterator[_Item]:
    """The items read from ``source``; an ``OSError`` while reading names the input, not the output being written."""
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except OSError as exc:
            raise BatchInputError(f"input {source}: could not read ({exc.strerror or exc})") from None
        yield item
