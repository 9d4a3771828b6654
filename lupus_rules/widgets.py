"""Notebook widgets: the scenario explorer, the rule-change lab and batch plots.

Not for clinical use: a prototyping and teaching workbench.

The only module of lupus_rules that imports ipywidgets. Every widget keeps its
state in plain attributes (``controls``, ``result``, the HTML of each panel)
so that pytest drives it without a browser: set a control's ``value`` and
read the panels back.
"""
from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from .evaluate import default_rulebook, evaluate
from .errors import LupusRulesError
from .explain import WhyNot, derivation_graph, why_not
from .facts import FACTS, FactSpec
from .result import DISCLAIMER, Result, show_value
from .rulebook import Rulebook

__all__ = [
    "ScenarioExplorer",
    "RuleChangeLab",
    "load_presets",
    "default_scenarios_dir",
    "mermaid_markdown",
    "outcome_html",
    "flags_html",
    "avoided_html",
    "derived_html",
    "trace_html",
    "why_not_html",
    "with_threshold",
    "changes_html",
    "preferred_by_manifestation",
    "rule_frequency",
    "plot_preferred_by_manifestation",
    "plot_rule_frequency",
]

_CUSTOM = "(custom patient)"
_DESCRIPTION_STYLE = {"description_width": "170px"}
_PANEL_STYLE = "max-height:{h}px;overflow:auto;border:1px solid #ddd;padding:4px"


# ---------------------------------------------------------------------------------------
# Presets


def default_scenarios_dir() -> Path:
    """The repository's ``scenarios/`` folder (next to the package in a source checkout)."""
    return Path(__file__).resolve().parent.parent / "scenarios"


def load_presets(folder: str | Path | None = None) -> dict[str, dict[str, object]]:
    """Preset patients from the scenario suite (:func:`lupus_rules.suite.load_suite`): label -> facts.

    The label is ``"<scenario_id>: <description>"``; the facts are the row's
    fact cells. A missing folder gives no presets; a malformed suite raises
    :class:`~lupus_rules.suite.SuiteFormatError` naming file, row and column.
    """
    from .suite import load_suite

    folder = Path(folder) if folder is not None else default_scenarios_dir()
    if not folder.is_dir() or not any(folder.glob("*.csv")):
        return {}
    return {_preset_label(s.id, s.description): dict(s.facts) for s in load_suite(folder)}


def _preset_label(ident: str, description: str) -> str:
    return f"{ident}: {description}" if description else ident


# ---------------------------------------------------------------------------------------
# Rendering helpers (pure functions of a result: easy to test)


def mermaid_markdown(graph: str) -> str:
    """Mermaid text as a fenced Markdown block, which JupyterLab 4 renders as a diagram."""
    return f"```mermaid\n{graph}\n```"


def _e(value: object) -> str:
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 6px'>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:2px 6px;vertical-align:top'>{cell}</td>" for cell in row) + "</tr>"
        for row in rows)
    return f"<table class='{css}' style='border-collapse:collapse;font-size:90%'><tr>{head}</tr>{body}</table>"


def outcome_html(result: Result, rulebook: Rulebook) -> str:
    """Preferred agent and every recommendation with rank, notes, rules and citations."""
    preferred = result.preferred
    name = rulebook.agents[preferred].name if preferred else "none"
    rows = []
    for rec in result.recommendation_details:
        cites = ", ".join(f"<span title='{_e(rulebook.references.get(c, ''))}'>[{c}]</span>" for c in rec.citations)
        agent = f"<b>{_e(rec.agent)}</b>" if rec.agent == preferred else _e(rec.agent)
        rules = ", ".join(f"<span style='white-space:nowrap'>{_e(r)}</span>" for r in rec.rules)
        rows.append([str(rec.rank), agent, _e(rec.name), _e("; ".join(rec.notes)), rules, cites])
    return (f"<div class='lr-outcome'><div>Preferred agent: <b class='lr-preferred'>{_e(preferred or 'none')}</b>"
            f" <span style='color:#555'>({_e(name)})</span></div>"
            + _table(["rank", "agent", "name", "notes", "rules", "refs"], rows, "lr-recommendations")
            + f"<div style='color:#777;font-size:80%'>Rulebook {_e(result.rulebook_version)}. "
            f"{_e(DISCLAIMER)}</div></div>")


