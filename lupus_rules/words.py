"""Rules and conditions in plain words, from the rule data (fact meanings, derived-fact meanings, titles).

Not for clinical use: the sentences explain a teaching model of one guideline summary.

:func:`condition_words` says what one condition tests and what the patient has
("eGFR is 40 mL/min/1.73 m², the rule needs at least 60"); :func:`plain_why_not`
turns :func:`lupus_rules.explain.why_not` into one sentence per rule that did
not fire ("R-LN-01 Mycophenolate first for lupus nephritis did not fire: pregnancy
is planned - teratogenic agents are excluded (concluded by R-SAFE-01)"), the
rules whose verified single change would alter the preferred agent first.
Booleans read yes/no everywhere.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .evaluate import default_rulebook
from .explain import WhyNot, condition_holds, why_not
from .result import Result
from .rulebook import Condition, Rulebook
from .vocabulary import FactSpec

__all__ = ["value_words", "condition_words", "PlainWhyNot", "plain_why_not", "change_words"]

_COMPARE = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}


def value_words(value: object, spec: FactSpec | None = None) -> str:
    """A fact value as the explorer shows it: yes/no, unknown, members in vocabulary order, 60 not 60.0."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (frozenset, set, tuple, list)):
        order = list(spec.allowed) if spec is not None and spec.allowed else sorted(map(str, value))
        members = [m for m in order if m in value]
        return ", ".join(members) if members else "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _unit(spec: FactSpec | None) -> str:
    return f" {spec.unit}" if spec is not None and spec.unit else ""


def _meaning(text: str) -> str:
    """A meaning as part of a sentence: no final period; first letter lower-cased unless an acronym (eGFR)."""
    text = text.strip().rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def condition_words(condition: Condition, patient: Mapping[str, object], rulebook: Rulebook,
                    derived: Iterable[str] = (), derivers: Mapping[str, Iterable[str]] | None = None) -> str:
    """One condition in words with the patient's value; says what the rule needs when it does not hold."""
    derived = set(derived)
    holds = condition_holds(condition, patient, derived)
    if condition.kind != "fact":
        return _derived_words(condition, holds, rulebook, derivers or {})
    spec = rulebook.vocabulary.spec(condition.fact)
    value = patient[condition.fact]
    has = f"{condition.fact} is {value_words(value, spec)}{_unit(spec) if value is not None else ''}"
    needs = _needs(condition, spec)
    if condition.op in ("has", "lacks"):
        return _set_words(condition, holds)
    if holds:
        return f"{has} (the rule needs {needs})" if condition.op in _COMPARE else has
    return f"{has}, the rule needs {needs}"


def _needs(condition: Condition, spec: FactSpec | None) -> str:
    op, target = condition.op, condition.value
    if op in _COMPARE:
        return f"{_COMPARE[op]} {value_words(target)}{_unit(spec)}"
    if op in ("known", "unknown"):
        return "a known value" if op == "known" else "it unknown"
    if op == "==":
        return value_words(target, spec)
    if op == "!=":
        return f"anything but {value_words(target, spec)}"
    words = "one of" if op == "in" else "none of"
    return f"{words} {', '.join(map(str, target))}"


def _set_words(condition: Condition, holds: bool) -> str:
    present = holds == (condition.op == "has")
    verb = "include" if present else "do not include"
    tail = "" if holds else (", the rule needs it" if condition.op == "has" else ", the rule needs it absent")
    return f"{condition.fact} {verb} {condition.value}{tail}"


def _derived_words(condition: Condition, holds: bool, rulebook: Rulebook,
                   derivers: Mapping[str, Iterable[str]]) -> str:
    meaning = _meaning(rulebook.derived_facts.get(condition.fact, condition.fact))
    by = list(derivers.get(condition.fact, ()))
    source = f" (concluded by {', '.join(by)})" if by else ""
    if condition.kind == "derived":
        return f"{meaning}{source}" if holds else f"not established: {meaning}"
    return f"not the case: {meaning}" if holds else f"{meaning}{source}"


@dataclass(frozen=True)
class PlainWhyNot:
    """Why one rule did not fire, in words, and the verified single change (if any) with its effect."""

    rule_id: str
    title: str
    reasons: tuple[str, ...]
    change: str
    preferred_after: str | None
    alters_preferred: bool

    @property
    def sentence(self) -> str:
        """``"<id> <title> did not fire: <reason>; <reason>"``."""
        return f"{self.rule_id} {self.title} did not fire: {'; '.join(self.reasons)}"


def change_words(item: WhyNot, spec: FactSpec | None) -> str:
    """The verified fix of a why-not item in words (empty when no single change makes the rule fire)."""
    fix = item.fix
    if fix is None:
        return ""
    if spec is not None and spec.kind == "set":
        old, new = set(fix.old), set(fix.new)  # type: ignore[call-overload]
        added, removed = sorted(new - old), sorted(old - new)
        return (f"add {', '.join(added)} to {fix.fact}" if added
                else f"remove {', '.join(removed)} from {fix.fact}")
    unit = _unit(spec) if fix.new is not None else ""
    return (f"set {fix.fact} to {value_words(fix.new, spec)}{unit} "
            f"(now {value_words(fix.old, spec)})")


def plain_why_not(result: Result, rulebook: Rulebook | None = None,
                  items: list[WhyNot] | None = None) -> list[PlainWhyNot]:
    """Every rule that did not fire, in words: first those a single change would make fire *and* that
    change alters the preferred agent, then the other fixable ones, then the rest (rule order within)."""
    book = rulebook if rulebook is not None else default_rulebook()
    items = items if items is not None else why_not(result, book)
    derivers: dict[str, list[str]] = {}
    for rule_id in result.fired_rules:
        for name in book.rule(rule_id).derive:
            derivers.setdefault(name, []).append(rule_id)
    out = []
    for item in items:
        reasons = tuple(condition_words(f.condition, result.patient, book, result.derived, derivers)
                        for f in item.failed)
        fix = item.fix
        spec = book.vocabulary.spec(fix.fact) if fix is not None else None
        after = fix.preferred_after if fix is not None else None
        alters = fix is not None and after != result.preferred
        out.append(PlainWhyNot(item.rule_id, item.title, reasons, change_words(item, spec), after, alters))
    order = {rule.id: i for i, rule in enumerate(book.rules)}
    out.sort(key=lambda p: (0 if p.alters_preferred else 1 if p.change else 2, order.get(p.rule_id, 0)))
    return out
