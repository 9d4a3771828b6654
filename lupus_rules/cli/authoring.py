"""``lupus-rules diff``, ``coverage`` and ``lint``: authoring tools on the command line.

Exit codes: ``diff`` 0 (it reports); ``coverage`` 0, or 1 with ``--strict``
when some rule is fired by no scenario; ``lint`` 1 when there is an error
finding (a contradiction or a rule that never fires), 0 otherwise (warnings and
accepted gaps do not fail). All three exit 2 on unusable input (unknown rule
folder or revision, unreadable scenarios, unknown column, bad option or output
path), reported by :mod:`lupus_rules.cli._errors`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import OptionError
from ..output import atomic_output, check_output_path
from ..notice import DISCLAIMER
from ._errors import positive_int

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``diff``, ``coverage`` and ``lint`` sub-commands."""
    _register_diff(subparsers)
    _register_coverage(subparsers)
    _register_lint(subparsers)


def _register_diff(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diff", help="what changed between two rulebooks, and which scenarios it affects",
        description="List rules added, removed or changed (field by field) between rulebooks A and B, "
                    "and with --scenarios every scenario whose preferred agent, recommendations, flags or "
                    "fired rules differ, with the rules responsible. A and B: a rule folder or file, "
                    "WORKTREE (the shipped rules on disk), a git revision (HEAD~1), REV:path or variant:NAME "
                    "(a rulebook variant, e.g. variant:gc-target-5mg). "
                    "A path on disk wins over a revision name. " + DISCLAIMER)
    parser.add_argument("a", help="the rulebook before (folder, file, WORKTREE, REV, REV:path or variant:NAME)")
    parser.add_argument("b", help="the rulebook after")
    parser.add_argument("--scenarios", default=None,
                        help="scenario CSV/Parquet file or folder of CSVs (e.g. scenarios/ or a generated batch)")
    parser.add_argument("--repo", default=None, help="git repository for revisions (default: the current folder)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="also write the changed scenarios (every column) to this CSV file")
    parser.add_argument("--limit", type=int, default=50, help="changed scenarios to print (default 50; 0 = all)")
    parser.set_defaults(func=_diff)


def _register_coverage(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coverage", help="rule and condition coverage of the scenario suite, with rows for uncovered rules",
        description="Per rule, how many scenarios fire it; per condition, whether both its outcomes occur; "
                    "for every rule no scenario fires, a proposed suite row (found by exhaustive search "
                    "of the discretized fact space) ready to paste. " + DISCLAIMER)
    parser.add_argument("--scenarios", default="scenarios",
                        help="scenario CSV file or folder (default: scenarios/)")
    parser.add_argument("--rules", default=None,
                        help="rule folder, file, revision or variant:NAME (default: the shipped rulebook)")
    parser.add_argument("--proposals", type=Path, default=None, help="also write the proposed rows to this CSV")
    parser.add_argument("--strict", action="store_true", help="exit 1 when some rule is fired by no scenario")
    parser.add_argument("--html", type=Path, default=None,
                        help="also write the rulebook as one HTML page, each condition marked with how often the "
                             "suite makes it true and false")
    parser.set_defaults(func=_coverage)


def _register_lint(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lint", help="gaps, contradictions, rules that never fire and shadowed rules, over all patients",
        description="Check the rulebook over the whole discretized patient space (every category and "
                    "values around every threshold, reduced exactly to equivalence classes). Exit 1 when "
                    "a contradiction or a rule that never fires is found. " + DISCLAIMER)
    parser.add_argument("--rules", default=None,
                        help="rule folder, file, revision or variant:NAME (default: the shipped rulebook)")
    parser.add_argument("--max-rows", type=positive_int, default=25_000_000,
                        help="classes enumerated per check before sampling instead (default 20000000)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="also write the findings to this CSV")
    parser.set_defaults(func=_lint)


#: Longest revision or path name accepted for ``diff`` (git refs are far shorter).
MAX_REVISION = 4096


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_output(path, suffixes=(".csv",)) as partial:
        frame.to_csv(partial, index=False)


def _check_revision(name: str | None, which: str) -> None:
    if name is not None and len(name) > MAX_REVISION:
        raise OptionError(f"rulebook {which}: {name[:40]!r}... is {len(name):,} characters long; "
                          f"allowed: a folder, file or git revision of at most {MAX_REVISION} characters")


def _diff(args: argparse.Namespace) -> int:
    if args.output:
        check_output_path(args.output, suffixes=(".csv",), inputs=_inputs(args.scenarios))
    _check_revision(args.a, "A")
    _check_revision(args.b, "B")
    from ..authoring import compare, resolve_rulebook, rule_diff

    book_a, book_b = resolve_rulebook(args.a, args.repo), resolve_rulebook(args.b, args.repo)
    table = compare(book_a, book_b, args.scenarios) if args.scenarios else None
    print(DISCLAIMER)
    print(f"Rulebook A: {book_a.source} ({book_a.version}); B: {book_b.source} ({book_b.version})")
    changes = rule_diff(book_a, book_b)
    print(f"Rule changes: {len(changes)}")
    for text in changes["description"]:
        print(f"  {text}")
    from ..authoring.ruldiff import stale_texts

    stale = stale_texts(book_a, book_b)
    if len(stale):
        print(f"Texts that still name a replaced number: {len(stale)}")
        for text in stale["description"]:
            print(f"  {text}")
    if table is not None:
        print()
        _print_changed(table, args.limit)
        print(table.attrs["summary"])
        if args.output:
            _write_csv(table, args.output)
    return 0


def _inputs(scenarios: str | None) -> tuple[str, ...]:
    return (scenarios,) if scenarios and Path(scenarios).is_file() else ()


def _print_changed(table: pd.DataFrame, limit: int) -> None:
    from ..authoring.compare import OUTCOMES
    from ..authoring.ruldiff import item_changes

    shown = table if limit <= 0 else table.head(limit)
    for _, row in shown.iterrows():
        print(f"{row['scenario_id']}: {row['changed'].replace('_', ' ')}; rules: {row['rules'] or '-'}")
        for outcome in OUTCOMES:
            before, after = row[f"{outcome}_before"], row[f"{outcome}_after"]
            if before == after:
                continue
            if outcome == "preferred":
                print(f"    preferred: {before or '(none)'} -> {after or '(none)'}")
                continue
            gone, new = item_changes(before, after)
            items = " ".join(["-" + r for r in gone] + ["+" + r for r in new]) or "same items, new order"
            print(f"    {outcome.replace('_', ' ')}: {items}")
    if len(shown) < len(table):
        print(f"... {len(table) - len(shown):,} more (use --limit 0 or --output FILE)")


def _coverage(args: argparse.Namespace) -> int:
    if args.proposals:
        check_output_path(args.proposals, suffixes=(".csv",), inputs=_inputs(args.scenarios))
    if args.html:
        check_output_path(args.html, suffixes=(".html", ".htm"), inputs=_inputs(args.scenarios))
    _check_revision(args.rules, "--rules")
    import pandas as pd

    from ..authoring import coverage, resolve_rulebook

    book = resolve_rulebook(args.rules) if args.rules else None
    report = coverage(args.scenarios, book)
    with pd.option_context("display.width", 200, "display.max_colwidth", 70):
        print(report.to_text())
    if args.proposals:
        _write_csv(report.proposals, args.proposals)
    if args.html:
        from ..authoring.coverage_html import coverage_html
        from ..evaluate import default_rulebook

        with atomic_output(args.html, suffixes=(".html", ".htm")) as partial:
            partial.write_text(coverage_html(report, book or default_rulebook()), encoding="utf-8")
    return 1 if args.strict and report.uncovered else 0


def _lint(args: argparse.Namespace) -> int:
    if args.output:
        check_output_path(args.output, suffixes=(".csv",))
    _check_revision(args.rules, "--rules")
    from ..authoring import lint, resolve_rulebook

    book = resolve_rulebook(args.rules) if args.rules else None
    report = lint(book, max_rows=args.max_rows)
    print(report.to_text())
    if args.output:
        _write_csv(report.findings, args.output)
    return 0 if report.passed else 1
