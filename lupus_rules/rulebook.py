"""The rulebook: rules as data, and the loader that checks them.

Rules live in YAML files under ``lupus_rules/rules/``. Each file is a mapping
with an optional ``rulebook`` section (the vocabulary: references, agents,
flags, derived facts; exactly one file has it) and a ``rules`` list. Each rule
is a flat conjunction of conditions (``when``) and its conclusions (``then``).
Loading uses YAML's safe loader only: a rule file can never run code.

The loader rejects, naming file, rule id and field: unknown facts, unknown
operators, values a fact cannot take, duplicate ids, missing or unknown
citations, unknown agents/flags, derived facts no rule consumes or no rule
derives, and dependency cycles. Rules are assigned *strata* (a rule's stratum
is one more than the highest stratum of any rule deriving a fact it tests), the
order in which both engines fire them.
"""
from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from .errors import RuleProblem, RulebookError
from .facts import FACTS, MEASURES, FactSpec, quantize

__all__ = [
    "Condition",
    "RecommendationSpec",
    "Rule",
    "Agent",
    "AcceptedGap",
    "Rulebook",
    "OPERATORS",
    "DEFAULT_RULES_DIR",
    "load_rulebook",
    "rulebook_from_documents",
]

# The C-accelerated safe loader when libyaml is present: safe (no object construction), ~10x faster.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The folder holding the shipped rule files.
DEFAULT_RULES_DIR = Path(__file__).parent / "rules"

#: Operators a condition may use, by the kind of fact it tests.
OPERATORS: dict[str, tuple[str, ...]] = {
    "bool": ("==",),
    "status": ("==", "!=", "in", "not_in"),
    "set": ("has", "lacks"),
    "number": ("<", "<=", ">", ">=", "known", "unknown"),
}

_RULE_KEYS = {"id", "title", "section", "citation", "when", "then", "rationale", "note"}
_THEN_KEYS = {"derive", "recommend", "avoid", "flag"}
_META_KEYS = {"name", "guideline", "disclaimer", "references", "agents", "flags",
              "derived_facts", "definitions", "rank_scale", "accepted_gaps"}


@dataclass(frozen=True)
class Condition:
    """One test in a rule's ``when`` list.

    ``kind`` is ``"fact"`` (``fact op value`` on a patient fact or measure),
    ``"derived"`` (the derived fact ``fact`` holds) or ``"not_derived"``.
    """

    kind: str
    fact: str
    op: str = ""
    value: Any = None

    def describe(self) -> str:
        """The condition in words an author reads, e.g. ``egfr >= 45``."""
        if self.kind == "derived":
            return f"derived {self.fact}"
        if self.kind == "not_derived":
            return f"not derived {self.fact}"
        if self.op in ("known", "unknown"):
            return f"{self.fact} is {self.op}"
        value = self.value
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, float):
            value = f"{value:g}"
        elif isinstance(value, (list, tuple)):
            value = "[" + ", ".join(map(str, value)) + "]"
        return f"{self.fact} {self.op} {value}"

    def to_data(self) -> dict[str, Any]:
        """The condition as it is written in a rule file."""
        if self.kind != "fact":
            return {self.kind: self.fact}
        data: dict[str, Any] = {"fact": self.fact, "op": self.op}
        if self.op not in ("known", "unknown"):
            data["value"] = list(self.value) if isinstance(self.value, tuple) else self.value
        return data


@dataclass(frozen=True)
class RecommendationSpec:
    """A rule's recommendation of one agent, with its rank (lower = stronger) and an optional note."""

    agent: str
    rank: int
    note: str = ""


@dataclass(frozen=True)
class Rule:
    """One guideline rule: conditions, conclusions and where it comes from."""

    id: str
    title: str
    section: str
    citation: tuple[int, ...]
    when: tuple[Condition, ...]
    derive: tuple[str, ...] = ()
    recommend: tuple[RecommendationSpec, ...] = ()
    avoid: tuple[str, ...] = ()
    flag: tuple[str, ...] = ()
    rationale: str = ""
    note: str = ""
    file: str = ""
    stratum: int = 0
    position: int = 0

    def consumes(self) -> tuple[str, ...]:
        """Derived facts this rule tests (present or absent)."""
        return tuple(c.fact for c in self.when if c.kind != "fact")

    def to_data(self) -> dict[str, Any]:
        """The rule as it is written in a rule file (round-trips through the loader)."""
        then: dict[str, Any] = {}
        if self.derive:
            then["derive"] = list(self.derive)
        if self.recommend:
            then["recommend"] = [
                {"agent": r.agent, "rank": r.rank, **({"note": r.note} if r.note else {})}
                for r in self.recommend
            ]
        if self.avoid:
            then["avoid"] = list(self.avoid)
        if self.flag:
            then["flag"] = list(self.flag)
        data: dict[str, Any] = {
            "id": self.id, "title": self.title, "section": self.section,
            "citation": list(self.citation), "when": [c.to_data() for c in self.when],
            "then": then, "rationale": self.rationale,
        }
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True)
class Agent:
    """A therapy a rule may recommend. ``foundation`` agents (hydroxychloroquine) are never 'preferred'."""

    code: str
    name: str
    foundation: bool = False


