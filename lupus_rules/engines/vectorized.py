"""The vectorized engine: the same rulebook compiled to column masks over a DataFrame.

Each rule becomes the AND of its conditions' boolean masks (one entry per
patient row). Rules are evaluated in the rulebook's order, which is stratum
by stratum (then definition order), so every rule that derives a fact is
evaluated before any rule that tests it: a derived fact's column is the OR of
its producers' masks, ``derived`` tests that column and ``not_derived`` its
negation. That is the fixpoint forward chaining reaches with stratified
negation, the same one :mod:`lupus_rules.engines.durable` computes one patient
at a time.

Conditions follow the rule semantics of ``docs/ARCHITECTURE.md``: a number
comparison is false when the number is unknown (NaN), ``known``/``unknown``
test for NaN. No guideline logic lives here: outcomes come from
:func:`lupus_rules.result.summarize`, once per distinct value of the few
small columns that determine them by its contract (each agent's best rank,
kept or first avoiding rule; each raised flag or caution: see
``_statistics``), not per fired-rule pattern. Preferred and recommendations
are grouped by the ordered recommended agents; list outcomes are assembled
from parts of their codes. Each group is summarized from a few witness
rules of its first row, and outcomes are kept per rulebook version (so a
batch read in chunks summarizes each once). The fired-rule texts are assembled
by Arrow from parts of 20 rules, each part's texts found by direct indexing.

Input is the ``typed`` frame of :func:`lupus_rules.facts.validate_frame`,
built with the rulebook's own facts (``rulebook.vocabulary``); the engine reads
each fact's kind from that vocabulary, once per compiled rulebook version.
"""
from __future__ import annotations

import math
import numbers
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import EngineError
from ..facts import member_column
from ..result import avoided_text, summarize
from ..rulebook import Condition, Rule, Rulebook
from ..vocabulary import Vocabulary, shipped_vocabulary

__all__ = ["fire_matrix", "evaluate_frame", "condition_mask", "OUTPUT_COLUMNS", "required_columns"]

#: The columns :func:`evaluate_frame` returns, each a ';'-separated string per row.
OUTPUT_COLUMNS = ("preferred", "recommendations", "continue", "avoided", "cautions", "flags", "fired_rules")

_MAX_COMPILED = 4  # rulebook versions kept compiled at once (each holds at most _DENSE_ENTRIES * 4 bytes of tables)
_DENSE_ENTRIES = 1 << 23  # most direct-table entries per rulebook version; larger rulebooks look patterns up sorted
_EXCLUDED = -1  # in a best-rank vector: the agent is kept or avoided, so it is no new start
_DIRECT_BITS = 20  # patterns of up to this many rules are grouped by direct indexing
_PART_RULES = _DIRECT_BITS  # rules per part when the fired-rule texts are assembled (at most _DIRECT_BITS)
_CHUNK_ROWS = 200_000  # rows evaluated at once: bounds the working memory, which is then reused
_CHUNK_BYTES = 256 * 1024 * 1024  # ... and fewer for a large rulebook: about 8 bytes per rule and row
_BYTES_PER_RULE_ROW = 8
_MAX_MEMO = 200_000  # remembered outcomes per rulebook version before the memo starts afresh
_COMPILED: OrderedDict[str, _Compiled] = OrderedDict()
_BY_PATTERN = False  # private, for benchmarks/outcome_speed.py: key outcomes on fired-rule patterns (the old way)
_COMPILED_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Step:
    """One rule, compiled: the keys of its condition masks and the derived facts it sets."""

    rule_id: str
    conditions: tuple[tuple, ...]
    derive: tuple[str, ...]


@dataclass(frozen=True)
class _Column:
    """One small-integer column of an outcome's statistic: what a row's fired rules say about one code.

    ``kind`` is ``"any"`` (1 when any rule of ``rules`` fired: a flag or a
    caution is raised), ``"kept"`` (1 when a rule of ``rules`` keeps the agent
    and none of ``others`` avoids it), ``"first"`` (1 + the place in ``rules``
    of the first that fired, 0 for none: the rule an agent is avoided by) or
    ``"rank"`` (the agent's best rank: 0 when a rule of ``others`` keeps or
    avoids it, else 1 + the best of the fired ``rules``' rank places
    ``ranks``, ``size - 1`` for none). ``size`` bounds the values.
    """

    kind: str
    rules: tuple[int, ...]
    size: int
    others: tuple[int, ...] = ()
    ranks: tuple[int, ...] = ()
    code: str = ""  # the agent, flag or caution the column is about
    order: tuple[int, ...] = ()  # "rank": per value, the agent's place among recommendations (-1: not one)


@dataclass(frozen=True)
class _Compiled:
    """A rulebook version ready to evaluate, with the outcome texts worked out so far."""

    version: str
    vocabulary: Vocabulary  # the rulebook's facts: kinds of the columns the steps read
    steps: tuple[_Step, ...]
    columns: tuple[str, ...]
    advice_rules: list[int]  # positions of rules that recommend, keep or avoid an agent
    listed_rules: dict[str, list[int]]  # list outcome (flags, continue, ...) -> positions of the rules it depends on
    rule_ids: tuple[str, ...]
    rank_order: dict[int, int]  # each recommendation rank -> its place among the rulebook's ranks
    dense: bool  # whether the pattern tables index directly (they fit _DENSE_ENTRIES)
    statistics: dict[str, tuple[_Column, ...]]  # outcome -> the per-row columns that determine it
    memo: dict = field(default_factory=dict)  # (outcome, sub-pattern) -> text
    tables: dict = field(default_factory=dict)  # outcome -> _PatternTexts
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


@dataclass(frozen=True)
class _Published:
    """The texts of the patterns worked out so far: never changed once published (copy on write).

    ``array`` holds text i at position i, or (spelled) text i at 2i and
    ';' + text i at 2i+1 ('' stays ''). Sparse lookups also carry the sorted
    pattern ``keys`` and each one's text index, ``at``.
    """

    count: int
    array: pa.Array
    empty: np.ndarray  # per text index: whether the text is ''
    keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    at: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int32))


