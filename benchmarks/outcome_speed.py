"""Benchmark: the vectorized engine's outcome texts, before and after issue 12, beside the floor (same run).

Rows are a seeded sample of the generated space of the shipped rulebook
(:func:`lupus_rules.generate.sample` over :func:`~lupus_rules.generate.value_bands`),
validated once outside any timing. Per size, each case evaluates the same
typed rows with :func:`lupus_rules.engines.vectorized.evaluate_frame` on a
rulebook version no call has used yet (nothing remembered: the first call's
cost), except "again" (the same version, on other rows of the same size):

- ``floor``: the rule checks only (``_fire``, chunk by chunk), no outcome text;
- ``by pattern``: outcomes summarized once per distinct pattern of the rules
  they depend on (the engine before issue 12, kept behind the private switch
  ``vectorized._BY_PATTERN``);
- ``by statistic``: outcomes summarized once per distinct value of the few
  small columns that determine them, list outcomes assembled from parts
  (the engine now); first call and again.

Ratios are each case's seconds over the floor's, and by pattern over by statistic.

    python benchmarks/outcome_speed.py [--rows 100000 1000000]

Synthetic rows for timing only. Not for clinical use.
"""
from __future__ import annotations

import argparse
import time

import pandas as pd

from lupus_rules.engines import vectorized
from lupus_rules.evaluate import default_rulebook
from lupus_rules.facts import validate_frame
from lupus_rules.generate import sample, value_bands
from lupus_rules.rulebook import Rulebook


def _cold(book: Rulebook, label: str) -> Rulebook:
    """The same rules under a version no evaluation has used yet."""
    first = book.rules[0]
    return book.replace_rule(first.id, title=f"{first.title} ({label})")


def _typed(book: Rulebook, rows: int, seed: int) -> pd.DataFrame:
    return validate_frame(sample(value_bands(book), None, rows, seed=seed), book.vocabulary)[0]


def _seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _fire_only(typed: pd.DataFrame, book: Rulebook) -> None:
    compiled = vectorized._compile(book)
    for start in range(0, len(typed), vectorized._CHUNK_ROWS):
        vectorized._fire(typed.iloc[start:start + vectorized._CHUNK_ROWS], compiled)


def _by_pattern(typed: pd.DataFrame, book: Rulebook) -> None:
    vectorized._BY_PATTERN = True
    try:
        vectorized.evaluate_frame(typed, book)
    finally:
        vectorized._BY_PATTERN = False


def measure(rows: int) -> list[tuple[str, float]]:
    """(case, seconds) for ``rows`` rows: floor, by pattern, by statistic (first call and again)."""
    book = default_rulebook()
    typed, other = _typed(book, rows, seed=1), _typed(book, rows, seed=2)
    now = _cold(book, f"by statistic {rows}")
    cases = [("floor: rule checks only", _seconds(lambda: _fire_only(typed, _cold(book, f"floor {rows}")))),
             ("by pattern (before), first call", _seconds(lambda: _by_pattern(typed, _cold(book, f"pattern {rows}")))),
             ("by statistic (now), first call", _seconds(lambda: vectorized.evaluate_frame(typed, now))),
             ("by statistic (now), again on other rows", _seconds(lambda: vectorized.evaluate_frame(other, now)))]
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    print("| rows | case | seconds | rows/s | × floor | before / now |")
    print("|---:|---|---:|---:|---:|---:|")
    for rows in args.rows:
        cases = measure(rows)
        floor, before, now = cases[0][1], cases[1][1], cases[2][1]
        for name, seconds in cases:
            speedup = f"{before / seconds:.1f}" if name.startswith("by statistic") else ""
            print(f"| {rows:,} | {name} | {seconds:.2f} | {rows / seconds:,.0f} | {seconds / floor:.1f} | {speedup} |",
                  flush=True)
        del floor, now


if __name__ == "__main__":
    main()
