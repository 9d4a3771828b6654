"""Benchmark: the authoring round trip (edit, plan a save, review) on the shipped suite, as ratios.

    python benchmarks/review.py            # 5 rounds, medians
    python benchmarks/review.py --rounds 9

Measured in one process, interleaved rounds, on a copy of the shipped rule
folder and the shipped scenario suite:

* one edit checked by the loader (what an editor does on each keystroke), against a plain
  ``rulebook_from_documents`` of the unchanged rulebook (the floor: the loader itself);
* planning the save of that edit (diff + safe re-parse + loader check);
* ``build_review`` without lint, against ``compare`` of the same two rulebooks (its floor);
* ``build_review`` with lint, against two ``lint`` runs (lint of A and B dominates the dossier).

Not for clinical use.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(rounds: int) -> dict[str, float]:
    """Median seconds of each case over ``rounds`` interleaved rounds."""
    from lupus_rules.authoring import compare, lint
    from lupus_rules.authoring.editing import edit_rule
    from lupus_rules.authoring.review import build_review
    from lupus_rules.authoring.saving import plan_save
    from lupus_rules.rulebook import DEFAULT_RULES_DIR, load_rulebook, rulebook_from_documents

    scenarios = ROOT / "scenarios"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "rules"
        shutil.copytree(DEFAULT_RULES_DIR, folder, ignore=shutil.ignore_patterns("variants"))
        book = load_rulebook(folder)
        edited = edit_rule(book, "R-KID-01", when=[{"fact": "egfr", "op": ">=", "value": 45}])
        cases = {
            "loader on the unchanged rulebook (floor)": lambda: rulebook_from_documents(book.to_documents()),
            "edit_rule (one keystroke)": lambda: edit_rule(book, "R-KID-01",
                                                           when=[{"fact": "egfr", "op": ">=", "value": 45}]),
            "plan_save (diff + checks)": lambda: plan_save(folder, edited),
            "compare A B on the suite (floor)": lambda: compare(book, edited, scenarios),
            "build_review, no lint": lambda: build_review(book, edited, scenarios, run_lint=False),
            "lint A + lint B (floor)": lambda: (lint(book), lint(edited)),
            "build_review with lint": lambda: build_review(book, edited, scenarios),
        }
        for fn in cases.values():  # warm-up: imports, caches
            fn()
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, fn in cases.items():
                times[name].append(_time(fn))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    """Print the medians and each case's ratio to the floor above it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    medians = measure(args.rounds)
    floor = None
    print(f"{'case':45} {'median s':>9} {'ratio':>7}")
    for name, seconds in medians.items():
        if name.endswith("(floor)"):
            floor = seconds
            print(f"{name:45} {seconds:9.4f} {'1.0x':>7}")
        else:
            print(f"{name:45} {seconds:9.4f} {seconds / floor:6.1f}x")


if __name__ == "__main__":
    main()