def flags_html(result: Result, rulebook: Rulebook) -> str:
    """The flags raised, with their meaning."""
    if not result.flags:
        return "<div class='lr-flags'>Flags: none</div>"
    items = "".join(f"<li><code>{_e(f)}</code>: {_e(rulebook.flags[f])}</li>" for f in result.flags)
    return f"<div class='lr-flags'>Flags:<ul style='margin:0'>{items}</ul></div>"


def avoided_html(result: Result, rulebook: Rulebook) -> str:
    """Agents to avoid, grouped by the rule that says so (with its title and rationale as a tooltip)."""
    if not result.avoided:
        return "<div class='lr-avoided'>Avoided agents: none</div>"
    by_rule: dict[str, list[str]] = {}
    for agent, rules in result.avoided.items():
        for rule_id in rules:
            by_rule.setdefault(rule_id, []).append(agent)
    items = "".join(
        f"<li>{', '.join(f'<code>{_e(a)}</code>' for a in agents)} &larr; "
        f"<span title='{_e(rulebook.rule(r).rationale)}'>{_e(r)} {_e(rulebook.rule(r).title)}</span></li>"
        for r, agents in by_rule.items())
    return f"<div class='lr-avoided'>Avoided agents:<ul style='margin:0'>{items}</ul></div>"


def derived_html(result: Result, rulebook: Rulebook) -> str:
    """The derived facts that hold, with their meaning."""
    if not result.derived:
        return "<div class='lr-derived'>Derived facts: none</div>"
    items = "".join(f"<li><code>{_e(d)}</code>: {_e(rulebook.derived_facts[d])}</li>" for d in result.derived)
    return f"<div class='lr-derived'>Derived facts:<ul style='margin:0'>{items}</ul></div>"


def trace_html(result: Result) -> str:
    """Fired rules in firing order, with the facts each matched and its citation."""
    rows = [[str(i), f"<code class='lr-rule' style='white-space:nowrap'>{_e(step.rule_id)}</code>", _e(step.title),
             _e(", ".join(f"{k}={show_value(v)}" for k, v in step.matched.items()) or "every patient"),
             _e(",".join(map(str, step.citation)))]
            for i, step in enumerate(result.trace, start=1)]
    return ("<div class='lr-trace'>Fired rules (firing order):"
            + _table(["#", "rule", "title", "matched facts", "refs"], rows) + "</div>")


def why_not_html(items: list[WhyNot], fixable_only: bool = False) -> str:
    """Each rule that did not fire: the first failed condition, the others, and a verified fix.

    ``fixable_only`` lists only the rules that one fact change would make fire.
    """
    rows = []
    for item in items:
        if fixable_only and item.fix is None:
            continue
        others = "; ".join(f.text for f in item.failed[1:])
        fix = "<span style='color:#999'>none</span>"
        if item.fix:
            fix = (f"<span style='color:#166534'>{_e(item.fix.describe())} &rarr; preferred "
                   f"{_e(item.fix.preferred_after or 'none')}</span>")
        rows.append([f"<code style='white-space:nowrap'>{_e(item.rule_id)}</code>", _e(item.title),
                     _e(item.first_failed.text), _e(others), fix])
    fixable = sum(1 for i in items if i.fix)
    return (f"<div class='lr-why-not'>Why not: {len(items)} rules did not fire; "
            f"{fixable} would fire after one fact change (each checked by re-evaluation)."
            + _table(["rule", "title", "first failed condition", "other failed conditions",
                      "single change that makes it fire"], rows) + "</div>")


# ---------------------------------------------------------------------------------------
# Scenario explorer


