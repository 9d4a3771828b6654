"""Why a rule did not fire, and the derivation graph of a result.

Not for clinical use: these explanations describe a teaching model of one
guideline summary, not advice for a patient.

:func:`why_not` lists, for every rule that did not fire, the conditions that
failed with the patient's actual values and, where one exists, the single
fact change that makes the rule fire. Candidate changes are screened with a
small in-process reading of the rules (cheap), and every proposal is then
*verified* with :func:`lupus_rules.evaluate` on the same rulebook: only
changes that really make the rule fire are proposed.

:func:`derivation_graph` draws the fired chain (facts → rules → derived facts
→ recommendations / flags / avoided agents) as Mermaid flowchart text, which
JupyterLab renders natively; :func:`derivation_table` gives the same chain as
a DataFrame.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

from .engines.python import condition_holds, fire as _fire
from .evaluate import default_rulebook, evaluate
from .facts import FactSpec, Patient, validate_patient
from .result import Result
from .rulebook import Condition, Rule, Rulebook
from .vocabulary import Vocabulary, shipped_vocabulary

__all__ = [
    "FailedCondition",
    "FactChange",
    "WhyNot",
    "condition_holds",
    "clause_marks",
    "describe_failure",
    "why_not",
    "derivation_graph",
    "derivation_table",
]

# A measure = sign * (current - baseline) / baseline * 100 (facts.compute_measures), with its
# sign and inputs as the rulebook declares them (vocabulary.measure_signs / measure_inputs).


# ---------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class FailedCondition:
    """One condition of a rule that does not hold for the patient, in words.

    ``actual`` is the patient's value of the fact tested (``None`` = unknown;
    ``True``/``False`` for a derived fact), ``text`` reads e.g.
    ``"egfr is 40, needs >= 60 mL/min/1.73 m²"``.
    """

    condition: Condition
    actual: object
    text: str


@dataclass(frozen=True)
class FactChange:
    """A change of one input fact, verified with :func:`lupus_rules.evaluate` to make a rule fire.

    ``preferred_after`` is the preferred agent the changed patient gets, so a
    teacher sees the consequence of the change, not only that the rule fires.
    """

    fact: str
    old: object
    new: object
    preferred_after: str | None = None
    spec: FactSpec | None = field(default=None, compare=False, repr=False)  # the fact (None: a shipped fact)

    def describe(self) -> str:
        """The change in words, e.g. ``"set egfr to 60 (now 40)"``."""
        spec = self.spec if self.spec is not None else _spec(self.fact, shipped_vocabulary())
        if spec.kind == "set":
            old, new = set(self.old), set(self.new)  # type: ignore[call-overload]
            if new - old:
                return f"add {', '.join(sorted(new - old))} to {self.fact}"
            return f"remove {', '.join(sorted(old - new))} from {self.fact}"
        return f"set {self.fact} to {_show(spec, self.new)} (now {_show(spec, self.old)})"


@dataclass(frozen=True)
class WhyNot:
    """Why one rule did not fire: the first failed condition, all of them, and a verified fix if any."""

    rule_id: str
    title: str
    first_failed: FailedCondition
    failed: tuple[FailedCondition, ...]
    fix: FactChange | None

    def describe(self) -> str:
        """One line: rule, the first failed condition, how many more, and the fix."""
        more = f" (+{len(self.failed) - 1} more)" if len(self.failed) > 1 else ""
        fix = f"; would fire if: {self.fix.describe()}" if self.fix else "; no single fact change makes it fire"
        return f"{self.rule_id} {self.title}: {self.first_failed.text}{more}{fix}"


# ---------------------------------------------------------------------------------------
# Conditions


def describe_failure(condition: Condition, patient: Mapping[str, object],
                     derivers: Mapping[str, tuple[str, ...]] | None = None,
                     vocabulary: Vocabulary | None = None) -> FailedCondition:
    """The failed ``condition`` in words with the patient's actual value.

    ``derivers`` (derived fact -> ids of fired rules that derived it) lets a
    failed ``not_derived`` name the rules responsible. ``vocabulary``: whose
    facts (default: the patient's own when it is a :class:`Patient`, else the shipped ones).
    """
    if vocabulary is None:
        vocabulary = patient.vocabulary if isinstance(patient, Patient) else shipped_vocabulary()
    if condition.kind == "derived":
        return FailedCondition(condition, False, f"{condition.fact} was not derived, needs it derived")
    if condition.kind == "not_derived":
        by = (derivers or {}).get(condition.fact, ())
        source = f" (by {', '.join(by)})" if by else ""
        return FailedCondition(condition, True, f"{condition.fact} was derived{source}, needs it not derived")
    spec = _spec(condition.fact, vocabulary)
    value = patient[condition.fact]
    shown = _show(spec, value)
    unit = f" {spec.unit}" if spec.unit else ""
    op, target = condition.op, condition.value
    needs = _needs(op, target, unit)
    return FailedCondition(condition, _plain_value(value, spec), f"{condition.fact} is {shown}, {needs}")


def _needs(op: str, target: object, unit: str) -> str:
    """What a condition with this operator requires, in words."""
    if op == "known":
        return "needs a known value"
    if op == "unknown":
        return "needs it unknown"
    if op == "has":
        return f"needs it to include {target}"
    if op == "lacks":
        return f"needs it to exclude {target}"
    if op in ("in", "not_in"):
        words = "one of" if op == "in" else "none of"
        return f"needs {words} {', '.join(map(str, target))}"  # type: ignore[call-overload]
    if op == "==":
        return f"needs {_plain(target)}"
    if op == "!=":
        return f"needs anything but {_plain(target)}"
    return f"needs {op} {_plain(target)}{unit}"


def _spec(name: str, vocabulary: Vocabulary) -> FactSpec:
    spec = vocabulary.spec(name)
    if spec is None:
        raise KeyError(f"{name!r} is not a fact of this rulebook")
    return spec


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _plain_value(value: object, spec: FactSpec) -> object:
    if isinstance(value, frozenset):
        return tuple(m for m in spec.allowed if m in value)
    return value


def _show(spec: FactSpec, value: object) -> str:
    if value is None:
        return "unknown"
    if spec.kind == "set":
        members = [m for m in spec.allowed if m in value]  # type: ignore[operator]
        return "{" + ", ".join(members) + "}" if members else "{} (none)"
    return _plain(value)


# ---------------------------------------------------------------------------------------
# Why not


def why_not(result_or_patient: Result | Patient | Mapping[str, object],
            rulebook: Rulebook | None = None) -> list[WhyNot]:
    """For each rule that did not fire (firing order): what failed, and a verified single fact change.

    Accepts a :class:`Result` (from :func:`evaluate` with the same rulebook) or
    a patient (evaluated here). ``rulebook`` defaults to the shipped one; a
    result produced by another rulebook version raises ``ValueError``.
    """
    book, result = _resolve(result_or_patient, rulebook)
    patient = result.patient
    fired = set(result.fired_rules)
    derivers = _derivers(book, result.fired_rules)
    search = _FixSearch(book, patient)
    out: list[WhyNot] = []
    for rule in book.rules:
        if rule.id in fired:
            continue
        failed = tuple(describe_failure(c, patient, derivers, book.vocabulary) for c in rule.when
                       if not condition_holds(c, patient, result.derived))
        if not failed:  # cannot happen when the engines agree; say so rather than hide it
            raise RuntimeError(f"rule {rule.id} did not fire although all its conditions hold")
        out.append(WhyNot(rule.id, rule.title, failed[0], failed, search.fix(rule, failed)))
    return out


def clause_marks(rule: Rule, result: Result) -> tuple[tuple[str, bool], ...]:
    """Each condition of ``rule`` in words (``Condition.describe``) with whether it held for the result's patient.

    The clause highlighting of the explorer: which parts of a rule the current
    patient meets. ``result`` must come from the rulebook ``rule`` belongs to.
    """
    return tuple((c.describe(), condition_holds(c, result.patient, result.derived)) for c in rule.when)


def _resolve(result_or_patient: Result | Patient | Mapping[str, object],
             rulebook: Rulebook | None) -> tuple[Rulebook, Result]:
    book = rulebook if rulebook is not None else default_rulebook()
    if isinstance(result_or_patient, Result):
        if result_or_patient.rulebook_version != book.version:
            raise ValueError(
                f"result_or_patient: the result comes from rulebook {result_or_patient.rulebook_version}, "
                f"but rulebook {book.version} was given; pass the rulebook that produced the result")
        return book, result_or_patient
    return book, evaluate(result_or_patient, book)


def _derivers(book: Rulebook, fired: Iterable[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for rule_id in fired:
        for name in book.rule(rule_id).derive:
            out.setdefault(name, []).append(rule_id)
    return {k: tuple(v) for k, v in out.items()}


class _FixSearch:
    """Finds, per rule, the preferred single fact change that makes it fire; caches every evaluation."""

    def __init__(self, book: Rulebook, patient: Patient):
        self.book = book
        self.vocabulary = book.vocabulary
        self.patient = patient
        self.facts = patient.facts()
        self.upstream = _upstream_facts(book)
        self.thresholds = _thresholds(book)
        self._screened: dict[tuple[str, object], frozenset[str] | None] = {}
        self._verified: dict[tuple[str, object], Result | None] = {}

    def fix(self, rule: Rule, failed: tuple[FailedCondition, ...]) -> FactChange | None:
        for fact in self._facts_to_try(failed):
            direct = [c for c in rule.when if c.kind == "fact" and c.fact == fact]
            for value in self._values(fact):
                if not all(condition_holds(c, {fact: value}, ()) for c in direct):
                    continue  # cheap: this value cannot satisfy the rule's own test of the fact
                if rule.id not in (self._screen(fact, value) or ()):
                    continue
                result = self._verify(fact, value)
                if result is not None and rule.id in result.fired_rules:
                    return FactChange(fact, self.facts[fact], value, result.preferred, self.vocabulary.facts[fact])
        return None

    def _facts_to_try(self, failed: tuple[FailedCondition, ...]) -> list[str]:
        """Input facts that could flip every failed condition, nearest (direct) ones first."""
        ordered: list[str] = []
        allowed: set[str] | None = None
        for item in failed:
            reach = self._reach(item.condition)
            allowed = set(reach) if allowed is None else allowed & set(reach)
            ordered += [f for f in reach if f not in ordered]
        return [f for f in ordered if f in (allowed or set())]

    def _reach(self, condition: Condition) -> tuple[str, ...]:
        if condition.kind != "fact":
            return self.upstream.get(condition.fact, ())
        inputs = self.vocabulary.measure_inputs
        if condition.fact in inputs:
            return inputs[condition.fact]
        return (condition.fact,)

    def _values(self, fact: str) -> list[object]:
        spec, current = self.vocabulary.facts[fact], self.facts[fact]
        if spec.kind == "set":
            return [frozenset(set(current) ^ {m}) for m in spec.allowed]  # type: ignore[arg-type]
        if spec.kind == "status":
            return [v for v in spec.allowed if v != current]
        if spec.kind == "bool":
            return [not current]
        return self._numbers(fact, current)  # type: ignore[arg-type]

    def _numbers(self, fact: str, current: float | None) -> list[object]:
        spec = self.vocabulary.facts[fact]
        values: set[float] = set(self.thresholds.get(fact, ()))
        for measure, (cur_name, base_name) in self.vocabulary.measure_inputs.items():
            sign = self.vocabulary.measure_signs[measure]
            if fact in (cur_name, base_name):
                other = self.facts[base_name if fact == cur_name else cur_name]
                for target in self.thresholds.get(measure, ()) + (0.0,):
                    values.update(_solve_measure(fact == cur_name, other, target, sign))  # type: ignore[arg-type]
        assert spec.minimum is not None and spec.maximum is not None
        ranked: list[object] = sorted(
            (v for v in values if spec.minimum <= v <= spec.maximum and v != current),
            key=lambda v: (abs(v - current) if current is not None else v, v))
        if current is not None:
            ranked.append(None)
        return ranked

    def _changed(self, fact: str, value: object) -> Patient:
        facts = dict(self.facts)
        facts[fact] = value
        return validate_patient(facts, self.vocabulary)

    def _screen(self, fact: str, value: object) -> frozenset[str] | None:
        key = (fact, value)
        if key not in self._screened:
            self._screened[key] = frozenset(_fire(self._changed(fact, value), self.book))
        return self._screened[key]

    def _verify(self, fact: str, value: object) -> Result | None:
        key = (fact, value)
        if key not in self._verified:
            self._verified[key] = evaluate(self._changed(fact, value), self.book)
        return self._verified[key]


def _solve_measure(solve_current: bool, other: float | None, target: float, sign: float) -> list[float]:
    """Values of one measure input that put the measure at ``target`` (and its neighbours at 0.01)."""
    if other is None or 1 + sign * target / 100 == 0:
        return []
    factor = 1 + sign * target / 100
    exact = other * factor if solve_current else other / factor
    if not math.isfinite(exact) or (not solve_current and exact <= 0) or (solve_current and other <= 0):
        return []
    cents = exact * 100
    return sorted({round(exact, 2), math.floor(cents) / 100, math.ceil(cents) / 100,
                   math.floor(cents) / 100 - 0.01, math.ceil(cents) / 100 + 0.01})


@lru_cache(maxsize=16)
def _thresholds(book: Rulebook) -> dict[str, tuple[float, ...]]:
    """For each number fact or measure, the values at and just beyond every threshold the rules use."""
    out: dict[str, set[float]] = {}
    for rule in book.rules:
        for c in rule.when:
            if c.kind != "fact" or c.op not in ("<", "<=", ">", ">="):
                continue
            spec = _spec(c.fact, book.vocabulary)
            step = 1.0 if (spec.maximum or 0) >= 100 else 0.1
            t = float(c.value)
            values = out.setdefault(c.fact, set())
            values.update({t, round(t - step, 6), round(t + step, 6)})
    return {k: tuple(sorted(v)) for k, v in out.items()}


@lru_cache(maxsize=16)
def _upstream_facts(book: Rulebook) -> dict[str, tuple[str, ...]]:
    """For each derived fact, the input facts the rules deriving it test, through the whole chain."""
    producers: dict[str, list[Rule]] = {}
    for rule in book.rules:
        for name in rule.derive:
            producers.setdefault(name, []).append(rule)
    out: dict[str, tuple[str, ...]] = {}

    def visit(name: str, seen: frozenset[str]) -> list[str]:
        facts: list[str] = []
        for rule in producers.get(name, ()):
            for c in rule.when:
                if c.kind == "fact":
                    measured = book.vocabulary.measure_inputs
                    inputs = measured[c.fact] if c.fact in measured else (c.fact,)
                    facts += [f for f in inputs if f not in facts]
                elif c.fact not in seen:
                    facts += [f for f in visit(c.fact, seen | {c.fact}) if f not in facts]
        return facts

    for name in producers:
        out[name] = tuple(visit(name, frozenset({name})))
    return out


# ---------------------------------------------------------------------------------------
# Derivation graph and table


_ROUND = ("(", ")")
_HEXAGON = ("{{", "}}")
_STADIUM = ("([", "])")
_SUBROUTINE = ("[[", "]]")
_TRAPEZOID = ("[/", "\\]")

_CLASSES = (
    "classDef fact fill:#eef2ff,stroke:#6366f1,color:#1e1b4b",
    "classDef fired fill:#fde68a,stroke:#b45309,stroke-width:2px,color:#451a03",
    "classDef notfired fill:#f3f4f6,stroke:#9ca3af,color:#6b7280,stroke-dasharray:3 3",
    "classDef derived fill:#dcfce7,stroke:#15803d,color:#14532d",
    "classDef absent fill:#ffffff,stroke:#15803d,color:#14532d,stroke-dasharray:4 2",
    "classDef rec fill:#dbeafe,stroke:#1d4ed8,color:#1e3a8a",
    "classDef preferred fill:#1d4ed8,stroke:#172554,stroke-width:3px,color:#ffffff",
    "classDef flag fill:#fee2e2,stroke:#b91c1c,color:#7f1d1d",
    "classDef avoid fill:#fff7ed,stroke:#c2410c,color:#7c2d12,stroke-dasharray:2 2",
)


def derivation_graph(result: Result, rulebook: Rulebook | None = None, include_not_fired: bool = False) -> str:
    """Mermaid flowchart text of how the result was derived: facts → rules → derived facts → outcome.

    Fired rules, the facts they matched, what they derived and concluded are
    drawn with solid arrows and highlighted (class ``fired``; the preferred
    agent has class ``preferred``). With ``include_not_fired`` the rules that
    did not fire are added greyed out with dashed arrows (large: for a small
    rulebook or a printed handout).
    """
    book, result = _resolve(result, rulebook)
    graph = _Graph()
    for step in result.trace:
        _draw_rule(graph, book.rule(step.rule_id), result, fired=True)
    if include_not_fired:
        fired = set(result.fired_rules)
        for rule in book.rules:
            if rule.id not in fired:
                _draw_rule(graph, rule, result, fired=False)
    return graph.text()


class _Graph:
    """Accumulates Mermaid nodes (once each) and edges (once each), in insertion order."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[str, str, tuple[str, str]]] = {}
        self.edges: list[str] = []

    def node(self, node_id: str, label: str, cls: str, shape: tuple[str, str] = ("[", "]")) -> str:
        if node_id not in self.nodes:
            self.nodes[node_id] = (label, cls, shape)
        return node_id

    def edge(self, source: str, target: str, solid: bool, label: str = "") -> None:
        arrow = "-->" if solid else "-.->"
        text = f"{source} {arrow}|{_escape(label)}| {target}" if label else f"{source} {arrow} {target}"
        if text not in self.edges:
            self.edges.append(text)

    def text(self) -> str:
        lines = ["flowchart LR"]
        for node_id, (label, cls, shape) in self.nodes.items():
            lines.append(f"    {node_id}{shape[0]}\"{_escape(label)}\"{shape[1]}:::{cls}")
        lines += [f"    {edge}" for edge in self.edges]
        lines += [f"    {c}" for c in _CLASSES]
        return "\n".join(lines)


def _draw_rule(graph: _Graph, rule: Rule, result: Result, fired: bool) -> None:
    rule_node = graph.node(_node_id("r", rule.id), f"{rule.id}\n{rule.title}", "fired" if fired else "notfired")
    patient = result.patient
    for c in rule.when:
        if c.kind == "fact":
            spec = _spec(c.fact, patient.vocabulary)
            source = graph.node(_node_id("f", c.fact), f"{c.fact} = {_show(spec, patient[c.fact])}", "fact", _ROUND)
            graph.edge(source, rule_node, fired, "" if fired else c.describe())
        elif c.kind == "derived":
            held = c.fact in result.derived
            source = graph.node(_node_id("d", c.fact), c.fact, "derived" if held else "notfired", _HEXAGON)
            graph.edge(source, rule_node, fired)
        else:
            source = graph.node(_node_id("n", c.fact), f"no {c.fact}", "absent", _HEXAGON)
            graph.edge(source, rule_node, fired)
    _draw_conclusions(graph, rule, rule_node, result, fired)


def _draw_conclusions(graph: _Graph, rule: Rule, rule_node: str, result: Result, fired: bool) -> None:
    for name in rule.derive:
        cls = "derived" if name in result.derived else "notfired"
        graph.edge(rule_node, graph.node(_node_id("d", name), name, cls, _HEXAGON), fired)
    for spec in rule.recommend:
        cls = "preferred" if spec.agent == result.preferred else "rec"
        if not fired and spec.agent not in result.recommendations:
            cls = "notfired"
        label = spec.agent + (" (preferred)" if spec.agent == result.preferred else "")
        graph.edge(rule_node, graph.node(_node_id("a", spec.agent), label, cls, _STADIUM), fired, f"rank {spec.rank}")
    for code in rule.flag:
        cls = "flag" if code in result.flags else "notfired"
        graph.edge(rule_node, graph.node(_node_id("g", code), f"flag: {code}", cls, _SUBROUTINE), fired)
    for agent in rule.avoid:
        cls = "avoid" if agent in result.avoided else "notfired"
        graph.edge(rule_node, graph.node(_node_id("x", agent), f"avoid {agent}", cls, _TRAPEZOID), fired, "avoid")


def _node_id(prefix: str, name: str) -> str:
    return prefix + "_" + "".join(ch if ch.isalnum() else "_" for ch in name)


_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", ";": "#59;"}


def _escape(text: str) -> str:
    """Mermaid label text: quotes, angle brackets, '#' and ';' as entity codes, newlines as <br/>."""
    return re.sub(r'[#"<>;]', lambda m: _ENTITIES[m.group()], text).replace("\n", "<br/>")


def derivation_table(result: Result, rulebook: Rulebook | None = None) -> pd.DataFrame:
    """The fired chain as a table: one row per fired rule in firing order, with what it matched and concluded."""
    book, result = _resolve(result, rulebook)
    rows = []
    for i, step in enumerate(result.trace, start=1):
        rule = book.rule(step.rule_id)
        rows.append({
            "step": i,
            "rule": rule.id,
            "title": rule.title,
            "stratum": rule.stratum,
            "matched": ", ".join(f"{k}={_show(spec, v) if (spec := book.vocabulary.spec(k)) is not None else v}"
                                 for k, v in step.matched.items()) or "every patient",
            "derives": ", ".join(rule.derive),
            "recommends": ", ".join(f"{r.agent} ({r.rank})" for r in rule.recommend),
            "flags": ", ".join(rule.flag),
            "avoids": ", ".join(rule.avoid),
            "citation": ",".join(map(str, rule.citation)),
        })
    columns = ["step", "rule", "title", "stratum", "matched", "derives", "recommends", "flags", "avoids", "citation"]
    return pd.DataFrame(rows, columns=columns)
