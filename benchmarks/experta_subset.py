"""The benchmark's rule subset on experta, compiled from the rulebook data (not written by hand).

experta (a pure-Python RETE engine, the usual alternative to durable-rules)
1.9.4 pins frozendict 1.2, which does not import on Python >= 3.10. It works
with a modern frozendict; install it for the benchmark only with::

    .venv/bin/pip install --no-deps experta==1.9.4 schema frozendict

Each rule becomes an experta ``Rule``: its patient tests on one ``Patient``
fact, ``derived`` as a ``Derived`` fact, ``not_derived`` as ``NOT(Derived)``.
Negation is stratified as in the durable adapter: a rule of stratum k also
needs a ``Stage(n=k)`` fact, declared only once the strata below have run, so
a ``NOT`` never sees a fact that is still to be derived. (Salience = -stratum
alone was not enough: on 2 000 generated rows, 32 fired a negated rule whose
derived fact had meanwhile been declared.)
Unknown numbers are ``None``, and no comparison holds on them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from experta import NOT, Fact, KnowledgeEngine, P, Rule

from lupus_rules.facts import FACTS, MEASURES
from lupus_rules.rulebook import Condition, Rulebook
from lupus_rules.rulebook import Rule as BookRule

__all__ = ["ExpertaSubset"]


class Patient(Fact):
    """One patient's facts; sets flattened to ``<fact>_<member>`` booleans (experta refuses "__" in keys)."""


class Derived(Fact):
    """A derived fact, by ``name``."""


class Stage(Fact):
    """Stratum ``n`` may start: every rule of the strata below has fired."""


def _test(condition: Condition) -> Callable[[object], bool]:
    op, value = condition.op, condition.value
    numbers = {"<": lambda v: v is not None and v < value, "<=": lambda v: v is not None and v <= value,
               ">": lambda v: v is not None and v > value, ">=": lambda v: v is not None and v >= value,
               "known": lambda v: v is not None, "unknown": lambda v: v is None}
    if op in numbers:
        return numbers[op]
    return {"==": lambda v: v == value, "!=": lambda v: v != value,
            "in": lambda v: v in value, "not_in": lambda v: v not in value}[op]


def _patient_pattern(rule: BookRule) -> Patient:
    tests: dict[str, object] = {}
    for condition in rule.when:
        if condition.kind != "fact":
            continue
        if condition.op in ("has", "lacks"):
            field, check = f"{condition.fact}_{condition.value}", P(lambda v, want=condition.op == "has": v is want)
        else:
            field, check = condition.fact, P(_test(condition))
        tests[field] = tests[field] & check if field in tests else check
    return Patient(**tests)


def _patterns(rule: BookRule) -> list[object]:
    patterns: list[object] = [_patient_pattern(rule)]
    if rule.stratum > 0:
        patterns.insert(0, Stage(n=rule.stratum))
    for condition in rule.when:
        if condition.kind == "derived":
            patterns.append(Derived(name=condition.fact))
        elif condition.kind == "not_derived":
            patterns.append(NOT(Derived(name=condition.fact)))
    return patterns


class ExpertaSubset:
    """An experta engine built from a rulebook; :meth:`fire` gives the fired rule ids for one patient."""

    def __init__(self, rulebook: Rulebook):
        self.fired: list[str] = []
        self.strata = rulebook.strata
        members = {}
        for position, rule in enumerate(rulebook.rules):
            members[f"rule_{position}"] = Rule(*_patterns(rule), salience=-rule.stratum)(self._action(rule))
        self.engine = type("RulebookEngine", (KnowledgeEngine,), members)()

    def _action(self, rule: BookRule) -> Callable[[KnowledgeEngine], None]:
        def action(engine: KnowledgeEngine) -> None:
            self.fired.append(rule.id)
            for name in rule.derive:
                engine.declare(Derived(name=name))
        return action

    def fire(self, patient: Mapping[str, object]) -> list[str]:
        """Ids of the rules that fire for a validated patient (experta's own order)."""
        self.fired = []
        self.engine.reset()
        self.engine.declare(Patient(**_fields(patient)))
        self.engine.run()
        for stage in range(1, self.strata):
            self.engine.declare(Stage(n=stage))
            self.engine.run()
        return self.fired


def _fields(patient: Mapping[str, object]) -> dict[str, object]:
    fields: dict[str, object] = {}
    for name in list(FACTS) + list(MEASURES):
        spec = FACTS.get(name) or MEASURES[name]
        value = patient[name]
        if spec.kind == "set":
            for member in spec.allowed:
                fields[f"{name}_{member}"] = member in value  # type: ignore[operator]
        else:
            fields[name] = value
    return fields
