"""The ``lupus-rules`` command line. Each command group lives in its own module here.

A command module exposes ``register(subparsers)``, which adds its sub-commands
and sets ``func`` (taking the parsed arguments, returning an exit code) on each.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..result import DISCLAIMER

__all__ = ["main", "build_parser"]

#: Command modules under ``lupus_rules.cli``, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = ("run", "suite", "authoring")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="lupus-rules",
        description="Clinical rules workbench for lupus treatment alternatives. " + DISCLAIMER,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the process exit code (0 = success)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
