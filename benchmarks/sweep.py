"""Benchmark: a sensitivity sweep against evaluating each variant separately with run_batch (same run).

The population is a seeded ``--rows`` sample of the generated space; the sweep
moves R-KID-01's eGFR cut over ``--values``. The peer is what a user would
otherwise do: one :func:`lupus_rules.batch.run_batch` per rulebook (the base
and every variant), comparing the outcome columns afterwards. The ratio is
sweep / peer (below 1 = the sweep is faster: it validates the patients once).

    python benchmarks/sweep.py [--rows 1000000] [--values 45:75:5]

Synthetic rows for timing only. Not for clinical use.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

from lupus_rules.batch import run_batch
from lupus_rules.evaluate import default_rulebook
from lupus_rules.generate import sample, value_bands
from lupus_rules.sweep import find_threshold, parse_values, sweep, variant_rulebook


def _time(part: str, rows: int, text: str) -> float:
    """Seconds one part takes in this process (population drawn and engine warmed untimed)."""
    book = default_rulebook()
    population = sample(value_bands(book), None, rows, seed=1)
    values = parse_values(text)
    run_batch(population.head(1000), rulebook=book)  # the base rulebook compiled, for both parts
    started = time.perf_counter()
    if part == "sweep":
        sweep(population, values, rule="R-KID-01", rulebook=book)
    else:
        threshold = find_threshold(book, rule="R-KID-01")
        base = run_batch(population, rulebook=book)
        for value in values:
            other = run_batch(population, rulebook=variant_rulebook(book, threshold, value))
            _ = [(base[c] != other[c]).sum() for c in ("preferred", "recommendations", "flags")]
    return time.perf_counter() - started


def main() -> None:
    """Print the figures; each part runs in a fresh process, so neither finds the other's caches warm."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--values", default="45:75:5")
    parser.add_argument("--part", choices=("sweep", "peer"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        print(_time(args.part, args.rows, args.values))
        return
    seconds = {}
    for part in ("sweep", "peer"):
        done = subprocess.run([sys.executable, __file__, "--part", part, "--rows", str(args.rows),
                               "--values", args.values], capture_output=True, text=True, check=True)
        seconds[part] = float(done.stdout.split()[-1])
    evaluations = len(parse_values(args.values)) + 1
    print(f"{args.rows:,} patients x {evaluations} rulebooks (base + {evaluations - 1} values), fresh process each")
    for part, label in (("sweep", "sweep"), ("peer", "run_batch per rulebook (peer)")):
        print(f"{label:30} {seconds[part]:7.2f} s {args.rows * evaluations / seconds[part]:12,.0f} "
              "patient-evaluations/s")
    print(f"{'ratio sweep / peer':30} {seconds['sweep'] / seconds['peer']:7.2f}")


if __name__ == "__main__":
    main()
