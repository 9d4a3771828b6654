"""Benchmark: what large rulebooks cost lint and the engines (issue 9, resource limits).

    python benchmarks/limits.py                      # 100, 500, 1 000, 2 000 rules, both shapes (~30 min)
    python benchmarks/limits.py --quick              # 100 and 500 rules only (a few minutes)
    python benchmarks/limits.py --sizes 100 1000 --tasks lint --cap 120

Synthetic rulebooks (:func:`synthetic_rulebook`: the shipped rules plus
N synthetic ones, in memory; 2 000 means 2 000 rules in all, the loader's
``MAX_RULES``) come in two shapes: ``wide`` (independent rules,
one to three shipped conditions each) and ``chain`` (derived-fact chains of
:data:`CHAIN_DEPTH` links, each link testing the previous one's fact). Each
case runs in a fresh Python process, which reports its own seconds and peak
resident set size (VmHWM; the rulebook is built before the clock starts but
counts in the peak):

* ``lint``: :func:`lupus_rules.authoring.lint` (``--max-rows``, and
  ``--chain-max-rows`` for chains; both default to lint's own default);
* ``batch20`` / ``batch100k``: vectorized ``run_batch`` on 20 and 100 000
  seeded rows (first call in the process: compile included);
* ``durable20``: ``evaluate`` (durable-rules) of 20 patients one by one.

A case still running after ``--cap`` seconds is killed and reported as
``> cap s``. The last columns are per-rule ratios against the 100-rule case
of the same shape and task measured in the same run: seconds per rule and
working memory per rule, each divided by the 100-rule figure (1.0 = linear
in rules; below 1: fixed costs dominate).

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
from lupus_rules.authoring.space import DEFAULT_MAX_ROWS  # noqa: E402
from lupus_rules.rulebook import MAX_RULES, MAX_STRATA, Rulebook, rulebook_from_documents  # noqa: E402

__all__ = ["synthetic_documents", "synthetic_rulebook", "run_case", "spawn", "main"]


#: Links per derived-fact chain: below the loader's strata limit (the shipped rules add strata of their own).
CHAIN_DEPTH = MAX_STRATA - 10


def synthetic_documents(rules: int, shape: str = "wide", seed: int = 1) -> list[tuple[str, dict]]:
    """(file name, YAML document) pairs of the shipped vocabulary plus ``rules`` synthetic rules.

    ``wide``: independent rules, each testing one to three shipped conditions
    (thresholds moved a little) and recommending an agent or raising a flag.
    ``chain``: chains of :data:`CHAIN_DEPTH` rules, each testing the fact the
    previous one derives plus one shipped condition; a chain's last rule recommends.
    At most ``MAX_RULES`` rules in all: a larger ``rules`` is cut to fill up to that limit.
    """
    shipped = default_rulebook()
    rules = min(rules, MAX_RULES - len(shipped.rules))  # the largest size is the loader's limit, all rules counted
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


TASKS = ("lint", "batch20", "batch100k", "durable20")
SIZES = (100, 500, 1000, 2000)
QUICK_SIZES = (100, 500)
#: lint's max_rows on chain rulebooks: lint's default (its row budget samples fewer rows for large rulebooks).
CHAIN_MAX_ROWS = DEFAULT_MAX_ROWS
#: lint's max_rows on wide rulebooks: lint's default, as ``lupus-rules lint`` runs it.
LINT_MAX_ROWS = DEFAULT_MAX_ROWS


def _work(task: str, book: Rulebook, max_rows: int) -> Any:
    """The measured call of one task (data prepared beforehand, outside the clock)."""
    from data import generated_rows

    from lupus_rules import evaluate, run_batch
    from lupus_rules.authoring import lint

    if task == "lint":
        return lambda: lint(book, max_rows=max_rows)
    if task.startswith("batch"):
        frame = generated_rows(20 if task == "batch20" else 100_000, 1, default_rulebook())
        return lambda: run_batch(frame, "vectorized", book)
    patients = generated_rows(20, 2, default_rulebook()).to_dict("records")
    return lambda: [evaluate({k: (None if v != v else v) for k, v in p.items()}, book) for p in patients]


def run_case(task: str, rules: int, shape: str, max_rows: int) -> dict:
    """In this process: build the rulebook, run one task once, report seconds and memory."""
    book = synthetic_rulebook(rules, shape)
    call = _work(task, book, max_rows)
    before = _rss("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    call()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = _rss("VmHWM")
    return {"task": task, "shape": shape, "synthetic": rules, "rules": len(book.rules), "strata": book.strata,
            "seconds": seconds, "cpu_seconds": cpu, "peak_mib": peak, "working_mib": peak - before}


def spawn(task: str, rules: int, shape: str, max_rows: int, cap: float) -> dict:
    """:func:`run_case` in a fresh Python process, killed after ``cap`` seconds (then ``capped``)."""
    command = [sys.executable, __file__, "--worker", task, str(rules), shape, str(max_rows)]
    try:
        out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=cap)
    except subprocess.TimeoutExpired:
        return {"task": task, "shape": shape, "synthetic": rules, "capped": cap}
    except subprocess.CalledProcessError as exc:  # a crash (e.g. a native engine's signal) is a result too
        said = (exc.stderr or "").strip().splitlines()[-1:] or [f"exit {exc.returncode}"]
        return {"task": task, "shape": shape, "synthetic": rules, "failed": f"exit {exc.returncode}: {said[0][:120]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(cases: list[dict]) -> str:
    """The cases as a Markdown table, with per-rule ratios against the 100-synthetic-rule case."""
    shipped = len(default_rulebook().rules)
    base = {(c["task"], c["shape"]): c for c in cases if c["synthetic"] == 100 and "seconds" in c}
    lines = ["| task | shape | rules (synthetic) | strata | seconds | CPU s | peak MiB | working MiB "
             "| s/rule vs 100 | MiB/rule vs 100 |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in cases:
        if "capped" in c or "failed" in c:
            said = f"> {c['capped']:.0f} s" if "capped" in c else f"FAILED ({c['failed']})"
            lines.append(f"| {c['task']} | {c['shape']} | ({c['synthetic']}) | | {said} | | | | | |")
            continue
        ref = base.get((c["task"], c["shape"]))
        ratio = _ratio(c, ref, "seconds"), _ratio(c, ref, "working_mib")
        lines.append(f"| {c['task']} | {c['shape']} | {c['rules']} ({c['rules'] - shipped}) | {c['strata']} "
                     f"| {c['seconds']:.2f} | {c['cpu_seconds']:.2f} | {c['peak_mib']:.0f} | {c['working_mib']:.0f} | {ratio[0]} | {ratio[1]} |")
    return "\n".join(lines)


def _ratio(case: dict, ref: dict | None, key: str) -> str:
    """(case per rule) / (reference per rule), over all rules of each rulebook."""
    if ref is None or ref[key] <= 0:
        return "-"
    return f"{(case[key] / case['rules']) / (ref[key] / ref['rules']):.2f}"


def main(argv: list[str] | None = None) -> str:
    """Measure every (size, shape, task) case in its own process; print (and return) the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="synthetic rule counts")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} only")
    parser.add_argument("--shapes", nargs="+", default=["wide", "chain"], choices=["wide", "chain"])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--max-rows", type=int, default=LINT_MAX_ROWS, help="lint's max_rows on wide rulebooks")
    parser.add_argument("--chain-max-rows", type=int, default=CHAIN_MAX_ROWS, help="lint's max_rows on chains")
    parser.add_argument("--cap", type=float, default=180.0, help="seconds before a case is killed")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        task, rules, shape, max_rows = args.worker
        print(json.dumps(run_case(task, int(rules), shape, int(max_rows))))
        return ""
    sizes = list(QUICK_SIZES) if args.quick else args.sizes
    cases = []
    for shape in args.shapes:
        rows = args.chain_max_rows if shape == "chain" else args.max_rows
        for task in args.tasks:
            for rules in sizes:
                cases.append(spawn(task, rules, shape, rows, args.cap))
                print(json.dumps(cases[-1]), file=sys.stderr, flush=True)
    text = table(cases)
    print(f"lint max_rows: wide {args.max_rows:,}, chain {args.chain_max_rows:,}; cap {args.cap:.0f} s\n")
    print(text)
    return text


if __name__ == "__main__":
    main()
