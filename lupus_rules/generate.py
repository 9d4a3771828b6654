"""Scenario generation: the cartesian product of the fact values worth testing.

:func:`value_bands` reads every threshold the rulebook's conditions use and
returns, per fact, the values that probe them: each category of a status or
bool fact, every subset of ``manifestations``, and for numbers *unknown*
(NaN) plus values just below, exactly at and just above every threshold and a
typical value between thresholds. Nothing is hard-coded: edit a rule's
threshold and the bands follow.

A *measure* (``upcr_reduction_pct``, ``egfr_change_pct``) is computed from two
input facts, so its thresholds can only be reached through them: the current
value and its baseline form one joint band of ``(current, baseline)`` pairs
keyed by the current fact (``"upcr"``, ``"egfr"``), and
:func:`band_columns` says which columns a band fills.

:func:`cartesian` / :func:`iter_cartesian` build the product over chosen bands
(unchosen facts take their defaults) as scenario rows in CSV cell form, and
:func:`count` says how many rows that is without building anything.

Not for clinical use: generated scenarios exercise the rules; they are not patients.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from .errors import GenerateError
from .facts import FACTS, MEASURE_INPUTS, MEASURES, FactSpec, compute_measures
from .rulebook import Condition, Rulebook

__all__ = [
    "Bands",
    "GenerateError",
    "value_bands",
    "band_columns",
    "resolve_facts",
    "count",
    "cartesian",
    "iter_cartesian",
    "sample_positions",
    "sample",
    "iter_sample",
    "SCENARIO_ID",
]

#: A band key -> the values worth testing. Plain facts hold scalars (frozenset,
#: str, bool or float with NaN = unknown); paired facts hold (current, baseline) tuples.
Bands = dict[str, list]

#: Name of the scenario id column :func:`cartesian` writes first.
SCENARIO_ID = "scenario_id"

_THRESHOLD_OPS = ("<", "<=", ">", ">=")


# --- bands ------------------------------------------------------------------------------------


def value_bands(rulebook: Rulebook) -> Bands:
    """The values worth testing for every fact, read from ``rulebook``'s conditions.

    Keys follow :data:`~lupus_rules.facts.FACTS` order; a baseline fact has no
    key of its own but travels with its current fact (``"upcr"`` holds
    ``(upcr, upcr_baseline)`` pairs reaching every threshold on ``upcr`` *and*
    on ``upcr_reduction_pct``). Values are deduplicated; numbers come unknown
    (NaN) first, then ascending.
    """
    thresholds = _thresholds(rulebook)
    bands: Bands = {}
    for name, spec in FACTS.items():
        if name in _BASELINES:
            continue
        if name in _PAIR_OF:
            bands[name] = _pair_band(_PAIR_OF[name], thresholds)
        elif spec.kind == "set":
            bands[name] = _subsets(spec)
        elif spec.kind == "status":
            bands[name] = list(spec.allowed)
        elif spec.kind == "bool":
            bands[name] = [False, True]
        else:
            bands[name] = [math.nan, *_number_values(spec, thresholds.get(name, []))]
    return bands


def band_columns(key: str) -> tuple[str, ...]:
    """The scenario columns band ``key`` fills: one fact, or (current, baseline) for a pair."""
    if key in _PAIR_OF:
        return _pair_names(_PAIR_OF[key])
    if key not in FACTS or key in _BASELINES:
        raise GenerateError(f"{key!r} is not a band; bands: {', '.join(_band_keys())}")
    return (key,)


def resolve_facts(bands: Bands, facts: Iterable[str] | None) -> list[str]:
    """Band keys for fact names (``None`` = every band).

    A baseline fact or a measure selects its pair's band (``upcr_baseline`` and
    ``upcr_reduction_pct`` both mean ``upcr``). Unknown names raise
    :class:`GenerateError` listing the allowed ones.
    """
    if facts is None:
        return list(bands)
    keys: list[str] = []
    for raw in facts:
        name = str(raw).strip()
        key = _ALIASES.get(name, name)
        if key not in bands:
            allowed = ", ".join(list(bands) + sorted(_ALIASES))
            raise GenerateError(f"unknown fact {name!r}; allowed: {allowed}")
        if key not in keys:
            keys.append(key)
    return keys


def count(bands: Bands, facts: Iterable[str] | None = None) -> int:
    """How many scenarios :func:`cartesian` would build for these facts, without building them."""
    return math.prod(len(bands[key]) for key in resolve_facts(bands, facts))


def cartesian(bands: Bands, facts: Iterable[str] | None = None) -> pd.DataFrame:
    """The product of the chosen facts' bands as one scenario frame (see :func:`iter_cartesian`).

    Builds everything in memory: check :func:`count` first, or stream with
    :func:`iter_cartesian` for large products.
    """
    chunks = list(iter_cartesian(bands, facts, chunk_size=max(1, count(bands, facts))))
    return chunks[0]


def iter_cartesian(bands: Bands, facts: Iterable[str] | None = None,
                   chunk_size: int = 100_000) -> Iterator[pd.DataFrame]:
    """Yield the product of the chosen facts' bands in chunks of at most ``chunk_size`` rows.

    Columns: ``scenario_id`` (``gen-0001`` ...) then every fact of
    :data:`~lupus_rules.facts.FACTS` in CSV cell form, ready for
    ``lupus-rules run``: sets ``';'``-joined, bools ``'true'``/``'false'``,
    statuses as text, numbers as floats with NaN = unknown (write with
    ``na_rep=''``). Unchosen facts take their defaults. The last chosen fact
    varies fastest. Always yields at least one chunk (possibly with no rows).
    """
    keys = resolve_facts(bands, facts)
    total = count(bands, keys)
    width = len(str(total))
    sizes = [len(bands[key]) for key in keys]
    step = max(1, int(chunk_size))
    for start in range(0, max(total, 1), step):
        stop = min(start + step, total)
        yield _chunk(bands, keys, sizes, start, stop, width)


def sample_positions(total: int, n: int, seed: int) -> np.ndarray:
    """``n`` distinct positions of a product of ``total`` rows, drawn uniformly with ``seed``, ascending.

    The same ``(total, n, seed)`` always gives the same positions. ``n`` at or
    above ``total`` gives every position. :class:`GenerateError` for ``n < 1``
    or a seed that is not a whole number >= 0.
    """
    for name, value, low in (("sample", n, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise GenerateError(f"{name}: got {value!r}; allowed: a whole number >= {low}")
    if n >= total:
        return np.arange(total, dtype=np.int64)
    chosen = np.random.default_rng(int(seed)).choice(int(total), size=int(n), replace=False, shuffle=False)
    return np.sort(chosen.astype(np.int64))


def sample(bands: Bands, facts: Iterable[str] | None, n: int, seed: int) -> pd.DataFrame:
    """``n`` distinct rows of the product drawn with ``seed`` (see :func:`iter_sample`), in one frame."""
    return pd.concat(list(iter_sample(bands, facts, n, seed, chunk_size=max(1, n))), ignore_index=True)


def iter_sample(bands: Bands, facts: Iterable[str] | None, n: int, seed: int,
                chunk_size: int = 100_000) -> Iterator[pd.DataFrame]:
    """A seeded random sample of the product instead of all of it: ``n`` distinct rows, in chunks.

    Rows come in product order and keep the product's ids (``gen-<position>``),
    so the row with id ``gen-K`` equals row ``K`` of :func:`cartesian`: a sample
    never leaves the space. Deterministic per ``seed``; huge spaces (10**12
    rows) are sampled without building them.
    """
    keys = resolve_facts(bands, facts)
    total = count(bands, keys)
    positions = sample_positions(total, n, seed)
    sizes = [len(bands[key]) for key in keys]
    width = len(str(total))
    step = max(1, int(chunk_size))
    for start in range(0, max(len(positions), 1), step):
        yield _rows_at(bands, keys, sizes, positions[start:start + step], width)


def _chunk(bands: Bands, keys: list[str], sizes: list[int], start: int, stop: int,
           width: int) -> pd.DataFrame:
    return _rows_at(bands, keys, sizes, np.arange(start, max(start, stop), dtype=np.int64), width)


def _picks(keys: list[str], sizes: list[int], index: np.ndarray) -> dict[str, np.ndarray]:
    """Per band, which of its values each row takes: ``index`` in mixed radix, the last band fastest."""
    picks: dict[str, np.ndarray] = {}
    for key, size in zip(reversed(keys), reversed(sizes)):
        picks[key] = index % size
        index = index // size
    return picks


def _rows_at(bands: Bands, keys: list[str], sizes: list[int], index: np.ndarray, width: int) -> pd.DataFrame:
    """The rows at positions ``index`` of the product (0-based), ids ``gen-<position + 1>``."""
    n = len(index)
    picks = _picks(keys, sizes, index)
    columns: dict[str, object] = {SCENARIO_ID: [f"gen-{i + 1:0{width}d}" for i in index.tolist()]}
    for name, spec in FACTS.items():
        columns[name] = _default_column(spec, n)
    for key in keys:
        for column, cells in zip(band_columns(key), _cells(key, bands[key])):
            columns[column] = cells[picks[key]]
    return pd.DataFrame(columns)


# --- cell form --------------------------------------------------------------------------------


def _cells(key: str, values: list) -> list[np.ndarray]:
    """One numpy array of CSV cells per column the band fills."""
    if key in _PAIR_OF:
        pairs = np.array(values, dtype=float).reshape(len(values), 2)
        return [pairs[:, 0], pairs[:, 1]]
    return [_cell_array(FACTS[key], values)]


def _cell_array(spec: FactSpec, values: Sequence) -> np.ndarray:
    if spec.kind == "number":
        return np.array(values, dtype=float)
    return np.array([_cell(spec, v) for v in values], dtype=object)


def _cell(spec: FactSpec, value: object) -> object:
    if spec.kind == "set":
        return ";".join(m for m in spec.allowed if m in value)  # type: ignore[operator]
    if spec.kind == "bool":
        return "true" if value else "false"
    return value


def _default_column(spec: FactSpec, n: int) -> np.ndarray:
    if spec.kind == "number":
        return np.full(n, np.nan)
    return np.full(n, _cell(spec, spec.default), dtype=object)


# --- thresholds -------------------------------------------------------------------------------


def _thresholds(rulebook: Rulebook) -> dict[str, list[float]]:
    """Every number a comparison in the rules (and accepted gaps) uses, by fact or measure."""
    found: dict[str, set[float]] = {}
    conditions: list[Condition] = [c for rule in rulebook.rules for c in rule.when]
    conditions += [c for gap in rulebook.accepted_gaps for c in gap.when]
    for condition in conditions:
        if condition.kind == "fact" and condition.op in _THRESHOLD_OPS:
            found.setdefault(condition.fact, set()).add(float(condition.value))
    return {name: sorted(values) for name, values in found.items()}


def _step(thresholds: Sequence[float]) -> float:
    """'Just below/above' distance: a hundredth of the order of magnitude of the smallest threshold or gap."""
    sizes = [abs(t) for t in thresholds] + [b - a for a, b in zip(thresholds, thresholds[1:])]
    smallest = min((s for s in sizes if s > 0), default=1.0)
    return 10.0 ** (math.floor(math.log10(smallest)) - 2)


def _digits(step: float) -> int:
    return max(0, -int(round(math.log10(step)))) + 1


def _number_values(spec: FactSpec, thresholds: Sequence[float]) -> list[float]:
    """Known values worth testing for one number: around each threshold, and typical ones between."""
    lo, hi = _range(spec)
    if not thresholds:
        return [_typical(lo, hi)]
    step = _step(thresholds)
    digits = _digits(step)
    values: list[float] = []
    for t in thresholds:
        values += [round(t - step, digits), t, round(t + step, digits)]
    values += _typicals(thresholds, step, lo, hi, digits)
    return sorted(_unique(v for v in values if lo <= v <= hi))


def _typicals(thresholds: Sequence[float], step: float, lo: float, hi: float, digits: int) -> list[float]:
    """One value inside every interval the thresholds cut the range into (when there is room)."""
    gaps = [b - a for a, b in zip(thresholds, thresholds[1:])]
    spread = max(gaps) if gaps else max(abs(thresholds[0]), 1.0)
    below = thresholds[0] - spread / 2
    if below < lo:
        below = (lo + thresholds[0]) / 2
    above = thresholds[-1] + spread / 2
    if above > hi:
        above = (hi + thresholds[-1]) / 2
    middles = [(a + b) / 2 for a, b in zip(thresholds, thresholds[1:])]
    out = []
    for value, low, high in [(below, -math.inf, thresholds[0]), (above, thresholds[-1], math.inf),
                             *[(m, a, b) for m, a, b in zip(middles, thresholds, thresholds[1:])]]:
        value = round(value, digits)
        if low + step < value < high - step:
            out.append(value)
    return out


def _range(spec: FactSpec) -> tuple[float, float]:
    lo = -math.inf if spec.minimum is None else float(spec.minimum)
    hi = math.inf if spec.maximum is None else float(spec.maximum)
    return lo, hi


def _typical(lo: float, hi: float) -> float:
    """A middle value of a range; 0 (no change) clamped into it when the range is open."""
    if math.isfinite(lo) and math.isfinite(hi):
        return (lo + hi) / 2
    return min(max(0.0, lo), hi)


def _unique(values: Iterable) -> list:
    seen: set[str] = set()
    out = []
    for value in values:
        key = repr(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _subsets(spec: FactSpec) -> list[frozenset[str]]:
    """Every subset of a set fact's members, smallest first."""
    members = spec.allowed
    return [frozenset(c) for size in range(len(members) + 1) for c in combinations(members, size)]


