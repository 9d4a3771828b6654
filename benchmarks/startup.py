"""Benchmark: start-up of the command line and the package, as ratios to a bare ``python -c pass``.

    python benchmarks/startup.py            # 15 runs of each case, medians
    python benchmarks/startup.py --runs 40

Issue 12 asks ``lupus-rules --help`` (and ``import lupus_rules``) and a
1-row ``lupus-rules run`` to stay within 5x of ``python -c pass``: the package
imports numpy, pandas and pyarrow only when a name that needs them is used,
and ``run --engine auto`` (the default) evaluates a small CSV in pure Python.
Every case is a fresh process; the floor is measured in the same run,
interleaved with the cases, so a busy machine slows both alike. One unmeasured
warm-up round first, with bytecode caching on (as in an installed package),
so no case pays for compiling the sources. Not for clinical use.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_WORK = Path(tempfile.mkdtemp(prefix="lupus-startup-"))
ONE_ROW = _WORK / "one.csv"
ONE_ROW.write_text("scenario_id,methotrexate,egfr\np1,intolerant,50\n", encoding="utf-8")

CASES: dict[str, list[str]] = {
    "python -c pass (floor)": ["-c", "pass"],
    "import lupus_rules": ["-c", "import lupus_rules"],
    "lupus-rules --help": ["-m", "lupus_rules", "--help"],
    "lupus-rules run --help": ["-m", "lupus_rules", "run", "--help"],
    "import lupus_rules; evaluate one patient (durable)": [
        "-c", "import lupus_rules; lupus_rules.evaluate({'methotrexate': 'intolerant'})"],
    "lupus-rules run of a 1-row CSV (--engine auto)": [
        "-m", "lupus_rules", "run", str(ONE_ROW), "-o", str(_WORK / "out.csv")],
    "lupus-rules run of a 1-row CSV (--engine vectorized)": [
        "-m", "lupus_rules", "run", str(ONE_ROW), "-o", str(_WORK / "out.csv"), "--engine", "vectorized",
        "--no-progress"],
}
_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def _seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=_ENV)
    return time.perf_counter() - start


def measure(runs: int) -> dict[str, float]:
    """Median wall seconds of each case over ``runs`` interleaved rounds."""
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for args in CASES.values():  # warm-up: bytecode caches written, files in the page cache
        _seconds(args)
    for _ in range(runs):
        for name, args in CASES.items():
            times[name].append(_seconds(args))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    """Print one line per case: median seconds and the ratio to the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    medians = measure(parser.parse_args().runs)
    floor = medians["python -c pass (floor)"]
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}")
    print(f"{'case':52} {'median s':>9} {'x floor':>8}")
    for name, seconds in medians.items():
        print(f"{name:52} {seconds:9.3f} {seconds / floor:8.1f}")


if __name__ == "__main__":
    main()
