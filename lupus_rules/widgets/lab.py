"""The rule-change lab: edit a threshold or drop a rule, see which suite scenarios change outcome.

Not for clinical use: a prototyping and teaching workbench.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from ..errors import LupusRulesError
from ..evaluate import default_rulebook
from ..presets import default_scenarios_dir
from ..result import DISCLAIMER
from ..rulebook import Rulebook
from ._html import esc as _e
from ._html import table as _table
from .impact_view import before_after_html, list_diff_html

__all__ = ["RuleChangeLab", "with_threshold", "changes_html"]

_DESCRIPTION_STYLE = {"description_width": "170px"}


# ---------------------------------------------------------------------------------------
# Rule-change lab


def with_threshold(rulebook: Rulebook, rule_id: str, index: int, value: float) -> Rulebook:
    """A new rulebook where condition ``index`` of one rule (a number comparison) compares with ``value``."""
    rule = rulebook.rule(rule_id)
    if not 0 <= index < len(rule.when) or rule.when[index].op not in _COMPARISONS:
        numeric = [i for i, c in enumerate(rule.when) if c.op in _COMPARISONS]
        raise ValueError(f"index: got {index!r}; allowed for {rule_id}: {numeric or 'none (no number comparison)'}")
    when = tuple(replace(c, value=float(value)) if i == index else c for i, c in enumerate(rule.when))
    return rulebook.replace_rule(rule_id, when=when)


_COMPARISONS = ("<", "<=", ">", ">=")


def changes_html(changes: pd.DataFrame, descriptions: Mapping[str, str] | None = None) -> str:
    """The scenarios whose outcome changed, side by side: preferred, recommendations and fired rules before/after."""
    if changes.empty:
        return "<div class='lr-changes'>No scenario of the suite changes outcome.</div>"
    rows = []
    for _, row in changes.iterrows():
        ident = str(row["scenario_id"])
        title = _e((descriptions or {}).get(ident, ""))
        rows.append([
            f"<code style='white-space:nowrap' title='{title}'>{_e(ident)}</code>",
            before_after_html(row["preferred_before"] or "none", row["preferred_after"] or "none"),
            list_diff_html(row["recommendations_before"], row["recommendations_after"]),
            list_diff_html(row["flags_before"], row["flags_after"]),
            list_diff_html(row["fired_rules_before"], row["fired_rules_after"], only_changes=True),
            ", ".join(f"<span style='white-space:nowrap'>{_e(r)}</span>" for r in row["rules"].split(";") if r),
        ])
    return ("<div class='lr-changes'>"
            + _table(["scenario", "preferred before → after", "recommendations (+ added, − removed)",
                      "flags", "fired rules", "rules responsible"], rows) + "</div>")


class RuleChangeLab:
    """Pick a rule, edit a number threshold or drop the rule, and see which suite scenarios change.

    Every edit builds a new, re-checked rulebook (``edited``) and runs
    :func:`lupus_rules.authoring.compare` against the original on the
    scenario suite: ``changes`` (a DataFrame) and ``table_html`` show the
    changed scenarios before/after with the rules responsible. An edit the
    loader refuses (e.g. dropping the only rule deriving a fact others need)
    is shown with the loader's message in ``error``.
    """

    def __init__(self, rulebook: Rulebook | None = None, scenarios: str | Path | pd.DataFrame | None = None,
                 rule_id: str | None = None):
        from ..authoring import read_scenarios

        self.rulebook = rulebook if rulebook is not None else default_rulebook()
        self.scenarios = read_scenarios(scenarios if scenarios is not None else default_scenarios_dir())
        self.descriptions = (dict(zip(self.scenarios["scenario_id"], self.scenarios["description"]))
                             if {"scenario_id", "description"} <= set(self.scenarios.columns) else {})
        self.edited: Rulebook | None = self.rulebook
        self.changes = pd.DataFrame()
        self.error = ""
        self._updating = False
        rules = sorted(self.rulebook.rules, key=lambda r: r.position)
        first = rule_id or next((r.id for r in rules if any(c.op in _COMPARISONS for c in r.when)), rules[0].id)
        self.rule = w.Dropdown(options=[(f"{r.id}: {r.title}", r.id) for r in rules], value=first,
                               description="Rule", style=_DESCRIPTION_STYLE, layout=w.Layout(width="98%"))
        self.drop = w.Checkbox(description="drop this rule", indent=False)
        self.thresholds: dict[int, w.FloatText] = {}
        self.threshold_box = w.VBox()
        self.rule_html, self.summary_html_widget, self.table = w.HTML(), w.HTML(), w.HTML()
        self.rule.observe(self._on_rule, names="value")
        self.drop.observe(self._on_change, names="value")
        self.widget = w.VBox([
            w.HTML(f"<div style='color:#b91c1c'><b>{_e(DISCLAIMER)}</b></div>"), self.rule, self.rule_html,
            self.threshold_box, self.drop, self.summary_html_widget, self.table])
        self._build_thresholds()
        self.refresh()

    def edit(self, rule_id: str | None = None, thresholds: Mapping[int, float] | None = None,
             drop: bool = False) -> pd.DataFrame:
        """Set the controls in one go (rule, condition index -> new threshold, drop) and return ``changes``."""
        self._updating = True
        try:
            if rule_id is not None:
                self.rule.value = rule_id
                self._build_thresholds()
            for index, value in (thresholds or {}).items():
                if index not in self.thresholds:
                    raise ValueError(f"thresholds: condition {index} of {self.rule.value} is not a number "
                                     f"comparison; allowed: {sorted(self.thresholds) or 'none'}")
                self.thresholds[index].value = float(value)
            self.drop.value = drop
        finally:
            self._updating = False
        self.refresh()
        return self.changes

    def refresh(self) -> None:
        """Rebuild the edited rulebook from the controls and compare it with the original on the suite."""
        from ..authoring import compare

        for control in self.thresholds.values():  # a dropped rule has no threshold to edit
            control.disabled = bool(self.drop.value)
        try:
            self.edited = self._edited()
        except (LupusRulesError, ValueError) as exc:
            self._fail(f"The edited rulebook is refused: {exc}")
            return
        self.error = ""
        self.changes = compare(self.rulebook, self.edited, self.scenarios)
        self.summary_html_widget.value = (
            f"<div class='lr-summary'>{_e(self.changes.attrs.get('summary', ''))} &mdash; rulebook "
            f"{_e(self.rulebook.version)} &rarr; {_e(self.edited.version)}</div>")
        self.table.value = changes_html(self.changes, self.descriptions)

    @property
    def summary_html(self) -> str:
        """HTML of the one-line summary (how many scenarios changed, versions before and after)."""
        return self.summary_html_widget.value

    @property
    def table_html(self) -> str:
        """HTML of the side-by-side table of changed scenarios."""
        return self.table.value

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "RuleChangeLab (interactive widget: needs a running kernel)"
        return bundle

    def _edited(self) -> Rulebook:
        rule_id = self.rule.value
        if self.drop.value:
            return self.rulebook.without_rule(rule_id)
        book = self.rulebook
        original = self.rulebook.rule(rule_id)
        for index, control in self.thresholds.items():
            if control.value != original.when[index].value:
                book = with_threshold(book, rule_id, index, control.value)
        return book

    def _fail(self, message: str) -> None:
        self.error = message
        self.edited = None
        self.changes = pd.DataFrame()
        self.summary_html_widget.value = f"<div class='lr-error' style='color:#b91c1c'>{_e(message)}</div>"
        self.table.value = ""

    def _build_thresholds(self) -> None:
        rule = self.rulebook.rule(self.rule.value)
        self.thresholds = {}
        for index, c in enumerate(rule.when):
            if c.op in _COMPARISONS:
                control = w.FloatText(value=c.value, description=f"{c.fact} {c.op}", style=_DESCRIPTION_STYLE)
                control.observe(self._on_change, names="value")
                self.thresholds[index] = control
        self.threshold_box.children = tuple(self.thresholds.values()) or (
            w.HTML("<i>This rule compares no number: drop it to see its effect.</i>"),)
        then = "; ".join(filter(None, [
            "derive " + ", ".join(rule.derive) if rule.derive else "",
            "recommend " + ", ".join(f"{r.agent} ({r.rank})" for r in rule.recommend) if rule.recommend else "",
            "avoid " + ", ".join(rule.avoid) if rule.avoid else "",
            "flag " + ", ".join(rule.flag) if rule.flag else ""]))
        self.rule_html.value = (f"<div class='lr-rule-text'><b>when</b> "
                                f"{_e(' AND '.join(c.describe() for c in rule.when) or 'always')} "
                                f"<b>then</b> {_e(then)} <span style='color:#777'>[ref "
                                f"{_e(','.join(map(str, rule.citation)))}]</span></div>")

    def _on_rule(self, change: dict[str, Any]) -> None:
        if self._updating:
            return
        self._updating = True
        self.drop.value = False
        self._updating = False
        self._build_thresholds()
        self.refresh()

    def _on_change(self, change: dict[str, Any]) -> None:
        if not self._updating:
            self.refresh()