# --- paired facts (measures) ------------------------------------------------------------------


def _pair_names(measure: str) -> tuple[str, str]:
    """(current, baseline) fact names of a measure."""
    current, baseline = MEASURE_INPUTS[measure]
    return current, baseline


def _pair_band(measure: str, thresholds: dict[str, list[float]]) -> list[tuple[float, float]]:
    """(current, baseline) pairs reaching every threshold on the current fact, the baseline and the measure.

    Besides unknown/known combinations, every current value is paired with a
    baseline putting the measure just below, exactly at and just above each
    of its thresholds (and at typical values between them), so joint
    conditions such as ``upcr < 3`` *and* ``upcr_reduction_pct >= 50`` are probed.
    """
    current, baseline = _pair_names(measure)
    currents = _number_values(FACTS[current], thresholds.get(current, []))
    baselines = _number_values(FACTS[baseline], thresholds.get(baseline, []))
    typical_current = _typical_of(FACTS[current], thresholds.get(current, []))
    typical_baseline = _typical_of(FACTS[baseline], thresholds.get(baseline, []))
    pairs: list[tuple[float, float]] = [(math.nan, math.nan), (typical_current, math.nan),
                                        (math.nan, typical_baseline)]
    limits = thresholds.get(measure, [])
    targets = _number_values(MEASURES[measure], limits)
    grid_current = np.repeat(np.asarray(currents, dtype=float), len(targets))
    grid_target = np.tile(np.asarray(targets, dtype=float), len(currents))
    exact = np.isin(grid_target, limits)
    tolerance = _step(limits) / 10 if limits else 1.0
    found = _baselines_for(measure, grid_current, grid_target, exact, tolerance)
    pairs += [(c, b) for c, b in zip(grid_current.tolist(), found.tolist()) if not math.isnan(b)]
    if thresholds.get(baseline):
        pairs += [(typical_current, b) for b in baselines]
    return _unique(pairs)