class ScenarioExplorer:
    """Interactive explorer: one control per fact, presets, and every explanation panel.

    Each change of a control re-evaluates the patient and updates, at once, the
    outcome (preferred agent, recommendations with citations), flags, avoided
    agents, derived facts, the fired rules, the why-not panel and the Mermaid
    derivation graph. State for tests: ``controls[fact]`` (number facts also
    have ``unknown[fact]``), ``preset``, ``result``, ``why_not_items``,
    ``graph_text`` and the ``*_html`` attributes of the panels.
    """

    def __init__(self, rulebook: Rulebook | None = None, patient: Mapping[str, object] | None = None,
                 presets: Mapping[str, Mapping[str, object]] | None = None):
        self.rulebook = rulebook if rulebook is not None else default_rulebook()
        self.preset_error = ""
        if presets is None:
            try:
                presets = load_presets()
            except LupusRulesError as exc:  # a malformed suite must not stop the explorer
                self.preset_error, presets = f"Presets not loaded: {exc}", {}
        self.presets = dict(presets)
        self.bundle_problems: list[str] = []
        self.bundle_provenance: dict[str, dict[str, Any]] = {}
        self.fixable_only = w.Checkbox(description="only rules that one fact change would fire", indent=False)
        self.fixable_only.observe(self._on_change, names="value")
        self.result: Result | None = None
        self.why_not_items: list[WhyNot] = []
        self.graph_text = ""
        self.error = ""
        self._updating = False
        self.controls: dict[str, w.ValueWidget] = {}
        self.unknown: dict[str, w.Checkbox] = {}
        rows = [self._control(spec) for spec in FACTS.values()]
        self.preset = w.Dropdown(options=[_CUSTOM, *self.presets], value=_CUSTOM, description="Preset patient",
                                 style=_DESCRIPTION_STYLE, layout=w.Layout(width="98%"))
        self.preset.observe(self._on_preset, names="value")
        self.panels = {name: w.HTML() for name in ("outcome", "flags", "avoided", "derived", "trace", "why_not")}
        self.graph = w.Output(layout=w.Layout(border="1px solid #ddd"))
        self.widget = self._layout(rows)
        self.set_facts(patient or {})

    # -- public -------------------------------------------------------------------------

    def facts(self) -> dict[str, object]:
        """The patient the controls describe, as Python values (unknown numbers are None)."""
        out: dict[str, object] = {}
        for name, spec in FACTS.items():
            value = self.controls[name].value
            if spec.kind == "set":
                value = frozenset(value)
            elif spec.kind == "number" and self.unknown[name].value:
                value = None
            out[name] = value
        return out

    def set_facts(self, facts: Mapping[str, object]) -> None:
        """Set every control from these facts (missing facts take their defaults) and refresh once."""
        from .facts import validate_patient

        patient = validate_patient(dict(facts))
        self._updating = True
        try:
            for name, spec in FACTS.items():
                self._set_control(name, spec, patient[name])
        finally:
            self._updating = False
        self.refresh()

    def load_preset(self, label: str) -> None:
        """Show one preset patient (a scenario of the suite) by its label."""
        if label not in self.presets:
            raise KeyError(f"preset: got {label!r}; allowed: {', '.join(self.presets) or 'no presets loaded'}")
        self.preset.value = label

    def load_bundle(self, path: str | Path, as_of: Any = None) -> list[str]:
        """Add every patient of a FHIR R4 bundle file as a preset and show the first; returns their labels.

        Labels are ``"Patient/<id> (<file name>)"``; facts are read by :mod:`lupus_rules.fhir`
        as of ``as_of`` (a date; default today). Resources the import skipped are listed in
        ``bundle_problems``; their provenance per patient label in ``bundle_provenance``.
        """
        from .fhir import read_patients

        patients, problems = read_patients(path, as_of=as_of)
        self.bundle_problems = list(problems)
        labels = []
        for patient in patients:
            label = f"Patient/{patient.patient_id} ({Path(path).name})"
            self.presets[label] = dict(patient.facts)
            self.bundle_provenance[label] = patient.provenance_json()
            labels.append(label)
        self.preset.options = [_CUSTOM, *self.presets]
        if labels:
            self.load_preset(labels[0])
        return labels

    def refresh(self) -> None:
        """Re-evaluate the patient and redraw every panel."""
        try:
            result = evaluate(self.facts(), self.rulebook)
        except LupusRulesError as exc:
            self._show_error(str(exc))
            return
        self.error = ""
        self.result = result
        self.why_not_items = why_not(result, self.rulebook)
        self.graph_text = derivation_graph(result, self.rulebook)
        book = self.rulebook
        self.panels["outcome"].value = outcome_html(result, book)
        self.panels["flags"].value = flags_html(result, book)
        self.panels["avoided"].value = avoided_html(result, book)
        self.panels["derived"].value = derived_html(result, book)
        self.panels["trace"].value = trace_html(result)
        self.panels["why_not"].value = (f"<div style='{_PANEL_STYLE.format(h=360)}'>"
                                        + why_not_html(self.why_not_items, self.fixable_only.value) + "</div>")
        self.graph.outputs = ({"output_type": "display_data", "metadata": {},
                               "data": {"text/markdown": self.graph_markdown, "text/plain": self.graph_text}},)

    @property
    def graph_markdown(self) -> str:
        """The derivation graph as a fenced Mermaid block (what the graph panel displays)."""
        return mermaid_markdown(self.graph_text)

    @property
    def outcome_html(self) -> str:
        """HTML of the outcome panel: preferred agent and recommendations."""
        return self.panels["outcome"].value

    @property
    def flags_html(self) -> str:
        """HTML of the flags panel."""
        return self.panels["flags"].value

    @property
    def avoided_html(self) -> str:
        """HTML of the avoided-agents panel."""
        return self.panels["avoided"].value

    @property
    def derived_html(self) -> str:
        """HTML of the derived-facts panel."""
        return self.panels["derived"].value

    @property
    def trace_html(self) -> str:
        """HTML of the fired-rules panel."""
        return self.panels["trace"].value

    @property
    def why_not_html(self) -> str:
        """HTML of the why-not panel."""
        return self.panels["why_not"].value

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "ScenarioExplorer (interactive widget: needs a running kernel)"
        return bundle

    # -- controls -----------------------------------------------------------------------

    def _control(self, spec: FactSpec) -> w.Widget:
        if spec.kind == "set":
            control = w.SelectMultiple(options=list(spec.allowed), rows=len(spec.allowed),
                                       description=spec.name, style=_DESCRIPTION_STYLE)
        elif spec.kind == "status":
            control = w.Dropdown(options=list(spec.allowed), description=spec.name, style=_DESCRIPTION_STYLE)
        elif spec.kind == "bool":
            control = w.Checkbox(description=spec.name, indent=False)
        else:
            return self._number_control(spec)
        control.tooltip = spec.description
        control.observe(self._on_change, names="value")
        self.controls[spec.name] = control
        return control

    def _number_control(self, spec: FactSpec) -> w.Widget:
        assert spec.minimum is not None and spec.maximum is not None
        seed = self._seed(spec)
        control = w.BoundedFloatText(value=seed, min=spec.minimum, max=spec.maximum, step=0.1,
                                     description=spec.name, style=_DESCRIPTION_STYLE,
                                     layout=w.Layout(width="280px"))
        control.tooltip = spec.description
        unknown = w.Checkbox(value=True, description="unknown", indent=False, layout=w.Layout(width="85px"))
        control.observe(self._on_number, names="value")
        unknown.observe(self._on_change, names="value")
        self.controls[spec.name] = control
        self.unknown[spec.name] = unknown
        unknown.observe(lambda change: setattr(control, "disabled", change["new"]), names="value")
        control.disabled = True
        unit = w.HTML(f"<span style='font-size:85%;white-space:nowrap'>{_e(spec.unit)}</span>")
        return w.HBox([control, unknown, unit])

    def _seed(self, spec: FactSpec) -> float:
        """A sensible value to show while a number is unknown: the first threshold the rules test."""
        for rule in self.rulebook.rules:
            for c in rule.when:
                if c.kind == "fact" and c.fact == spec.name and isinstance(c.value, float):
                    return c.value
        return float(spec.minimum or 0.0)

    def _set_control(self, name: str, spec: FactSpec, value: object) -> None:
        if spec.kind == "set":
            self.controls[name].value = tuple(m for m in spec.allowed if m in value)  # type: ignore[operator]
        elif spec.kind == "number":
            self.unknown[name].value = value is None
            if value is not None:
                self.controls[name].value = float(value)  # type: ignore[arg-type]
        else:
            self.controls[name].value = value

    def _on_number(self, change: dict[str, Any]) -> None:
        """Typing a number means it is known: untick 'unknown' (one refresh only)."""
        if self._updating:
            return
        name = next(n for n, c in self.controls.items() if c is change["owner"])
        if self.unknown[name].value:
            self._updating = True
            self.unknown[name].value = False
            self._updating = False
        self.refresh()

    def _on_change(self, change: dict[str, Any]) -> None:
        if not self._updating:
            self.refresh()

    def _on_preset(self, change: dict[str, Any]) -> None:
        if change["new"] == _CUSTOM:
            return
        try:
            self.set_facts(self.presets[change["new"]])
        except LupusRulesError as exc:
            self._show_error(f"preset {change['new']!r}: {exc}")

    def _show_error(self, message: str) -> None:
        self.error = message
        self.result = None
        self.panels["outcome"].value = f"<div class='lr-error' style='color:#b91c1c'>{_e(message)}</div>"
        for name in ("flags", "avoided", "derived", "trace", "why_not"):
            self.panels[name].value = ""
        self.graph.outputs = ()

    # -- layout -------------------------------------------------------------------------

    def _layout(self, rows: list[w.Widget]) -> w.Widget:
        groups = {"set": "Manifestations", "status": "Drug history", "bool": "Situation", "number": "Measurements"}
        column: list[w.Widget] = []
        for kind, title in groups.items():
            column.append(w.HTML(f"<b>{title}</b>"))
            column += [row for spec, row in zip(FACTS.values(), rows) if spec.kind == kind]
        results = w.VBox([self.panels[n] for n in ("outcome", "flags", "avoided", "derived", "trace")],
                         layout=w.Layout(width="58%", padding="0 0 0 12px"))
        controls = w.VBox(column, layout=w.Layout(width="42%"))
        header = w.HTML(f"<div style='color:#b91c1c'><b>{_e(DISCLAIMER)}</b></div>"
                        + (f"<div class='lr-error' style='color:#b45309'>{_e(self.preset_error)}</div>"
                           if self.preset_error else ""))
        return w.VBox([header, self.preset, w.HBox([controls, results]),
                       w.HBox([w.HTML("<b>Why not</b>&nbsp;&nbsp;"), self.fixable_only]), self.panels["why_not"],
                       w.HTML("<b>Derivation graph</b> (fired path: facts &rarr; rules &rarr; derived facts "
                              "&rarr; recommendations)"), self.graph],
                      layout=w.Layout(width="100%"))


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
            _before_after(row["preferred_before"] or "none", row["preferred_after"] or "none"),
            _list_diff(row["recommendations_before"], row["recommendations_after"]),
            _list_diff(row["flags_before"], row["flags_after"]),
            _list_diff(row["fired_rules_before"], row["fired_rules_after"], only_changes=True),
            ", ".join(f"<span style='white-space:nowrap'>{_e(r)}</span>" for r in row["rules"].split(";") if r),
        ])
    return ("<div class='lr-changes'>"
            + _table(["scenario", "preferred before → after", "recommendations (+ added, − removed)",
                      "flags", "fired rules", "rules responsible"], rows) + "</div>")


