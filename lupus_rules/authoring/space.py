"""The discretized patient space, reduced exactly to what a question about some rules needs.

The discretized space is every value of :func:`lupus_rules.generate.value_bands`
(each category, and unknown / just below / at / just above every threshold)
combined with every other: about 10^12 patients for the shipped rulebook, far
too many to evaluate. Two exact reductions make it tractable:

* **Relevance.** A question about some rules (does R ever fire? is agent A
  ever both recommended and avoided?) depends only on those rules and, through
  derived facts, on the rules deriving what they test (the *closure*). Facts no
  rule of the closure tests cannot change the answer: they stay at their default.
* **Equivalence classes.** Two values of a fact that make every condition of
  the closure come out the same are interchangeable, so each band is cut into
  classes by the truth values of those conditions, and one representative
  value (the first in band order, the default first) stands for each class.

Enumerating the product of the classes of the relevant facts therefore answers
the question for *every* point of the discretized space: it is exhaustive, not a
sample. A third reduction keeps big questions exact:

* **Cases.** When that product is large, one band is fixed at each of its
  classes in turn (a *case*). In a case, a rule with a condition that is false
  there cannot fire, nor can a rule needing a fact only such rules derive; the
  bands only they test drop out. "Joint" patients never vary the topical
  statuses the cutaneous rules test, so the cases sum to far fewer classes than
  the product. Cases are split again while that pays.

* **Redundant derivers.** A rule that only derives, from bands no other rule
  of the question tests, needs no varying when another such rule derives the
  same facts from bands of its own: "joint step 1 done" follows from the
  yes/no fact or from the glucocorticoid's status, and the yes/no fact alone
  already gives both answers (:meth:`FactSpace.without_redundant`).

Only when even the cases exceed a limit are classes sampled (seeded), and
:class:`Plan` says so. Two budgets keep a large rulebook's questions bounded
(README, "Resource limits"): an enumeration evaluates at most
:data:`WORK_CELLS` (rows × rules) whatever ``max_rows`` allows (its cases
together :data:`CASES_WORK_CELLS`), and the search for cases gives up (the
plan is then sampled) when the plan is out of its reach (:data:`SPLIT_REACH`)
or the searches have cost :data:`SPLIT_WORK` in all. Rule firing itself is
computed by the vectorized engine
(:func:`lupus_rules.engines.vectorized.fire_matrix`), chunk by chunk.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TypeVar

import numpy as np
import pandas as pd

from ..engines.vectorized import _compile, _fire, condition_mask  # rule-major firing, no transpose
from ..facts import csv_cell, validate_frame
from ..vocabulary import Vocabulary
from ..generate import band_columns, value_bands
from ..rulebook import Condition, Rule, Rulebook

__all__ = ["FactSpace", "Plan", "Chunk", "schedule", "row_limit", "DEFAULT_MAX_ROWS", "CHUNK_ROWS",
           "CHUNK_BYTES", "SPLIT_ABOVE", "MAX_SPLIT_DEPTH", "WORK_CELLS", "CASES_WORK_CELLS", "SPLIT_REACH",
           "SPLIT_WORK"]

T = TypeVar("T")

#: Above this many classes a plan samples instead of enumerating (and says so).
DEFAULT_MAX_ROWS = 25_000_000
#: Rows drawn at once (the seeded sample is drawn in blocks of this many rows).
CHUNK_ROWS = 1_000_000
#: Bytes one evaluated chunk may take (the fired matrix costs about 3 bytes per rule and row).
CHUNK_BYTES = 256 * 1024 * 1024
#: A plan with more classes than this is split into cases when that at least halves its classes.
SPLIT_ABOVE = 1_000_000
#: At most this many bands are fixed per case (each split multiplies the chunks to evaluate).
MAX_SPLIT_DEPTH = 4
#: Most rule evaluations (rows × rules evaluated) one enumeration may cost; above it the rows are sampled.
#: The shipped rulebook's largest needs 2.6e8 (one of its cases).
WORK_CELLS = 1_000_000_000
#: Most rule evaluations all cases of one plan may cost together (the shipped gap/tie cases: 1.6e9).
CASES_WORK_CELLS = 4 * WORK_CELLS
#: Cases are not sought for a plan over this many times its row limit (cases shrank the shipped one 39×).
SPLIT_REACH = 1000
#: Most (plans built × rules in their closure) the searches for cases of one space may cost together
#: (the shipped rulebook's lint: 65 000); once spent, larger plans are sampled without a search.
SPLIT_WORK = 200_000


def row_limit(max_rows: int, rules: int) -> int:
    """Rows one enumeration of ``rules`` rules may evaluate: ``max_rows``, or fewer so rows × rules <= WORK_CELLS."""
    return max(1, min(max_rows, WORK_CELLS // max(1, rules)))


@dataclass(frozen=True)
class _Group:
    """One band: the facts it fills, its raw values (default first) and their typed rows."""

    key: str
    columns: tuple[str, ...]
    values: tuple
    typed: pd.DataFrame
    reads: frozenset[str]  # facts and measures a condition may test through this band


@dataclass(frozen=True)
class Plan:
    """What one enumeration covers: the relevant rules, facts and classes, and whether it is exhaustive.

    Per relevant band ``key``: ``atoms[key]`` are the conditions testing it,
    ``class_of[key][i]`` the class of band value ``i``, ``reps[key][c]`` the band
    value standing for class ``c`` (class 0 holds the default) and
    ``signatures[key][c, j]`` whether atom ``j`` holds in class ``c``.
    ``classes`` = product of the class counts (row ``r`` of an exhaustive
    enumeration is the class tuple ``np.unravel_index(r, shape)``); ``rows`` =
    rows actually evaluated; ``space_size`` = points of the whole discretized space.
    A case plan (see the module docstring) also holds ``fixed``: (band, value
    index) for each band held at one value, and ``case``, those values in words.
    ``roots`` and ``optional``: the rule ids and optional rules the plan was
    asked for (:meth:`FactSpace.plan`); ``rule_ids`` holds them with their closure.
    """

    rule_ids: frozenset[str]
    conditions: frozenset[Condition]
    keys: tuple[str, ...]
    reps: dict[str, np.ndarray] = field(repr=False)
    atoms: dict[str, tuple[Condition, ...]] = field(repr=False)
    class_of: dict[str, np.ndarray] = field(repr=False)
    signatures: dict[str, np.ndarray] = field(repr=False)
    classes: int = 1
    rows: int = 1
    exhaustive: bool = True
    space_size: int = 1
    seed: int = 0
    fixed: tuple[tuple[str, int], ...] = ()
    case: str = ""
    optional: frozenset[str] = frozenset()
    roots: frozenset[str] = frozenset()
    budget: int = 0  # the row limit when WORK_CELLS set it below max_rows (0: max_rows applied)

    @cached_property
    def atom_set(self) -> frozenset[Condition]:
        """Every fact condition the classes respect: a question needing only these is answered exactly."""
        return frozenset(a for atoms in self.atoms.values() for a in atoms)

    def covers(self, other: Plan) -> bool:
        """True when this enumeration answers every question ``other`` answers (its classes are finer)."""
        return not self.fixed and not other.fixed and other.atom_set <= self.atom_set

    @property
    def shape(self) -> tuple[int, ...]:
        """Class counts of the relevant bands, in ``keys`` order."""
        return tuple(len(self.reps[k]) for k in self.keys)

    def describe(self) -> str:
        """How much of the space was covered, in one honest sentence."""
        facts = ", ".join(self.keys) or "none"
        if self.case:
            facts = f"{facts}; case {self.case}"
        if self.exhaustive:
            return (f"exhaustive: {self.classes:,} classes over the relevant facts ({facts}) stand for all "
                    f"{self.space_size:.3g} points of the discretized space")
        budget = (f" (row budget for {len(self.rule_ids):,} rules: {self.budget:,})" if self.budget else "")
        return (f"SAMPLED: {self.rows:,} random classes (seed {self.seed}) of {self.classes:,} over ({facts})"
                f"{budget}; findings are real, but absence of findings is not proven")


class FactSpace:
    """The discretized space of one rulebook, and exact enumerations of the parts questions need."""

    def __init__(self, rulebook: Rulebook, bands: Mapping[str, list] | None = None):
        self.rulebook = rulebook
        self.vocabulary: Vocabulary = rulebook.vocabulary  # the rulebook's facts: every band and cell reads them
        self.bands = dict(bands) if bands is not None else value_bands(rulebook)
        self.groups = {key: self._group(key, values) for key, values in self.bands.items()}
        self._group_of = {name: g.key for g in self.groups.values() for name in g.reads}
        self._producers: dict[str, list[str]] = {}
        for rule in rulebook.rules:
            for name in rule.derive:
                self._producers.setdefault(name, []).append(rule.id)
        self._rules = {r.id: r for r in rulebook.rules}
        self._column_of = {r.id: j for j, r in enumerate(rulebook.rules)}
        self._masks: dict[tuple[str, Condition], np.ndarray] = {}
        self._books: dict[frozenset[str], tuple[Rulebook, dict[str, int]]] = {}
        self._split_left = [SPLIT_WORK]  # what the searches for cases may still spend (shared by all)
        self.space_size = math.prod(len(g.values) for g in self.groups.values())

    # -- bands ---------------------------------------------------------------------------

    def _group(self, key: str, values: list) -> _Group:
        vocabulary = self.vocabulary
        columns = band_columns(key, vocabulary)
        ordered = sorted(range(len(values)), key=lambda i: not _is_default(columns, values[i], vocabulary))
        raw = [values[i] for i in ordered]
        cells = [tuple(v) if len(columns) > 1 else (v,) for v in raw]
        frame = pd.DataFrame({c: [_cell(c, cell[k], vocabulary) for cell in cells] for k, c in enumerate(columns)},
                             dtype=object)
        typed, errors = validate_frame(frame, vocabulary)
        if (errors != "").any():
            raise ValueError(f"band {key!r} holds values the fact schema rejects: {errors[errors != ''].iloc[0]}")
        reads = set(columns) | {m for m, pair in vocabulary.measure_inputs.items() if set(pair) <= set(columns)}
        return _Group(key, columns, tuple(raw), typed, frozenset(reads))

    # -- relevance -----------------------------------------------------------------------

    def closure(self, rule_ids: Iterable[str], conditions: Iterable[Condition] = (),
                among: frozenset[str] | None = None) -> frozenset[str]:
        """The rules plus, transitively, every rule deriving a fact they (or ``conditions``) test.

        ``among``: only these rules are taken (the live rules of a case).
        """
        todo = list(rule_ids) + [p for c in conditions if c.kind != "fact" for p in self._producers.get(c.fact, [])]
        done: set[str] = set()
        while todo:
            rule_id = todo.pop()
            if rule_id in done or (among is not None and rule_id not in among):
                continue
            done.add(rule_id)
            for name in self._rules[rule_id].consumes():
                todo.extend(self._producers.get(name, []))
        return frozenset(done)

    def plan(self, rule_ids: Iterable[str], conditions: Iterable[Condition] = (),
             max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0,
             fixed: Mapping[str, int] | None = None, case: str = "", optional: Iterable[str] = ()) -> Plan:
        """The classes to enumerate so that questions about ``rule_ids`` are answered exactly.

        ``fixed`` (band -> value index) makes it a case plan: those bands hold
        that value, and only the rules that can still fire there shape the classes.
        ``optional`` rules shape the classes only where they test no fact beyond
        those ``rule_ids`` already vary (elsewhere their facts stay at the default);
        they are evaluated all the same.
        """
        rule_ids, extra, optional = frozenset(rule_ids), frozenset(conditions), frozenset(optional)
        fixed = dict(fixed or {})
        rules = self.closure(rule_ids | optional, extra)
        alive = self.live(rules, fixed, keep=rule_ids)
        live = self.closure(rule_ids, extra, among=alive)
        live = self.without_redundant(live, rule_ids, extra, fixed)
        facts = self._facts_of(live) | {c.fact for c in extra if c.kind == "fact"}
        for rule_id in optional & alive:
            more = self.closure([rule_id], among=alive)
            if self._facts_of(more) <= facts:
                live |= more
        atoms = {c for rule_id in live for c in self._rules[rule_id].when if c.kind == "fact"}
        atoms |= {c for c in extra if c.kind == "fact"}
        by_group: dict[str, list[Condition]] = {}
        for atom in sorted(atoms, key=repr):
            key = self._group_of[atom.fact]
            if key not in fixed:
                by_group.setdefault(key, []).append(atom)
        keys = tuple(k for k in self.groups if k in by_group)
        reps, class_of, signatures = {}, {}, {}
        for key in keys:
            reps[key], class_of[key], signatures[key] = self._classes(self._signature(key, by_group[key]))
        classes = math.prod(len(r) for r in reps.values())
        limit = row_limit(max_rows, len(rules))
        return Plan(rules, extra, keys, reps, {k: tuple(by_group[k]) for k in keys}, class_of, signatures,
                    classes, min(classes, limit), classes <= limit, self.space_size, seed, tuple(fixed.items()),
                    case, optional, rule_ids, limit if limit < max_rows else 0)

    def without_redundant(self, live: frozenset[str], roots: frozenset[str],
                          extra: frozenset[Condition] = frozenset(),
                          fixed: Mapping[str, int] | None = None) -> frozenset[str]:
        """``live`` less the *redundant derivers*: rules whose every patient a twin stands for exactly.

        A rule R (not a root) that only derives, and whose bands no other live
        rule and no extra condition tests, is redundant when another live rule
        W derives exactly the same facts from bands only W tests, with fact
        conditions some value of each band meets and no derived-fact condition
        that R lacks. Wherever R fires,
        the patient with R's bands at their defaults and W's bands set to meet W
        derives the same facts and shows every other rule the same values, so
        the question's answer is the same: R's bands need not vary (R is still
        evaluated, at the defaults). "Step 1 done" is such a fact: derived from
        the old yes/no fact or from the step-1 agent's status.
        """
        fixed = fixed or {}
        kept = set(live)
        for rule_id in sorted(live - roots, key=lambda r: (-self._band_values(r), self._column_of[r])):
            rule = self._rules[rule_id]
            if not _only_derives(rule) or not self._private(rule_id, kept, extra):
                continue
            if any(self._twin(rule, other, kept, extra, fixed) for other in kept if other != rule_id):
                kept.discard(rule_id)
        return frozenset(kept)

    def _band_values(self, rule_id: str) -> int:
        """Points of the bands a rule tests (the biggest redundant rules are dropped first)."""
        return math.prod(len(self.groups[k].values) for k in self._bands_of(rule_id))

    def _bands_of(self, rule_id: str) -> set[str]:
        return {self._group_of[c.fact] for c in self._rules[rule_id].when if c.kind == "fact"}

    def _private(self, rule_id: str, among: set[str], extra: frozenset[Condition]) -> bool:
        """True when no rule of ``among`` but ``rule_id`` and no extra condition tests its bands."""
        bands = self._bands_of(rule_id)
        others = {self._group_of[c.fact] for c in extra if c.kind == "fact"}
        for other in among - {rule_id}:
            others |= self._bands_of(other)
        return not bands & others

    def _twin(self, rule: Rule, other_id: str, among: set[str], extra: frozenset[Condition],
              fixed: Mapping[str, int]) -> bool:
        """True when rule ``other_id`` can stand for ``rule`` (see :meth:`without_redundant`)."""
        other = self._rules[other_id]
        if not _only_derives(other) or set(other.derive) != set(rule.derive):
            return False
        if not {c for c in other.when if c.kind != "fact"} <= {c for c in rule.when if c.kind != "fact"}:
            return False  # where the rule fires, the twin's derived-fact conditions must hold too
        if not self._private(other_id, among, extra):
            return False
        by_band: dict[str, list[Condition]] = {}
        for condition in (c for c in other.when if c.kind == "fact"):
            by_band.setdefault(self._group_of[condition.fact], []).append(condition)
        for key, atoms in by_band.items():
            holds = self._signature(key, atoms).all(axis=1)
            if key in fixed:
                holds = holds[[fixed[key]]]
            if not holds.any():
                return False
        return True

    def _facts_of(self, rule_ids: Iterable[str]) -> frozenset[str]:
        return frozenset(c.fact for r in rule_ids for c in self._rules[r].when if c.kind == "fact")

    def live(self, rule_ids: frozenset[str], fixed: Mapping[str, int],
             keep: frozenset[str] = frozenset()) -> frozenset[str]:
        """The rules that can still fire and matter with the ``fixed`` bands at their values.

        Dead: a condition is false there, or it needs a fact no live rule derives,
        or it needs a fact absent that is *forced* there (derived by a live rule
        whose every condition holds there). Idle: it can only derive forced facts,
        so it changes nothing; idle rules are left out unless named in ``keep``.
        With nothing fixed every rule is live.
        """
        if not fixed:
            return rule_ids
        dead: set[str] = {r for r in rule_ids if any(self._false_there(c, fixed) for c in self._rules[r].when)}
        forced: set[str] = set()
        changed = True
        while changed:
            alive = rule_ids - dead
            producing = {name for r in alive for name in self._rules[r].derive}
            for r in alive:
                rule = self._rules[r]
                if not set(rule.derive) <= forced and all(
                        self._holds_there(c, fixed, forced, producing) for c in rule.when):
                    forced |= set(rule.derive)
            newly = {r for r in alive for c in self._rules[r].when
                     if (c.kind == "derived" and c.fact not in producing)
                     or (c.kind == "not_derived" and c.fact in forced)}
            changed = bool(newly)
            dead |= newly
        alive = rule_ids - dead
        idle = {r for r in alive - keep if _only_derives(self._rules[r]) and set(self._rules[r].derive) <= forced
                and not all(self._holds_there(c, fixed, set(), producing) for c in self._rules[r].when)}
        return frozenset(alive - idle)

    def _holds_there(self, condition: Condition, fixed: Mapping[str, int], forced: set[str],
                     producing: set[str]) -> bool:
        """True when ``condition`` holds for every patient of the case."""
        if condition.kind == "derived":
            return condition.fact in forced
        if condition.kind == "not_derived":
            return condition.fact not in producing
        key = self._group_of[condition.fact]
        return key in fixed and bool(self._signature(key, [condition])[fixed[key], 0])

    def _false_there(self, condition: Condition, fixed: Mapping[str, int]) -> bool:
        if condition.kind != "fact":
            return False
        key = self._group_of[condition.fact]
        return key in fixed and not bool(self._signature(key, [condition])[fixed[key], 0])

    def cases(self, rule_ids: Iterable[str], conditions: Iterable[Condition] = (),
              max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0, optional: Iterable[str] = ()) -> list[Plan]:
        """The plan for ``rule_ids``, split into case plans when that shrinks it (see the module docstring).

        The case plans together stand for the whole space. When even they exceed
        ``max_rows`` in all (or cost more than :data:`CASES_WORK_CELLS` rule evaluations),
        the single plan is returned, sampled; so it is, without a search, when it
        is more than :data:`SPLIT_REACH` times its row limit, or when the searches
        of this space have spent :data:`SPLIT_WORK` (plans built × their rules).
        """
        rule_ids, conditions = frozenset(rule_ids), frozenset(conditions)
        whole = self.plan(rule_ids, conditions, max_rows=max_rows, seed=seed, optional=optional)
        if whole.classes <= SPLIT_ABOVE or whole.classes > SPLIT_REACH * row_limit(max_rows, len(whole.rule_ids)):
            return [whole]
        try:
            split = self._split(whole, max_rows, MAX_SPLIT_DEPTH, self._split_left)
        except _OverBudget:
            return [whole]
        work = sum(p.classes * len(p.rule_ids) for p in split)
        if sum(p.classes for p in split) > min(max_rows, whole.classes // 2) or work > CASES_WORK_CELLS:
            return [whole]
        return split

    def _split(self, plan: Plan, max_rows: int, depth: int, left: list[int]) -> list[Plan]:
        """``plan`` as case plans, fixing the band that leaves the fewest classes, recursively.

        ``left`` holds the search budget still unspent (spent here); :class:`_OverBudget` when it runs out.
        """
        if plan.classes <= SPLIT_ABOVE or depth == 0 or not plan.keys:
            return [plan]
        best: tuple[int, str, list[Plan]] | None = None
        for key in plan.keys:
            left[0] -= len(plan.reps[key]) * len(plan.rule_ids)
            if left[0] < 0:
                raise _OverBudget
            parts = [self._case(plan, key, c, max_rows) for c in range(len(plan.reps[key]))]
            total = sum(p.classes for p in parts)
            if best is None or total < best[0]:
                best = (total, key, parts)
        assert best is not None
        if best[0] * 2 > plan.classes:
            return [plan]  # no band pays for its extra chunks
        out: list[Plan] = []
        for part in best[2]:
            out += self._split(part, max_rows, depth - 1, left)
        return out

    def _case(self, plan: Plan, key: str, cls: int, max_rows: int) -> Plan:
        """``plan`` with band ``key`` fixed at the value standing for its class ``cls``."""
        from .regions import describe_classes  # regions builds on this module

        said = describe_classes(self, plan, key, [cls]) or f"{key} any"
        return self.plan(plan.roots, plan.conditions, max_rows=max_rows, seed=plan.seed,
                         fixed={**dict(plan.fixed), key: int(plan.reps[key][cls])},
                         case=f"{plan.case}; {said}" if plan.case else said, optional=plan.optional)

    def _signature(self, key: str, atoms: list[Condition]) -> np.ndarray:
        """(band values × atoms) truth table; each atom's column computed once per space (plans share atoms)."""
        columns = []
        for atom in atoms:
            mask = self._masks.get((key, atom))
            if mask is None:
                mask = self._masks[(key, atom)] = condition_mask(atom, self.groups[key].typed,
                                                                 vocabulary=self.vocabulary)
            columns.append(mask)
        return np.stack(columns, axis=1)

    @staticmethod
    def _classes(signature: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Band values alike under every atom form a class: (first value of each, class of each value, signatures)."""
        _, first, inverse = np.unique(signature, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first)  # classes numbered by first appearance: class 0 holds the default
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        reps = first[order]
        return reps, rank[inverse.reshape(-1)], signature[reps]

    # -- enumeration ---------------------------------------------------------------------

    def chunks(self, plan: Plan, chunk_rows: int | None = None,
               rule_ids: Iterable[str] | None = None) -> Iterator[Chunk]:
        """Evaluate the plan's classes chunk by chunk (all of them in order, or the seeded sample).

        ``rule_ids`` (default: every rule) limits evaluation to those rules and,
        through :meth:`closure`, the rules deriving what they test: their firing
        is exactly what the whole rulebook gives, and :meth:`Chunk.fires` of any
        other rule raises KeyError. Rows are drawn in blocks of :data:`CHUNK_ROWS`
        (so the sample does not depend on ``chunk_rows``) and evaluated
        ``chunk_rows`` at a time, by default :meth:`chunk_size` of the evaluated
        rules (memory bounded whatever the number of rules).
        """
        book, column_of = self.sub_rulebook(rule_ids)
        step = chunk_rows or self.chunk_size(len(book.rules))
        for (start, stop), classes in self._blocks(plan):
            for offset in range(0, stop - start, step):
                part = {k: c[offset:offset + step] for k, c in classes.items()}
                picks = {k: plan.reps[k][c] for k, c in part.items()}
                n = min(step, stop - start - offset)
                yield self._chunk(plan, picks, part, n, start + offset, book, column_of)

    def sub_rulebook(self, rule_ids: Iterable[str] | None = None) -> tuple[Rulebook, dict[str, int]]:
        """The rules of ``closure(rule_ids)`` in firing order as a rulebook (cached), and each one's row.

        ``None`` gives the whole rulebook. The sub-rulebook keeps every producer
        of every derived fact its rules test, so each of its rules fires
        exactly where it fires in the whole rulebook.
        """
        if rule_ids is None:
            return self.rulebook, self._column_of
        keep = self.closure(rule_ids)
        held = self._books.get(keep)
        if held is None:
            if len(keep) == len(self.rulebook.rules):
                held = (self.rulebook, self._column_of)
            else:
                rules = tuple(r for r in self.rulebook.rules if r.id in keep)
                digest = hashlib.sha256("\n".join(r.id for r in rules).encode()).hexdigest()[:12]
                book = replace(self.rulebook, rules=rules, version=f"{self.rulebook.version}/sub-{digest}")
                held = (book, {r.id: j for j, r in enumerate(rules)})
            self._books[keep] = held
        return held

    def chunk_size(self, rules: int | None = None) -> int:
        """Rows per evaluated chunk: :data:`CHUNK_BYTES` over the bytes a row costs (about 3 per rule).

        ``rules``: how many rules are evaluated (default: all of the rulebook).
        """
        rules = len(self.rulebook.rules) if rules is None else rules
        return max(1024, min(CHUNK_ROWS, CHUNK_BYTES // (3 * max(1, rules) + 100)))

    def _blocks(self, plan: Plan) -> Iterator[tuple[tuple[int, int], dict[str, np.ndarray]]]:
        """((start, stop), class index per relevant band) for each block of CHUNK_ROWS plan rows."""
        sizes = plan.shape
        rng = np.random.default_rng(plan.seed)
        for start in range(0, plan.rows, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, plan.rows)
            if plan.exhaustive:
                coords = np.unravel_index(np.arange(start, stop, dtype=np.int64), sizes) if sizes else ()
                yield (start, stop), dict(zip(plan.keys, coords))
            else:
                yield (start, stop), {k: rng.integers(0, s, stop - start) for k, s in zip(plan.keys, sizes)}

    def _chunk(self, plan: Plan, picks: dict[str, np.ndarray], classes: dict[str, np.ndarray],
               n: int, start: int, book: Rulebook, column_of: dict[str, int]) -> Chunk:
        picks = {**picks, **{key: np.full(n, value, dtype=np.intp) for key, value in plan.fixed}}
        columns: dict[str, object] = {}
        for key, group in self.groups.items():
            index = picks.get(key)
            if index is None:
                index = np.zeros(n, dtype=np.intp)
            for name in group.typed.columns:
                if name in group.reads or name.split("__")[0] in group.reads:
                    columns[name] = _take(group.typed[name], index)
        typed = pd.DataFrame(columns, copy=False)
        rows = _fire(typed, _compile(book))
        fired = np.stack(rows) if rows else np.zeros((0, n), dtype=bool)  # rule-major: row j = rule j
        return Chunk(self, plan, typed, fired, picks, classes, start, column_of)

    def rule_column(self, rule_id: str) -> int:
        """Row of the rule-major fired matrix holding ``rule_id``."""
        return self._column_of[rule_id]

    def producers(self, name: str) -> list[str]:
        """Ids of the rules deriving ``name``."""
        return list(self._producers.get(name, []))

    def patient(self, picks: Mapping[str, int], full: bool = False) -> dict[str, object]:
        """A patient as suite CSV cells from band value indices (absent bands at their default).

        ``full`` lists every fact; otherwise only those not at their default.
        """
        cells: dict[str, object] = {}
        for key, group in self.groups.items():
            position = int(picks.get(key, 0))
            if position == 0 and not full:
                continue
            value = group.values[position]
            for k, column in enumerate(group.columns):
                cells[column] = csv_cell(column, value[k] if len(group.columns) > 1 else value, self.vocabulary)
        return {name: cells[name] for name in self.vocabulary.facts if name in cells}

    def patient_of_classes(self, plan: Plan, coords: Iterable[int], full: bool = False) -> dict[str, object]:
        """The representative patient of one class tuple of ``plan`` (``coords`` in ``plan.keys`` order)."""
        return self.patient({k: plan.reps[k][int(c)] for k, c in zip(plan.keys, coords)}, full=full)


class _OverBudget(Exception):
    """The search for cases spent :data:`SPLIT_WORK` without an answer."""


def _only_derives(rule) -> bool:
    """True when a rule concludes nothing but derived facts."""
    return not (rule.recommend or rule.avoid or rule.flag or rule.keep or rule.caution)


def schedule(space: FactSpace, requests: Iterable[tuple[Iterable[str], Iterable[Condition], T]],
             max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0) -> list[tuple[Plan, list[T]]]:
    """Group questions into as few enumerations as possible.

    Each request is (rule ids, extra conditions, payload), optionally followed
    by optional rule ids (see :meth:`FactSpace.plan`). A request rides on
    a larger enumeration whenever that one's classes are finer than its own
    (so its answer there is just as exact); otherwise it gets its own. An
    enumeration of more than :data:`SPLIT_ABOVE` classes is split into cases
    (:meth:`FactSpace.cases`) for the union of the large questions riding on
    it; a small question rides on the cases when each case answers it, else
    it is scheduled anew. A split enumeration gives one entry per case plan,
    all holding the same payload list object, one after another.
    """
    needed = []
    for rules, conditions, payload, *rest in requests:
        question = (frozenset(rules), frozenset(conditions), frozenset(rest[0]) if rest else frozenset())
        plan = space.plan(question[0], question[1], max_rows=max_rows, seed=seed, optional=question[2])
        needed.append((plan, question, payload))
    return _schedule(space, needed, max_rows, seed)


_Question = tuple[frozenset, frozenset, frozenset]  # rule ids, extra conditions, optional rule ids


def _schedule(space: FactSpace, needed: list[tuple[Plan, _Question, T]], max_rows: int,
              seed: int) -> list[tuple[Plan, list[T]]]:
    needed = sorted(needed, key=lambda item: -item[0].classes)
    hosts: list[list[tuple[Plan, _Question, T]]] = []
    for item in needed:
        host = next((h for h in hosts if h[0][0].covers(item[0])), None)
        if host is None:
            hosts.append([item])
        else:
            host.append(item)
    out: list[tuple[Plan, list[T]]] = []
    for host in hosts:
        if host[0][0].classes <= SPLIT_ABOVE:
            out.append((host[0][0], [payload for _, _, payload in host]))
            continue
        large = [item for item in host if item[0].classes > SPLIT_ABOVE]
        union = [frozenset().union(*parts) for parts in zip(*(question for _, question, _ in large))]
        cases = space.cases(union[0], union[1], max_rows=max_rows, seed=seed, optional=union[2])
        payloads = [payload for _, _, payload in large]
        apart = []
        for item in host[len(large):]:
            if _rides(space, item[1], cases):
                payloads.append(item[2])
            else:
                apart.append(item)
        out += [(case, payloads) for case in cases]
        out += _schedule(space, apart, max_rows, seed)
    return out


def _rides(space: FactSpace, question: _Question, cases: list[Plan]) -> bool:
    """True when every case plan answers ``question`` exactly (its classes there are finer)."""
    if len(cases) == 1 and not cases[0].fixed:
        return cases[0].covers(space.plan(question[0], question[1], optional=question[2]))
    return all(space.plan(question[0], question[1], fixed=dict(case.fixed), optional=question[2]).atom_set
               <= case.atom_set for case in cases)


@dataclass
class Chunk:
    """Some enumerated classes: their typed facts, which rules fired (rules × rows), and their classes.

    ``classes[key]`` is each row's class of band ``key`` (see :class:`Plan`),
    ``picks[key]`` the band value standing for it.
    """

    space: FactSpace
    plan: Plan
    typed: pd.DataFrame
    fired: np.ndarray
    picks: dict[str, np.ndarray]
    classes: dict[str, np.ndarray]
    start: int
    column_of: dict[str, int] | None = None  # rule id -> row of ``fired`` (None: the space's, every rule)
    _derived: dict[str, np.ndarray] = field(default_factory=dict)
    _counts: dict[frozenset[str], np.ndarray] = field(default_factory=dict)
    _simplicity: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.typed)

    def fires(self, rule_id: str) -> np.ndarray:
        """Rows where the rule fired."""
        if self.column_of is None:
            return self.fired[self.space.rule_column(rule_id)]
        try:
            return self.fired[self.column_of[rule_id]]
        except KeyError:
            raise KeyError(f"rule {rule_id!r} was not evaluated in this chunk (not among its rule_ids)") from None

    def fired_count(self, rule_ids: frozenset[str]) -> np.ndarray:
        """Per row, how many of these rules fired (cached: shared by every check asking)."""
        count = self._counts.get(rule_ids)
        if count is None:
            count = np.zeros(len(self), dtype=np.int16)
            for rule_id in rule_ids:
                count += self.fires(rule_id)
            self._counts[rule_ids] = count
        return count

    def derived(self, name: str) -> np.ndarray:
        """Rows where the derived fact holds (some rule deriving it fired)."""
        mask = self._derived.get(name)
        if mask is None:
            mask = np.zeros(len(self), dtype=bool)
            for rule_id in self.space.producers(name):
                mask |= self.fires(rule_id)
            self._derived[name] = mask
        return mask

    def holds(self, condition: Condition) -> np.ndarray:
        """Rows where one condition (fact, derived or not_derived) holds."""
        if condition.kind == "fact":
            return condition_mask(condition, self.typed, vocabulary=self.space.vocabulary)
        mask = self.derived(condition.fact)
        return mask if condition.kind == "derived" else ~mask

    def all_hold(self, conditions: Iterable[Condition]) -> np.ndarray:
        """Rows where every condition holds (all rows for none)."""
        mask = np.ones(len(self), dtype=bool)
        for condition in conditions:
            mask &= self.holds(condition)
        return mask

    def nondefault_count(self) -> np.ndarray:
        """Per row, how many bands hold a value other than their default (smaller = simpler patient)."""
        if self._simplicity is None:
            count = np.full(len(self), sum(value != 0 for _, value in self.plan.fixed), dtype=np.int64)
            for index in self.classes.values():
                count += index != 0
            self._simplicity = count
        return self._simplicity

    def patient(self, row: int, full: bool = False) -> dict[str, object]:
        """One row as suite CSV cells: every fact when ``full``, else only the non-default ones."""
        return self.space.patient({k: int(v[row]) for k, v in self.picks.items()}, full=full)


# -- small helpers ---------------------------------------------------------------------------


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_default(columns: tuple[str, ...], value: object, vocabulary: Vocabulary) -> bool:
    values = tuple(value) if len(columns) > 1 else (value,)  # type: ignore[arg-type]
    for column, item in zip(columns, values):
        spec = vocabulary.facts[column]
        default = spec.default
        if spec.kind == "number":
            if not _is_missing(item):
                return False
        elif item != default:
            return False
    return True


def _cell(column: str, value: object, vocabulary: Vocabulary) -> object:
    """A band value as validate_frame accepts it (sets as CSV text, unknown numbers as None)."""
    spec = vocabulary.facts[column]
    if spec.kind == "set":
        return ";".join(m for m in spec.allowed if m in value)  # type: ignore[operator]
    if spec.kind == "number" and _is_missing(value):
        return None
    return value




def _take(column: pd.Series, index: np.ndarray) -> object:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return pd.Categorical.from_codes(column.cat.codes.to_numpy()[index], dtype=column.dtype)
    return column.to_numpy()[index]
