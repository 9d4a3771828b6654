"""What a fact is, and how a rulebook declares its facts.

The rulebook's YAML declares every fact a rule may test (``facts:``), the
values of a drug-status fact (``statuses:``) and the numbers computed from two
facts (``measures:``), next to its agents and flags. Python keeps only the
*kinds* of fact (number, bool, status, set), how a cell of each kind is read
(:func:`lupus_rules.facts.read_cell`) and the operators; no guideline fact is
named in code.

A declaration, in ``rulebook.yaml``::

    rulebook:
      statuses: [not_tried, intolerant, nonresponse, effective, current, contraindicated]
      facts:
        egfr: {kind: number, range: [0, 200], unit: mL/min/1.73 m², group: kidney,
               meaning: Current estimated glomerular filtration rate.}
      measures:
        egfr_change_pct: {formula: change_pct, current: egfr, baseline: egfr_baseline,
                          range: [-100, ~], unit: "%", meaning: ...}

:func:`parse_vocabulary` checks the declarations and names file, key and
field on every defect; :func:`shipped_vocabulary` is the shipped rulebook's.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from .errors import RuleProblem, RulebookError

__all__ = [
    "Kind",
    "KINDS",
    "FORMULAS",
    "FactSpec",
    "Vocabulary",
    "parse_vocabulary",
    "shipped_vocabulary",
    "shipped_document",
    "SHIPPED_RULEBOOK_FILE",
    "RESERVED_NAMES",
    "RESERVED_PREFIX",
]

Kind = Literal["set", "status", "bool", "number"]
#: The kinds of fact, and the default a fact of that kind takes when a patient does not give it.
KINDS: tuple[str, ...] = ("number", "bool", "status", "set")
#: How a measure is computed from its current and baseline values: the sign of (current - baseline).
FORMULAS: dict[str, float] = {"reduction_pct": -1.0, "change_pct": 1.0}

#: Names a fact or measure may not take: the other columns of patient and result files
#: (``lupus_rules.batch``), and the keys the durable engine adds to a patient fact.
RESERVED_NAMES: frozenset[str] = frozenset({
    "scenario_id", "description", "patient_id", "provenance",
    "preferred", "recommendations", "continue", "avoided", "cautions", "flags", "fired_rules", "error",
    "rulebook_version", "engine", "sid", "id", "t",
})
#: Nor start with this (the expectation columns of a scenario suite).
RESERVED_PREFIX = "expect_"

#: The shipped rulebook's vocabulary file.
SHIPPED_RULEBOOK_FILE = Path(__file__).parent / "rules" / "rulebook.yaml"

_FACT_KEYS = {"kind", "meaning", "group", "range", "unit", "members", "default"}
#: Declaration keys that make no sense for a kind of fact.
_NOT_FOR: dict[str, set[str]] = {"number": {"members"}, "set": {"range", "unit"},
                                 "status": {"range", "unit", "members"}, "bool": {"range", "unit", "members"}}
_MEASURE_KEYS = {"formula", "current", "baseline", "meaning", "group", "range", "unit"}


@dataclass(frozen=True)
class FactSpec:
    """What one fact is: its kind, unit, allowed values or range, default, meaning and display group."""

    name: str
    kind: Kind
    description: str
    allowed: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    default: object = None
    group: str = field(default="", compare=False)

    def allowed_text(self) -> str:
        """The allowed values in words, as error messages and the data dictionary show them."""
        if self.kind == "bool":
            return "true or false (CSV: true/false/empty = false)"
        if self.kind == "status":
            return "one of " + ", ".join(self.allowed)
        if self.kind == "set":
            return "any of " + ", ".join(self.allowed) + " (CSV: ';'-separated)"
        bounds = f"a number from {self.minimum:g} to {self.maximum:g}"
        return bounds + (f" {self.unit}" if self.unit else "") + ", or empty (unknown)"


@dataclass(frozen=True)
class Vocabulary:
    """A rulebook's declared facts, in declaration order, and the measures computed from them.

    Frozen: built once by :func:`parse_vocabulary` and never changed afterwards (treat the
    mappings as read-only). Equal vocabularies hash equal, so per-vocabulary work (the
    engines' column tables, the frame validator's spellings) is cached by vocabulary.
    """

    facts: dict[str, FactSpec]
    measures: dict[str, FactSpec]
    measure_inputs: dict[str, tuple[str, str]]
    measure_signs: dict[str, float]
    statuses: tuple[str, ...]

    def __hash__(self) -> int:
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((tuple(self.facts.items()), tuple(self.measures.items()),
                           tuple(self.measure_inputs.items()), tuple(self.measure_signs.items()), self.statuses))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (hash(self) == hash(other) and self.statuses == other.statuses and self.facts == other.facts
                and self.measures == other.measures and self.measure_inputs == other.measure_inputs
                and self.measure_signs == other.measure_signs
                and [s.group for s in self.facts.values()] == [s.group for s in other.facts.values()]
                and [s.group for s in self.measures.values()] == [s.group for s in other.measures.values()])

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state.pop("_hash", None)  # str hashes differ between processes: recomputed after unpickling
        return state

    def spec(self, name: str) -> FactSpec | None:
        """The fact or measure called ``name``, or None."""
        return self.facts.get(name) or self.measures.get(name)

    def names(self) -> tuple[str, ...]:
        """Names a rule condition may test: input facts, then measures."""
        return tuple(self.facts) + tuple(self.measures)

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Input facts by display group, groups in order of first appearance."""
        grouped: dict[str, list[str]] = {}
        for spec in self.facts.values():
            grouped.setdefault(spec.group, []).append(spec.name)
        return {group: tuple(names) for group, names in grouped.items()}


