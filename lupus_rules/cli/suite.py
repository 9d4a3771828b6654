"""``lupus-rules check-suite``: run the scenario suite outside pytest.

Prints a pass/fail table, every failure in full (patient, expected vs actual,
cited trace) and rule coverage. Exit code 0 when every scenario passes and
every rule is fired by some scenario, 1 otherwise, 2 when a scenario file or
the rulebook is malformed (reported by :mod:`lupus_rules.cli._errors`).
"""
from __future__ import annotations

import argparse


__all__ = ["register", "run_check_suite"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check-suite`` command."""
    parser = subparsers.add_parser(
        "check-suite",
        help="check the scenario suite (expected outcomes) and rule coverage",
        description="Evaluate every scenario row, compare it with its expectations and report "
                    "which rules no scenario fires. Not for clinical use.",
    )
    parser.add_argument("path", help="a scenario CSV file or a folder of them (e.g. scenarios/)")
    parser.add_argument("--rules", default=None,
                        help="rule folder or file to check against (default: the shipped rulebook)")
    parser.add_argument("--failures-only", action="store_true",
                        help="list only failing scenarios in the table")
    parser.set_defaults(func=run_check_suite)


def run_check_suite(args: argparse.Namespace) -> int:
    """Run the suite and print the report; returns the exit code."""
    from ..rulebook import load_rulebook
    from ..suite import check_suite

    rulebook = load_rulebook(args.rules) if args.rules else None
    report = check_suite(args.path, rulebook)
    print(report.text(failures_only=args.failures_only))
    if report.uncovered:
        print("FAILED: some rules are fired by no scenario; add a scenario that reaches each of them.")
    return 0 if report.ok else 1
