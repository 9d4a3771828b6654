"""The notice every output carries: lupus_rules is not for clinical use.

Kept apart from the engines so that ``--help`` and every light module can show
it without importing numpy or pandas.
"""
from __future__ import annotations

__all__ = ["DISCLAIMER"]

#: Shown on every report, result and command help.
DISCLAIMER = ("Not for clinical use: lupus_rules is a prototyping and teaching workbench, "
              "not a tool for treating patients.")
