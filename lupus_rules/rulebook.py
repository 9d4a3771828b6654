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

It also refuses what an engine could not run or a reader could not trust, so
every rulebook it returns runs on both engines and hashes to one version:

* files: regular files only (no FIFO, device, folder or dangling link), UTF-8
  text, at most :data:`MAX_FILE_BYTES` each (read with a bounded read);
* data: only text, numbers, true/false, null, lists and mappings with text keys
  (no ``!!set``, ``!!binary`` or dates), finite numbers, whole numbers within
  ±2**53, at most :data:`MAX_DEPTH` levels deep and :data:`MAX_VALUES` values per
  file once YAML aliases are expanded (a "billion laughs" file is refused);
* fields: names (ids, facts, agents, flags, derived facts) are text, ranks are
  1..:data:`MAX_RANK`, thresholds are within ±:data:`MAX_THRESHOLD`, and at
  most :data:`MAX_RULES` rules fall into at most :data:`MAX_STRATA` strata.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from .errors import RuleProblem, RulebookError
from .facts import quantize
from .vocabulary import (
    SHIPPED_RULEBOOK_FILE,
    FactSpec,
    Vocabulary,
    parse_vocabulary,
    shipped_document,
    shipped_vocabulary,
)

__all__ = [
    "Condition",
    "RecommendationSpec",
    "Rule",
    "Agent",
    "AcceptedGap",
    "Conflict",
    "Rulebook",
    "OPERATORS",
    "DEFAULT_RULES_DIR",
    "load_rulebook",
    "parse_rule_text",
    "rulebook_from_documents",
    "MAX_FILE_BYTES",
    "MAX_VALUES",
    "MAX_DEPTH",
    "MAX_STRATA",
    "MAX_RULES",
    "MAX_RANK",
    "MAX_THRESHOLD",
]

# The C-accelerated safe loader when libyaml is present: safe (no object construction), ~10x faster.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The folder holding the shipped rule files.
DEFAULT_RULES_DIR = Path(__file__).parent / "rules"

#: Largest rule file read, in bytes (8 MiB; the shipped files are about 10 KiB each).
MAX_FILE_BYTES = 8 * 1024 * 1024
#: Most values (scalars, lists, mappings) one file may hold once YAML aliases are expanded.
MAX_VALUES = 1_000_000
#: Deepest nesting of lists and mappings in a rule file (the shipped files nest 6 levels).
MAX_DEPTH = 32
#: Most strata (levels of derived-fact dependencies) a rulebook may have; both engines run this many.
MAX_STRATA = 200
#: Most rules in a rulebook: the size up to which lint and both engines are measured and bounded
#: (README, "Resource limits"; ``benchmarks/limits.py``).
MAX_RULES = 2000
#: Largest recommendation rank (ranks are 1..MAX_RANK; the engines hold them as 32-bit integers).
MAX_RANK = 10**6
#: Largest threshold magnitude in a condition (durable compares integers of 10**-6 units in 64 bits).
MAX_THRESHOLD = 1e12
_MAX_INT = 2**53  # whole numbers anywhere in a file: exact as floats and in JSON

#: Operators a condition may use, by the kind of fact it tests.
OPERATORS: dict[str, tuple[str, ...]] = {
    "bool": ("==",),
    "status": ("==", "!=", "in", "not_in"),
    "set": ("has", "lacks"),
    "number": ("<", "<=", ">", ">=", "known", "unknown"),
}

_RULE_KEYS = {"id", "title", "section", "citation", "when", "then", "rationale", "note"}
_THEN_KEYS = {"derive", "recommend", "avoid", "flag", "continue", "caution"}
_META_KEYS = {"name", "guideline", "disclaimer", "references", "agents", "flags",
              "derived_facts", "definitions", "rank_scale", "accepted_gaps", "conflicts", "statuses", "facts", "measures",
              "cautions"}


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
    keep: tuple[str, ...] = ()  # written ``continue:`` in a rule file (a Python keyword)
    caution: tuple[str, ...] = ()
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
        if self.keep:
            then["continue"] = list(self.keep)
        if self.caution:
            then["caution"] = list(self.caution)
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


