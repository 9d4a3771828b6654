"""Benchmark: ``run_file`` end to end (CSV -> CSV, Parquet -> Parquet) beside the pyarrow read + write floor.

Rows are seeded draws over every value band of the shipped rulebook
(benchmarks/data.py), written once as a CSV (cells as text, bools
true/false) and as a Parquet file (typed columns), outside any timing. Per
format, in the same process and run:

- ``run_file``: :func:`lupus_rules.batch.run_file` from the input file to an
  output of the same format (what ``lupus-rules run`` does), warm (a first
  small call has compiled the rulebook), timed as a whole;
- ``floor``: pyarrow reading the same input (CSV: every cell as text, as
  ``run_file`` reads it; Parquet: the file's types) plus pyarrow writing the
  very table ``run_file`` wrote (read back from its output beforehand,
  untimed), to a file of the same format: the least any engine could spend
  moving these bytes;
- ratio: run_file seconds over floor seconds (the issue's target: <= 1.5);
- ``first call``: the same run_file as the first call in a fresh Python
  process (imports done before the clock starts, the rulebook compiled and
  every outcome text worked out inside it), over the warm call (the issue's
  target: <= 1.5), with that process's peak resident memory during the run
  (Linux: VmHWM, reset after the imports) and how much the run added to the imports and rulebook: streamed, it
  should not grow with ``--rows`` (compare ``--rows 1000000`` and
  ``--rows 4000000``).

``--repeat N`` times each case N times and keeps the best (the machine may be shared).

With ``--profile`` the run_file calls also run under cProfile and the
functions with the most cumulative time are printed.

    python benchmarks/batch_floor.py [--rows 1000000] [--repeat 2] [--profile]
    python benchmarks/batch_floor.py --rows 4000000   # the same at 4M rows: memory must stay flat

Each line also says the load average (1 minute) when it was printed: on a shared
machine the ratios mean little when it is above the cores.

Synthetic rows for timing only. Not for clinical use.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SEED = 20240611


def _seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _floor_csv(source: Path, result, target: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = pacsv.read_csv(source, read_options=pacsv.ReadOptions(skip_rows_after_names=2**31 - 1)).column_names
    pacsv.read_csv(source, convert_options=pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False))
    pacsv.write_csv(result, target)


def _floor_parquet(source: Path, result, target: Path) -> None:
    import pyarrow.parquet as pq

    pq.read_table(source)
    pq.write_table(result, target)


_FIRST_CALL = """
import sys, time
from lupus_rules.batch import run_file
from lupus_rules.evaluate import default_rulebook

def status(key):  # kB, from /proc/self/status (Linux)
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) for line in lines if line.startswith(key + ":"))

book = default_rulebook()
with open("/proc/self/clear_refs", "w") as clear:  # start the peak (VmHWM) afresh: not the parent's
    clear.write("5")
before = status("VmRSS")
started = time.perf_counter()
run_file(sys.argv[1], sys.argv[2], rulebook=book, progress=False)
seconds = time.perf_counter() - started
print(seconds, before, status("VmHWM"))
"""


def _first_call(source: Path, target: Path) -> tuple[float, float, float]:
    """run_file as the first call in a fresh process: seconds (imports untimed), peak RSS and its growth (MiB).

    Peak RSS is the process's VmHWM, reset after the imports (Linux ``/proc``).
    """
    import subprocess

    done = subprocess.run([sys.executable, "-c", _FIRST_CALL, str(source), str(target)],
                          capture_output=True, text=True, check=True)
    seconds, before, peak = done.stdout.strip().splitlines()[-1].split()
    return float(seconds), int(peak) / 1024, (int(peak) - int(before)) / 1024


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="time each case this many times, keep the best")
    parser.add_argument("--profile", action="store_true", help="also profile run_file (cProfile)")
    args = parser.parse_args(argv)

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from data import generated_rows, write_csv

    from lupus_rules.batch import run_file
    from lupus_rules.evaluate import default_rulebook

    import lupus_rules

    print(f"lupus_rules from {Path(lupus_rules.__file__).parent}")
    book = default_rulebook()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        rows = generated_rows(args.rows, SEED + 7, book)
        inputs = {".csv": work / "in.csv", ".parquet": work / "in.parquet"}
        write_csv(rows, inputs[".csv"])
        rows.to_parquet(inputs[".parquet"], index=False)
        del rows
        small = work / "small.csv"
        write_csv(generated_rows(1_000, SEED, book), small)
        run_file(small, work / "small_out.csv", progress=False)  # compile the rulebook: measure warm calls
        print(f"rows: {args.rows:,}  input sizes: CSV {inputs['.csv'].stat().st_size / 2**20:,.0f} MiB, "
              f"Parquet {inputs['.parquet'].stat().st_size / 2**20:,.0f} MiB")
        for suffix, floor in ((".csv", _floor_csv), (".parquet", _floor_parquet)):
            source, target = inputs[suffix], work / f"out{suffix}"
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            seconds = min(_seconds(lambda: run_file(source, target, progress=False)) for _ in range(args.repeat))
            if profiler:
                profiler.disable()
            if suffix == ".csv":
                import pyarrow as pa
                names = pacsv.read_csv(target, read_options=pacsv.ReadOptions(
                    skip_rows_after_names=2**31 - 1)).column_names
                result = pacsv.read_csv(target, convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False))
            else:
                result = pq.read_table(target)
            out_size = target.stat().st_size / 2**20
            floor_seconds = min(_seconds(lambda: floor(source, result, work / f"floor{suffix}"))
                                for _ in range(args.repeat))
            del result
            print(f"{suffix[1:]:>8} -> {suffix[1:]:<8} run_file {seconds:6.2f} s  floor {floor_seconds:6.2f} s  "
                  f"ratio {seconds / floor_seconds:4.2f}x  (output {out_size:,.0f} MiB)  {_load()}", flush=True)
            first, peak, grown = _first_call(source, work / f"first{suffix}")
            print(f"{'':>8}    first call in a fresh process {first:6.2f} s  "
                  f"over the warm call {first / seconds:4.2f}x  peak RSS {peak:,.0f} MiB "
                  f"(+{grown:,.0f} MiB during the run)  {_load()}", flush=True)
            if profiler:
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(28)
                print(text.getvalue())


if __name__ == "__main__":
    main()
