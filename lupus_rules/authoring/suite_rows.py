"""Add a patient to the scenario suite: one row (id, description, facts, chosen expectations) in a CSV file.

``add_scenario("scenarios/09_safety.csv", patient, "SAF20-...", "why this row exists",
pin=("preferred", "flags"))`` evaluates the patient, pins the outcomes the author
chose as ``expect_*`` cells (``expect`` adds hand-written ones, e.g.
``{"expect_not": "cyclophosphamide"}``) and appends the row. The explorer's
"add this patient to the suite" calls this.

Before anything is written the whole suite folder, with the new row in place, is
loaded by the suite's own loader (:func:`lupus_rules.suite.load_suite`: every cell,
code and duplicate id checked, messages naming file, row and column). The file's
existing bytes are kept: the row is appended in its column order and line endings,
atomically (:func:`lupus_rules.output.atomic_output`). Pinned expectations come from the
engine: review them, the suite's expectations are meant to be worked out from the guideline.
Not for clinical use.
"""
from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import OptionError, SuiteFormatError, SuiteProblem
from ..evaluate import default_rulebook, evaluate
from ..facts import csv_cell, validate_patient
from ..output import atomic_output
from ..rulebook import Rulebook
from ..suite import DESCRIPTION_COLUMN, EXPECTATION_COLUMNS, ID_COLUMN, NO_PREFERRED, Check, check_scenario, load_suite

__all__ = ["PINNABLE", "AddedScenario", "scenario_row", "add_scenario"]

#: Outcomes an author may pin, and the expectation column each fills.
PINNABLE: dict[str, str] = {"preferred": "expect_preferred", "recommendations": "expect_recommendations",
                            "continue": "expect_continue", "avoided": "expect_avoided",
                            "cautions": "expect_cautions", "flags": "expect_flags", "fired": "expect_fired"}


@dataclass(frozen=True)
class AddedScenario:
    """The row written (column -> cell), the file, and the check of the new row against the rulebook."""

    path: Path
    row: dict[str, str]
    check: Check


def scenario_row(patient: Mapping[str, object], scenario_id: str, description: str, *,
                 rulebook: Rulebook | None = None, pin: Iterable[str] = ("preferred",),
                 expect: Mapping[str, str] | None = None) -> dict[str, str]:
    """The suite row for a patient: id, description, non-default fact cells and the chosen expectations.

    Raises :class:`~lupus_rules.errors.PatientValidationError` naming a bad fact, and
    :class:`~lupus_rules.errors.OptionError` for an unknown ``pin`` or ``expect`` column.
    """
    book = rulebook if rulebook is not None else default_rulebook()
    checked = validate_patient(patient, book.vocabulary)
    row = {ID_COLUMN: str(scenario_id).strip(), DESCRIPTION_COLUMN: str(description).strip()}
    for name, spec in book.facts.items():
        cell = csv_cell(name, checked[name], book.vocabulary)
        if isinstance(cell, float):
            cell = format(cell, ".15g")
        if cell in ("", "false") or cell == getattr(spec, "default", None):
            continue  # a default is left empty, as the suite writes it
        row[name] = str(cell)
    row.update(_pinned(checked, book, tuple(pin)))
    for column, cell in (expect or {}).items():
        if column not in EXPECTATION_COLUMNS:
            raise OptionError(f"expect: got column {column!r}; allowed: {', '.join(EXPECTATION_COLUMNS)}")
        row[column] = str(cell)
    return row


def add_scenario(path: str | Path, patient: Mapping[str, object], scenario_id: str, description: str, *,
                 rulebook: Rulebook | None = None, pin: Iterable[str] = ("preferred",),
                 expect: Mapping[str, str] | None = None) -> AddedScenario:
    """Append the patient's row to the scenario CSV ``path`` (created with the full header if missing)."""
    path = Path(path)
    book = rulebook if rulebook is not None else default_rulebook()
    row = scenario_row(patient, scenario_id, description, rulebook=book, pin=pin, expect=expect)
    text = path.read_bytes().decode("utf-8") if path.exists() else ""
    header = _header(text) or [ID_COLUMN, DESCRIPTION_COLUMN, *book.facts, *EXPECTATION_COLUMNS]
    missing = [c for c in row if row[c] and c not in header]
    if missing:
        names = ", ".join(map(repr, missing))
        raise _problem(path.name, missing[0], f"the file has no column {names} for this patient; add the "
                       "column to the file (or choose another file)")
    new_text = text or _line(header, "\n")
    newline = "\r\n" if "\r\n" in text else "\n"
    if new_text and not new_text.endswith("\n"):
        new_text += newline
    new_text += _line([row.get(c, "") for c in header], newline)
    scenario = _validated(path, new_text, row[ID_COLUMN], book)
    with atomic_output(path, suffixes=(".csv",)) as partial:
        partial.write_bytes(new_text.encode("utf-8"))
    return AddedScenario(path, row, check_scenario(scenario, book))


def _pinned(patient, book: Rulebook, pin: tuple[str, ...]) -> dict[str, str]:
    unknown = [p for p in pin if p not in PINNABLE]
    if unknown:
        raise OptionError(f"pin: got {unknown[0]!r}; allowed: {', '.join(PINNABLE)}")
    if not pin:
        return {}
    result = evaluate(patient, book)
    values = {"preferred": result.preferred or NO_PREFERRED, "recommendations": ";".join(result.recommendations),
              "continue": ";".join(result.continue_), "avoided": ";".join(result.avoided),
              "cautions": ";".join(result.cautions), "flags": ";".join(result.flags),
              "fired": ";".join(result.fired_rules)}
    return {PINNABLE[p]: values[p] for p in pin if values[p]}


def _problem(file: str, column: str, message: str) -> SuiteFormatError:
    return SuiteFormatError([SuiteProblem(file, 0, 0, column, message)])


def _header(text: str) -> list[str]:
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return next(csv.reader([first]), []) if first else []


def _line(cells: list[str], newline: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerow(cells)
    return out.getvalue()


def _validated(path: Path, new_text: str, scenario_id: str, book: Rulebook):
    """Load the suite folder with the new file in place (every check of the suite loader); the new scenario."""
    if not scenario_id:
        raise _problem(path.name, ID_COLUMN, "missing: a scenario needs an id")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if path.parent.is_dir():
            for other in path.parent.glob("*.csv"):
                if other.name != path.name:
                    shutil.copyfile(other, folder / other.name)
        (folder / path.name).write_bytes(new_text.encode("utf-8"))
        try:
            scenarios = load_suite(folder, book)
        except SuiteFormatError as exc:  # say where the files really are, not the check's copy
            real = str(path.parent)
            raise SuiteFormatError([SuiteProblem(p.file.replace(tmp, real), p.row, p.line, p.column,
                                                 p.message.replace(tmp, real)) for p in exc.problems]) from None
    return next(s for s in scenarios if s.id == scenario_id)
