"""Benchmark: rows per second and peak memory of every way to run the rules, side by side.

    python benchmarks/run.py                      # 10 000 and 1 000 000 rows (about 5 minutes)
    python benchmarks/run.py --rows 10000 200000  # other sizes
    python benchmarks/run.py --quick              # 2 000 rows, a smoke run of every case
    python benchmarks/run.py --markdown benchmarks/RESULTS.md   # also write the table there

Every case runs in a fresh Python process; its peak memory is that process's
peak resident set size (VmHWM in /proc/self/status; not getrusage's
ru_maxrss, which on Linux carries the parent's peak over fork and exec),
imports and data included; for the two-process durable case it is the sum of
both workers' peaks (an upper bound: pages shared since the fork count twice). Data preparation (generating rows,
validating patients for the per-row engines) is outside the timing unless a
case says it is included. Rows are seeded random draws over every value band
of the rulebook (see benchmarks/data.py).

Cases:

* vectorized, typed input: ``validate_frame`` + ``evaluate_frame`` on a
  DataFrame of typed facts, full outputs (preferred, recommendations, flags,
  fired_rules): the first call in the process (the rulebook is compiled and
  each distinct outcome summarized), a second call on other rows of the same
  size, and those rows again streamed in chunks of 100 000 as a batch would
  (working memory is reused from chunk to chunk).
* vectorized, CSV end to end: read a CSV file of the rows, validate,
  evaluate, write a CSV of the results, timed as a whole, twice: with
  ``lupus_rules.batch.run_file`` (what ``lupus-rules run`` does, in chunks)
  and as one frame with pyarrow's CSV reader and writer.
* durable-rules, 2 processes: each process evaluates half the rows with the
  durable engine (``fire`` + ``summarize`` per validated patient). Runs on at
  most ``--per-row-max`` rows (10 000); larger sizes are extrapolated from it
  and marked so (the rate is flat: each row is independent).
* the 29-rule subset (benchmarks/subset.py) on durable-rules (1 and 2
  processes), on experta (benchmarks/experta_subset.py, compiled from the
  same rule data), as plain Python if/else, and on the vectorized engine.

experta is not a dependency of lupus_rules (1.9.4 pins frozendict 1.2, which
does not import on Python >= 3.10); install it for the benchmark only with
``pip install --no-deps experta==1.9.4 schema frozendict``. Without it, its
case is left out.

The machine line reports how long touching fresh memory takes: on a VM that
backs guest memory lazily it is a large part of a first call's time.

Not for clinical use: timing synthetic rows, not treating patients.
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SEED = 20240611
STREAM_CHUNK = 100_000  # lupus_rules.batch's default chunk size
PER_ROW_CASES = {"durable-2p", "durable-subset-2p", "durable-subset-1p", "experta-subset"}


# --- worker side: one case, in this process -----------------------------------------------------------

def _peak_mib() -> float:
    """This process's peak resident set size in MiB.

    VmHWM from /proc/self/status where there is one: getrusage's ru_maxrss
    carries over the parent's peak through fork and exec on Linux, so a small
    case would report the orchestrating process's memory.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux and BSD: KiB


def _book(subset: bool):
    from lupus_rules import default_rulebook

    book = default_rulebook()
    if subset:
        from subset import subset_rulebook
        book = subset_rulebook(book)
    return book


def case_vectorized(n: int, subset: bool) -> list[dict]:
    from data import generated_rows

    from lupus_rules.engines.vectorized import evaluate_frame
    from lupus_rules.facts import validate_frame

    book = _book(subset)

    def run(df) -> float:
        started = time.perf_counter()
        typed, errors = validate_frame(df)
        out = evaluate_frame(typed, book)
        seconds = time.perf_counter() - started
        assert len(out) == len(df) and (errors == "").all() and out["fired_rules"].str.len().min() > 0
        return seconds

    timings = [{"variant": "one call, first in the process", "seconds": run(generated_rows(n, SEED, _book(False)))}]
    df = generated_rows(n, SEED + 1, _book(False))
    timings.append({"variant": "one call, again on other rows", "seconds": run(df)})
    if n > STREAM_CHUNK:
        seconds = sum(run(df.iloc[start:start + STREAM_CHUNK]) for start in range(0, n, STREAM_CHUNK))
        timings.append({"variant": f"same rows streamed in chunks of {STREAM_CHUNK:,}", "seconds": seconds})
    return timings


def case_csv_run_file(n: int, csv: Path) -> list[dict]:
    from lupus_rules.batch import run_file

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "out.csv"
        started = time.perf_counter()
        run_file(csv, target, engine="vectorized", progress=False)
        seconds = time.perf_counter() - started
    return [{"variant": "lupus_rules.batch.run_file (chunks of 100 000)", "seconds": seconds}]


