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
from pathlib import Path
from typing import Any

import ipywidgets as w

from .evaluate import default_rulebook, evaluate
from .errors import LupusRulesError
from .explain import WhyNot, derivation_graph, why_not
from .facts import FACTS, FactSpec
from .result import DISCLAIMER, Result
from .rulebook import Rulebook

__all__ = [
    "ScenarioExplorer",
    "load_presets",
    "mermaid_markdown",
]

_CUSTOM = "(custom patient)"
_DESCRIPTION_STYLE = {"description_width": "190px"}
_PANEL_STYLE = "max-height:{h}px;overflow:auto;border:1px solid #ddd;padding:4px"


# ---------------------------------------------------------------------------------------
# Presets


def default_scenarios_dir() -> Path:
    """The repository's ``scenarios/`` folder (next to the package in a source checkout)."""
    return Path(__file__).resolve().parent.parent / "scenarios"


def load_presets(folder: str | Path | None = None) -> dict[str, dict[str, object]]:
    """Preset patients from the scenario suite CSVs: label -> raw facts (CSV cells).

    The label is the scenario id plus its description when the CSV has one;
    only columns naming a fact are kept. A missing folder gives no presets.
    """
    import pandas as pd

    folder = Path(folder) if folder is not None else default_scenarios_dir()
    presets: dict[str, dict[str, object]] = {}
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for index, row in frame.iterrows():
            presets[_preset_label(path, int(index), row)] = {k: row[k] for k in FACTS if k in row}
    return presets


def _preset_label(path: Path, index: int, row: Mapping[str, str]) -> str:
    ident = next((row[k] for k in ("id", "scenario_id", "scenario", "name") if row.get(k)), f"{path.stem}#{index + 1}")
    text = next((row[k] for k in ("description", "title", "label") if row.get(k)), "")
    return f"{ident}: {text}" if text else str(ident)


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
             _e(", ".join(f"{k}={_fmt(v)}" for k, v in step.matched.items()) or "every patient"),
             _e(",".join(map(str, step.citation)))]
            for i, step in enumerate(result.trace, start=1)]
    return ("<div class='lr-trace'>Fired rules (firing order):"
            + _table(["#", "rule", "title", "matched facts", "refs"], rows) + "</div>")


def why_not_html(items: list[WhyNot]) -> str:
    """Each rule that did not fire: the first failed condition, the others, and a verified fix."""
    rows = []
    for item in items:
        others = "; ".join(f.text for f in item.failed[1:])
        fix = (f"<span style='color:#166534'>{_e(item.fix.describe())} &rarr; preferred "
               f"{_e(item.fix.preferred_after or 'none')}</span>" if item.fix else "<span style='color:#999'>none</span>")
        rows.append([f"<code style='white-space:nowrap'>{_e(item.rule_id)}</code>", _e(item.title), _e(item.first_failed.text), _e(others), fix])
    fixable = sum(1 for i in items if i.fix)
    return (f"<div class='lr-why-not'>Why not: {len(items)} rules did not fire; "
            f"{fixable} would fire after one fact change (each checked by re-evaluation)."
            + _table(["rule", "title", "first failed condition", "other failed conditions",
                      "single change that makes it fire"], rows) + "</div>")


def _fmt(value: object) -> str:
    if isinstance(value, tuple):
        return "{" + ",".join(map(str, value)) + "}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


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
        self.presets = dict(presets) if presets is not None else load_presets()
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
                                        + why_not_html(self.why_not_items) + "</div>")
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
                                     layout=w.Layout(width="330px"))
        control.tooltip = spec.description
        unknown = w.Checkbox(value=True, description="unknown", indent=False, layout=w.Layout(width="90px"))
        control.observe(self._on_number, names="value")
        unknown.observe(self._on_change, names="value")
        self.controls[spec.name] = control
        self.unknown[spec.name] = unknown
        unknown.observe(lambda change: setattr(control, "disabled", change["new"]), names="value")
        control.disabled = True
        unit = w.HTML(f"<span style='font-size:85%;white-space:nowrap'>{_e(spec.unit)}</span>",
                      layout=w.Layout(width="130px"))
        return w.HBox([control, unit, unknown])

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
        header = w.HTML(f"<div style='color:#b91c1c'><b>{_e(DISCLAIMER)}</b></div>")
        return w.VBox([header, self.preset, w.HBox([controls, results]),
                       w.HTML("<b>Why not</b>"), self.panels["why_not"],
                       w.HTML("<b>Derivation graph</b> (fired path: facts &rarr; rules &rarr; derived facts "
                              "&rarr; recommendations)"), self.graph],
                      layout=w.Layout(width="100%"))
