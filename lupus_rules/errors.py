"""Every exception lupus_rules raises on purpose, in one place.

Callers catch :class:`LupusRulesError` to handle any of them; the subclasses
say which layer refused the input (patient facts, rule files, engine).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "LupusRulesError",
    "FieldError",
    "PatientValidationError",
    "RuleProblem",
    "RulebookError",
    "EngineError",
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
