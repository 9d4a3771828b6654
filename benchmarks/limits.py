"""Benchmark: what a large rulebook costs the vectorized engine, as ratios to the shipped rulebook.

    python benchmarks/limits.py                  # 2 000 synthetic rules, 1 000 rows
    python benchmarks/limits.py --rules 4000 --rows 20

A synthetic rulebook of ``--rules`` valid rules is built in memory
(:func:`lupus_rules.rulebook.rulebook_from_documents` on the shipped
vocabulary): each rule tests one to three conditions copied from the shipped
rules (number thresholds moved a little) and recommends an agent or raises a
flag. Each case runs in a fresh Python process and evaluates ``--rows`` seeded
rows (benchmarks/data.py) with ``validate_frame`` + ``evaluate_frame``, twice
(first call: compile and summarize; second call: other rows). Reported per
case: the seconds of each call, the peak resident set size (VmHWM) and the
peak minus the resident size before the first call (what the evaluation
itself needed), then the synthetic case as multiples of the shipped one.

Not for clinical use: timing synthetic rules on synthetic rows.
"""
from __future__ import annotations

import argparse
import copy
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lupus_rules import default_rulebook  # noqa: E402
from lupus_rules.rulebook import MAX_STRATA, Rulebook, rulebook_from_documents  # noqa: E402

__all__ = ["synthetic_rulebook", "main"]


#: Links per derived-fact chain: below the loader's strata limit (the shipped rules add strata of their own).
CHAIN_DEPTH = MAX_STRATA - 10


def synthetic_documents(rules: int, shape: str = "wide", seed: int = 1) -> list[tuple[str, dict]]:
    """(file name, YAML document) pairs of the shipped vocabulary plus ``rules`` synthetic rules.

    ``wide``: independent rules, each testing one to three shipped conditions
    (thresholds moved a little) and recommending an agent or raising a flag.
    ``chain``: chains of :data:`CHAIN_DEPTH` rules, each testing the fact the
    previous one derives plus one shipped condition; a chain's last rule recommends.
    """
    shipped = default_rulebook()
    name, meta = shipped.to_documents()[0]
    meta = copy.deepcopy(meta)
    conditions = [c.to_data() for r in shipped.rules for c in r.when if c.kind == "fact"]
    rng = random.Random(seed)
    made = []
    for i in range(rules):
        when = [_moved(copy.deepcopy(c), rng) for c in rng.sample(conditions, rng.randint(1, 3))]
        then = _conclusion(rng, list(shipped.agents), list(shipped.flags))
        if shape == "chain":
            when = when[:1]
            if i % CHAIN_DEPTH:
                when.append({"derived": f"syn_{i - 1:05d}"})
            if (i + 1) % CHAIN_DEPTH and i + 1 < rules:
                then = {"derive": [f"syn_{i:05d}"]}
                meta["rulebook"].setdefault("derived_facts", {})[f"syn_{i:05d}"] = "synthetic link"
        made.append({"id": f"R-SYN-{i:05d}", "title": f"synthetic {i}", "section": "synthetic",
                     "citation": [1], "when": when, "then": then, "rationale": "synthetic"})
    return [(name, meta), *shipped.to_documents()[1:], ("synthetic.yaml", {"rules": made})]


def _conclusion(rng: random.Random, agents: list[str], flags: list[str]) -> dict[str, Any]:
    if rng.random() < 0.6:
        return {"recommend": [{"agent": rng.choice(agents), "rank": rng.randint(1, 100)}]}
    return {"flag": [rng.choice(flags)]}


def synthetic_rulebook(rules: int, shape: str = "wide", seed: int = 1) -> Rulebook:
    """The rulebook of :func:`synthetic_documents`, built in memory."""
    return rulebook_from_documents(synthetic_documents(rules, shape, seed), source="synthetic")


def _moved(condition: dict, rng: random.Random) -> dict:
    """A number threshold moved by up to 5 % (other conditions as they are)."""
    value = condition.get("value")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value:
        condition["value"] = round(value * rng.uniform(0.95, 1.05), 2)
    return condition


def _rss(field: str) -> float:
    """A VmHWM/VmRSS line of /proc/self/status, in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def run_case(rules: int, rows: int) -> dict:
    """In this process: build the rulebook (0 = shipped), evaluate ``rows`` rows twice, measure."""
    from data import generated_rows

    from lupus_rules.engines.vectorized import evaluate_frame
    from lupus_rules.facts import validate_frame

    book = synthetic_rulebook(rules) if rules else default_rulebook()
    frames = [generated_rows(rows, seed, default_rulebook()) for seed in (1, 2)]
    before = _rss("VmRSS")
    seconds = []
    for frame in frames:
        start = time.perf_counter()
        typed, _ = validate_frame(frame)
        evaluate_frame(typed, book)
        seconds.append(time.perf_counter() - start)
    peak = _rss("VmHWM")
    return {"rules": len(book.rules), "rows": rows, "first_s": seconds[0], "again_s": seconds[1],
            "peak_mib": peak, "working_mib": peak - before}


def spawn(rules: int, rows: int) -> dict:
    """:func:`run_case` in a fresh Python process."""
    out = subprocess.run([sys.executable, __file__, "--worker", str(rules), str(rows)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Measure the shipped and the synthetic rulebook; print both and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rules", type=int, default=2000, help="synthetic rules (default 2 000)")
    parser.add_argument("--rows", type=int, default=1000, help="rows evaluated per call (default 1 000)")
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_case(*args.worker)))
        return
    shipped, synthetic = spawn(0, args.rows), spawn(args.rules, args.rows)
    print(f"{'rulebook':>10} {'rules':>6} {'rows':>6} {'first s':>8} {'again s':>8} {'peak MiB':>9} {'work MiB':>9}")
    for name, case in (("shipped", shipped), ("synthetic", synthetic)):
        print(f"{name:>10} {case['rules']:>6} {case['rows']:>6} {case['first_s']:>8.3f} {case['again_s']:>8.3f} "
              f"{case['peak_mib']:>9.0f} {case['working_mib']:>9.0f}")
    ratios = {key: synthetic[key] / max(shipped[key], 1e-9)
              for key in ("rules", "first_s", "again_s", "peak_mib", "working_mib")}
    print("synthetic / shipped: " + ", ".join(f"{key} x{value:.1f}" for key, value in ratios.items()))


if __name__ == "__main__":
    main()
