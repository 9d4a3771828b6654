"""``lupus-rules sweep``: how a population's outcomes move while one threshold walks a range.

Exit codes: 0 done; 1 done, but some population rows were rejected by
validation (counted, left out of every figure); 2 unusable input (missing
population, unknown rule, fact or column, a value outside the fact's range,
a bad option or output path), reported by :mod:`lupus_rules.cli._errors`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import OptionError, RulebookError
from ..notice import DISCLAIMER
from ..output import atomic_output, check_output_path
from ._errors import non_negative_int, positive_int

if TYPE_CHECKING:
    import pandas as pd

    from ..rulebook import Rulebook
    from ..sweep import SweepResult

__all__ = ["register", "FORMATS"]

#: What ``--format`` prints on stdout.
FORMATS: tuple[str, ...] = ("table", "csv", "json")
_OUTPUT_SUFFIXES = (".csv", ".json")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` sub-command."""
    parser = subparsers.add_parser(
        "sweep", help="re-evaluate a population while one rule threshold walks a range of values",
        description="Evaluate a population with the rulebook and with one threshold moved to each of "
                    "--values (a variant rulebook per value, made from the rule data), and report per value "
                    "how many patients' preferred agent, recommendations and flags change, and between "
                    "which agents. Name the threshold by rule (--rule R-KID-01 [--condition N]) or by fact "
                    "(--fact egfr [--at 60]: every rule comparing egfr with 60 moves together). Exit code: "
                    "0 done, 1 some population rows rejected (left out), 2 unusable input. " + DISCLAIMER)
    parser.add_argument("population", nargs="?", type=Path, default=None,
                        help="patients: .csv (every cell text, empty = unknown) or .parquet")
    parser.add_argument("--generated", type=positive_int, default=None, metavar="N",
                        help="instead of a file: N distinct patients sampled from the generated space "
                             "(lupus-rules generate --sample N), seeded by --seed")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of --generated (default 0)")
    parser.add_argument("--rule", default=None, help="id of the rule holding the threshold, e.g. R-KID-01")
    parser.add_argument("--condition", type=non_negative_int, default=None,
                        help="index in the rule's when list, when the rule compares more than one number")
    parser.add_argument("--fact", default=None, help="move every comparison of this fact (with --at's value)")
    parser.add_argument("--at", type=float, default=None, help="with --fact: the current threshold value, e.g. 60")
    parser.add_argument("--values", required=True,
                        help="START:STOP:STEP (stop included, e.g. 45:75:5) or a list 45,50,60")
    parser.add_argument("--rules", type=Path, default=None, help="rule folder or file (default: the shipped rulebook)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="also write the result: .csv (one row per value) or .json (with transitions)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="what to print (default table)")
    parser.set_defaults(func=_sweep)




def _sweep(args: argparse.Namespace) -> int:
    _check_source(args)
    if args.output is not None:
        inputs = (args.population,) if args.population is not None else ()
        check_output_path(args.output, suffixes=_OUTPUT_SUFFIXES, inputs=inputs)
    from ..sweep import sweep

    rulebook = _load(args.rules)
    population = _population(args, rulebook)
    result = sweep(population, args.values, rule=args.rule, condition=args.condition, fact=args.fact,
                   at=args.at, rulebook=rulebook)
    _print(result, args.format)
    if args.output is not None:
        _write(result, args.output)
    if result.rejected:
        print(f"lupus-rules sweep: {result.rejected:,} population rows rejected by validation (left out); "
              "lupus-rules run names each row's problem", file=sys.stderr)
        return 1
    return 0


def _check_source(args: argparse.Namespace) -> None:
    if (args.population is None) == (args.generated is None):
        raise OptionError("population: give a population file or --generated N (one of the two)")
    if args.rule is None and args.fact is None:
        raise OptionError("threshold: give --rule RULE_ID (e.g. --rule R-KID-01) or --fact FACT (e.g. --fact egfr)")


def _load(path: Path | None) -> Rulebook:
    from ..evaluate import default_rulebook
    from ..rulebook import load_rulebook

    if path is None:
        return default_rulebook()
    try:
        return load_rulebook(path)
    except RulebookError as exc:
        raise OptionError(f"rules {path} rejected:\n{exc}") from None


def _population(args: argparse.Namespace, rulebook: Rulebook) -> pd.DataFrame:
    if args.population is not None:
        from ..sweep import read_population

        return read_population(args.population)
    from ..generate import sample, value_bands

    return sample(value_bands(rulebook), None, args.generated, args.seed)


def _print(result: SweepResult, fmt: str) -> None:
    if fmt != "table":  # the table starts with the notice; machine formats keep stdout parseable
        print(DISCLAIMER, file=sys.stderr)
    if fmt == "json":
        print(result.to_json())
    elif fmt == "csv":
        print(result.to_frame().to_csv(index=False), end="")
    else:
        print(result.to_text())


def _write(result: SweepResult, path: Path) -> None:
    with atomic_output(path, suffixes=_OUTPUT_SUFFIXES) as partial:
        if path.suffix.lower() == ".json":
            partial.write_text(result.to_json() + "\n", encoding="utf-8")
        else:
            result.to_frame().to_csv(partial, index=False)
    print(f"wrote {path}", file=sys.stderr)