def case_csv_direct(n: int, csv: Path) -> list[dict]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from lupus_rules.engines.vectorized import evaluate_frame
    from lupus_rules.facts import validate_frame

    book = _book(False)
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "out.csv"
        started = time.perf_counter()
        names = pacsv.read_csv(csv, read_options=pacsv.ReadOptions(skip_rows_after_names=n)).column_names
        table = pacsv.read_csv(csv, convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False))
        df = table.to_pandas()
        typed, errors = validate_frame(df)
        out = evaluate_frame(typed, book)
        out["error"] = errors
        result = pa.Table.from_pandas(df.join(out), preserve_index=False)
        pacsv.write_csv(result, target)
        seconds = time.perf_counter() - started
        assert len(out) == n
    return [{"variant": "one frame: pyarrow CSV read, validate, evaluate, pyarrow CSV write", "seconds": seconds}]


def _prepared(n: int, seed: int, subset: bool) -> list[dict]:
    from data import generated_rows, typed_records

    from lupus_rules.facts import validate_frame

    typed, _ = validate_frame(generated_rows(n, seed, _book(False)))
    return typed_records(typed)


_SUMMARIES: dict[tuple, tuple[str, str, str]] = {}


def _outcomes(book, fired: list[str]) -> tuple[str, str, str, str]:
    """The four output strings of one row; each distinct fired list is summarized once per process."""
    key = tuple(fired)
    found = _SUMMARIES.get(key)
    if found is None:
        from lupus_rules.result import summarize

        summary = summarize(book, fired)
        found = _SUMMARIES[key] = (summary.preferred or "", ";".join(summary.recommendations),
                                   ";".join(summary.flags))
    return (*found, ";".join(fired))


def _durable_share(share: int, shares: int, n: int, subset: bool, barrier, queue) -> None:
    from lupus_rules.engines import durable

    book = _book(subset)
    patients = _prepared(n // shares + (share < n % shares), SEED + 100 + share, subset)
    engine = durable.shared()
    _outcomes(book, engine.fire(patients[0], book))  # compile the ruleset before the clock starts
    barrier.wait()
    started = time.perf_counter()
    for patient in patients:
        _outcomes(book, engine.fire(patient, book))
    queue.put((started, time.perf_counter(), _peak_mib()))


def case_durable(n: int, subset: bool, processes: int) -> list[dict]:
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_durable_share, args=(i, processes, n, subset, barrier, queue))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    seconds = max(r[1] for r in results) - min(r[0] for r in results)
    return [{"variant": f"{processes} process{'es' if processes > 1 else ''}", "seconds": seconds,
             "peak_mib": sum(r[2] for r in results)}]


def case_experta(n: int) -> list[dict]:
    from experta_subset import ExpertaSubset

    book = _book(True)
    patients = _prepared(n, SEED + 200, True)
    engine = ExpertaSubset(book)
    engine.fire(patients[0])
    started = time.perf_counter()
    for patient in patients:
        _outcomes(book, engine.fire(patient))
    return [{"variant": "1 process", "seconds": time.perf_counter() - started}]


def case_plain(n: int) -> list[dict]:
    from subset import fire_plain

    book = _book(True)
    seconds, done = 0.0, 0
    while done < n:  # chunks keep a million prepared patients out of memory at once
        patients = _prepared(min(100_000, n - done), SEED + 300 + done, True)
        started = time.perf_counter()
        for patient in patients:
            _outcomes(book, fire_plain(patient))
        seconds += time.perf_counter() - started
        done += len(patients)
    return [{"variant": "1 process", "seconds": seconds}]


def run_worker(case: str, n: int, csv: str | None) -> None:
    if case == "vectorized":
        timings = case_vectorized(n, subset=False)
    elif case == "vectorized-subset":
        timings = case_vectorized(n, subset=True)[1:2]
    elif case == "csv-run-file":
        timings = case_csv_run_file(n, Path(csv))
    elif case == "csv-direct":
        timings = case_csv_direct(n, Path(csv))
    elif case == "durable-2p":
        timings = case_durable(n, subset=False, processes=2)
    elif case == "durable-subset-2p":
        timings = case_durable(n, subset=True, processes=2)
    elif case == "durable-subset-1p":
        timings = case_durable(n, subset=True, processes=1)
    elif case == "experta-subset":
        timings = case_experta(n)
    elif case == "plain-subset":
        timings = case_plain(n)
    else:
        raise SystemExit(f"unknown case {case!r}")
    for timing in timings:
        timing.setdefault("peak_mib", _peak_mib())
    print(json.dumps(timings))


