"""What an evaluation returns, and the one function that turns fired rules into it.

Engines decide *which* rules fire; :func:`summarize` decides what that means
(preferred agent, ordered recommendations, flags, derived facts, avoided
agents). Both engines call it, so for the same fired rules they cannot
disagree on the outcome.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from .facts import Patient
from .notice import DISCLAIMER
from .rulebook import Rule, Rulebook

__all__ = [
    "FiredRule",
    "Recommendation",
    "Summary",
    "Result",
    "summarize",
    "matched_facts",
    "show_value",
    "avoided_text",
    "DISCLAIMER",
]

#: Shown wherever a user sees a result.


@dataclass(frozen=True)
class FiredRule:
    """One step of the trace: a rule that fired, what it matched, and where it comes from."""

    rule_id: str
    title: str
    section: str
    citation: tuple[int, ...]
    stratum: int
    matched: dict[str, object]

    def describe(self) -> str:
        """One line for a printed trace: id, title, citation and the matched facts."""
        facts = ", ".join(f"{k}={show_value(v)}" for k, v in self.matched.items()) or "every patient"
        refs = ",".join(map(str, self.citation))
        return f"{self.rule_id} [{refs}] {self.title} <- {facts}"


@dataclass(frozen=True)
class Recommendation:
    """One recommended agent with its best rank, the rules behind it, their citations and notes."""

    agent: str
    name: str
    rank: int
    rules: tuple[str, ...]
    citations: tuple[int, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    """The outcome of a set of fired rules, independent of the engine and the patient."""

    preferred: str | None
    recommendations: tuple[str, ...]
    recommendation_details: tuple[Recommendation, ...]
    flags: tuple[str, ...]
    derived: tuple[str, ...]
    avoided: dict[str, tuple[str, ...]]
    continue_: tuple[str, ...] = ()
    cautions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    """Everything one evaluation says about one patient.

    ``recommendations`` are the agents to *start* (codes), preferred first,
    then by rank; ``continue_`` the agents to keep (``continue`` in files:
    a Python keyword); ``avoided`` each avoided agent with the rules that
    avoid it; ``cautions`` what to check before starting (caution codes);
    ``trace`` lists the fired rules in firing order with what each matched.
    """

    patient: Patient
    preferred: str | None
    recommendations: tuple[str, ...]
    recommendation_details: tuple[Recommendation, ...]
    flags: tuple[str, ...]
    derived: tuple[str, ...]
    avoided: dict[str, tuple[str, ...]]
    trace: tuple[FiredRule, ...]
    rulebook_version: str
    engine: str
    disclaimer: str = field(default=DISCLAIMER, repr=False)
    continue_: tuple[str, ...] = ()
    cautions: tuple[str, ...] = ()

    @property
    def fired_rules(self) -> tuple[str, ...]:
        """Ids of the fired rules in firing order."""
        return tuple(step.rule_id for step in self.trace)

    def to_row(self) -> dict[str, str]:
        """The outcome as CSV cells (``;``-separated lists), as ``lupus-rules run`` writes them."""
        return {
            "preferred": self.preferred or "",
            "recommendations": ";".join(self.recommendations),
            "continue": ";".join(self.continue_),
            "avoided": avoided_text(self.avoided),
            "cautions": ";".join(self.cautions),
            "flags": ";".join(self.flags),
            "fired_rules": ";".join(self.fired_rules),
        }

    def explain(self) -> str:
        """A plain-text report: outcome, then the derivation trace with citations."""
        lines = [self.disclaimer, f"Preferred: {self.preferred or 'none'}"]
        for rec in self.recommendation_details:
            note = f" ({'; '.join(rec.notes)})" if rec.notes else ""
            lines.append(f"  {rec.rank:>3}  {rec.agent}{note}  <- {', '.join(rec.rules)} "
                         f"[ref {','.join(map(str, rec.citations))}]")
        lines.append("Continue: " + (", ".join(self.continue_) or "none"))
        for agent, rules in self.avoided.items():
            lines.append(f"Avoid: {agent} <- {', '.join(rules)}")
        lines.append("Cautions: " + (", ".join(self.cautions) or "none"))
        lines.append("Flags: " + (", ".join(self.flags) or "none"))
        lines.append("Trace:")
        lines += [f"  {i + 1:>2}. {step.describe()}" for i, step in enumerate(self.trace)]
        lines.append(f"Rulebook {self.rulebook_version}, engine {self.engine}")
        return "\n".join(lines)


def summarize(rulebook: Rulebook, fired: Iterable[str]) -> Summary:
    """Turn the ids of fired rules into the outcome.

    Recommendations merge per agent (best rank wins) and are ordered by rank,
    then by the agent's place in the rulebook vocabulary. The preferred agent
    is the first non-foundation recommendation. Recommendations are new
    starts: an agent a fired rule keeps (``continue``) or avoids is never one.
    Agents to continue are those a fired rule keeps and none avoids (avoiding
    wins: a current agent that became unsafe is stopped).
    """
    return _summarize_cached(rulebook, tuple(fired))


@lru_cache(maxsize=4096)
def _summarize_cached(rulebook: Rulebook, fired: tuple[str, ...]) -> Summary:
    rules = [rulebook.rule(rule_id) for rule_id in fired]
    not_new = {agent for rule in rules for agent in rule.keep + rule.avoid}
    details = tuple(d for d in _recommendations(rulebook, rules) if d.agent not in not_new)
    preferred = next((d.agent for d in details if not rulebook.agents[d.agent].foundation), None)
    flags = _in_vocabulary_order(rulebook.flags, (f for r in rules for f in r.flag))
    derived = _in_vocabulary_order(rulebook.derived_facts, (d for r in rules for d in r.derive))
    avoided: dict[str, list[str]] = {}
    for rule in rules:
        for agent in rule.avoid:
            avoided.setdefault(agent, []).append(rule.id)
    ordered_avoided = {a: tuple(avoided[a]) for a in rulebook.agents if a in avoided}
    kept = _in_vocabulary_order(rulebook.agents, (a for r in rules for a in r.keep if a not in avoided))
    cautions = _in_vocabulary_order(rulebook.cautions, (c for r in rules for c in r.caution))
    return Summary(preferred, tuple(d.agent for d in details), details, flags, derived, ordered_avoided,
                   kept, cautions)


def avoided_text(avoided: dict[str, tuple[str, ...]]) -> str:
    """The ``avoided`` cell: ``agent: rule`` per avoided agent (the first rule that avoided it), ';'-separated."""
    return ";".join(f"{agent}: {rules[0]}" for agent, rules in avoided.items())


def _recommendations(rulebook: Rulebook, rules: Sequence[Rule]) -> tuple[Recommendation, ...]:
    merged: dict[str, dict[str, list]] = {}
    for rule in rules:
        for spec in rule.recommend:
            entry = merged.setdefault(spec.agent, {"rank": [], "rules": [], "cites": [], "notes": []})
            entry["rank"].append(spec.rank)
            entry["rules"].append(rule.id)
            entry["cites"].extend(rule.citation)
            if spec.note and spec.note not in entry["notes"]:
                entry["notes"].append(spec.note)
    order = {code: i for i, code in enumerate(rulebook.agents)}
    details = [
        Recommendation(agent, rulebook.agents[agent].name, min(e["rank"]), tuple(e["rules"]),
                       tuple(sorted(set(e["cites"]))), tuple(e["notes"]))
        for agent, e in merged.items()
    ]
    details.sort(key=lambda d: (d.rank, order[d.agent]))
    return tuple(details)


def _in_vocabulary_order(vocabulary: dict[str, str], codes: Iterable[str]) -> tuple[str, ...]:
    present = set(codes)
    return tuple(code for code in vocabulary if code in present)


def matched_facts(rule: Rule, patient: Patient) -> dict[str, object]:
    """The facts a fired rule tested, with this patient's values (derived facts as True/False)."""
    matched: dict[str, object] = {}
    for condition in rule.when:
        if condition.kind == "fact":
            value = patient[condition.fact]
            if isinstance(value, frozenset):
                value = tuple(m for m in patient.vocabulary.facts[condition.fact].allowed if m in value)
            matched[condition.fact] = value
        else:
            matched[condition.fact] = condition.kind == "derived"
    return matched


def show_value(value: object) -> str:
    """A fact value as traces print it: sets as ``{a,b}``, numbers without trailing zeros."""
    if isinstance(value, tuple):
        return "{" + ",".join(map(str, value)) + "}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