def _typical_of(spec: FactSpec, thresholds: Sequence[float]) -> float:
    """A value away from every threshold, for the side of a pair that is not being probed."""
    lo, hi = _range(spec)
    if not thresholds:
        return _typical(lo, hi)
    step = _step(thresholds)
    typicals = _typicals(thresholds, step, lo, hi, _digits(step))
    return typicals[len(typicals) // 2] if typicals else thresholds[0]


def _measure(measure: str, current: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """The measure exactly as the engines compute it (:func:`compute_measures`)."""
    name_current, name_baseline = _pair_names(measure)
    arrays = {name: np.full(len(baseline), np.nan) for pair in MEASURE_INPUTS.values() for name in pair}
    arrays[name_current] = np.asarray(current, dtype=float)
    arrays[name_baseline] = np.asarray(baseline, dtype=float)
    return compute_measures(arrays)[measure]


def _baselines_for(measure: str, current: np.ndarray, target: np.ndarray, exact: np.ndarray,
                   tolerance: float) -> np.ndarray:
    """Per (current, target): a short decimal baseline giving the target; NaN when out of range.

    ``exact`` targets must be reached exactly, the others within ``tolerance``.
    Solved by bisection over the baseline fact's range with the engines' own
    formula, so the value reached is the value the rules will see.
    """
    _, baseline_name = _pair_names(measure)
    lo, hi = _range(FACTS[baseline_name])
    a = np.full(len(target), max(lo, 1e-9))
    b = np.full(len(target), hi)
    f_a, f_b = _measure(measure, current, a), _measure(measure, current, b)
    reachable = (np.fmin(f_a, f_b) <= target) & (target <= np.fmax(f_a, f_b))
    rising = f_b > f_a
    for _ in range(200):
        mid = (a + b) / 2
        below = (_measure(measure, current, mid) < target) == rising
        a = np.where(below, mid, a)
        b = np.where(below, b, mid)
    chosen = np.full(len(target), np.nan)
    center = (a + b) / 2
    for candidate in [*(np.round(center, d) for d in range(16)), center, a, b]:
        value = _measure(measure, current, candidate)
        good = np.where(exact, value == target, np.abs(value - target) <= tolerance)
        take = reachable & good & np.isnan(chosen)
        chosen[take] = candidate[take]
    return chosen


# facts.MEASURE_INPUTS lists each measure's inputs as (current, baseline).
_PAIR_OF: dict[str, str] = {current: m for m, (current, _) in MEASURE_INPUTS.items()}
_BASELINES: frozenset[str] = frozenset(baseline for _, baseline in MEASURE_INPUTS.values())
_ALIASES: dict[str, str] = {
    **{baseline: current for current, baseline in MEASURE_INPUTS.values()},
    **{m: current for m, (current, _) in MEASURE_INPUTS.items()},
}


def _band_keys() -> list[str]:
    return [name for name in FACTS if name not in _BASELINES]