@dataclass(frozen=True)
class AcceptedGap:
    """A documented, deliberate gap: patients matching ``when`` get no disease-modifying agent on purpose."""

    id: str
    description: str
    when: tuple[Condition, ...]


@dataclass(frozen=True, eq=False)
class Rulebook:
    """A checked, stratified set of rules plus the vocabulary they use.

    ``version`` is a content hash of the rule data, stamped on every result so
    a result can always be traced to the rules that produced it.
    """

    rules: tuple[Rule, ...]
    agents: dict[str, Agent]
    flags: dict[str, str]
    derived_facts: dict[str, str]
    references: dict[int, str]
    meta: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    source: str = ""
    accepted_gaps: tuple[AcceptedGap, ...] = ()

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id; KeyError names the id when there is none."""
        try:
            return self._by_id[rule_id]
        except KeyError:
            raise KeyError(f"no rule with id {rule_id!r}") from None

    @cached_property
    def _by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in self.rules}

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Every rule id, in firing order (stratum, then file order)."""
        return tuple(r.id for r in self.rules)

    @property
    def strata(self) -> int:
        """How many strata the rules fall into."""
        return 1 + max((r.stratum for r in self.rules), default=0)

    def to_documents(self) -> list[tuple[str, dict[str, Any]]]:
        """The rulebook as (file name, data) pairs, one per source file, ready to dump as YAML."""
        return _documents(self.meta, self._in_file_order())

    def with_rules(self, rules: Iterable[Rule]) -> Rulebook:
        """A new, re-checked rulebook with these rules, in this order (e.g. after an edit in a notebook)."""
        return rulebook_from_documents(_documents(self.meta, list(rules)), source=self.source + " (edited)")

    def replace_rule(self, rule_id: str, **changes: Any) -> Rulebook:
        """A new rulebook where one rule has some fields changed (``when``, ``recommend``, ...)."""
        self.rule(rule_id)
        return self.with_rules(replace(r, **changes) if r.id == rule_id else r for r in self._in_file_order())

    def without_rule(self, rule_id: str) -> Rulebook:
        """A new rulebook with one rule dropped."""
        self.rule(rule_id)
        return self.with_rules(r for r in self._in_file_order() if r.id != rule_id)

    def _in_file_order(self) -> list[Rule]:
        return sorted(self.rules, key=lambda r: r.position)


def _documents(meta: dict[str, Any], rules: list[Rule]) -> list[tuple[str, dict[str, Any]]]:
    """Rules grouped back into their files, the vocabulary first."""
    docs: dict[str, dict[str, Any]] = {"rulebook.yaml": {"rulebook": copy.deepcopy(meta)}}
    for rule in rules:
        docs.setdefault(rule.file or "rules.yaml", {}).setdefault("rules", []).append(rule.to_data())
    return list(docs.items())


def load_rulebook(path: str | Path | None = None) -> Rulebook:
    """Load and check a rulebook from a folder of YAML files or one YAML file.

    ``None`` loads the shipped guideline rulebook. Raises :class:`RulebookError`
    listing every problem found, each with file, rule id and field.
    """
    path = Path(path) if path is not None else DEFAULT_RULES_DIR
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    elif path.is_file():
        files = [path]
    else:
        raise RulebookError([RuleProblem(str(path), None, None, "no such file or folder")])
    docs: list[tuple[str, Any]] = []
    problems: list[RuleProblem] = []
    for file in files:
        try:
            docs.append((file.name, yaml.load(file.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)))
        except yaml.YAMLError as exc:
            problems.append(RuleProblem(file.name, None, None, f"not valid YAML: {exc}"))
    if problems:
        raise RulebookError(problems)
    return rulebook_from_documents(docs, source=str(path))


def rulebook_from_documents(docs: list[tuple[str, Any]], source: str = "") -> Rulebook:
    """Build and check a rulebook from already-parsed documents: (file name, mapping) pairs."""
    return _Loader(docs, source).build()