def _before_after(before: str, after: str) -> str:
    if before == after:
        return _e(before)
    return f"<s style='color:#b91c1c'>{_e(before)}</s> &rarr; <b style='color:#166534'>{_e(after)}</b>"


def _list_diff(before: str, after: str, only_changes: bool = False) -> str:
    old = [x for x in str(before).split(";") if x]
    new = [x for x in str(after).split(";") if x]
    parts = [f"<span style='color:#166534;white-space:nowrap'>+{_e(x)}</span>" for x in new if x not in old]
    parts += [f"<span style='color:#b91c1c;white-space:nowrap'>&minus;{_e(x)}</span>" for x in old if x not in new]
    if not only_changes:
        parts = [f"<span style='white-space:nowrap'>{_e(x)}</span>" for x in new if x in old] + parts
    return ", ".join(parts) or "<span style='color:#999'>same</span>"


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
        from .authoring import read_scenarios

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
        from .authoring import compare

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


# ---------------------------------------------------------------------------------------
# Batch research helpers


def _version_of(results: pd.DataFrame) -> str:
    versions = sorted(set(results.get("rulebook_version", pd.Series(dtype=str))) - {""})
    return ", ".join(versions) or "unknown"


def preferred_by_manifestation(results: pd.DataFrame, percent: bool = True) -> pd.DataFrame:
    """How often each agent is preferred, per manifestation (a row counts once for each manifestation it has).

    Rows are manifestations (``(none)`` for patients without one), columns the
    preferred agent (``none`` when no agent is preferred); percentages of the
    manifestation's rows when ``percent``, else counts. Rows with an error are left out.
    """
    ok = results[results["error"] == ""] if "error" in results.columns else results
    manifest = ok["manifestations"].fillna("").astype(str).str.split(";")
    frame = pd.DataFrame({"manifestation": manifest, "preferred": ok["preferred"].replace("", "none")})
    frame = frame.explode("manifestation")
    frame["manifestation"] = frame["manifestation"].replace("", "(none)")
    table = pd.crosstab(frame["manifestation"], frame["preferred"])
    if percent:
        table = (table.div(table.sum(axis=1), axis=0) * 100).round(1)
    table.columns.name = "preferred agent"
    return table


