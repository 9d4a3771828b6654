"""A file run in pure Python: a small CSV evaluated and written without numpy, pandas or pyarrow.

``lupus-rules run`` and :func:`lupus_rules.batch.run_file` default to
``engine="auto"``: a CSV input of at most :data:`SMALL_CSV_BYTES` written to a
CSV output takes this path (start-up is then about that of Python itself),
anything else the vectorized engine. ``engine="python"`` takes this path for a
CSV -> CSV run of any size (streamed, one row at a time, no progress bar).

Every step is the one the vectorized path takes, without its libraries:

* reading: the careful reader of :mod:`lupus_rules.csvtext` (the rules of
  pyarrow's reader; a ragged row, bytes that are not UTF-8, a row over
  ``MAX_ROW_BYTES`` or an unclosed quote fails alone, naming its line);
* validating: :func:`lupus_rules.facts.validate_patient` (cells read by ``read_cell``);
* evaluating: the python engine, outcomes from :func:`lupus_rules.result.summarize`;
* writing: :func:`lupus_rules.csvtext.csv_line`, the bytes pyarrow's CSV writer
  writes for text columns (``excel_safe`` alike), through
  :func:`lupus_rules.output.atomic_output` (location checked first, a unique
  partial file fsynced and renamed into place).

So the output equals the vectorized path's byte for byte except the
``engine`` column (``python``); tests/test_plainrun.py checks it on every
scenario file and the hostile files. A header the two readers could name
differently (a repeated or blank column name) sends ``auto`` to the vectorized path.

Not for clinical use.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from .csvtext import csv_line, header_names, read_rows
from .errors import BatchInputError, PatientValidationError
from .evaluate import evaluate
from .output import SUFFIXES, atomic_output
from .rows import OUTCOME_COLUMNS, BatchSummary, _check_paths, _reading, _rulebook, check_columns
from .rulebook import Rulebook

__all__ = ["SMALL_CSV_BYTES", "takes_plain_path", "run_plain_file"]

#: ``engine="auto"``: a CSV input of at most this many bytes (to a CSV output) runs in pure Python.
SMALL_CSV_BYTES = 256 * 1024

_DECIDED = OUTCOME_COLUMNS[:OUTCOME_COLUMNS.index("error")]  # the cells an engine decides


def takes_plain_path(engine: str, source: Path, target: Path) -> bool:
    """Whether a run with ``engine`` (``auto`` or ``python``) from ``source`` to ``target`` is a pure-Python run.

    Yes for CSV to CSV when the engine is ``python``, or ``auto`` and the
    input has at most :data:`SMALL_CSV_BYTES` bytes; in both cases only when
    the header names are distinct and not blank (pandas would rename them).
    An unreadable input is left to the vectorized path, which names the problem.
    """
    if engine not in ("auto", "python"):
        return False
    if source.suffix.lower() != ".csv" or target.suffix.lower() != ".csv" or not source.is_file():
        return False
    if engine == "auto" and source.stat().st_size > SMALL_CSV_BYTES:
        return False
    try:
        names = header_names(source)
    except (BatchInputError, OSError):
        return False
    return len(set(names)) == len(names) and all(name.strip() for name in names)


def run_plain_file(source: str | Path, target: str | Path, rulebook: Rulebook | str | Path | None = None, *,
                   excel_safe: bool = False) -> BatchSummary:
    """Evaluate every row of a CSV file with the python engine into a CSV file; see the module docstring.

    ``rulebook``: a :class:`~lupus_rules.rulebook.Rulebook`, a path to rule
    files, or ``None`` for the shipped one. Raises :class:`BatchInputError`
    for a missing input, an unusable output location or an unknown column,
    before anything is written.
    """
    source, target = Path(source), Path(target)
    _check_paths(source, target)
    rulebook = _rulebook(rulebook)
    names = header_names(source)
    facts = set(check_columns(names, rulebook.vocabulary))
    positions = [(i, name) for i, name in enumerate(names) if name in facts]
    summary = BatchSummary(rulebook.version, "python", output=str(target), vocabulary=rulebook.vocabulary)
    started = time.perf_counter()
    rows, errors = 0, []
    with atomic_output(target, suffixes=SUFFIXES, inputs=(source,)) as partial:
        with partial.open("w", encoding="utf-8", newline="") as out:
            out.write(csv_line([*names, *OUTCOME_COLUMNS]))
            for cells, read_error in _reading(source, read_rows(source, len(names))):
                outcome = _outcome(cells, read_error, positions, rulebook)
                out.write(csv_line(cells + outcome, excel_safe))
                rows += 1
                if outcome[len(_DECIDED)]:
                    errors.append(outcome[len(_DECIDED)])
    summary.add_errors(rows, errors)
    summary.seconds = time.perf_counter() - started
    return summary


def _outcome(cells: list[str], read_error: str, positions: list[tuple[int, str]], rulebook: Rulebook) -> list[str]:
    """The outcome cells of one row: decided cells, error, rulebook version, engine."""
    tail = [rulebook.version, "python"]
    if read_error:  # a row the reader could not read is not evaluated
        return [""] * len(_DECIDED) + [read_error, *tail]
    try:
        result = evaluate({name: cells[i] for i, name in positions}, rulebook, engine="python")
    except PatientValidationError as exc:
        return [""] * len(_DECIDED) + [str(exc), *tail]
    row = result.to_row()
    return [*(row[name] for name in _DECIDED), "", *tail]
