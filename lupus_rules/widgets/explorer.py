"""The scenario explorer: controls on the left, explanations in tabs, the outcome pinned on the right.

Not for clinical use: a teaching workbench; the outcome pane says so.

Everything fits one screen (1366x768, JupyterLab without sidebar, or the Voila
app): the explorer has a fixed height, the controls scroll inside their
column, and the outcome column never moves while a control is edited. Every
decision is made outside the widgets (``evaluate``, ``why_not``/``words``,
``replay``, ``graph``, ``whatif``, ``presets``); this module wires them up.
Tabs are drawn when shown (a change redraws the outcome and the visible tab;
the others when opened), so an edit costs one evaluation plus one tab.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..errors import LupusRulesError
from ..evaluate import default_rulebook, evaluate
from ..explain import WhyNot, clause_marks, why_not
from ..facts import validate_patient
from ..presets import Preset, default_scenarios_dir, load_presets
from ..result import Result
from ..rulebook import Rulebook
from ..words import PlainWhyNot, plain_why_not
from ._html import STYLE, esc
from .controls import ControlPanel, FactControl, PresetPicker
from .graph_view import GraphView
from .outcome import outcome_html, preferred_html
from .stepper import StepperView
from .suite_add_view import SuiteAddView
from .trace_view import derived_html, trace_html
from .whatif_view import WhatIfView
from .why_not_view import why_not_html

__all__ = ["ScenarioExplorer", "TABS"]

#: The explanation tabs, in order.
TABS: tuple[str, ...] = ("Fired rules", "Step by step", "Why not", "What if", "Derived", "Graph", "Add to suite")
_CONTROLS_PX, _OUTCOME_PX = 360, 276


class ScenarioExplorer:
    """Interactive explorer over one rulebook (default: the shipped one).

    State for tests and scripts: ``controls[fact]`` (see :mod:`.controls`),
    ``picker`` (presets), ``result``, ``why_not_items`` (plain words),
    ``stepper``, ``graph``, ``whatif``, ``suite_add`` (the "Add to suite" form,
    writing into ``suite_dir``, default the shipped scenarios folder), and the
    ``*_html`` properties of the panels (each drawn on demand).
    """

    def __init__(self, rulebook: Rulebook | None = None, patient: Mapping[str, object] | None = None,
                 presets: Mapping[str, list[Preset]] | None = None, height_px: int = 560,
                 suite_dir: str | Path | None = None):
        self.rulebook = rulebook if rulebook is not None else default_rulebook()
        self.suite_dir = Path(suite_dir) if suite_dir is not None else default_scenarios_dir()
        self.height_px = height_px
        self.preset_error = ""
        self.bundle_problems: list[str] = []
        self.bundle_provenance: dict[str, dict[str, Any]] = {}
        if presets is None:
            try:
                presets = load_presets()
            except LupusRulesError as exc:  # a malformed suite must not stop the explorer
                self.preset_error, presets = f"Presets not loaded: {exc}", {}
        self.result: Result | None = None
        self.error = ""
        self._why_not: list[WhyNot] | None = None
        self._plain: list[PlainWhyNot] | None = None
        self._stale: set[str] = set(TABS)
        self.panel = ControlPanel(self.rulebook)
        self.controls: dict[str, FactControl] = self.panel.controls
        self.picker = PresetPicker(presets)
        self.panel.on_change(self._on_edit)
        self.picker.on_pick(self._on_preset)
        self._build_panes()
        self.widget = self._layout()
        self.set_facts(patient or {})

    # -- public -------------------------------------------------------------------------

    def facts(self) -> dict[str, object]:
        """The patient the controls describe, as Python values (unknown numbers are None)."""
        return self.panel.facts()

    def set_facts(self, facts: Mapping[str, object]) -> None:
        """Show these facts (missing ones take their defaults) and refresh once."""
        self.panel.set_facts(validate_patient(dict(facts), self.rulebook.vocabulary))
        self.refresh()

    def load_preset(self, preset_id: str) -> None:
        """Show one preset patient (a scenario of the suite) by its id, as picking it does."""
        self.picker.pick(preset_id)

    def load_bundle(self, path: str | Path, as_of: Any = None) -> list[str]:
        """Add every patient of a FHIR R4 bundle file as a preset and show the first; returns their ids.

        Ids are ``"Patient/<id>"``, grouped as ``FHIR <file name>``; facts are read by
        :mod:`lupus_rules.fhir` as of ``as_of`` (a date; default today). Resources the import
        skipped are listed in ``bundle_problems``; each patient's provenance is in
        ``bundle_provenance`` by preset id.
        """
        from ..fhir import read_patients
        from ..presets import short_label

        patients, problems = read_patients(path, as_of=as_of)
        self.bundle_problems = list(problems)
        presets = []
        for patient in patients:
            ident = f"Patient/{patient.patient_id}"
            description = f"from {Path(path).name}"
            presets.append(Preset(ident, f"FHIR {Path(path).name}", short_label(ident, description), description,
                                  {k: v for k, v in patient.facts.items()}))
            self.bundle_provenance[ident] = patient.provenance_json()
        self.picker.add_group(f"FHIR {Path(path).name}", presets)
        if presets:
            self.load_preset(presets[0].id)
        return [p.id for p in presets]

    def refresh(self) -> None:
        """Re-evaluate the patient; redraw the outcome and the visible tab (the others when opened)."""
        problems = self.panel.errors()
        try:
            if problems:
                raise LupusRulesError("; ".join(problems))
            result = evaluate(self.facts(), self.rulebook)
        except LupusRulesError as exc:
            self._show_error(str(exc))
            return
        self.error = ""
        self.error_html.value = ""
        self.result = result
        self._why_not = self._plain = None
        self.preferred_pane.value = preferred_html(result, self.rulebook)
        self.outcome_pane.value = outcome_html(result, self.rulebook)
        self._stale = set(TABS)
        self._draw(TABS[self.tabs.selected_index or 0])

    @property
    def why_not_items(self) -> list[PlainWhyNot]:
        """Every rule that did not fire, in plain words (changes altering the preferred agent first)."""
        if self._plain is None and self.result is not None:
            self._why_not = why_not(self.result, self.rulebook)
            self._plain = plain_why_not(self.result, self.rulebook, self._why_not)
        return self._plain or []

    @property
    def outcome_html(self) -> str:
        """HTML of the outcome column: preferred agent, then recommendations, flags, avoided agents."""
        return self.preferred_pane.value + self.outcome_pane.value

    @property
    def trace_html(self) -> str:
        """HTML of the fired-rules tab."""
        return self._fresh("Fired rules").value

    @property
    def why_not_html(self) -> str:
        """HTML of the why-not tab."""
        return self._fresh("Why not").value

    @property
    def derived_html(self) -> str:
        """HTML of the derived-facts tab."""
        return self._fresh("Derived").value

    @property
    def graph_svg(self) -> str:
        """The SVG the graph tab shows."""
        self._fresh("Graph")
        return self.graph.svg

    @property
    def stepper_view(self) -> StepperView:
        """The step-by-step replay, loaded with the current result."""
        self._fresh("Step by step")
        return self.stepper

    def show_tab(self, title: str) -> None:
        """Select a tab by title, as a click does."""
        self.tabs.selected_index = TABS.index(title)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "ScenarioExplorer (interactive widget: needs a running kernel)"
        return bundle

    # -- drawing ------------------------------------------------------------------------

    def _build_panes(self) -> None:
        body = self.height_px - 44
        self.preferred_pane = w.HTML()
        self.outcome_pane = w.HTML(layout=w.Layout(flex="1 1 auto", overflow="auto", min_height="0"))
        self.error_html = w.HTML()
        self.trace_pane, self.why_not_pane, self.derived_pane = w.HTML(), w.HTML(), w.HTML()
        self.stepper = StepperView(graph_height_px=max(body - 260, 160))
        self.graph = GraphView(height_px=body - 60)
        self.whatif = WhatIfView()
        self.suite_add = SuiteAddView(self.rulebook, self.suite_dir, self.facts)
        self.tab_widgets: dict[str, w.Widget] = {
            "Fired rules": self.trace_pane, "Step by step": self.stepper.widget, "Why not": self.why_not_pane,
            "What if": self.whatif.widget, "Derived": self.derived_pane, "Graph": self.graph.widget,
            "Add to suite": self.suite_add.widget}
        self.tab_bodies = {}
        for title, child in self.tab_widgets.items():
            holder = w.VBox([child], layout=w.Layout(height=f"{body}px", overflow="auto"))
            holder.add_class("lr-tab-body")
            self.tab_bodies[title] = holder
        self.tabs = w.Tab(children=list(self.tab_bodies.values()), titles=list(TABS),
                          layout=w.Layout(flex="1 1 auto", min_width="380px", height=f"{self.height_px}px"))
        self.tabs.observe(lambda change: self._draw(TABS[change["new"] or 0]), names="selected_index")

    def _fresh(self, title: str) -> w.Widget:
        self._draw(title)
        return self.tab_widgets[title]

    def _draw(self, title: str) -> None:
        result = self.result
        if result is None or title not in self._stale:
            return
        self._stale.discard(title)
        book = self.rulebook
        if title == "Fired rules":
            self.trace_pane.value = trace_html(result, book)
        elif title == "Why not":
            items = self.why_not_items
            shown = {i.rule_id for i in items}
            marks = {r.id: clause_marks(r, result) for r in book.rules if r.id in shown}
            self.why_not_pane.value = why_not_html(items, result.preferred, marks)
        elif title == "Derived":
            self.derived_pane.value = derived_html(result, book)
        elif title == "Graph":
            self.graph.show(result, book)
        elif title == "Step by step":
            self.stepper.load(result, book)
        elif title == "What if":
            self.whatif.show(result)

    def _show_error(self, message: str) -> None:
        self.error = message
        self.result = None
        self.error_html.value = f"<div class='lr-error' style='color:#b91c1c'>{esc(message)}</div>"
        self.preferred_pane.value = ("<div class='lr-outcome'><div class='lr-banner'>Not for clinical use</div>"
                                     "<div>Preferred agent</div><b class='lr-preferred'>–</b></div>")
        self.outcome_pane.value = f"<div class='lr-error' style='color:#b91c1c'>{esc(message)}</div>"

    # -- events -------------------------------------------------------------------------

    def _on_edit(self, name: str) -> None:
        self.picker.mark_edited()
        self.refresh()

    def _on_preset(self, preset: Preset) -> None:
        try:
            self.panel.set_facts(validate_patient(dict(preset.facts), self.rulebook.vocabulary))
        except LupusRulesError as exc:
            self._show_error(f"preset {preset.id!r}: {exc}")
            return
        self.refresh()

    # -- layout -------------------------------------------------------------------------

    def _layout(self) -> w.Widget:
        note = (f"<div class='lr-error' style='color:#b45309'>{esc(self.preset_error)}</div>"
                if self.preset_error else "")
        scroll = w.VBox([self.panel.widget], layout=w.Layout(flex="1 1 auto", overflow="hidden auto",
                                                              min_height="0"))
        scroll.add_class("lr-col-controls")
        left = w.VBox([w.HTML(f"<b style='font-size:15px'>Patient</b>{note}"), self.picker.widget,
                       self.error_html, scroll],
                      layout=w.Layout(width=f"{_CONTROLS_PX}px", min_width=f"{_CONTROLS_PX}px",
                                      height=f"{self.height_px}px", padding="0 6px 0 0"))
        left.add_class("lr-controls")
        right = w.VBox([self.preferred_pane, self.outcome_pane],
                       layout=w.Layout(width=f"{_OUTCOME_PX}px", min_width=f"{_OUTCOME_PX}px",
                                       height=f"{self.height_px}px", padding="0 0 0 8px"))
        right.add_class("lr-outcome-box")
        root = w.VBox([w.HTML(STYLE), w.HBox([left, self.tabs, right], layout=w.Layout(width="100%"))],
                      layout=w.Layout(width="100%"))
        root.add_class("lr-explorer")
        return root