def rule_frequency(results: pd.DataFrame) -> pd.DataFrame:
    """How many rows fired each rule, most frequent first (ties by rule id), with the share of rows.

    Rows with an error are left out.
    """
    ok = results[results["error"] == ""] if "error" in results.columns else results
    fired = ok["fired_rules"].astype(str).str.split(";").explode()
    counts = fired[fired != ""].value_counts()
    table = pd.DataFrame({"rows": counts, "percent": (counts / max(len(ok), 1) * 100).round(1)})
    table.index.name = "rule"
    return table.sort_values(["rows", "rule"], ascending=[False, True])


def plot_preferred_by_manifestation(results: pd.DataFrame):
    """Stacked bars: share of each preferred agent per manifestation; rulebook version in the title."""
    import matplotlib.pyplot as plt

    table = preferred_by_manifestation(results)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    table.plot.barh(stacked=True, ax=ax, colormap="tab20", width=0.8)
    ax.set_xlabel("% of generated scenarios with this manifestation")
    ax.set_ylabel("")
    ax.legend(title="preferred agent", bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    ax.set_title(f"Preferred agent per manifestation — rulebook {_version_of(results)}")
    _footer(fig, results)
    fig.tight_layout()
    return fig


def plot_rule_frequency(results: pd.DataFrame, top: int = 20):
    """Horizontal bars: the ``top`` most frequently fired rules; rulebook version in the title."""
    import matplotlib.pyplot as plt

    table = rule_frequency(results).head(top)
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(table) + 1.5))
    ax.barh(table.index[::-1], table["percent"][::-1], color="#d97706")
    ax.set_xlabel("% of generated scenarios in which the rule fired")
    ax.set_title(f"Most frequently fired rules — rulebook {_version_of(results)}")
    _footer(fig, results)
    fig.tight_layout()
    return fig


def _footer(fig: Any, results: pd.DataFrame) -> None:
    fig.text(0.01, 0.005, f"{len(results):,} generated scenarios · rulebook {_version_of(results)} · "
             "Not for clinical use", fontsize=7, color="#555")
