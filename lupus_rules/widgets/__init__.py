"""Notebook widgets: the scenario explorer (and its app), the rule-change lab and batch plots.

Not for clinical use: a prototyping and teaching workbench.

The only part of lupus_rules that imports ipywidgets, one module per idea:
:mod:`.controls` (fact controls, presets), :mod:`.outcome`, :mod:`.trace_view`,
:mod:`.graph_view`, :mod:`.stepper`, :mod:`.why_not_view`, :mod:`.whatif_view`,
:mod:`.explorer` (the layout), :mod:`.app` (the Voila page), :mod:`.lab`,
:mod:`.editor` (the rule editor, with :mod:`.rule_form` and :mod:`.impact_view`),
:mod:`.suite_add_view` (the explorer's "Add to suite" tab), :mod:`.plots` and
:mod:`.batch_view` (notebook 03's batch panel). Every decision lives outside: widgets only call ``evaluate``,
``explain``, ``words``, ``replay``, ``graph``, ``whatif`` and ``presets`` and
keep their state in plain attributes, so pytest drives them without a browser.
"""
from __future__ import annotations

from ..presets import default_scenarios_dir, load_presets
from .app import app
from .batch_view import BatchPanel
from .editor import RuleEditor
from .explorer import TABS, ScenarioExplorer
from .impact_view import ImpactView, impact_html
from .lab import RuleChangeLab, changes_html, with_threshold
from .outcome import avoided_html, flags_html, outcome_html, preferred_html
from .plots import plot_preferred_by_manifestation, plot_rule_frequency, preferred_by_manifestation, rule_frequency
from .stepper import step_html
from .suite_add_view import SuiteAddView
from .trace_view import derived_html, trace_html
from .whatif_view import whatif_html
from .why_not_view import why_not_html

__all__ = [
    "ScenarioExplorer",
    "BatchPanel",
    "SuiteAddView",
    "TABS",
    "app",
    "RuleChangeLab",
    "RuleEditor",
    "ImpactView",
    "impact_html",
    "load_presets",
    "default_scenarios_dir",
    "preferred_html",
    "outcome_html",
    "flags_html",
    "avoided_html",
    "derived_html",
    "trace_html",
    "why_not_html",
    "step_html",
    "whatif_html",
    "with_threshold",
    "changes_html",
    "preferred_by_manifestation",
    "rule_frequency",
    "plot_preferred_by_manifestation",
    "plot_rule_frequency",
]
