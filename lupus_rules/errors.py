"""Every exception lupus_rules raises on purpose, in one place.

Callers catch :class:`LupusRulesError` to handle any of them; the subclasses
say which layer refused the input (patient facts, rule files, engine).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "LupusRulesError",
    "FieldError",
    "PatientValidationError",
    "RuleProblem",
    "RulebookError",
    "EngineError",
    "BatchInputError",
    "GenerateError",
    "SuiteProblem",
    "SuiteFormatError",
    "OptionError",
]


class LupusRulesError(Exception):
    """Base class of every error raised by lupus_rules."""


@dataclass(frozen=True)
class FieldError:
    """One rejected patient field: which field, the value given, what is allowed."""

    field: str
    value: object
    allowed: str

    def __str__(self) -> str:
        return f"{self.field}: got {self.value!r}; allowed: {self.allowed}"


class PatientValidationError(LupusRulesError, ValueError):
    """A patient's facts were rejected; ``errors`` lists every bad field, not only the first."""

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


@dataclass(frozen=True)
class RuleProblem:
    """One defect found in a rule file: where it is and what is wrong."""

    file: str
    rule_id: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.rule_id:
            where += f" [{self.rule_id}]"
        if self.field:
            where += f" {self.field}"
        return f"{where}: {self.message}"


class RulebookError(LupusRulesError, ValueError):
    """The rule files were rejected; ``problems`` lists every defect found."""

    def __init__(self, problems: list[RuleProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class EngineError(LupusRulesError, RuntimeError):
    """The rules engine failed while evaluating a patient (never silently)."""


class BatchInputError(LupusRulesError, ValueError):
    """A batch's input as a whole is unusable (missing file, unknown column, bad suffix or option).

    Per-row problems never raise this: they go into the row's ``error``.
    """


class GenerateError(LupusRulesError, ValueError):
    """A scenario request was unusable (e.g. an unknown fact name); the message says what is allowed."""


@dataclass(frozen=True)
class SuiteProblem:
    """One defect in a scenario file: where it is (file, row, column) and what is wrong.

    ``row`` counts data rows from 1 (0 = the header); ``line`` is the line in the file.
    """

    file: str
    row: int
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = "header" if self.row == 0 else f"row {self.row} (line {self.line})"
        column = f", column {self.column}" if self.column else ""
        return f"{self.file}, {where}{column}: {self.message}"


class SuiteFormatError(LupusRulesError, ValueError):
    """A scenario file was refused; ``problems`` lists every defect found, each with file, row and column."""

    def __init__(self, problems: Sequence[SuiteProblem]):
        self.problems = list(problems)
        super().__init__("malformed scenario suite:\n" + "\n".join(f"  {p}" for p in self.problems))


class OptionError(LupusRulesError, ValueError):
    """An option of a function or command has a value it cannot take; the message names option, value and range."""
