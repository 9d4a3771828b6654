"""The ``lupus-rules`` command line. Each command group lives in its own module here.

A command module exposes ``register(subparsers)``, which adds its sub-commands
and sets ``func`` (taking the parsed arguments, returning an exit code) on each.
Errors are reported in one place (:mod:`lupus_rules.cli._errors`): 2 for
unusable input, 3 for an internal error (traceback in a crash file, or on
stderr with ``--debug``), 130 for Ctrl-C.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import NoReturn

from ..notice import DISCLAIMER
from ._errors import EXIT_INPUT, did_you_mean, run_guarded

__all__ = ["main", "build_parser", "version_text"]

#: Command modules under ``lupus_rules.cli``, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = ("run", "suite", "authoring", "review", "research", "fhir", "serve")
_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>.*?)' \(choose from (?P<choices>.*)\)")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose "invalid choice" errors say "did you mean", on every Python version."""

    def error(self, message: str) -> NoReturn:
        """Print usage and ``message`` (with a did-you-mean for a misspelt choice), exit 2."""
        found = _INVALID_CHOICE.search(message)
        if found and "did you mean" not in message:
            choices = [c.strip().strip("'\"") for c in found.group("choices").split(",")]
            message += did_you_mean(found.group("value"), choices)
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message}\n")


def version_text() -> str:
    """``lupus-rules <package version>  rulebook_version <version of the shipped rulebook>``."""
    from importlib import metadata

    try:
        package = metadata.version("lupus_rules")
    except metadata.PackageNotFoundError:
        from .. import __version__ as package
    from ..evaluate import default_rulebook

    return f"lupus-rules {package}  rulebook_version {default_rulebook().version}"


class _VersionAction(argparse.Action):
    """``--version``: computed only when asked (loading the rulebook takes a moment)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(version_text())
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = _Parser(
        prog="lupus-rules",
        description="Clinical rules workbench for lupus treatment alternatives. " + DISCLAIMER,
    )
    parser.add_argument("--version", action=_VersionAction,
                        help="print the package version and the shipped rulebook's version")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, also print the full traceback on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the process exit code (see :mod:`lupus_rules.cli._errors`)."""
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        print("lupus-rules: interrupted", file=sys.stderr)
        return 130
    return run_guarded(args.command, lambda: args.func(args), debug=args.debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
