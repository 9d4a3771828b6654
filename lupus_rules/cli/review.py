"""``lupus-rules review A B --scenarios DIR -o review.html``: the change-review dossier for a committee.

Exit codes: 0 written; 1 written, and with ``--strict`` some scenario that met
its expectations under A does not under B, or lint fails under B; 2 unusable
input (unknown rulebook, revision or variant, unreadable scenarios, bad output path).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import OptionError
from ..notice import DISCLAIMER
from ..output import atomic_output, check_output_path
from ._errors import positive_int

__all__ = ["register", "FORMATS"]

#: Output formats and the file suffixes each allows.
FORMATS: dict[str, tuple[str, ...]] = {"html": (".html", ".htm"), "md": (".md", ".markdown")}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``review`` sub-command."""
    parser = subparsers.add_parser(
        "review", help="write a change-review dossier (HTML or Markdown) for rulebooks A -> B",
        description="Write one self-contained file a guideline committee reads without Python: the rule "
                    "changes in words (+/- per item), every scenario whose outcome changed (separated from "
                    "trace-only changes) with its expectations under A and B (pass -> FAIL marked), rule "
                    "coverage and lint before and after, both rulebook versions and the date. A and B: a "
                    "rule folder or file, WORKTREE, a git revision (HEAD~1), REV:path or variant:NAME. "
                    + DISCLAIMER)
    parser.add_argument("a", help="the rulebook before (folder, file, WORKTREE, REV, REV:path or variant:NAME)")
    parser.add_argument("b", help="the rulebook after")
    parser.add_argument("--scenarios", default="scenarios", help="scenario CSV file or folder (default: scenarios/)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the dossier: .html or .md")
    parser.add_argument("--format", choices=tuple(FORMATS), default=None,
                        help="html or md (default: from the output suffix)")
    parser.add_argument("--repo", default=None, help="git repository for revisions (default: the current folder)")
    parser.add_argument("--no-lint", action="store_true", help="skip lint (saves a few seconds per rulebook)")
    parser.add_argument("--max-rows", type=positive_int, default=25_000_000,
                        help="lint: classes enumerated per check before sampling (default 20000000)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a scenario goes pass -> FAIL or lint fails under B (for CI)")
    parser.set_defaults(func=_review)


def _format(args: argparse.Namespace) -> str:
    suffix = args.output.suffix.lower()
    if args.format is not None:
        if suffix not in FORMATS[args.format]:
            raise OptionError(f"--output {args.output}: suffix {suffix or '(none)'!r} does not fit --format "
                              f"{args.format}; allowed: {', '.join(FORMATS[args.format])}")
        return args.format
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    allowed = ", ".join(s for suffixes in FORMATS.values() for s in suffixes)
    raise OptionError(f"--output {args.output}: suffix {suffix or '(none)'!r} not supported; allowed: {allowed}")


def _review(args: argparse.Namespace) -> int:
    fmt = _format(args)
    check_output_path(args.output, suffixes=FORMATS[fmt])
    from .authoring import _check_revision

    _check_revision(args.a, "A")
    _check_revision(args.b, "B")
    from ..authoring.review import build_review
    from ..authoring.review_render import to_html, to_markdown

    review = build_review(args.a, args.b, args.scenarios, run_lint=not args.no_lint, max_rows=args.max_rows,
                          repo=args.repo)
    text = to_html(review) if fmt == "html" else to_markdown(review)
    with atomic_output(args.output, suffixes=FORMATS[fmt]) as partial:
        partial.write_text(text, encoding="utf-8")
    print(DISCLAIMER)
    print(f"A: {review.before.source} ({review.before.version}); B: {review.after.source} ({review.after.version})")
    print(f"{review.verdict}.")
    print(f"wrote {args.output} ({fmt}, {review.seconds.get('total', 0):.1f} s)")
    failed = len(review.new_failures) > 0 or review.after.lint_passed is False
    return 1 if args.strict and failed else 0