@dataclass(frozen=True)
class Conflict:
    """Advice that must never come together: ``start`` offered as a new start while ``flag`` is raised.

    Declared under ``conflicts`` in ``rulebook.yaml``; ``lupus-rules lint`` checks
    over the whole space that no patient gets both (check ``conflict``).
    """

    start: str
    flag: str
    why: str


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
    vocabulary: Vocabulary = field(default_factory=shipped_vocabulary, compare=False)
    cautions: dict[str, str] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()

    @property
    def facts(self) -> dict[str, FactSpec]:
        """The input facts this rulebook declares, in declaration order."""
        return self.vocabulary.facts

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
    try:
        mode = os.stat(path).st_mode
    except OSError:
        raise RulebookError([RuleProblem(str(path), None, None, "no such file or folder")]) from None
    if stat.S_ISDIR(mode):
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    else:
        files = [path]
    docs: list[tuple[str, Any]] = []
    problems: list[RuleProblem] = []
    for file in files:
        try:
            docs.append((file.name, _parsed(file, _read_rule_file(file))))
        except RulebookError as exc:
            problems += exc.problems
    if problems:
        raise RulebookError(problems)
    return _Loader(docs, str(path), owned=True).build()


def _parsed(file: Path, text: str) -> Any:
    """The data of a rule file; the shipped ``rulebook.yaml`` unchanged is not parsed again (a copy is used)."""
    shipped_text, shipped_data = shipped_document()
    if text == shipped_text and file.name == SHIPPED_RULEBOOK_FILE.name:
        return copy.deepcopy(shipped_data)
    return parse_rule_text(file.name, text)


def parse_rule_text(name: str, text: str) -> Any:
    """The data of one rule file's text, parsed with YAML's safe loader; RulebookError names ``name``."""
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        message = f"not valid YAML: {exc}"
    except RecursionError:
        message = f"not usable YAML: nested too deeply (at most {MAX_DEPTH} levels)"
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. a date like 2025-13-45
        message = f"not usable YAML: {exc} (quote the value to make it text)"
    raise RulebookError([RuleProblem(name, None, None, message)])