class _PatternTexts:
    """The text of every pattern of up to ``_DIRECT_BITS`` rules that rows have shown so far.

    A pattern is worked out (by ``make`` on its fired rule ids) the first
    time a row shows it and kept for the rulebook version's lifetime, so rows
    cost no per-row Python. ``dense`` looks patterns up in a table of
    ``2**len(rows)`` entries (fastest; the rulebook's tables must fit
    ``_DENSE_ENTRIES``), otherwise in a sorted array of the patterns seen.

    Thread safety: new texts are made under a lock and published as a new
    immutable :class:`_Published`; :meth:`codes` returns the codes together
    with a snapshot that holds every text they point to, so a reader never
    sees a table entry without its text, whatever other threads add meanwhile.
    """

    def __init__(self, rows: list[int], rule_ids: tuple[str, ...], make: Callable[[list[str]], str], *,
                 spelled: bool, dense: bool):
        self.rows = rows
        self.ids = [rule_ids[j] for j in rows]
        self.make = make
        self.spelled = spelled
        # dense: table[pattern] = text index (-1 = not met yet); entries are written only after their
        # text is published, and readers re-check against the snapshot they read afterwards
        self.table = np.full(1 << len(rows), -1, dtype=np.int32) if dense else None
        self._published = _Published(0, pa.array([], type=pa.string()), np.zeros(0, dtype=bool))
        self._lock = threading.Lock()

    def codes(self, fired: list[np.ndarray], n: int) -> tuple[np.ndarray, _Published]:
        """Per row, the index of its pattern's text, and a snapshot holding all those texts."""
        key = _pack_rows([fired[j] for j in self.rows], n)[:, 0].astype(np.int64)
        if self.table is not None:
            codes = self.table[key]
            published = self._published
            # one pass: as unsigned, a missing -1 is also above any count
            if len(codes) and int(codes.view(np.uint32).max()) >= published.count:
                with self._lock:
                    self._add_dense(key)
                    codes, published = self.table[key], self._published
            return codes, published
        published = self._published
        codes, found = _sparse_lookup(published, key)
        if not found:
            with self._lock:
                published = self._add_sparse(key)
            codes, _ = _sparse_lookup(published, key)
        return codes, published

    def _texts_for(self, patterns: list[int]) -> list[str]:
        return [self.make([rule for i, rule in enumerate(self.ids) if pattern >> i & 1]) for pattern in patterns]

    def _add_dense(self, key: np.ndarray) -> None:
        """Under the lock: publish texts for the patterns of ``key`` not in the table, then enter them."""
        table = self.table
        assert table is not None
        patterns = np.unique(key[table[key] < 0])
        if not len(patterns):
            return
        first = self._published.count
        self._published = self._extended(self._texts_for(patterns.tolist()))
        table[patterns] = np.arange(first, first + len(patterns), dtype=np.int32)

    def _add_sparse(self, key: np.ndarray) -> _Published:
        """Under the lock: a new snapshot that also holds the patterns of ``key`` (returned and published)."""
        published = self._published
        if published.count >= _MAX_MEMO:  # start afresh: memory stays bounded; old snapshots stay valid
            published = _Published(0, pa.array([], type=pa.string()), np.zeros(0, dtype=bool))
        patterns = np.unique(key)
        patterns = patterns[~_sparse_member(published, patterns)]
        if len(patterns):
            grown = self._extended(self._texts_for(patterns.tolist()), published)
            keys = np.concatenate([published.keys, patterns])
            at = np.concatenate([published.at, np.arange(published.count, grown.count, dtype=np.int32)])
            order = np.argsort(keys, kind="stable")
            published = _Published(grown.count, grown.array, grown.empty, keys[order], at[order])
        self._published = published
        return published

    def _extended(self, texts: list[str], base: _Published | None = None) -> _Published:
        """``base`` (default: the published snapshot) with ``texts`` appended, as a new snapshot."""
        if base is None:
            base = self._published
        spelled = [v for t in texts for v in (t, ";" + t if t else "")] if self.spelled else texts
        added = pa.array(spelled, type=pa.string())
        array = pa.concat_arrays([base.array, added]) if base.count else added
        empty = np.concatenate([base.empty, np.array([not t for t in texts], dtype=bool)])
        return _Published(base.count + len(texts), array, empty, base.keys, base.at)


def _sparse_member(published: _Published, patterns: np.ndarray) -> np.ndarray:
    """Whether each pattern is in the snapshot's sorted keys."""
    keys = published.keys
    if not len(keys):
        return np.zeros(len(patterns), dtype=bool)
    pos = np.minimum(np.searchsorted(keys, patterns), len(keys) - 1)
    return keys[pos] == patterns


def _sparse_lookup(published: _Published, key: np.ndarray) -> tuple[np.ndarray, bool]:
    """The text index of each pattern in ``key`` (meaningful only where found) and whether all were found."""
    keys = published.keys
    if not len(key):
        return np.empty(0, dtype=np.int32), True
    if not len(keys):
        return np.zeros(len(key), dtype=np.int32), False
    pos = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
    return published.at[pos], bool((keys[pos] == key).all())


def _pattern_texts(compiled: _Compiled, name: object, rows: list[int],
                   make: Callable[[list[str]], str], spelled: bool = False) -> _PatternTexts:
    """The rulebook version's :class:`_PatternTexts` for one outcome, made on first use."""
    tables = compiled.tables
    found = tables.get(name)
    if found is None:
        with compiled.lock:  # one table per outcome, even when threads ask for it at once
            found = tables.get(name)
            if found is None:
                found = tables[name] = _PatternTexts(rows, compiled.rule_ids, make, spelled=spelled,
                                                     dense=compiled.dense)
    return found


def _condition_key(condition: Condition) -> tuple:
    """A hashable key that is equal for identical tests, so each mask is computed once."""
    return (condition.kind, condition.fact, condition.op, condition.value)


def _compile(rulebook: Rulebook) -> _Compiled:
    """The rulebook as evaluation steps in firing order; cached by ``rulebook.version``."""
    with _COMPILED_LOCK:
        cached = _COMPILED.get(rulebook.version)
        if cached is not None:
            _COMPILED.move_to_end(rulebook.version)
            return cached
        compiled = _compiled(rulebook)
        _COMPILED[rulebook.version] = compiled
        while len(_COMPILED) > _MAX_COMPILED:
            _COMPILED.popitem(last=False)
        return compiled


