"""``lupus-rules run`` (evaluate a file of patients) and ``lupus-rules generate`` (scenario files).

Exit codes of ``run``: 0 every row evaluated, 1 some rows failed (all rows are
still written, each failed one with its ``error``), 2 unusable input (missing
file, unknown column, bad rules, bad option or output path; with ``--scheduler``
also a bad ``local:N``, an unreachable scheduler, an output folder that exists,
dask not installed). ``generate``: 0 written, 2
refused (unknown fact, bad rules, or more rows than ``--limit`` without ``--yes``; ``--sample N``
writes a seeded random sample of the product instead). Rows, size and time are stated on stderr first.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from ..engines import ENGINES
from ..errors import RulebookError
from ..notice import DISCLAIMER
from ..output import SUFFIXES, check_output_path
from ._errors import non_negative_int, positive_int

if TYPE_CHECKING:
    from ..rulebook import Rulebook

__all__ = ["register", "DEFAULT_LIMIT"]

#: ``generate`` refuses to write more rows than this unless ``--yes``.
DEFAULT_LIMIT = 5_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` and ``generate`` sub-commands."""
    _register_run(subparsers)
    _register_generate(subparsers)


def _register_run(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="evaluate every row of a CSV/Parquet file of patients",
        description="Evaluate every row (one patient per row, one column per fact, optional "
                    "scenario_id, description and expect_* columns) and write the input columns plus "
                    "preferred, recommendations, flags, fired_rules, error, rulebook_version and engine. "
                    "Exit code: 0 all rows evaluated, 1 some rows failed (still written, with their error), "
                    "2 unusable input. " + DISCLAIMER)
    parser.add_argument("input", type=Path, help="patients: .csv (every cell text, empty = unknown) or .parquet "
                                                 "(with --scheduler also a folder of them)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="results: .csv or .parquet (with --scheduler: a new folder of part-N.parquet files)")
    parser.add_argument("--engine", choices=("auto", *ENGINES), default="auto",
                        help="auto (default): python for a CSV input of at most 256 KiB written to CSV (starts in "
                             "a blink: no numpy, pandas or pyarrow), else vectorized; vectorized (fast on many "
                             "rows); durable (durable-rules, in worker processes); python (the rules read directly, "
                             "one row at a time)")
    parser.add_argument("--rules", type=Path, default=None,
                        help="rule folder or file, or variant:NAME (default: the shipped rulebook)")
    parser.add_argument("--chunk-size", type=positive_int, default=100_000, help="rows per chunk (default 100000)")
    parser.add_argument("--processes", type=positive_int, default=2, help="durable engine worker processes (default 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--excel-safe", action="store_true",
                        help="CSV output: prefix text cells a spreadsheet would run as a formula "
                             "(starting with = + - @) with '")
    parser.add_argument("--scheduler", default=None, metavar="local:N|ADDRESS",
                        help="evaluate on a Dask cluster (extra dask): local:N starts N worker processes here, "
                             "an address (tcp://host:8786) uses a running 'dask scheduler'; the workers read "
                             "the input and write the parts, only the summary comes back (paths must be the "
                             "same on every worker)")
    parser.add_argument("--partition-rows", type=positive_int, default=None, metavar="N",
                        help="with --scheduler: a Parquet file's row groups are grouped into partitions of up to "
                             "N rows, one part file each (default 250000)")
    parser.add_argument("--connect-timeout", type=_seconds, default=10.0, metavar="SECONDS",
                        help="with a scheduler address: seconds to wait for it and its first worker (default 10)")
    parser.set_defaults(func=_run)


def _seconds(text: str) -> float:
    """An ``argparse`` type: seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: seconds > 0")
    return value


def _register_generate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="write the cartesian product of chosen fact values as a scenario file",
        description="Write a scenario file (scenario_id + every fact) holding the cartesian product of "
                    "the chosen facts' values: every category, every manifestation set, and for numbers "
                    "unknown plus values just below, at and just above every threshold the rules use "
                    "(current value and baseline travel together, e.g. upcr with upcr_baseline). Unchosen "
                    "facts take their defaults. The row count, size and time are printed before anything is "
                    "written; --sample N writes a seeded random sample of the product instead. "
                    + DISCLAIMER)
    parser.add_argument("-o", "--output", type=Path, required=True, help="scenario file: .csv or .parquet")
    parser.add_argument("--facts", default=None,
                        help="comma-separated facts to vary (default: all), e.g. manifestations,methotrexate,upcr")
    parser.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT,
                        help=f"refuse more rows than this unless --yes (default {DEFAULT_LIMIT:,})")
    parser.add_argument("--yes", action="store_true", help="write even above --limit")
    parser.add_argument("--sample", type=positive_int, default=None, metavar="N",
                        help="write N distinct scenarios drawn at random from the product (seeded by --seed; "
                             "rows keep their product ids), instead of all of it")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of --sample (default 0)")
    parser.add_argument("--rules", type=Path, default=None,
                        help="rule folder or file, or variant:NAME (default: the shipped rulebook)")
    parser.add_argument("--chunk-size", type=positive_int, default=100_000, help="rows per chunk (default 100000)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_generate)



def _fail(command: str, message: str) -> int:
    print(f"lupus-rules {command}: {message}", file=sys.stderr)
    return 2


def _load(path: Path | None) -> Rulebook:
    if path is None:
        from ..evaluate import default_rulebook

        return default_rulebook()
    if str(path).startswith("variant:"):  # issue 11: a rulebook variant by name (authoring/variants.py)
        from ..authoring.variants import load_variant

        return load_variant(str(path))
    from ..rulebook import load_rulebook

    return load_rulebook(path)


def _run(args: argparse.Namespace) -> int:
    if args.scheduler is not None:
        return _run_on_cluster(args)
    if args.partition_rows is not None:
        return _fail("run", "--partition-rows applies with --scheduler (it sizes the part files)")
    check_output_path(args.output, suffixes=SUFFIXES, inputs=(args.input,))
    try:
        rulebook = _load(args.rules)
    except RulebookError as exc:
        return _fail("run", f"rules {args.rules} rejected:\n{exc}")
    from ..plainrun import run_plain_file, takes_plain_path

    if takes_plain_path(args.engine, args.input, args.output):  # decided before pandas is imported
        summary = run_plain_file(args.input, args.output, rulebook, excel_safe=args.excel_safe)
    else:
        from ..batch import run_file

        summary = run_file(args.input, args.output, engine=args.engine, rulebook=rulebook,
                           chunk_size=args.chunk_size, progress=not args.no_progress,
                           processes=args.processes, excel_safe=args.excel_safe)
    print(summary.format())
    return 0 if summary.ok else 1


def _run_on_cluster(args: argparse.Namespace) -> int:
    """``run --scheduler``: the input's partitions evaluated and written by Dask workers (issue 12)."""
    if args.excel_safe:
        return _fail("run", "--excel-safe applies to CSV output; with --scheduler, -o names a folder of "
                            "Parquet parts")
    from ..cluster import DEFAULT_PARTITION_ROWS, check_output_dir, input_files, parse_scheduler, run_on_cluster

    parse_scheduler(args.scheduler)
    input_files(args.input)
    check_output_dir(args.output, [args.input])
    try:
        rulebook = _load(args.rules)
    except RulebookError as exc:
        return _fail("run", f"rules {args.rules} rejected:\n{exc}")
    engine = "vectorized" if args.engine == "auto" else args.engine
    summary = run_on_cluster(args.input, args.output, args.scheduler, engine=engine, rulebook=rulebook,
                             chunk_size=args.chunk_size, partition_rows=args.partition_rows or DEFAULT_PARTITION_ROWS,
                             progress=not args.no_progress, connect_timeout=args.connect_timeout)
    print(summary.format())
    return 0 if summary.ok else 1


def _generate(args: argparse.Namespace) -> int:
    from ..generate import band_columns, count, estimate, resolve_facts, value_bands, write_generated

    check_output_path(args.output, suffixes=SUFFIXES)
    try:
        rulebook = _load(args.rules)
    except RulebookError as exc:
        return _fail("generate", f"rules {args.rules} rejected:\n{exc}")
    bands = value_bands(rulebook)
    names = None if args.facts is None else [n for n in args.facts.split(",") if n.strip()]
    keys = resolve_facts(bands, names)
    total = count(bands, keys)
    sizes = " x ".join(f"{'+'.join(band_columns(k, bands.vocabulary))} {len(bands[k])}" for k in keys) or "no facts varied"
    print(f"{total:,} scenarios ({sizes})", flush=True)
    rows = total if args.sample is None else min(args.sample, total)
    what = "all of them" if rows == total else f"a sample of {rows:,} (seed {args.seed})"
    print(f"lupus-rules generate: writing {what}: {estimate(bands, keys, args.output.suffix.lower(), rows=rows).format()} "
          "(measured on a probe; a slow disk adds to the time)", file=sys.stderr, flush=True)
    if rows > args.limit and not args.yes:
        return _fail("generate", f"refusing to write {rows:,} rows: above --limit {args.limit:,}; "
                                 "write a seeded random sample with --sample N [--seed S], choose fewer --facts, "
                                 "raise --limit or pass --yes")
    written = write_generated(args.output, bands, keys, sample=args.sample, seed=args.seed,
                              chunk_size=args.chunk_size, progress=not args.no_progress)
    print(f"wrote {written:,} scenarios to {args.output} (rulebook_version {rulebook.version})")
    print(DISCLAIMER)
    return 0
