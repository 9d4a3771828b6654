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
:func:`lupus_rules.result.summarize`, once per distinct pattern of fired rules.

Input is the ``typed`` frame of :func:`lupus_rules.facts.validate_frame`.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import EngineError
from ..facts import FACTS, MEASURES, STATUSES, member_column
from ..result import summarize
from ..rulebook import Condition, Rulebook

__all__ = ["fire_matrix", "evaluate_frame", "OUTPUT_COLUMNS", "required_columns"]

#: The columns :func:`evaluate_frame` returns, each a ';'-separated string per row.
OUTPUT_COLUMNS = ("preferred", "recommendations", "flags", "fired_rules")

_MAX_COMPILED = 8  # rulebook versions kept compiled at once
_COMPILED: OrderedDict[str, _Compiled] = OrderedDict()


@dataclass(frozen=True)
class _Step:
    """One rule, compiled: the keys of its condition masks and the derived facts it sets."""

    rule_id: str
    conditions: tuple[tuple, ...]
    derive: tuple[str, ...]


@dataclass(frozen=True)
class _Compiled:
    version: str
    steps: tuple[_Step, ...]
    columns: tuple[str, ...]


def _condition_key(condition: Condition) -> tuple:
    """A hashable key that is equal for identical tests, so each mask is computed once."""
    return (condition.kind, condition.fact, condition.op, condition.value)


def _compile(rulebook: Rulebook) -> _Compiled:
    """The rulebook as evaluation steps in firing order; cached by ``rulebook.version``."""
    cached = _COMPILED.get(rulebook.version)
    if cached is not None:
        _COMPILED.move_to_end(rulebook.version)
        return cached
    steps = tuple(_Step(r.id, tuple(_condition_key(c) for c in r.when), r.derive) for r in rulebook.rules)
    needed = {c.fact for r in rulebook.rules for c in r.when if c.kind == "fact"}
    compiled = _Compiled(rulebook.version, steps, _columns_for(needed))
    _COMPILED[rulebook.version] = compiled
    while len(_COMPILED) > _MAX_COMPILED:
        _COMPILED.popitem(last=False)
    return compiled


def _columns_for(facts: set[str]) -> tuple[str, ...]:
    columns: list[str] = []
    for name in list(FACTS) + list(MEASURES):
        if name not in facts:
            continue
        spec = FACTS.get(name) or MEASURES[name]
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

    def __init__(self, typed: pd.DataFrame):
        self.typed = typed
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
            array = self.arrays[name] = _read_column(self.typed, name)
        return array

    def _fact(self, fact: str, op: str, value: object) -> np.ndarray:
        spec = FACTS.get(fact) or MEASURES[fact]
        if spec.kind == "set":
            column = self._column(member_column(fact, str(value)))
            return column if op == "has" else ~column
        column = self._column(fact)
        if spec.kind == "bool":
            return column if value else ~column
        if spec.kind == "status":
            return _status_mask(column, op, value)
        return _number_mask(column, op, value)


def _status_mask(codes: np.ndarray, op: str, value: object) -> np.ndarray:
    if op == "==":
        return codes == STATUSES.index(str(value))
    if op == "!=":
        return codes != STATUSES.index(str(value))
    table = np.zeros(len(STATUSES), dtype=bool)
    table[[STATUSES.index(v) for v in value]] = True  # type: ignore[union-attr]
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


def _read_column(typed: pd.DataFrame, name: str) -> np.ndarray:
    """One typed column as numpy: bools, float64 numbers, or int8 status codes."""
    if name not in typed.columns:
        raise EngineError(f"typed frame lacks column {name!r}; build it with lupus_rules.facts.validate_frame")
    column = typed[name]
    spec = FACTS.get(name) or MEASURES.get(name)
    if spec is not None and spec.kind == "status":
        return _status_codes(name, column)
    if spec is not None and spec.kind == "number":
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    if column.dtype != bool:
        raise EngineError(f"typed column {name!r} has dtype {column.dtype}, expected bool")
    return column.to_numpy()