def parse_vocabulary(meta: Mapping[str, Any], file: str) -> Vocabulary:
    """The vocabulary declared in a rulebook section; RulebookError lists every defect (file, key, field)."""
    parser = _Parser(file)
    vocabulary = parser.vocabulary(meta)
    if parser.problems:
        raise RulebookError(parser.problems)
    return vocabulary


@lru_cache(maxsize=1)
def shipped_vocabulary() -> Vocabulary:
    """The vocabulary of the shipped rulebook (read once; the file is part of the package)."""
    return parse_vocabulary(shipped_document()[1]["rulebook"], SHIPPED_RULEBOOK_FILE.name)


@lru_cache(maxsize=1)
def shipped_document() -> tuple[str, Any]:
    """The shipped ``rulebook.yaml``: its text and its parsed data, read once (never change the data).

    :func:`~lupus_rules.rulebook.load_rulebook` reuses the data (a copy) when
    it reads that very text, so a cold start parses the file once.
    """
    import yaml  # the shipped file is trusted; user rule files go through rulebook.load_rulebook's checks

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = SHIPPED_RULEBOOK_FILE.read_text(encoding="utf-8")
    return text, yaml.load(text, Loader=loader)


class _Parser:
    """Reads the declarations, collecting every problem instead of stopping at the first."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[RuleProblem] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(RuleProblem(self.file, None, where, message))

    def vocabulary(self, meta: Mapping[str, Any]) -> Vocabulary:
        statuses = self._statuses(meta.get("statuses"))
        facts: dict[str, FactSpec] = {}
        for name, raw in self._mapping(meta, "facts").items():
            spec = self._fact(name, raw, statuses)
            if spec is not None:
                facts[name] = spec
        measures: dict[str, FactSpec] = {}
        inputs: dict[str, tuple[str, str]] = {}
        signs: dict[str, float] = {}
        for name, raw in self._mapping(meta, "measures").items():
            found = self._measure(name, raw, facts)
            if found is not None:
                measures[name], inputs[name], signs[name] = found
        return Vocabulary(facts, measures, inputs, signs, statuses)

    def _mapping(self, meta: Mapping[str, Any], key: str) -> dict[str, Any]:
        raw = meta.get(key)
        if raw is None and key == "measures":
            return {}
        if not isinstance(raw, dict) or not raw:
            self.problem(key, f"got {_short(raw)}; allowed: a mapping of name: declaration")
            return {}
        good = {}
        for name, value in raw.items():
            if not isinstance(name, str) or not name.isidentifier() or not name.islower():
                self.problem(f"{key}.{name}", "a name must be lower-case letters, digits and _ (e.g. egfr)")
            elif name in RESERVED_NAMES or name.startswith(RESERVED_PREFIX):
                self.problem(f"{key}.{name}", f"a column of patient and result files is called {name!r}; "
                             f"choose another name (reserved: {', '.join(sorted(RESERVED_NAMES))}, "
                             f"{RESERVED_PREFIX}*)")
            elif "__" in name or name.startswith("_"):
                self.problem(f"{key}.{name}", "a name may not start with _ or hold __ (the engines name a set "
                             "fact's member columns fact__member)")
            else:
                good[name] = value
        return good

    def _statuses(self, raw: Any) -> tuple[str, ...]:
        ok = isinstance(raw, list) and raw and all(isinstance(v, str) and v for v in raw)
        if not ok or len(set(raw)) != len(raw):
            self.problem("statuses", f"got {_short(raw)}; allowed: a list of distinct status names, the "
                         "default (e.g. not_tried) first")
            return ()
        return tuple(raw)

    def _fact(self, name: str, raw: Any, statuses: tuple[str, ...]) -> FactSpec | None:
        where = f"facts.{name}"
        if not self._keys(where, raw, _FACT_KEYS, ("kind", "meaning", "group")):
            return None
        kind = raw["kind"]
        if kind not in KINDS:
            self.problem(f"{where}.kind", f"got {_short(kind)}; allowed: one of {', '.join(KINDS)}")
            return None
        allowed: tuple[str, ...] = ()
        low = high = None
        if kind == "number":
            bounds = self._range(where, raw.get("range"), required=True)
            if bounds is None:
                return None
            low, high = bounds
        elif kind == "set":
            allowed = self._members(where, raw.get("members"))
        elif kind == "status":
            allowed = statuses
        misplaced = _NOT_FOR[kind] & set(raw)
        for key in sorted(misplaced):
            self.problem(f"{where}.{key}", f"not used by a {kind} fact; remove it")
        spec = FactSpec(name, kind, raw["meaning"], allowed, low, high, _text(raw.get("unit", "")),
                        _kind_default(kind, allowed), raw["group"])
        if "default" in raw:
            return self._with_default(where, spec, raw["default"])
        return spec

    def _measure(self, name: str, raw: Any, facts: dict[str, FactSpec]
                 ) -> tuple[FactSpec, tuple[str, str], float] | None:
        where = f"measures.{name}"
        if not self._keys(where, raw, _MEASURE_KEYS, ("formula", "current", "baseline", "meaning", "range")):
            return None
        if name in facts:
            self.problem(where, "already declared as a fact; a measure needs a name of its own")
        if raw["formula"] not in FORMULAS:
            self.problem(f"{where}.formula", f"got {_short(raw['formula'])}; allowed: one of {', '.join(FORMULAS)}")
        for key in ("current", "baseline"):
            spec = facts.get(raw[key]) if isinstance(raw[key], str) else None
            if spec is None or spec.kind != "number":
                numbers = ", ".join(n for n, s in facts.items() if s.kind == "number")
                self.problem(f"{where}.{key}", f"got {_short(raw[key])}; allowed: a number fact ({numbers})")
        bounds = self._range(where, raw["range"], required=True, open_ends=True)
        if bounds is None or raw["formula"] not in FORMULAS:
            return None
        spec = FactSpec(name, "number", raw["meaning"], (), bounds[0], bounds[1], _text(raw.get("unit", "")),
                        None, _text(raw.get("group", "")))
        return spec, (raw["current"], raw["baseline"]), FORMULAS[raw["formula"]]

    def _keys(self, where: str, raw: Any, allowed: set[str], required: tuple[str, ...]) -> bool:
        if not isinstance(raw, dict):
            self.problem(where, f"got {_short(raw)}; allowed: a mapping with {', '.join(required)}")
            return False
        ok = True
        for key in sorted(set(raw) - allowed, key=str):
            self.problem(f"{where}.{key}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
            ok = False
        for key in required:
            if key not in raw:
                self.problem(f"{where}.{key}", "missing; every declaration needs " + ", ".join(required))
                ok = False
            elif key in ("meaning", "group") and not (isinstance(raw[key], str) and raw[key].strip()):
                self.problem(f"{where}.{key}", f"got {_short(raw[key])}; allowed: text")
                ok = False
        return ok

    def _range(self, where: str, raw: Any, *, required: bool, open_ends: bool = False
               ) -> tuple[float, float] | None:
        ends = "two numbers (~ for no limit)" if open_ends else "two finite numbers"
        if not (isinstance(raw, list) and len(raw) == 2):
            self.problem(f"{where}.range", f"got {_short(raw)}; allowed: [low, high], {ends}, low < high")
            return None
        low, high = (_bound(v, -math.inf if i == 0 else math.inf, open_ends) for i, v in enumerate(raw))
        if low is None or high is None or not low < high:
            self.problem(f"{where}.range", f"got {_short(raw)}; allowed: [low, high], {ends}, low < high")
            return None
        return low, high

    def _members(self, where: str, raw: Any) -> tuple[str, ...]:
        ok = isinstance(raw, list) and raw and all(isinstance(v, str) and v for v in raw)
        if not ok or len(set(raw)) != len(raw):
            self.problem(f"{where}.members", f"got {_short(raw)}; allowed: a list of distinct member names")
            return ()
        return tuple(raw)

    def _with_default(self, where: str, spec: FactSpec, value: Any) -> FactSpec:
        fits = {
            "bool": isinstance(value, bool),
            "status": isinstance(value, str) and value in spec.allowed,
            "number": value is None,
            "set": value == [],
        }[spec.kind]
        if not fits:
            self.problem(f"{where}.default", f"got {_short(value)}; allowed: {_default_text(spec)}")
            return spec
        return FactSpec(spec.name, spec.kind, spec.description, spec.allowed, spec.minimum, spec.maximum,
                        spec.unit, frozenset() if spec.kind == "set" else value, spec.group)


def _kind_default(kind: str, allowed: tuple[str, ...]) -> object:
    """Numbers: unknown; bool: false; status: the first status; set: empty."""
    return {"number": None, "bool": False, "status": allowed[0] if allowed else None, "set": frozenset()}[kind]


def _default_text(spec: FactSpec) -> str:
    return {"bool": "true or false", "status": "one of " + ", ".join(spec.allowed),
            "number": "~ (unknown; a number fact has no other default)", "set": "[] (empty)"}[spec.kind]


def _bound(value: Any, open_value: float, open_ends: bool) -> float | None:
    if value is None:
        return open_value if open_ends else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