# --- parent side: orchestrate, check, print ----------------------------------------------------------

CASES = [  # (case, engine label, rules label)
    ("vectorized", "vectorized, typed input, validate + evaluate", "all"),
    ("csv-run-file", "vectorized, CSV file end to end", "all"),
    ("csv-direct", "vectorized, CSV file end to end", "all"),
    ("durable-2p", "durable-rules", "all"),
    ("vectorized-subset", "vectorized, typed input, validate + evaluate", "subset"),
    ("durable-subset-2p", "durable-rules", "subset"),
    ("durable-subset-1p", "durable-rules", "subset"),
    ("experta-subset", "experta", "subset"),
    ("plain-subset", "plain Python if/else", "subset"),
]


def spawn(case: str, n: int, csv: Path | None) -> list[dict]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", case, "--n", str(n)]
    if csv is not None:
        command += ["--csv", str(csv)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"case {case} ({n} rows) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def experta_installed() -> bool:
    try:
        import experta  # noqa: F401
    except Exception:  # experta 1.9.4 with its pinned frozendict 1.2 raises AttributeError on import
        return False
    return True


def check_subset_engines(rows: int = 3000) -> None:
    """Before timing: experta and plain Python must fire what the vectorized engine fires on the subset."""
    from data import generated_rows, typed_records
    from subset import fire_plain

    from lupus_rules.engines.vectorized import evaluate_frame
    from lupus_rules.facts import validate_frame

    book = _book(True)
    typed, _ = validate_frame(generated_rows(rows, SEED + 9, _book(False)))
    expected = evaluate_frame(typed, book)["fired_rules"].tolist()
    experta = None
    if experta_installed():
        from experta_subset import ExpertaSubset
        experta = ExpertaSubset(book)
    problems = set()
    for patient, fired in zip(typed_records(typed), expected):
        plain = ";".join(fire_plain(patient))
        if plain != fired:
            problems |= set(plain.split(";")) ^ set(fired.split(";")) or {"(order)"}
        if experta is not None and set(experta.fire(patient)) != set(fired.split(";")):
            problems.add("experta")
    if problems:
        raise SystemExit("the subset engines disagree with the rulebook on rules: " + ", ".join(sorted(problems))
                         + "\n(update benchmarks/subset.py:fire_plain to the current rule files)")


def make_csv(n: int, folder: Path) -> Path:
    from data import generated_rows, write_csv

    path = folder / f"rows_{n}.csv"
    write_csv(generated_rows(n, SEED + 7, _book(False)), path)
    return path


def measure(sizes: list[int], per_row_max: int, folder: Path) -> list[dict]:
    lines = []
    measured: dict[tuple[str, int], list[dict]] = {}
    cases = CASES
    if not experta_installed():
        print("experta is not installed: its case is left out. Install it for the benchmark with\n"
              "  pip install --no-deps experta==1.9.4 schema frozendict", file=sys.stderr)
        cases = [c for c in CASES if c[0] != "experta-subset"]
    for n in sizes:
        csv = make_csv(n, folder)
        for case, engine, rules in cases:
            runs_on = min(n, per_row_max) if case in PER_ROW_CASES else n
            key = (case, runs_on)
            if key not in measured:
                print(f"  {case}: {runs_on} rows ...", file=sys.stderr, flush=True)
                measured[key] = spawn(case, runs_on, csv if case.startswith("csv") else None)
            for timing in measured[key]:
                rate = runs_on / timing["seconds"]
                lines.append({"engine": engine, "variant": timing["variant"], "rules": rules, "rows": n,
                              "measured_rows": runs_on, "seconds": n / rate, "rate": rate,
                              "peak_mib": timing["peak_mib"]})
        csv.unlink()
    return lines


def table(lines: list[dict]) -> str:
    out = ["| engine | how | rules | rows | seconds | rows/s | peak RSS MiB |",
           "|---|---|---|---:|---:|---:|---:|"]
    for line in lines:
        extrapolated = line["measured_rows"] != line["rows"]
        seconds = f"{line['seconds']:.2f}" + (f" (extrapolated from {line['measured_rows']:,} rows)"
                                               if extrapolated else "")
        out.append(f"| {line['engine']} | {line['variant']} | {line['rules']} | {line['rows']:,} | {seconds} | "
                   f"{line['rate']:,.0f} | {line['peak_mib']:,.0f} |")
    return "\n".join(out)


def targets(lines: list[dict]) -> list[str]:
    """The issue's targets, each with the figure measured against it."""
    def pick(engine: str, rules: str, rows: int | None = None, how: str = "") -> list[dict]:
        return [x for x in lines if x["engine"] == engine and x["rules"] == rules and how in x["variant"]
                and (rows is None or x["rows"] == rows) and x["measured_rows"] == x["rows"]]

    out = []
    biggest = max(x["rows"] for x in lines)
    vectorized = pick("vectorized, typed input, validate + evaluate", "all", biggest)
    if vectorized:
        figures = ", ".join(f"{x['rate']:,.0f} rows/s ({x['variant']})" for x in vectorized)
        out.append(f"- vectorized in-process, {biggest:,} rows, target >= 1,000,000 rows/s: {figures}.")
    for x in pick("vectorized, CSV file end to end", "all", biggest):
        out.append(f"- CSV end to end, {biggest:,} rows ({x['variant']}), target < 15 s and < 2 GiB: "
                   f"{x['seconds']:.1f} s, peak {x['peak_mib']:,.0f} MiB.")
    two, one, experta = (pick("durable-rules", "subset", how="2 processes"), pick("durable-rules", "subset",
                         how="1 process"), pick("experta", "subset"))
    if two and one and experta:
        out.append(f"- durable-rules >= 3x experta on the same 29 rules: {two[0]['rate'] / experta[0]['rate']:.1f}x "
                   f"with 2 processes, {one[0]['rate'] / experta[0]['rate']:.1f}x process for process.")
    return out


def machine() -> str:
    load = os.getloadavg()
    return (f"{datetime.date.today().isoformat()}, {platform.platform()}, nproc {os.cpu_count()}, "
            f"Python {platform.python_version()}, load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
            f"{fresh_memory_cost()}")


def fresh_memory_cost(mib: int = 256) -> str:
    """Seconds to fill ``mib`` MiB of fresh memory, and the same again once the process has it."""
    import numpy as np

    times = []
    for _ in range(2):
        started = time.perf_counter()
        block = np.ones(mib * 2**20 // 8)
        times.append(time.perf_counter() - started)
        del block
    return f"filling {mib} MiB of fresh memory {times[0]:.2f} s (again: {times[1]:.2f} s)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000], help="row counts to run")
    parser.add_argument("--quick", action="store_true", help="2 000 rows only: a smoke run of every case")
    parser.add_argument("--per-row-max", type=int, default=10_000,
                        help="most rows the durable and experta cases run (larger sizes are extrapolated)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this Markdown file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker, args.n, args.csv)
        return
    sizes = [2_000] if args.quick else args.rows
    about = machine()
    print(f"lupus_rules benchmark ({about}). Not for clinical use.", file=sys.stderr)
    check_subset_engines()
    with tempfile.TemporaryDirectory() as folder:
        lines = measure(sizes, min(args.per_row_max, max(sizes)), Path(folder))
    text = table(lines)
    summary = "\n".join(targets(lines))
    print(text)
    print("\nTargets:\n" + summary)
    if args.markdown:
        args.markdown.write_text(results_markdown(about, text, summary, sizes), encoding="utf-8")


NOTES = """Reading the figures:

- The vectorized engine's first call in a process also compiles the rulebook, summarizes each
  distinct outcome once (about 3 000 `summarize` calls for these rows) and touches all its memory
  for the first time, which on this VM costs about 2 ms per MiB (see the machine line); later calls
  reuse both. A batch streamed in chunks (what `lupus-rules run` does) runs at the later rate.
- Durable-rules and experta run at most 10 000 rows; their 1 000 000-row seconds are that rate
  extrapolated (each row is independent, so the rate is flat).
- The per-row engines get validated patients (validation is outside their timing) and produce the
  same four output strings as the vectorized engine, each distinct outcome summarized once.
- Peak RSS of the two-process durable case is the sum of both workers (shared pages count twice).
"""


def results_markdown(about: str, text: str, summary: str, sizes: list[int]) -> str:
    command = "python benchmarks/run.py" + ("" if sizes == [10_000, 1_000_000] else
                                             " --rows " + " ".join(map(str, sizes)))
    return (f"# Benchmark results\n\nNot for clinical use.\n\nMachine: {about}.\n\n"
            f"Produced by `{command} --markdown benchmarks/RESULTS.md` (experta installed with "
            f"`pip install --no-deps experta==1.9.4 schema frozendict`); how each case is measured is "
            f"described at the top of `benchmarks/run.py`.\n\n{text}\n\nTargets:\n\n{summary}\n\n{NOTES}")


if __name__ == "__main__":
    main()
