"""The pure-Python engine: the rules read directly, one patient at a time, in firing order.

No numpy, pandas, pyarrow or durable-rules: it serves a cold one-row
``lupus-rules run`` (``--engine auto``), the why-not screening and the replay.
A rule fires when every condition of its ``when`` holds
(:func:`condition_holds`, the one condition evaluator outside the durable and
vectorized compilers); rules are visited in the rulebook's firing order
(stratum, then definition order), so a ``not_derived`` test sees every fact a
lower stratum derives. What the fired rules mean is decided by
:func:`lupus_rules.result.summarize`, as for every engine.

Not for clinical use.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..rulebook import Condition, Rulebook

__all__ = ["condition_holds", "fire"]


def condition_holds(condition: Condition, patient: Mapping[str, object], derived: Iterable[str]) -> bool:
    """Whether one condition holds for these facts and derived facts (a comparison on an unknown number is false)."""
    if condition.kind == "derived":
        return condition.fact in derived
    if condition.kind == "not_derived":
        return condition.fact not in derived
    value = patient[condition.fact]
    op, target = condition.op, condition.value
    if op == "known":
        return value is not None
    if op == "unknown":
        return value is None
    if op == "has":
        return target in value  # type: ignore[operator]
    if op == "lacks":
        return target not in value  # type: ignore[operator]
    if op == "==":
        return value == target
    if op == "!=":
        return value != target
    if op == "in":
        return value in target
    if op == "not_in":
        return value not in target
    if value is None:
        return False
    return _compare(float(value), op, float(target))  # type: ignore[arg-type]


def _compare(value: float, op: str, target: float) -> bool:
    if op == "<":
        return value < target
    if op == "<=":
        return value <= target
    if op == ">":
        return value > target
    if op == ">=":
        return value >= target
    raise ValueError(f"unknown operator {op!r}; allowed: <, <=, >, >=")


def fire(patient: Mapping[str, object], rulebook: Rulebook) -> list[str]:
    """Ids of the rules that fire for a validated patient, in firing order."""
    derived: set[str] = set()
    fired: list[str] = []
    for rule in rulebook.rules:
        if all(condition_holds(c, patient, derived) for c in rule.when):
            fired.append(rule.id)
            derived.update(rule.derive)
    return fired