def _status_codes(name: str, column: pd.Series) -> np.ndarray:
    """Status values as int8 codes into STATUSES (Categorical in any category order, or codes)."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if tuple(dtype.categories) != STATUSES:
            column = column.cat.set_categories(list(STATUSES))
        codes = column.cat.codes.to_numpy()
    elif isinstance(dtype, np.dtype) and dtype.kind in "iu":
        codes = column.to_numpy()
    else:
        codes = pd.Categorical(column, categories=list(STATUSES)).codes
    if len(codes) and (codes.min() < 0 or codes.max() >= len(STATUSES)):
        raise EngineError(f"typed column {name!r} holds values outside {', '.join(STATUSES)}")
    return codes


def _fire(typed: pd.DataFrame, compiled: _Compiled) -> np.ndarray:
    """Rule-major fired matrix: row j says, per patient, whether rule j fired."""
    masks = _Masks(typed)
    fired = np.empty((len(compiled.steps), masks.n), dtype=bool)
    for j, step in enumerate(compiled.steps):
        row = fired[j]
        if not step.conditions:
            row[:] = True
        else:
            np.copyto(row, masks.get(step.conditions[0]))
            for key in step.conditions[1:]:
                np.logical_and(row, masks.get(key), out=row)
        for name in step.derive:
            masks.derive(name, row)
    return fired


def fire_matrix(typed: pd.DataFrame, rulebook: Rulebook) -> np.ndarray:
    """Which rules fire for each row: bool array (rows × rules), column j = ``rulebook.rules[j]``.

    ``typed`` is the first result of :func:`lupus_rules.facts.validate_frame`
    (rejected rows hold defaults; drop or ignore them yourself). Raises
    :class:`~lupus_rules.errors.EngineError` naming a missing or mistyped column.
    """
    return _fire(typed, _compile(rulebook)).T


def _pattern_codes(fired: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by identical fired-rule pattern: (code per row, first row of each code)."""
    n = fired.shape[1]
    if n == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    packed = np.packbits(fired, axis=0, bitorder="little")  # (ceil(rules/8), rows) uint8
    width = -(-packed.shape[0] // 8) * 8
    words = np.zeros((n, width), dtype=np.uint8)
    words[:, : packed.shape[0]] = packed.T
    keys = words.view(np.uint64)  # (rows, width/8): one 64-rule word per column
    codes = np.zeros(n, dtype=np.int64)
    for k in range(keys.shape[1]):
        word_codes, word_uniques = pd.factorize(keys[:, k])
        codes, _ = pd.factorize(codes * len(word_uniques) + word_codes)
    first = np.empty(int(codes.max()) + 1, dtype=np.intp)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)  # last write wins: the first row of each code
    return codes, first


def _outcome_strings(rulebook: Rulebook, rule_ids: list[str]) -> tuple[str, str, str, str]:
    summary = summarize(rulebook, rule_ids)
    return (summary.preferred or "", ";".join(summary.recommendations), ";".join(summary.flags),
            ";".join(rule_ids))


def evaluate_frame(typed: pd.DataFrame, rulebook: Rulebook) -> pd.DataFrame:
    """Evaluate every row: ``preferred``, ``recommendations``, ``flags``, ``fired_rules``.

    Each is a string (lists ';'-separated; recommendations in rank order,
    fired rules in firing order), indexed like ``typed``. The outcome of each
    distinct fired-rule pattern comes from :func:`lupus_rules.result.summarize`,
    exactly as the durable engine's does. Not for clinical use.
    """
    compiled = _compile(rulebook)
    fired = _fire(typed, compiled)
    codes, first = _pattern_codes(fired)
    ids = [step.rule_id for step in compiled.steps]
    table = np.empty((len(first), len(OUTPUT_COLUMNS)), dtype=object)
    for code, row in enumerate(first):
        table[code] = _outcome_strings(rulebook, [ids[j] for j in np.flatnonzero(fired[:, row])])
    columns = {name: pd.Series(table[codes, i], index=typed.index, dtype="str")
               for i, name in enumerate(OUTPUT_COLUMNS)}
    return pd.DataFrame(columns, index=typed.index)
