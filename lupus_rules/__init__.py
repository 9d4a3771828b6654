"""lupus_rules: a Jupyter-first clinical rules workbench for lupus treatment alternatives.

Not for clinical use: a prototyping and teaching tool, not for treating patients.

The public API is what this module exports; everything else is internal.
"""
from __future__ import annotations

import importlib
import sys
import types

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
from .notice import DISCLAIMER

#: Public names imported on first use (``import lupus_rules`` stays light: no numpy or pandas
#: until a name that needs them is used), by the module that defines each.
_LAZY: dict[str, str] = {
    "compare": "authoring", "coverage": "authoring", "lint": "authoring", "rule_diff": "authoring",
    "BatchSummary": "batch", "run_batch": "batch", "run_file": "batch",
    "default_rulebook": "evaluate", "evaluate": "evaluate",
    "derivation_graph": "explain", "why_not": "explain",
    "FACTS": "facts", "MEASURES": "facts", "FactSpec": "facts", "Patient": "facts", "validate_patient": "facts",
    "FiredRule": "result", "Recommendation": "result", "Result": "result",
    "Condition": "rulebook", "Rule": "rulebook", "Rulebook": "rulebook", "load_rulebook": "rulebook",
    "SweepResult": "sweep", "sweep": "sweep",
}


def __getattr__(name: str) -> object:
    """Import a public name's module the first time the name is used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lupus_rules' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API (for tab completion)."""
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """The package module. Importing the submodule ``lupus_rules.evaluate`` binds it as the package's
    ``evaluate`` attribute; the public ``evaluate`` is the function, so that binding is not kept."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
    "SweepResult",
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
    "sweep",
    "validate_patient",
    "why_not",
]
