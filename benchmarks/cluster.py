"""Benchmark: a local 2-worker Dask cluster writing the results itself, against in-process run_file (same run).

    python benchmarks/cluster.py [--rows 1000000] [--workers 2] [--gather]

The input is ``--rows`` seeded benchmark rows (``benchmarks/data.py``, as
``benchmarks/run.py`` uses: every fact drawn over its value bands) written as
one Parquet file in row groups of 100 000 rows (untimed). Each case runs in a
fresh process, so none finds another's caches warm:

* in process: :func:`lupus_rules.batch.run_file` Parquet -> Parquet (the baseline);
* cluster: :func:`lupus_rules.cluster.run_on_cluster` with ``local:N`` (the
  workers read the row groups, evaluate and write ``part-N.parquet``; the
  client gets the counts), timed whole and split into starting the cluster
  and the run;
* gather (with ``--gather``): what issue 12 measured before, ``run_batch`` on
  a Dask DataFrame computed to the client and written there.

Ratios are seconds / the in-process seconds (below 1 = faster). Synthetic rows
for timing only. Not for clinical use.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _prepare(rows: int, folder: Path) -> Path:
    """The benchmark rows of ``benchmarks/run.py`` (:func:`data.generated_rows`) as Parquet, row groups of 100 000."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from data import generated_rows

    from lupus_rules.evaluate import default_rulebook

    source = folder / "patients.parquet"
    frame = generated_rows(rows, 1, default_rulebook())
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source, row_group_size=100_000)
    return source


def _case(part: str, source: Path, folder: Path, workers: int) -> dict[str, float]:
    """Seconds of one case in this (fresh) process; imports and the rulebook load untimed."""
    from lupus_rules.batch import run_file
    from lupus_rules.evaluate import default_rulebook

    book = default_rulebook()
    if part == "inprocess":
        started = time.perf_counter()
        summary = run_file(source, folder / "inprocess.parquet", rulebook=book, progress=False)
        return {"seconds": time.perf_counter() - started, "rows": summary.rows}
    if part == "cluster":
        from lupus_rules.cluster import run_on_cluster

        started = time.perf_counter()
        summary = run_on_cluster(source, folder / "cluster", f"local:{workers}", rulebook=book)
        return {"total": time.perf_counter() - started, "start": summary.connect_seconds,
                "seconds": summary.seconds, "rows": summary.rows, "partitions": summary.partitions}
    import dask.dataframe as dd
    import distributed

    from lupus_rules.batch import run_batch

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as cluster:
        with distributed.Client(cluster):
            started = time.perf_counter()
            frame = run_batch(dd.read_parquet(source, split_row_groups=True), rulebook=book).compute()
            frame.to_parquet(folder / "gathered.parquet", index=False)
            return {"seconds": time.perf_counter() - started, "rows": len(frame)}


def _run(part: str, source: Path, folder: Path, workers: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--part", part, "--source", str(source), "--folder", str(folder),
                           "--workers", str(workers)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{part} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print one line per case: seconds, rows/s and the ratio to in-process run_file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gather", action="store_true", help="also time Dask computing the results to the client")
    parser.add_argument("--part", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        print(json.dumps(_case(args.part, args.source, args.folder, args.workers)))
        return
    with tempfile.TemporaryDirectory(prefix="lupus-cluster-bench-") as tmp:
        folder = Path(tmp)
        source = _prepare(args.rows, folder)
        size = source.stat().st_size / 2**20
        base = _run("inprocess", source, folder, args.workers)
        cluster = _run("cluster", source, folder, args.workers)
        gather = _run("gather", source, folder, args.workers) if args.gather else None
        out = sum(p.stat().st_size for p in (folder / "cluster").iterdir()) / 2**20
    rows = args.rows
    print(f"{rows:,} patients, Parquet in ({size:.1f} MiB, row groups of 100,000) -> Parquet out ({out:.1f} MiB); "
          f"{args.workers} local worker processes x 1 thread; nproc {os.cpu_count()}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end; fresh process per case")
    print(f"{'case':72} {'seconds':>8} {'rows/s':>11} {'x in-process':>12}")
    lines = [("in process: run_file Parquet -> Parquet (baseline)", base["seconds"]),
             (f"cluster local:{args.workers}: start-up + run (run_on_cluster, {cluster['partitions']} parts)",
              cluster["total"]),
             ("  of which starting the cluster", cluster["start"]),
             ("  of which the run (workers read, evaluate, write; counts back)", cluster["seconds"])]
    if gather is not None:
        lines.append(("before issue 12: run_batch(dask frame).compute() to the client, written there",
                      gather["seconds"]))
    for name, seconds in lines:
        print(f"{name:72} {seconds:8.2f} {rows / seconds:11,.0f} {seconds / base['seconds']:12.2f}")


if __name__ == "__main__":
    main()
