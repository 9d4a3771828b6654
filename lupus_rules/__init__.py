"""lupus_rules: a Jupyter-first clinical rules workbench for lupus treatment alternatives.

Not for clinical use: a prototyping and teaching tool, not for treating patients.

The public API is what this module exports; everything else is internal.
"""
from __future__ import annotations

from .errors import (
    EngineError,
    FieldError,
    LupusRulesError,
    PatientValidationError,
    RuleProblem,
    RulebookError,
)
from .evaluate import default_rulebook, evaluate
from .facts import FACTS, MEASURES, FactSpec, Patient, validate_patient
from .result import DISCLAIMER, FiredRule, Recommendation, Result
from .rulebook import Condition, Rule, Rulebook, load_rulebook

__version__ = "0.1.0"

__all__ = [
    "DISCLAIMER",
    "FACTS",
    "MEASURES",
    "Condition",
    "EngineError",
    "FactSpec",
    "FieldError",
    "FiredRule",
    "LupusRulesError",
    "Patient",
    "PatientValidationError",
    "Recommendation",
    "Result",
    "Rule",
    "RuleProblem",
    "Rulebook",
    "RulebookError",
    "default_rulebook",
    "evaluate",
    "load_rulebook",
    "validate_patient",
]
