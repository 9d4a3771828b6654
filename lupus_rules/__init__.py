"""lupus_rules: a Jupyter-first clinical rules workbench for lupus treatment alternatives.

Not for clinical use: a prototyping and teaching tool, not for treating patients.

The public API is what this module exports; everything else is internal.
"""
from __future__ import annotations

from .errors import (
    BatchInputError,
    EngineError,
    FieldError,
    LupusRulesError,
    PatientValidationError,
    RuleProblem,
    RulebookError,
    SuiteFormatError,
)
from .authoring import compare, coverage, lint, rule_diff
from .batch import BatchSummary, run_batch, run_file
from .evaluate import default_rulebook, evaluate
from .explain import derivation_graph, why_not
from .facts import FACTS, MEASURES, FactSpec, Patient, validate_patient
from .result import DISCLAIMER, FiredRule, Recommendation, Result
from .rulebook import Condition, Rule, Rulebook, load_rulebook

__version__ = "0.1.0"

__all__ = [
    "DISCLAIMER",
    "BatchInputError",
    "BatchSummary",
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
    "SuiteFormatError",
    "compare",
    "coverage",
    "default_rulebook",
    "derivation_graph",
    "evaluate",
    "lint",
    "load_rulebook",
    "run_batch",
    "rule_diff",
    "run_file",
    "validate_patient",
    "why_not",
]