def _read_rule_file(file: Path) -> str:
    """The text of a rule file: a regular UTF-8 file of at most MAX_FILE_BYTES, never blocking."""
    try:
        info = os.stat(file)
    except FileNotFoundError:
        broken = os.path.islink(file)
        raise _file_error(file, "a symbolic link to nothing (dangling link)" if broken else "no such file")
    except OSError as exc:
        raise _file_error(file, f"cannot be read: {exc.strerror or exc}") from None
    _check_regular(file, info)
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise _file_error(file, f"cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        _check_regular(file, os.fstat(fd))  # the file may have been swapped since the stat
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _file_error(file, f"larger than {MAX_FILE_BYTES:,} bytes; split the rules over several files")
    return _decode(file, data)


def _check_regular(file: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise _file_error(file, f"not a regular file ({_file_kind(info.st_mode)}); a rule file must be a plain "
                          "YAML file")
    if info.st_size > MAX_FILE_BYTES:
        raise _file_error(file, f"larger than {MAX_FILE_BYTES:,} bytes ({info.st_size:,}); split the rules "
                          "over several files")


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((word for test, word in kinds if test(mode)), "not a plain file")


def _decode(file: Path, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _file_error(file, "UTF-16 text; save the file as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise _file_error(file, f"not UTF-8 text: byte {data[exc.start:exc.start + 1]!r} at offset {exc.start} "
                          f"(line {line}); save the file as UTF-8") from None
    return text.removeprefix("\ufeff")


def _file_error(file: Path, message: str) -> RulebookError:
    return RulebookError([RuleProblem(file.name, None, None, message)])


def rulebook_from_documents(docs: list[tuple[str, Any]], source: str = "") -> Rulebook:
    """Build and check a rulebook from already-parsed documents: (file name, mapping) pairs."""
    return _Loader(docs, source).build()


class _Loader:
    """Collects every problem across all documents before raising, so authors fix them in one pass."""

    def __init__(self, docs: list[tuple[str, Any]], source: str, owned: bool = False):
        shape = [problem for name, data in docs for problem in _shape_problems(str(name), data)]
        if shape:
            raise RulebookError(shape)
        # the caller's documents are never changed; ``owned``: parsed for this loader alone, no copy needed
        self.docs = [(str(name), data if owned else copy.deepcopy(data)) for name, data in docs]
        self.source = source
        self.problems: list[RuleProblem] = []

    def problem(self, file: str, rule_id: str | None, fld: str | None, message: str) -> None:
        self.problems.append(RuleProblem(file, rule_id, fld, message))

    def build(self) -> Rulebook:
        meta, meta_file = self._meta()
        self.vocabulary = self._vocabulary(meta, meta_file)
        agents = self._agents(meta, meta_file)
        flags = self._mapping(meta, meta_file, "flags")
        cautions = self._mapping(meta, meta_file, "cautions")
        derived = self._mapping(meta, meta_file, "derived_facts")
        references = self._references(meta, meta_file)
        self.cautions = cautions
        rules, order = self._rules(agents, flags, derived, references)
        self._check_derived_use(rules)
        if len(rules) > MAX_RULES:
            self._too_many(rules)
        gaps = self._gaps(meta, meta_file, derived)
        conflicts = self._conflicts(meta, meta_file, agents, flags)
        strata = self._strata(rules)
        if self.problems:
            raise RulebookError(self.problems)
        version = _content_hash({**meta, "references": references}, [r.to_data() for r in rules])
        rules = [replace(r, stratum=strata[r.id], position=order[r.id]) for r in rules]
        rules.sort(key=lambda r: (r.stratum, r.position))
        return Rulebook(tuple(rules), agents, flags, derived, references, meta, version, self.source, gaps,
                        self.vocabulary, cautions, conflicts)

    def _too_many(self, rules: list[Rule]) -> None:
        """One problem naming the rule count, the file holding the most rules and the limit."""
        per_file: dict[str, int] = {}
        for name, data in self.docs:
            if isinstance(data, Mapping) and isinstance(data.get("rules"), list):
                per_file[name] = len(data["rules"])
        largest = max(per_file, key=per_file.__getitem__)
        self.problem(largest, None, "rules", f"{len(rules):,} rules in the rulebook ({per_file[largest]:,} in this "
                     f"file); allowed: at most {MAX_RULES:,} (the size lint and both engines are measured and "
                     f"bounded at; see README, Resource limits)")

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

    def _vocabulary(self, meta: dict[str, Any], file: str) -> Vocabulary:
        """The declared facts; the shipped ones when the section declares none (older rule folders).

        Every path that takes this rulebook reads its facts from here (``Rulebook.vocabulary``).
        """
        if not any(key in meta for key in ("statuses", "facts", "measures")):
            return shipped_vocabulary()
        try:
            vocabulary = parse_vocabulary(meta, file)
        except RulebookError as exc:
            self.problems += exc.problems
            return shipped_vocabulary()
        shipped = shipped_vocabulary()
        return shipped if vocabulary == shipped else vocabulary  # one shared instance for the shipped facts

    def _references(self, meta: dict[str, Any], file: str) -> dict[int, str]:
        raw = meta.get("references") or {}
        if not isinstance(raw, dict):
            self.problem(file, None, "references", "must be a mapping of number: reference text")
            raw = {}
        references: dict[int, str] = {}
        for key, text in raw.items():
            number = key if isinstance(key, int) and not isinstance(key, bool) else None
            if isinstance(key, str) and key.isascii() and key.isdigit():
                number = int(key)
            if number is None or not 1 <= number <= MAX_RANK or not isinstance(text, str):
                self.problem(file, None, f"references.{key}", f"got {key!r}: {text!r}; allowed: a whole number "
                             f"from 1 to {MAX_RANK:,} with the reference as text")
            else:
                references[number] = text
        if not references and not any(p.field and p.field.startswith("references") for p in self.problems):
            self.problem(file, None, "references", "at least one numbered reference is required")
        return dict(sorted(references.items()))

    def _agents(self, meta: dict[str, Any], file: str) -> dict[str, Agent]:
        agents: dict[str, Agent] = {}
        raw = meta.get("agents") or {}
        if not isinstance(raw, dict):
            self.problem(file, None, "agents", "must be a mapping of code: {name, foundation}")
            raw = {}
        for code, info in raw.items():
            info = info if isinstance(info, dict) else {"name": info}
            name, foundation = info.get("name", code), info.get("foundation", False)
            if not isinstance(name, str) or not isinstance(foundation, bool) or set(info) - {"name", "foundation"}:
                self.problem(file, None, f"agents.{code}", f"got {info!r}; allowed: a name (text) or "
                             "{name: text, foundation: true/false}")
                continue
            agents[code] = Agent(code, name, foundation)
        if not agents:
            self.problem(file, None, "agents", "at least one agent is required")
        return agents

    def _gaps(self, meta: dict[str, Any], file: str, derived: dict[str, str]) -> tuple[AcceptedGap, ...]:
        gaps = []
        raw = meta.get("accepted_gaps") or []
        if not isinstance(raw, list):
            self.problem(file, None, "accepted_gaps", "must be a list of {id, description, when}")
            raw = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or not _is_text(item.get("id")) or not _is_text(item.get("description")):
                self.problem(file, None, f"accepted_gaps[{i}]", "needs 'id', 'description' and 'when'")
                continue
            when = self._conditions(file, str(item["id"]), item.get("when"), derived)
            gaps.append(AcceptedGap(str(item["id"]), str(item["description"]).strip(), when))
        return tuple(gaps)

    def _conflicts(self, meta: dict[str, Any], file: str, agents: dict[str, Agent],
                   flags: dict[str, str]) -> tuple[Conflict, ...]:
        raw = meta.get("conflicts") or []
        if not isinstance(raw, list):
            self.problem(file, None, "conflicts", "must be a list of {start: agent, flag: flag, why: text}")
            return ()
        out = []
        for i, item in enumerate(raw):
            where = f"conflicts[{i}]"
            if not isinstance(item, dict) or set(item) != {"start", "flag", "why"} or not all(
                    _is_text(item[k]) for k in ("start", "flag", "why")):
                self.problem(file, None, where, f"got {item!r}; allowed: {{start: agent, flag: flag, why: text}}")
                continue
            if item["start"] not in agents:
                self.problem(file, None, f"{where}.start", f"got {item['start']!r}; allowed: one of the agents "
                             f"({', '.join(agents)})")
            elif item["flag"] not in flags:
                self.problem(file, None, f"{where}.flag", f"got {item['flag']!r}; allowed: one of the flags "
                             f"({', '.join(flags)})")
            else:
                out.append(Conflict(item["start"], item["flag"], str(item["why"]).strip()))
        return tuple(out)

    def _mapping(self, meta: dict[str, Any], file: str, key: str) -> dict[str, str]:
        value = meta.get(key) or {}
        if not isinstance(value, dict):
            self.problem(file, None, key, "must be a mapping of code: description")
            return {}
        for code, text in value.items():
            if not isinstance(text, str):
                self.problem(file, None, f"{key}.{code}", f"got {text!r}; allowed: a description (text)")
        return {k: v for k, v in value.items() if isinstance(v, str)}

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
        if rule_id.startswith("__"):
            self.problem(file, rule_id, "id", f"got {rule_id!r}; allowed: an id not starting with '__' "
                         "(reserved for the engines' own rules)")
        for key in sorted(set(entry) - _RULE_KEYS):
            self.problem(file, rule_id, key, f"unknown field; allowed: {', '.join(sorted(_RULE_KEYS))}")
        for key in ("title", "section", "rationale"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                self.problem(file, rule_id, key, "missing (a non-empty text is required)")
        if entry.get("note") is not None and not isinstance(entry["note"], str):
            self.problem(file, rule_id, "note", f"got {entry['note']!r}; allowed: text")
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
            keep=self._codes(file, rule_id, "then.continue", then.get("continue"), agents, "agent"),
            caution=self._codes(file, rule_id, "then.caution", then.get("caution"), self.cautions, "caution"),
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
            if not isinstance(item, str) or item not in vocabulary:
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
            if not isinstance(item["agent"], str) or item["agent"] not in agents:
                self.problem(file, rule_id, fld + ".agent",
                             f"unknown agent {item['agent']!r}; allowed: {', '.join(agents)}")
                continue
            rank, note = item["rank"], item.get("note") or ""
            if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= MAX_RANK:
                self.problem(file, rule_id, fld + ".rank", f"got {rank!r}; allowed: a whole number from 1 to "
                             f"{MAX_RANK:,}")
                continue
            if not isinstance(note, str) or set(item) - {"agent", "rank", "note"}:
                self.problem(file, rule_id, fld, "allowed keys: agent, rank and note (text)")
                continue
            out.append(RecommendationSpec(item["agent"], rank, note))
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
                if not isinstance(name, str) or name not in derived:
                    self.problem(file, rule_id, f"{fld}.{kind}",
                                 f"unknown derived fact {name!r}; allowed: {', '.join(derived)}")
                    return None
                return Condition(kind, name)
        extra = set(item) - {"fact", "op", "value"}
        if extra:
            self.problem(file, rule_id, fld, f"unknown keys {sorted(extra)}; allowed: fact, op, value "
                         "(or derived / not_derived)")
        name = item.get("fact")
        spec = self.vocabulary.spec(name) if isinstance(name, str) else None
        if spec is None:
            self.problem(file, rule_id, f"{fld}.fact", f"unknown fact {name!r}; allowed: "
                         f"{', '.join(self.vocabulary.names())}")
            return None
        op = item.get("op")
        if not isinstance(op, str) or op not in OPERATORS[spec.kind]:
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
            if len(visiting) >= MAX_STRATA:  # bounds the recursion before the level is known
                raise _TooDeep()
            visiting.append(rule_id)
            deps = [p for name in by_id[rule_id].consumes() for p in producers.get(name, [])]
            level = 1 + max((stratum(d) for d in deps), default=-1)
            if level >= MAX_STRATA:
                raise _TooDeep()
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
            except _TooDeep:
                self.problem(rule.file, rule.id, "when", f"depends on a chain of derived facts more than "
                             f"{MAX_STRATA} rules deep; allowed: at most {MAX_STRATA} strata")
                return {r.id: 0 for r in rules}
        return strata


class _Cycle(Exception):
    def __init__(self, path: list[str]):
        self.path = path


class _TooDeep(Exception):
    """A rule sits above more than MAX_STRATA strata."""


def _value_problem(spec: FactSpec, op: str, value: Any) -> str | None:
    """Why ``value`` cannot be compared to this fact with ``op``, or None when it can."""
    if spec.kind == "bool":
        return None if isinstance(value, bool) else f"got {value!r}; allowed: true or false"
    if spec.kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and abs(value) <= MAX_THRESHOLD
        if not ok:
            return f"got {value!r}; allowed: a number from {-MAX_THRESHOLD:.0e} to {MAX_THRESHOLD:.0e}"
        low, high = max(spec.minimum, -MAX_THRESHOLD), min(spec.maximum, MAX_THRESHOLD)
        inside = low <= value <= high
        return None if inside else f"got {value!r}; allowed: a number from {low:g} to {high:g} (the range of {spec.name})"
    if spec.kind == "set":
        return None if isinstance(value, str) and value in spec.allowed else f"got {value!r}; allowed: one of {', '.join(spec.allowed)}"
    if op in ("in", "not_in"):
        ok = isinstance(value, list) and value and all(isinstance(v, str) and v in spec.allowed for v in value)
        return None if ok else f"got {value!r}; allowed: a list of {', '.join(spec.allowed)}"
    ok = isinstance(value, str) and value in spec.allowed
    return None if ok else f"got {value!r}; allowed: one of {', '.join(spec.allowed)}"


def _content_hash(meta: Mapping[str, Any], rules: list[dict[str, Any]]) -> str:
    """A hash of the data alone: canonical JSON (sorted keys, no set or other type), the same in every process."""
    payload = json.dumps({"rulebook": meta, "rules": rules}, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


_PLAIN = (str, bool, int, float, type(None))


def _shape_problems(file: str, data: Any) -> list[RuleProblem]:
    """What in a parsed file is not plain JSON-like data within the limits (see the module docstring).

    Walks the data as the engines and the version hash will see it, aliases expanded, without ever
    holding the expansion: a counter stops the walk at MAX_VALUES, a depth bound stops self-references.
    """
    problems: list[RuleProblem] = []
    stack: list[tuple[Any, tuple, int]] = [(data, (), 0)]
    seen = 0
    while stack and len(problems) < 50:
        value, path, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            problems.append(_located(file, data, (), f"holds more than {MAX_VALUES:,} values once YAML aliases "
                                     "are expanded (each use of an alias counts); write the data out"))
            break
        message = _scalar_problem(value) if not isinstance(value, (dict, list, tuple)) else None
        if depth > MAX_DEPTH:
            message = f"nested more than {MAX_DEPTH} levels deep (or an alias refers to itself)"
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) or (path == ("rulebook", "references") and isinstance(key, int)):
                    stack.append((item, path + (key,), depth + 1))
                else:
                    problems.append(_located(file, data, path, f"key {key!r} is a {type(key).__name__}; "
                                             "mapping keys must be text"))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, path + (i,), depth + 1) for i, item in enumerate(value))
        if message:
            problems.append(_located(file, data, path, message))
    return problems


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"got {value!r}; allowed: a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_INT:
        return f"got a {len(str(abs(value)))}-digit number; allowed: whole numbers within ±2**53"
    if not isinstance(value, _PLAIN):
        kind = {"set": "!!set", "bytes": "!!binary", "date": "date", "datetime": "timestamp"}.get(
            type(value).__name__, type(value).__name__)
        return (f"a {kind} value is not allowed; rule files hold only text, numbers, true/false, null, lists "
                "and mappings (quote a date to make it text)")
    return None


def _located(file: str, data: Any, path: tuple, message: str) -> RuleProblem:
    """A problem at ``path`` in a file, with the rule id and a field relative to the rule when inside one."""
    rule_id = None
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        entry = data["rules"][path[1]]
        named = isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"].strip()
        rule_id = entry["id"] if named else f"#{path[1] + 1}"
        path = path[2:]
    text = "".join(f"[{p}]" if isinstance(p, int) and not isinstance(p, bool) else f".{p}" for p in path)
    return RuleProblem(file, rule_id, text.lstrip(".") or None, message)