def _compiled(rulebook: Rulebook) -> _Compiled:
    """The rulebook as evaluation steps; :class:`EngineError` for a condition or rank it cannot run."""
    vocabulary = rulebook.vocabulary
    problems = [problem for r in rulebook.rules for problem in _problems(r, vocabulary)]
    if problems:
        raise EngineError("the vectorized engine cannot run this rulebook: " + "; ".join(problems[:5])
                          + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    steps = tuple(_Step(r.id, tuple(_condition_key(c) for c in r.when), r.derive) for r in rulebook.rules)
    needed = {c.fact for r in rulebook.rules for c in r.when if c.kind == "fact"}
    advice = [j for j, r in enumerate(rulebook.rules) if r.recommend or r.keep or r.avoid]
    listed = {name: [j for j, r in enumerate(rulebook.rules) if depends(r)] for name, (depends, _) in _LISTED.items()}
    ranks = sorted({spec.rank for r in rulebook.rules for spec in r.recommend})
    rank_order = {rank: i for i, rank in enumerate(ranks)}
    return _Compiled(rulebook.version, vocabulary, steps, _columns_for(needed, vocabulary), advice, listed, rulebook.rule_ids,
                     rank_order, _dense_entries(len(rulebook.rules), listed) <= _DENSE_ENTRIES,
                     _statistics(rulebook))


def _statistics(rulebook: Rulebook) -> dict[str, tuple[_Column, ...]]:
    """Per outcome, the columns whose values determine its text (see :class:`_Column`).

    By :func:`~lupus_rules.result.summarize`'s contract: ``advice``
    (preferred and recommendations) depends on each agent's best rank among
    the fired recommending rules unless a fired rule keeps or avoids it;
    ``continue`` on which agents a fired rule keeps and none avoids;
    ``avoided`` on each agent's first avoiding rule; ``flags`` and
    ``cautions`` on which codes a fired rule raises. Rows with equal columns
    get equal texts, so each outcome is summarized once per distinct row of
    its columns, however many fired-rule patterns lead there.
    """
    rules = rulebook.rules
    rank_order = {rank: i for i, rank in enumerate(sorted({spec.rank for r in rules for spec in r.recommend}))}

    def with_(attribute: str, code: str) -> tuple[int, ...]:
        return tuple(j for j, r in enumerate(rules) if code in getattr(r, attribute))

    advice, kept = [], []
    for number, agent in enumerate(rulebook.agents):
        recommending = [(j, spec.rank) for j, r in enumerate(rules) for spec in r.recommend if spec.agent == agent]
        # the agent's own ranks in order: a one-to-one image of the ranks, so rows with equal places have
        # equal ranks (and the columns stay small)
        places = {rank: i for i, rank in enumerate(sorted({rank for _, rank in recommending}))}
        not_new = tuple(sorted(set(with_("keep", agent)) | set(with_("avoid", agent))))
        # recommendations are ordered by rank, then by the agent's place in the vocabulary
        order = (-1, *(rank_order[rank] * len(rulebook.agents) + number for rank in places), -1)
        advice.append(_Column("rank", tuple(j for j, _ in recommending), len(places) + 2, not_new,
                              tuple(places[rank] for _, rank in recommending), agent, order))
        kept.append(_Column("kept", with_("keep", agent), 2, with_("avoid", agent), code=agent))
    avoided = [_Column("first", with_("avoid", agent), len(with_("avoid", agent)) + 1, code=agent)
               for agent in rulebook.agents]
    return {
        "advice": tuple(c for c in advice if c.rules),  # an agent no rule recommends is never recommended
        "continue": tuple(c for c in kept if c.rules),
        "avoided": tuple(c for c in avoided if c.rules),
        "cautions": tuple(c for c in (_Column("any", with_("caution", code), 2, code=code) for code in rulebook.cautions)
                          if c.rules),
        "flags": tuple(c for c in (_Column("any", with_("flag", code), 2, code=code) for code in rulebook.flags) if c.rules),
    }


#: List outcomes besides the advice: which rules each depends on, and its text from a Summary.
#: By summarize's contract no other fired rule can change them (the differential test checks it).
#: Each text is its items ';'-joined in vocabulary order, one item per code (agent, caution, flag), so
#: the text of a contiguous run of codes is a part of it: the whole is its non-empty parts ';'-joined.
_LISTED: dict[str, tuple[Callable[[Rule], bool], Callable[[Any], list[tuple[str, str]]]]] = {
    "continue": (lambda r: bool(r.keep or r.avoid), lambda s: [(a, a) for a in s.continue_]),
    "avoided": (lambda r: bool(r.avoid), lambda s: [(a, avoided_text({a: rules})) for a, rules in s.avoided.items()]),
    "cautions": (lambda r: bool(r.caution), lambda s: [(c, c) for c in s.cautions]),
    "flags": (lambda r: bool(r.flag), lambda s: [(f, f) for f in s.flags]),
}
_PART_BITS = 12  # a list outcome's columns are cut into parts of about this many bits of values (see _listed)


def _dense_entries(rules: int, listed: dict[str, list[int]]) -> int:
    """Entries of every direct pattern table: one per part of the fired rules, one per small list outcome."""
    parts = sum(1 << min(_PART_RULES, rules - start) for start in range(0, rules, _PART_RULES))
    return parts + sum(1 << len(rows) for rows in listed.values() if len(rows) <= _DIRECT_BITS)


def _problems(rule: Rule, vocabulary: Vocabulary) -> list[str]:
    """Why the engine cannot run this rule (none for what the loader accepts), each naming rule and field."""
    problems = []
    for i, spec in enumerate(rule.recommend):
        if isinstance(spec.rank, bool) or not isinstance(spec.rank, numbers.Integral):
            problems.append(f"rule {rule.id}: recommend[{i}].rank got {spec.rank!r}; allowed: a whole number")
    for i, condition in enumerate(rule.when):
        message = _condition_problem(condition, vocabulary)
        if message:
            problems.append(f"rule {rule.id}: when[{i}] ({condition.describe()}): {message}")
    return problems


def _condition_problem(condition: Condition, vocabulary: Vocabulary) -> str | None:
    """Why one condition has no vectorized translation, or None."""
    if condition.kind != "fact":
        return None if condition.kind in ("derived", "not_derived") else f"unknown kind {condition.kind!r}"
    spec = vocabulary.spec(condition.fact)
    if spec is None:
        return f"unknown fact {condition.fact!r}"
    op, value = condition.op, condition.value
    if spec.kind == "number":
        if op in ("known", "unknown"):
            return None
        if op not in ("<", "<=", ">", ">="):
            return f"operator {op!r} does not apply to a number"
        try:
            ok = not isinstance(value, bool) and math.isfinite(float(value))
        except (TypeError, ValueError, OverflowError):
            ok = False
        return None if ok else f"threshold {value!r} is not a finite number"
    if spec.kind == "bool":
        return None if op == "==" and isinstance(value, bool) else f"{op} {value!r} does not apply to true/false"
    values = value if op in ("in", "not_in") and isinstance(value, (tuple, list)) else (value,)
    allowed = vocabulary.statuses if spec.kind == "status" else spec.allowed
    ops = ("==", "!=", "in", "not_in") if spec.kind == "status" else ("has", "lacks")
    if op not in ops or not all(isinstance(v, str) and v in allowed for v in values):
        return f"{op} {value!r} does not apply; allowed: {', '.join(ops)} with {', '.join(allowed)}"
    return None


def _columns_for(facts: set[str], vocabulary: Vocabulary) -> tuple[str, ...]:
    columns: list[str] = []
    for name in vocabulary.names():
        if name not in facts:
            continue
        spec = vocabulary.spec(name)
        assert spec is not None
        if spec.kind == "set":
            columns += [member_column(name, m) for m in spec.allowed]
        else:
            columns.append(name)
    return tuple(columns)


def required_columns(rulebook: Rulebook) -> tuple[str, ...]:
    """Typed columns the rulebook's conditions read (as :func:`validate_frame` names them)."""
    return _compile(rulebook).columns


class _Masks:
    """Condition masks over one typed frame, each computed once and reused by every rule."""

    def __init__(self, typed: pd.DataFrame, vocabulary: Vocabulary):
        self.typed = typed
        self.vocabulary = vocabulary
        self.n = len(typed)
        self.cache: dict[tuple, np.ndarray] = {}
        self.arrays: dict[str, np.ndarray] = {}
        self.derived: dict[str, np.ndarray] = {}

    def get(self, key: tuple) -> np.ndarray:
        mask = self.cache.get(key)
        if mask is None:
            kind, fact = key[0], key[1]
            if kind == "fact":
                mask = self._fact(fact, key[2], key[3])
            else:  # derived facts change while strata run: never cached
                held = self.derived.get(fact)
                if held is None:
                    held = np.zeros(self.n, dtype=bool)
                return held if kind == "derived" else ~held
            self.cache[key] = mask
        return mask

    def derive(self, name: str, mask: np.ndarray) -> None:
        held = self.derived.get(name)
        self.derived[name] = mask.copy() if held is None else held | mask

    def _column(self, name: str) -> np.ndarray:
        array = self.arrays.get(name)
        if array is None:
            array = self.arrays[name] = _read_column(self.typed, name, self.vocabulary)
        return array

    def _fact(self, fact: str, op: str, value: object) -> np.ndarray:
        return _fact_mask(fact, op, value, self._column, self.vocabulary)


def condition_mask(condition: Condition, typed: pd.DataFrame,
                   derived: Mapping[str, np.ndarray] | None = None,
                   vocabulary: Vocabulary | None = None) -> np.ndarray:
    """Where one condition holds over a typed frame (:func:`~lupus_rules.facts.validate_frame`).

    The engine's own evaluation of a condition, for tools that reason about
    single conditions (coverage, lint). ``derived`` maps derived fact names to
    row masks (absent = never derived). ``vocabulary``: the facts ``typed`` was
    validated against (the rulebook's; None = the shipped ones).
    """
    vocabulary = shipped_vocabulary() if vocabulary is None else vocabulary
    if condition.kind != "fact":
        held = (derived or {}).get(condition.fact)
        held = np.zeros(len(typed), dtype=bool) if held is None else np.asarray(held, dtype=bool)
        return held if condition.kind == "derived" else ~held
    return _fact_mask(condition.fact, condition.op, condition.value,
                      lambda name: _read_column(typed, name, vocabulary), vocabulary)


def _fact_mask(fact: str, op: str, value: object, column: Callable[[str], np.ndarray],
               vocabulary: Vocabulary) -> np.ndarray:
    """One fact condition as a row mask; ``column(name)`` reads a typed column as numpy."""
    spec = vocabulary.spec(fact)
    if spec is None:
        raise EngineError(f"condition on {fact!r}: not a fact of this rulebook; allowed: "
                          f"{', '.join(vocabulary.names())}")
    if spec.kind == "set":
        held = column(member_column(fact, str(value)))
        return held if op == "has" else ~held
    values = column(fact)
    if spec.kind == "bool":
        return values if value else ~values
    if spec.kind == "status":
        return _status_mask(values, op, value, vocabulary.statuses)
    return _number_mask(values, op, value)


def _status_mask(codes: np.ndarray, op: str, value: object, statuses: tuple[str, ...]) -> np.ndarray:
    if op == "==":
        return codes == statuses.index(str(value))
    if op == "!=":
        return codes != statuses.index(str(value))
    table = np.zeros(len(statuses), dtype=bool)
    table[[statuses.index(v) for v in value]] = True  # type: ignore[union-attr]
    if op == "not_in":
        table = ~table
    return table[codes]


def _number_mask(column: np.ndarray, op: str, value: object) -> np.ndarray:
    if op == "known":
        return ~np.isnan(column)
    if op == "unknown":
        return np.isnan(column)
    threshold = float(value)  # type: ignore[arg-type]
    # numpy comparisons with NaN are False: an unknown number never satisfies one
    if op == "<":
        return column < threshold
    if op == "<=":
        return column <= threshold
    if op == ">":
        return column > threshold
    if op == ">=":
        return column >= threshold
    raise EngineError(f"operator {op!r} on {value!r} has no vectorized translation")


def _read_column(typed: pd.DataFrame, name: str, vocabulary: Vocabulary) -> np.ndarray:
    """One typed column as numpy: bools, float64 numbers, or int8 status codes."""
    if name not in typed.columns:
        raise EngineError(f"typed frame lacks column {name!r}; build it with lupus_rules.facts.validate_frame "
                          "and the rulebook's vocabulary")
    column = typed[name]
    spec = vocabulary.spec(name)
    if spec is not None and spec.kind == "status":
        return _status_codes(name, column, vocabulary.statuses)
    if spec is not None and spec.kind == "number":
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    if column.dtype != bool:
        raise EngineError(f"typed column {name!r} has dtype {column.dtype}, expected bool")
    return column.to_numpy()


def _status_codes(name: str, column: pd.Series, allowed: tuple[str, ...]) -> np.ndarray:
    """Status values as int8 codes into the vocabulary's statuses (Categorical in any category order, or codes)."""
    dtype = column.dtype
    statuses = pd.Index(allowed)
    if isinstance(dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        if tuple(dtype.categories) != allowed:
            remap = np.append(statuses.get_indexer(dtype.categories), -1)  # code -1 (missing) stays -1
            codes = remap[codes]
    elif isinstance(dtype, np.dtype) and dtype.kind in "iu":
        codes = column.to_numpy()
    else:
        codes = statuses.get_indexer(column)
    if len(codes) and (codes.min() < 0 or codes.max() >= len(allowed)):
        raise EngineError(f"typed column {name!r} holds values outside {', '.join(allowed)}")
    return codes


def _fire(typed: pd.DataFrame, compiled: _Compiled) -> list[np.ndarray]:
    """One bool array per rule, in firing order: whether that rule fired for each row.

    Separate arrays rather than one matrix: each is small enough for the
    allocator to recycle between calls, which matters on a VM where fresh
    memory is expensive to touch.
    """
    masks = _Masks(typed, compiled.vocabulary)
    fired = []
    for step in compiled.steps:
        if not step.conditions:
            row = np.ones(masks.n, dtype=bool)
        else:
            row = masks.get(step.conditions[0]).copy()
            for key in step.conditions[1:]:
                np.logical_and(row, masks.get(key), out=row)
        for name in step.derive:
            masks.derive(name, row)
        fired.append(row)
    return fired


def fire_matrix(typed: pd.DataFrame, rulebook: Rulebook) -> np.ndarray:
    """Which rules fire for each row: bool array (rows × rules), column j = ``rulebook.rules[j]``.

    ``typed`` is the first result of :func:`lupus_rules.facts.validate_frame`
    (rejected rows hold defaults; drop or ignore them yourself). Raises
    :class:`~lupus_rules.errors.EngineError` naming a missing or mistyped column.
    """
    fired = _fire(typed, _compile(rulebook))
    if not fired:
        return np.zeros((len(typed), 0), dtype=bool)
    return np.stack(fired, axis=1)


def _pack_rows(bits: Sequence[np.ndarray], m: int) -> np.ndarray:
    """k bool arrays of length m → (m, words) uint64: position i's k bits as a pattern, 64 bits a word."""
    k = len(bits)
    nbytes = max(1, -(-k // 8))
    packed = np.zeros((m, -(-nbytes // 8) * 8), dtype=np.uint8)
    shifted = np.empty(m, dtype=np.uint8)
    byte = np.empty(m, dtype=np.uint8)
    for b in range(nbytes):
        byte[:] = 0
        for i, j in enumerate(range(8 * b, min(8 * b + 8, k))):
            np.left_shift(bits[j].view(np.uint8), i, out=shifted)
            np.bitwise_or(byte, shifted, out=byte)
        packed[:, b] = byte
    return packed.view(np.uint64)


def _columns(bits: Sequence[np.ndarray], positions: np.ndarray) -> np.ndarray:
    """The (k, len(positions)) bool matrix of the k arrays at these positions."""
    if not len(bits):
        return np.zeros((0, len(positions)), dtype=bool)
    return np.stack([row[positions] for row in bits])


def _group(bits: Sequence[np.ndarray], m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group positions 0..m-1 by their pattern across the k bool arrays ``bits``.

    Returns the code of each position, the first position of each code, and
    each code's packed pattern (uint64 words, a key that is stable across
    calls). Up to ``_DIRECT_BITS`` arrays (and no more possible patterns than
    twice the positions), patterns index a table directly instead of a hash.
    """
    k = len(bits)
    keys = _pack_rows(bits, m)
    if m == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), keys
    if k <= _DIRECT_BITS and (1 << k) <= 2 * m:  # a table no larger than the rows: index it directly
        key = keys[:, 0].astype(np.intp)
        present = np.flatnonzero(np.bincount(key, minlength=1 << k))
        remap = np.zeros(1 << k, dtype=np.intp)
        remap[present] = np.arange(len(present))
        codes = remap[key]
    else:
        codes, _ = pd.factorize(keys[:, 0])
        for w in range(1, keys.shape[1]):
            word_codes, word_uniques = pd.factorize(keys[:, w])
            codes, _ = pd.factorize(codes * len(word_uniques) + word_codes)
    first = np.empty(int(codes.max()) + 1, dtype=np.intp)
    first[codes[::-1]] = np.arange(m - 1, -1, -1)  # last write wins: the first position of each code
    return codes, first, keys[first]


def _remembered(compiled: _Compiled, kind: object, keys: list) -> tuple[dict, list, list, list[int]]:
    """The memo of ``compiled`` (cleared when full), its keys ``(kind, key)``, what it holds and which are missing."""
    memo = compiled.memo
    if len(memo) >= _MAX_MEMO:
        memo.clear()
    memo_keys = [(kind, key) for key in keys]
    found = [memo.get(key) for key in memo_keys]
    return memo, memo_keys, found, [i for i, outcome in enumerate(found) if outcome is None]


def _texts(compiled: _Compiled, kind: object, bits: Sequence[np.ndarray], rows: list[int], first: np.ndarray,
           keys: list[bytes], make: Callable[[list[str]], object]) -> list:
    """One outcome per group: ``make(ids of the fired rules)``, group i's pattern being ``bits`` at ``first[i]``.

    ``rows`` are the rule positions ``bits`` stand for. Outcomes are
    remembered per rulebook version under ``(kind, key)``, so a batch
    evaluated in chunks works each distinct one out once.
    """
    memo, memo_keys, found, missing = _remembered(compiled, kind, keys)
    if missing:
        ids = [compiled.rule_ids[j] for j in rows]
        for i, column in zip(missing, _columns(bits, first[missing]).T.tolist()):
            found[i] = memo[memo_keys[i]] = make([rule for rule, hit in zip(ids, column) if hit])
    return found


def _column_values(column: _Column, fired: list[np.ndarray] | _AtRows, n: int) -> np.ndarray:
    """One :class:`_Column` per row, as small integers (``fired[j]``: rule j's mask over the n rows)."""
    if column.kind == "any" or column.kind == "kept":
        values = np.zeros(n, dtype=bool)
        for j in column.rules:
            values |= fired[j]
        for j in column.others:
            values &= ~fired[j]
        return values.view(np.uint8)
    values = np.full(n, column.size - 1 if column.kind == "rank" else 0, dtype=np.uint8 if column.size <= 256
                     else np.int32)
    scratch = np.empty(n, dtype=values.dtype)
    if column.kind == "first":
        for place in range(len(column.rules) - 1, -1, -1):  # backwards: the first fired rule writes last
            _put_where(values, place + 1, fired[column.rules[place]], scratch)
        return values
    top = np.iinfo(values.dtype).max
    for j, rank in zip(column.rules, column.ranks):  # values = min(values, rank + 1) where rule j fired
        np.copyto(scratch, fired[j].view(np.uint8))
        np.multiply(scratch, top - (rank + 1), out=scratch)
        np.subtract(top, scratch, out=scratch)  # rank + 1 where fired, else the largest value (no change)
        np.minimum(values, scratch, out=values)
    for j in column.others:  # values = 0 where rule j fired
        np.copyto(scratch, fired[j].view(np.uint8))
        np.bitwise_xor(scratch, 1, out=scratch)
        np.multiply(values, scratch, out=values)
    return values


def _put_where(values: np.ndarray, value: int, mask: np.ndarray, scratch: np.ndarray) -> None:
    """``values[mask] = value`` in place, as branch-free whole-array arithmetic.

    ``np.copyto(..., where=)`` and boolean indexing take a slow masked path
    (about 40 times these three passes over the rows).
    """
    np.bitwise_xor(values, value, out=scratch)
    np.multiply(scratch, mask.view(np.uint8), out=scratch)
    np.bitwise_xor(values, scratch, out=values)


def _statistic_groups(columns: tuple[_Column, ...], fired: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Group rows by their values of ``columns``: each row's group, each group's first row and a stable key.

    Keys are the values read as one mixed-radix integer (or, when that
    would not fit 62 bits, their bytes), equal across calls for equal values.
    """
    if n == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), []
    values = [_column_values(c, fired, n) for c in columns]
    if sum(math.log2(c.size) for c in columns) <= 62:
        key = np.zeros(n, dtype=np.int64)
        for column, value in zip(columns, values):
            key *= column.size
            key += value
        codes, uniques = pd.factorize(key)
        keys: list = uniques.tolist()
    else:
        matrix = np.ascontiguousarray(np.stack([v.astype(np.int32) for v in values], axis=1))
        codes, uniques = pd.factorize(matrix.view(np.dtype((np.void, 4 * len(values)))).ravel())
        keys = [bytes(u) for u in uniques]
    first = np.empty(len(keys), dtype=np.intp)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)  # last write wins: the first row of each group
    return codes, first, keys


class _AtRows:
    """``fired`` restricted to some rows, read lazily: ``self[j]`` is rule j's mask at those rows."""

    def __init__(self, fired: list[np.ndarray], rows: np.ndarray):
        self._fired, self._rows, self._read = fired, rows, {}

    def __getitem__(self, j: int) -> np.ndarray:
        found = self._read.get(j)
        if found is None:
            found = self._read[j] = self._fired[j][self._rows]
        return found


def _witnesses(columns: tuple[_Column, ...], fired: list[np.ndarray], rows: np.ndarray) -> list[list[int]]:
    """Per row of ``rows``, a few of its fired rules (positions, ascending) that give it the same column values.

    One rule per column at most: the one that sets its value (a rule that
    raises the code, keeps the agent, avoids it first, gives its best rank,
    or keeps or avoids it when that excludes it). Those rules fired for the
    row, so they cannot move any column's value elsewhere: summarizing them
    gives the row's outcome, from far fewer rules than fired.
    """
    at = _AtRows(fired, rows)
    m = len(rows)
    chosen = np.full((len(columns), m), -1, dtype=np.int32)
    for witness, column in zip(chosen, columns):
        values = _column_values(column, at, m)
        if column.kind == "any":
            for j in reversed(column.rules):
                np.copyto(witness, j, where=at[j])
            continue
        if column.kind == "first":
            for place in range(len(column.rules) - 1, -1, -1):
                np.copyto(witness, column.rules[place], where=values == place + 1)
            continue
        setting = 1 if column.kind == "kept" else None
        for place in range(len(column.rules) - 1, -1, -1):
            j = column.rules[place]
            value = setting if setting is not None else column.ranks[place] + 1
            np.copyto(witness, j, where=at[j] & (values == value))
        for j in reversed(column.others):
            np.copyto(witness, j, where=at[j] & (values == 0))
    return [sorted(set(group) - {-1}) for group in chosen.T.tolist()]


def _sequence_groups(columns: tuple[_Column, ...], fired: list[np.ndarray], n: int
                     ) -> tuple[np.ndarray, np.ndarray, list]:
    """Group rows by their recommended agents in order (``"rank"`` columns): :func:`_statistic_groups`' results.

    Preferred and recommendations depend only on which agents are recommended
    and in which order (by rank, then vocabulary), so rows whose ranks differ
    but order the same agents alike share one group. The key numbers each
    column from 1 and reads the ordered numbers as digits (or their bytes).
    Rows are first grouped by their ranks (cheap); only each such group's
    first row is ordered.
    """
    vectors, vector_first, _ = _statistic_groups(columns, fired, n)
    if n == 0 or not columns:
        return vectors, vector_first, _
    at = _AtRows(fired, vector_first)
    m = len(vector_first)
    absent = np.iinfo(np.int32).max
    places = np.empty((m, len(columns)), dtype=np.int32)
    for i, column in enumerate(columns):
        table = np.array([absent if o < 0 else o for o in column.order], dtype=np.int32)
        places[:, i] = table[_column_values(column, at, m)]
    ordered = np.argsort(places, axis=1, kind="stable")
    present = np.take_along_axis(places, ordered, axis=1) != absent
    digits = np.where(present, ordered + 1, 0)
    base = len(columns) + 1
    if len(columns) * math.log2(base) <= 62:
        key = np.zeros(m, dtype=np.int64)
        for position in range(len(columns) - 1, -1, -1):
            key *= base
            key += digits[:, position]
        codes, uniques = pd.factorize(key)
        keys: list = uniques.tolist()
    else:
        matrix = np.ascontiguousarray(digits.astype(np.int32))
        codes, uniques = pd.factorize(matrix.view(np.dtype((np.void, 4 * len(columns)))).ravel())
        keys = [bytes(u) for u in uniques]
    first = np.empty(len(keys), dtype=np.intp)
    first[codes[::-1]] = vector_first[::-1]  # vector groups are numbered by first row: the earliest wins
    return codes[vectors], first, keys


def _statistic_texts(compiled: _Compiled, kind: object, columns: tuple[_Column, ...], fired: list[np.ndarray],
                     n: int, make: Callable[[list[str]], object],
                     grouping: Callable[..., tuple[np.ndarray, np.ndarray, list]] = _statistic_groups
                     ) -> tuple[list, np.ndarray]:
    """One outcome per row group of ``columns`` (by ``grouping``): the outcomes and each row's group.

    Each group's outcome is ``make`` of its first row's :func:`_witnesses`
    (their ids), remembered per rulebook version under ``(kind, key)``.
    """
    codes, first, keys = grouping(columns, fired, n)
    memo, memo_keys, found, missing = _remembered(compiled, kind, keys)
    if missing:
        ids = compiled.rule_ids
        for i, rules in zip(missing, _witnesses(columns, fired, first[missing])):
            found[i] = memo[memo_keys[i]] = make([ids[j] for j in rules])
    return found, codes


def _advice(compiled: _Compiled, rulebook: Rulebook, fired: list[np.ndarray], n: int) -> tuple[pa.Array, pa.Array]:
    """``preferred`` and ``recommendations`` per row: one summarize per distinct ordered list of recommended agents.

    See :func:`_statistics` and :func:`_sequence_groups`.
    """
    if _BY_PATTERN:
        return _advice_by_pattern(compiled, rulebook, fired, n)

    def advice(fired_ids: list[str]) -> tuple[str, str]:
        summary = summarize(rulebook, fired_ids)
        return summary.preferred or "", ";".join(summary.recommendations)

    outcomes, codes = _statistic_texts(compiled, "advice", compiled.statistics["advice"], fired, n, advice,
                                       _sequence_groups)
    return _as_strings([o[0] for o in outcomes], codes), _as_strings([o[1] for o in outcomes], codes)


def _advice_by_pattern(compiled: _Compiled, rulebook: Rulebook, fired: list[np.ndarray], n: int
                       ) -> tuple[pa.Array, pa.Array]:
    """``preferred`` and ``recommendations`` per row, one summarize per distinct best-rank vector.

    By :func:`~lupus_rules.result.summarize`'s contract both depend only on
    each agent's best rank among the fired recommending rules and on whether
    a fired rule keeps or avoids it (then it is no new start: ``_EXCLUDED``,
    below every rank), so rows with the same vector share one summary.
    """
    rows = compiled.advice_rules
    bits = [fired[j] for j in rows]
    codes, first, _ = _group(bits, n)
    patterns = _columns(bits, first)
    ranks = np.full((len(rulebook.agents), patterns.shape[1]), np.iinfo(np.int32).max, dtype=np.int32)
    agent_index = {code: a for a, code in enumerate(rulebook.agents)}
    for i, j in enumerate(rows):
        for spec in rulebook.rules[j].recommend:
            row = ranks[agent_index[spec.agent]]
            np.minimum(row, np.where(patterns[i], compiled.rank_order[spec.rank], row), out=row)
        for agent in rulebook.rules[j].keep + rulebook.rules[j].avoid:
            row = ranks[agent_index[agent]]
            np.minimum(row, np.where(patterns[i], _EXCLUDED, row), out=row)
    vectors = [v.tobytes() for v in np.ascontiguousarray(ranks.T)]
    vector_codes, vector_uniques = pd.factorize(np.array(vectors, dtype=object))
    vector_first = np.empty(len(vector_uniques), dtype=np.intp)
    vector_first[vector_codes[::-1]] = np.arange(len(vector_codes) - 1, -1, -1)

    def advice(fired_ids: list[str]) -> tuple[str, str]:
        summary = summarize(rulebook, fired_ids)
        return summary.preferred or "", ";".join(summary.recommendations)

    outcomes = _texts(compiled, "advice", list(patterns), rows, vector_first, list(vector_uniques), advice)
    row_codes = vector_codes[codes]
    return (_as_strings([o[0] for o in outcomes], row_codes),
            _as_strings([o[1] for o in outcomes], row_codes))


def _listed(compiled: _Compiled, rulebook: Rulebook, fired: list[np.ndarray], n: int, name: str) -> pa.Array:
    """One list outcome (``flags``, ``continue``, ...) per row: one summarize per distinct pattern of its rules."""
    rows = compiled.listed_rules[name]
    items_of = _LISTED[name][1]

    def text(fired_ids: list[str]) -> str:
        return ";".join(item for _, item in items_of(summarize(rulebook, fired_ids)))

    if not _BY_PATTERN:
        return _listed_in_parts(compiled, rulebook, fired, n, name)
    if len(rows) <= _DIRECT_BITS:
        codes, published = _pattern_texts(compiled, name, rows, text).codes(fired, n)
        return published.array.take(pa.array(codes)) if published.count else _as_strings([], codes)
    bits = [fired[j] for j in rows]
    codes, first, keys = _group(bits, n)
    return _as_strings(_texts(compiled, name, bits, rows, first, list(map(bytes, keys)), text), codes)


def _parts(columns: tuple[_Column, ...]) -> list[tuple[_Column, ...]]:
    """Consecutive runs of ``columns`` of about ``_PART_BITS`` bits of values each (at least one column)."""
    parts: list[list[_Column]] = []
    bits = math.inf
    for column in columns:
        size = math.log2(column.size)
        if bits + size > _PART_BITS:
            parts.append([])
            bits = 0.0
        parts[-1].append(column)
        bits += size
    return [tuple(part) for part in parts]


def _listed_in_parts(compiled: _Compiled, rulebook: Rulebook, fired: list[np.ndarray], n: int, name: str) -> pa.Array:
    """One list outcome per row, assembled from parts of its codes (see :data:`_LISTED`).

    The codes are cut into runs of a few columns (:func:`_parts`); each
    run's text is summarized once per distinct row of its columns and
    remembered, so the work grows with the values a run shows, not with their
    combinations across runs. Arrow joins the runs' texts row by row, each
    spelled with a leading ';' when an earlier run of the row is non-empty.
    """
    items_of = _LISTED[name][1]
    pieces = []
    empty_so_far = np.ones(n, dtype=bool)
    for part in _parts(compiled.statistics[name]):
        codes_of_part = {column.code for column in part}

        def text(fired_ids: list[str], codes_of_part: set[str] = codes_of_part) -> str:
            return ";".join(item for code, item in items_of(summarize(rulebook, fired_ids)) if code in codes_of_part)

        texts, groups = _statistic_texts(compiled, ("part", name, tuple(column.code for column in part)), part,
                                         fired, n, text)
        spelled = pa.array([v for t in texts for v in (t, ";" + t if t else "")], type=pa.string())
        empty = np.array([not t for t in texts], dtype=bool)
        pieces.append(spelled.take(pa.array(2 * groups + ~empty_so_far)) if texts else _as_strings([], groups))
        if texts:
            empty_so_far &= empty[groups]
    if not pieces:
        return _as_strings([], np.zeros(n, dtype=np.intp))
    return pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, "")


def _as_strings(texts: list, codes: np.ndarray) -> pa.Array:
    """``texts[codes]`` as an Arrow string array, materialised in one take."""
    if not texts:
        texts, codes = [""], np.zeros(len(codes), dtype=np.intp)
    return pa.array(texts, type=pa.string()).take(pa.array(codes))


def _fired_rules(compiled: _Compiled, fired: list[np.ndarray], n: int) -> pa.Array:
    """The ';'-joined ids of fired rules per row.

    Rules are cut into parts of ``_PART_RULES``; each part's patterns get
    their text once (see :class:`_PatternTexts`), spelled with and without a
    leading ';' (chosen by whether an earlier part of the row is non-empty),
    and Arrow concatenates the parts row by row.
    """
    pieces = []
    empty_so_far = np.ones(n, dtype=bool)
    for start in range(0, len(compiled.rule_ids), _PART_RULES):
        rows = list(range(start, min(start + _PART_RULES, len(compiled.rule_ids))))
        codes, published = _pattern_texts(compiled, ("ids", start), rows, ";".join, spelled=True).codes(fired, n)
        pieces.append(published.array.take(pa.array(2 * codes + ~empty_so_far)))
        empty_so_far &= published.empty[codes]
    if not pieces:
        return _as_strings([], np.zeros(n, dtype=np.intp))
    return pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, "")


def evaluate_frame(typed: pd.DataFrame, rulebook: Rulebook) -> pd.DataFrame:
    """Evaluate every row: ``preferred``, ``recommendations``, ``flags``, ``fired_rules``.

    Each is a string (lists ';'-separated; recommendations in rank order,
    fired rules in firing order), indexed like ``typed``. The outcome of each
    distinct group of rows comes from :func:`lupus_rules.result.summarize`, as
    the durable engine's does: preferred and recommendations from the fired
    rules that recommend an agent, flags from the fired rules that raise a
    flag (no other rule can change those parts of a summary; the differential
    test checks it). Outcomes are remembered per rulebook version, so a batch
    evaluated in chunks works each one out once. Not for clinical use.
    """
    compiled = _compile(rulebook)
    parts: dict[str, list[pa.Array]] = {name: [] for name in OUTPUT_COLUMNS}
    step = _chunk_rows(len(rulebook.rules))
    for start in range(0, max(len(typed), 1), step):
        chunk = typed.iloc[start:start + step]
        for name, array in _evaluate_chunk(compiled, rulebook, chunk).items():
            parts[name].append(array)
    return pd.DataFrame({name: pd.Series(pa.chunked_array(arrays, type=pa.string()), index=typed.index,
                                         dtype="str", copy=False)
                         for name, arrays in parts.items()}, index=typed.index)


def _chunk_rows(rules: int) -> int:
    """Rows evaluated at once for ``rules`` rules: _CHUNK_ROWS, or fewer so the masks stay near _CHUNK_BYTES."""
    return max(1024, min(_CHUNK_ROWS, _CHUNK_BYTES // (_BYTES_PER_RULE_ROW * max(1, rules))))


def _evaluate_chunk(compiled: _Compiled, rulebook: Rulebook, typed: pd.DataFrame) -> dict[str, pa.Array]:
    """The output columns (:data:`OUTPUT_COLUMNS`) for one slice of rows."""
    fired = _fire(typed, compiled)
    n = len(typed)
    preferred, recommendations = _advice(compiled, rulebook, fired, n)
    listed = {name: _listed(compiled, rulebook, fired, n, name) for name in _LISTED}
    return {"preferred": preferred, "recommendations": recommendations, **listed,
            "fired_rules": _fired_rules(compiled, fired, n)}
