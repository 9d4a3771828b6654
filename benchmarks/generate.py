"""Benchmark: ``generate`` throughput against pyarrow writing the same table (the floor), same run, same disk.

For each format (CSV, Parquet) and each shape (the cartesian product of a few
facts, cut to ``--rows``; a ``--sample`` of ``--rows`` rows of the whole space)
it times :func:`lupus_rules.generate.write_generated` end to end, then writes
the very same rows, already in memory as a plain Arrow table (text and float64
columns), with one ``pyarrow.csv.write_csv`` (unquoted, like generate's CSV) /
``pyarrow.parquet.write_table`` call: the floor. It prints rows/s and the ratio generate / floor (1.0 = as fast
as pyarrow writing a finished table; below 1 = faster, generate uses two
threads) and the ratio of CPU seconds (all threads), which a busy machine
disturbs less than wall time. Best of ``--repeat`` runs (a shared machine's slow runs
measure its neighbours). ``--old`` also times the previous path (pandas chunks through
``batch.write_chunks``). Medians of ``--repeat`` runs.

    python benchmarks/generate.py [--rows 1000000] [--repeat 3] [--old] [--folder /tmp]

Synthetic rows for timing only. Not for clinical use.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from lupus_rules.evaluate import default_rulebook
from lupus_rules.generate import count, iter_cartesian, iter_tables, sample_positions, value_bands, write_generated

#: Facts of the cartesian shape: 8 x 4 x 4 x 2 x 48 x 84 = 1,032,192 rows with the shipped rulebook.
FACTS = ["manifestations", "methotrexate", "mycophenolate", "planning_pregnancy", "egfr", "upcr"]


def _plain(table: pa.Table) -> pa.Table:
    """The table as a reader sees it: dictionary columns decoded to text."""
    return pa.table({name: column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column
                     for name, column in zip(table.column_names, table.columns)})


def _timed(func, repeat: int) -> tuple[float, float]:
    """Fastest wall seconds and least CPU seconds (all threads of this process) of ``repeat`` calls.

    The best of several runs, not the median: on a machine shared with other work the slow runs
    measure the neighbours; both generate and the floor are treated alike.
    """
    wall, cpu = [], []
    for _ in range(repeat):
        started, used = time.perf_counter(), time.process_time()
        func()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    return min(wall), min(cpu)


def _floor(table: pa.Table, path: Path, suffix: str) -> None:
    if suffix == ".csv":  # unquoted, as generate writes it (the same bytes)
        pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="none"))
    else:
        pq.write_table(table, path)


def _shapes(bands, rows: int) -> list[tuple[str, list[str] | None, int | None]]:
    facts = list(FACTS)
    while count(bands, facts) > 1.5 * rows and len(facts) > 1:
        facts.pop()
    return [(f"cartesian of {len(facts)} facts ({count(bands, facts):,} rows)", facts, None),
            (f"--sample {rows:,} of the whole space ({count(bands):.2e} rows)", None, rows)]


def main() -> None:
    """Print the table of figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--old", action="store_true", help="also time the previous pandas path")
    parser.add_argument("--folder", default=None, help="where files are written (default: a temp folder)")
    args = parser.parse_args()
    bands = value_bands(default_rulebook())
    print(f"cores {os.cpu_count()}, rows {args.rows:,}, best of {args.repeat}; ratio = generate / floor")
    print(f"{'shape':55} {'format':8} {'generate rows/s':>16} {'floor rows/s':>13} {'ratio':>6} {'CPU ratio':>9} "
          f"{'MB':>7}")
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        for label, facts, sample in _shapes(bands, args.rows):
            positions = None if sample is None else sample_positions(count(bands), sample, 0)
            whole = pa.concat_tables(list(iter_tables(bands, facts, positions=positions,
                                                      chunk_size=args.rows)))
            plain = _plain(whole)
            n = plain.num_rows
            for suffix in (".csv", ".parquet"):
                out, ref = Path(folder) / f"gen{suffix}", Path(folder) / f"floor{suffix}"
                mine, mine_cpu = _timed(lambda: write_generated(out, bands, facts, sample=sample, seed=0),
                                        args.repeat)
                floor, floor_cpu = _timed(lambda: _floor(plain, ref, suffix), args.repeat)
                size = out.stat().st_size / 1e6
                print(f"{label:55} {suffix[1:]:8} {n / mine:16,.0f} {n / floor:13,.0f} {mine / floor:6.2f} "
                      f"{mine_cpu / floor_cpu:9.2f} {size:7,.0f}")
            if args.old and sample is None:
                from lupus_rules.batch import write_chunks

                old, _ = _timed(lambda: write_chunks(iter_cartesian(bands, facts), Path(folder) / "old.csv"), 1)
                print(f"{label:55} {'csv old':8} {n / old:16,.0f}   (previous pandas path, one run)")
            del whole, plain


if __name__ == "__main__":
    main()
