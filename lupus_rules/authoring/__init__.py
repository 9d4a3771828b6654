"""Authoring tools: what a rule change does, what the suite misses, and what the rules get wrong.

* :func:`compare` — scenarios whose outcome differs between two rulebooks, and the rules responsible
  (``lupus-rules diff A B --scenarios PATH``).
* :func:`rule_diff` — rules added, removed or changed, field by field, in words.
* :func:`coverage` — per rule and per condition, what the suite exercises; a proposed suite row for
  every rule it never fires (``lupus-rules coverage``).
* :func:`lint` — gaps, contradictions, rules that never fire and shadowed rules over the whole
  discretized patient space (``lupus-rules lint``).
* :func:`resolve_rulebook` — a rulebook from a folder, a file, ``WORKTREE`` or a git revision.

Every result is a DataFrame (or holds DataFrames) for notebooks. Not for clinical use.
"""
from __future__ import annotations

from .compare import OUTCOMES, ScenarioSourceError, compare, read_scenarios
from .coverage import SUITE_COLUMNS, CoverageReport, coverage, propose_rows
from .lint import FINDING_COLUMNS, LintReport, disease_modifying_agents, lint
from .ruldiff import RULE_DIFF_COLUMNS, changed_rule_ids, rule_diff
from .sources import WORKTREE, resolve_rulebook

__all__ = [
    "OUTCOMES",
    "FINDING_COLUMNS",
    "RULE_DIFF_COLUMNS",
    "SUITE_COLUMNS",
    "WORKTREE",
    "CoverageReport",
    "LintReport",
    "ScenarioSourceError",
    "changed_rule_ids",
    "compare",
    "coverage",
    "disease_modifying_agents",
    "lint",
    "propose_rows",
    "read_scenarios",
    "resolve_rulebook",
    "rule_diff",
]