class _Loader:
    """Collects every problem across all documents before raising, so authors fix them in one pass."""

    def __init__(self, docs: list[tuple[str, Any]], source: str):
        self.docs = [(name, copy.deepcopy(data)) for name, data in docs]
        self.source = source
        self.problems: list[RuleProblem] = []

    def problem(self, file: str, rule_id: str | None, fld: str | None, message: str) -> None:
        self.problems.append(RuleProblem(file, rule_id, fld, message))

    def build(self) -> Rulebook:
        meta, meta_file = self._meta()
        agents = self._agents(meta, meta_file)
        flags = self._mapping(meta, meta_file, "flags")
        derived = self._mapping(meta, meta_file, "derived_facts")
        references = {int(k): str(v) for k, v in (meta.get("references") or {}).items()
                      if str(k).isdigit()}
        if not references:
            self.problem(meta_file, None, "references", "at least one numbered reference is required")
        rules, order = self._rules(agents, flags, derived, references)
        self._check_derived_use(rules)
        gaps = self._gaps(meta, meta_file, derived)
        strata = self._strata(rules)
        if self.problems:
            raise RulebookError(self.problems)
        version = _content_hash(meta, [r.to_data() for r in rules])
        rules = [replace(r, stratum=strata[r.id], position=order[r.id]) for r in rules]
        rules.sort(key=lambda r: (r.stratum, r.position))
        return Rulebook(tuple(rules), agents, flags, derived, references, meta, version, self.source, gaps)

    # -- vocabulary -----------------------------------------------------------------

    def _meta(self) -> tuple[dict[str, Any], str]:
        found = [(name, data["rulebook"]) for name, data in self.docs
                 if isinstance(data, dict) and "rulebook" in data]
        for name, data in self.docs:
            if not isinstance(data, dict):
                self.problem(name, None, None, "a rule file must be a mapping with 'rulebook' and/or 'rules'")
            elif set(data) - {"rulebook", "rules"}:
                self.problem(name, None, None, f"unknown top-level keys {sorted(set(data) - {'rulebook', 'rules'})}; "
                             "allowed: rulebook, rules")
        if len(found) != 1:
            names = ", ".join(n for n, _ in found) or "none"
            self.problem(self.source or "rulebook", None, "rulebook",
                         f"exactly one file must hold the 'rulebook' vocabulary section; found in: {names}")
            return {}, found[0][0] if found else "rulebook.yaml"
        name, meta = found[0]
        if not isinstance(meta, dict):
            self.problem(name, None, "rulebook", "must be a mapping")
            return {}, name
        for key in sorted(set(meta) - _META_KEYS):
            self.problem(name, None, f"rulebook.{key}", f"unknown key; allowed: {', '.join(sorted(_META_KEYS))}")
        return meta, name

    def _agents(self, meta: dict[str, Any], file: str) -> dict[str, Agent]:
        agents: dict[str, Agent] = {}
        for code, info in (meta.get("agents") or {}).items():
            info = info if isinstance(info, dict) else {"name": str(info)}
            agents[str(code)] = Agent(str(code), str(info.get("name", code)), bool(info.get("foundation", False)))
        if not agents:
            self.problem(file, None, "agents", "at least one agent is required")
        return agents

    def _gaps(self, meta: dict[str, Any], file: str, derived: dict[str, str]) -> tuple[AcceptedGap, ...]:
        gaps = []
        for i, item in enumerate(meta.get("accepted_gaps") or []):
            if not isinstance(item, dict) or not item.get("id") or not item.get("description"):
                self.problem(file, None, f"accepted_gaps[{i}]", "needs 'id', 'description' and 'when'")
                continue
            when = self._conditions(file, str(item["id"]), item.get("when"), derived)
            gaps.append(AcceptedGap(str(item["id"]), str(item["description"]).strip(), when))
        return tuple(gaps)

    def _mapping(self, meta: dict[str, Any], file: str, key: str) -> dict[str, str]:
        value = meta.get(key) or {}
        if not isinstance(value, dict):
            self.problem(file, None, key, "must be a mapping of code: description")
            return {}
        return {str(k): str(v) for k, v in value.items()}

    # -- rules ----------------------------------------------------------------------

    def _rules(self, agents, flags, derived, references) -> tuple[list[Rule], dict[str, int]]:
        rules: list[Rule] = []
        order: dict[str, int] = {}
        for file, data in self.docs:
            if not isinstance(data, dict):
                continue
            entries = data.get("rules") or []
            if not isinstance(entries, list):
                self.problem(file, None, "rules", "must be a list of rules")
                continue
            for index, entry in enumerate(entries):
                rule = self._rule(file, index, entry, agents, flags, derived, references)
                if rule is None:
                    continue
                if rule.id in order:
                    self.problem(file, rule.id, "id", "duplicate rule id")
                    continue
                order[rule.id] = len(order)
                rules.append(rule)
        return rules, order

    def _rule(self, file, index, entry, agents, flags, derived, references) -> Rule | None:
        if not isinstance(entry, dict):
            self.problem(file, f"#{index + 1}", None, "a rule must be a mapping")
            return None
        rule_id = entry.get("id")
        if not isinstance(rule_id, str) or not rule_id.strip():
            self.problem(file, f"#{index + 1}", "id", "missing rule id")
            return None
        for key in sorted(set(entry) - _RULE_KEYS):
            self.problem(file, rule_id, key, f"unknown field; allowed: {', '.join(sorted(_RULE_KEYS))}")
        for key in ("title", "section", "rationale"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                self.problem(file, rule_id, key, "missing (a non-empty text is required)")
        citation = self._citation(file, rule_id, entry.get("citation"), references)
        when = self._conditions(file, rule_id, entry.get("when"), derived)
        then = entry.get("then")
        if not isinstance(then, dict) or not then:
            self.problem(file, rule_id, "then", "missing: a rule needs at least one conclusion")
            then = {}
        for key in sorted(set(then) - _THEN_KEYS):
            self.problem(file, rule_id, f"then.{key}", f"unknown conclusion; allowed: {', '.join(sorted(_THEN_KEYS))}")
        return Rule(
            id=rule_id,
            title=str(entry.get("title", "")),
            section=str(entry.get("section", "")),
            citation=citation,
            when=when,
            derive=self._codes(file, rule_id, "then.derive", then.get("derive"), derived, "derived fact"),
            recommend=self._recommend(file, rule_id, then.get("recommend"), agents),
            avoid=self._codes(file, rule_id, "then.avoid", then.get("avoid"), agents, "agent"),
            flag=self._codes(file, rule_id, "then.flag", then.get("flag"), flags, "flag"),
            rationale=str(entry.get("rationale", "")),
            note=str(entry.get("note", "") or ""),
            file=file,
        )

    def _citation(self, file, rule_id, raw, references) -> tuple[int, ...]:
        if raw is None or raw == [] or raw == "":
            self.problem(file, rule_id, "citation", "missing: cite the guideline reference number(s) "
                         f"{', '.join(map(str, sorted(references)))}")
            return ()
        items = raw if isinstance(raw, list) else [raw]
        out = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int) or item not in references:
                self.problem(file, rule_id, "citation", f"unknown reference {item!r}; allowed: "
                             f"{', '.join(map(str, sorted(references)))}")
            else:
                out.append(item)
        return tuple(out)

    def _codes(self, file, rule_id, fld, raw, vocabulary, what) -> tuple[str, ...]:
        if raw is None:
            return ()
        items = raw if isinstance(raw, list) else [raw]
        out = []
        for item in items:
            if item not in vocabulary:
                self.problem(file, rule_id, fld, f"unknown {what} {item!r}; allowed: {', '.join(vocabulary)}")
            else:
                out.append(item)
        return tuple(out)

    def _recommend(self, file, rule_id, raw, agents) -> tuple[RecommendationSpec, ...]:
        if raw is None:
            return ()
        out = []
        for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
            fld = f"then.recommend[{i}]"
            if not isinstance(item, dict) or "agent" not in item or "rank" not in item:
                self.problem(file, rule_id, fld, "must be a mapping with 'agent' and 'rank' (and optional 'note')")
                continue
            if item["agent"] not in agents:
                self.problem(file, rule_id, fld + ".agent",
                             f"unknown agent {item['agent']!r}; allowed: {', '.join(agents)}")
                continue
            rank = item["rank"]
            if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
                self.problem(file, rule_id, fld + ".rank", f"got {rank!r}; allowed: a whole number >= 1")
                continue
            out.append(RecommendationSpec(item["agent"], rank, str(item.get("note", "") or "")))
        return tuple(out)

    def _conditions(self, file, rule_id, raw, derived) -> tuple[Condition, ...]:
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            self.problem(file, rule_id, "when", "must be a list of conditions (all must hold)")
            return ()
        out = []
        for i, item in enumerate(raw):
            condition = self._condition(file, rule_id, f"when[{i}]", item, derived)
            if condition is not None:
                out.append(condition)
        return tuple(out)

    def _condition(self, file, rule_id, fld, item, derived) -> Condition | None:
        if not isinstance(item, dict):
            self.problem(file, rule_id, fld, "a condition must be a mapping")
            return None
        for kind in ("derived", "not_derived"):
            if kind in item:
                name = item[kind]
                if len(item) != 1:
                    self.problem(file, rule_id, fld, f"'{kind}' takes no other keys")
                if name not in derived:
                    self.problem(file, rule_id, f"{fld}.{kind}",
                                 f"unknown derived fact {name!r}; allowed: {', '.join(derived)}")
                    return None
                return Condition(kind, name)
        extra = set(item) - {"fact", "op", "value"}
        if extra:
            self.problem(file, rule_id, fld, f"unknown keys {sorted(extra)}; allowed: fact, op, value "
                         "(or derived / not_derived)")
        name = item.get("fact")
        spec = FACTS.get(name) or MEASURES.get(name)
        if spec is None:
            self.problem(file, rule_id, f"{fld}.fact", f"unknown fact {name!r}; allowed: "
                         f"{', '.join(list(FACTS) + list(MEASURES))}")
            return None
        op = item.get("op")
        if op not in OPERATORS[spec.kind]:
            self.problem(file, rule_id, f"{fld}.op", f"unknown operator {op!r} for {spec.kind} fact {name}; "
                         f"allowed: {', '.join(OPERATORS[spec.kind])}")
            return None
        value = item.get("value")
        if op in ("known", "unknown"):
            return Condition("fact", name, op, None)
        message = _value_problem(spec, op, value)
        if message:
            self.problem(file, rule_id, f"{fld}.value", message)
            return None
        if isinstance(value, list):
            value = tuple(value)
        elif spec.kind == "number":
            value = float(quantize(value))
        return Condition("fact", name, op, value)

    # -- whole-rulebook checks --------------------------------------------------------

    def _check_derived_use(self, rules: list[Rule]) -> None:
        consumed = {name for r in rules for name in r.consumes()}
        produced = {name for r in rules for name in r.derive}
        for rule in rules:
            for name in rule.derive:
                if name not in consumed:
                    self.problem(rule.file, rule.id, "then.derive",
                                 f"derived fact {name!r} is not used by any rule's conditions")
            for name in rule.consumes():
                if name not in produced:
                    self.problem(rule.file, rule.id, "when",
                                 f"derived fact {name!r} is not derived by any rule, so this can never hold"
                                 if any(c.kind == "derived" and c.fact == name for c in rule.when) else
                                 f"derived fact {name!r} is not derived by any rule")

    def _strata(self, rules: list[Rule]) -> dict[str, int]:
        producers: dict[str, list[str]] = {}
        for rule in rules:
            for name in rule.derive:
                producers.setdefault(name, []).append(rule.id)
        by_id = {r.id: r for r in rules}
        strata: dict[str, int] = {}
        visiting: list[str] = []

        def stratum(rule_id: str) -> int:
            if rule_id in strata:
                return strata[rule_id]
            if rule_id in visiting:
                cycle = visiting[visiting.index(rule_id):] + [rule_id]
                raise _Cycle(cycle)
            visiting.append(rule_id)
            deps = [p for name in by_id[rule_id].consumes() for p in producers.get(name, [])]
            level = 1 + max((stratum(d) for d in deps), default=-1)
            visiting.pop()
            strata[rule_id] = level
            return level

        for rule in rules:
            try:
                stratum(rule.id)
            except _Cycle as cycle:
                self.problem(rule.file, rule.id, "when",
                             "dependency cycle through derived facts: " + " -> ".join(cycle.path))
                return {r.id: 0 for r in rules}
        return strata


class _Cycle(Exception):
    def __init__(self, path: list[str]):
        self.path = path


def _value_problem(spec: FactSpec, op: str, value: Any) -> str | None:
    """Why ``value`` cannot be compared to this fact with ``op``, or None when it can."""
    if spec.kind == "bool":
        return None if isinstance(value, bool) else f"got {value!r}; allowed: true or false"
    if spec.kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"got {value!r}; allowed: a number"
    if spec.kind == "set":
        return None if value in spec.allowed else f"got {value!r}; allowed: one of {', '.join(spec.allowed)}"
    if op in ("in", "not_in"):
        ok = isinstance(value, list) and value and all(v in spec.allowed for v in value)
        return None if ok else f"got {value!r}; allowed: a list of {', '.join(spec.allowed)}"
    return None if value in spec.allowed else f"got {value!r}; allowed: one of {', '.join(spec.allowed)}"


def _content_hash(meta: Mapping[str, Any], rules: list[dict[str, Any]]) -> str:
    payload = json.dumps({"rulebook": meta, "rules": rules}, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]
