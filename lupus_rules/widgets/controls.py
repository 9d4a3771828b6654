"""Compact fact controls, grouped as the rulebook groups its facts, and the preset picker.

Not for clinical use. One control per fact the rulebook declares
(``Rulebook.facts``; never a hard-coded list):

* a boolean is a checkbox, a drug status a dropdown of its statuses;
* a set (manifestations) is one toggle button per member: a click toggles that
  member only;
* a number is a slider plus a typed value plus an *unknown* button. Unknown is
  its own state: the box is empty and the slider greyed, and no value is ever
  invented; moving the slider or typing a number makes it known with that
  value, the button (or an empty box) makes it unknown again.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w

from ..errors import PatientValidationError
from ..facts import read_cell
from ..presets import Preset, patient_label
from ..rulebook import Rulebook
from ..vocabulary import FactSpec
from ._html import esc

__all__ = ["group_css", "FactControl", "BoolControl", "StatusControl", "SetControl", "NumberControl",
           "ControlPanel", "PresetPicker", "make_control"]

_LABEL_PX = 120
_ROW = w.Layout(width="100%", margin="1px 0")


def group_css(group: str) -> str:
    """The CSS class of a control group's box: ``lr-group-<group>`` with anything but letters and digits as ``-``."""
    return "lr-group-" + (re.sub(r"[^A-Za-z0-9_-]", "-", group) or "other")


def _label(spec: FactSpec) -> w.HTML:
    # a long name (months_immunosuppression) wraps after an underscore instead of being cut off
    name = esc(spec.name).replace("_", "_<wbr>")
    return w.HTML(f"<span title='{esc(spec.description)}' style='font-size:14px;line-height:1.15;overflow-wrap:anywhere;"
                  f"display:inline-block'>{name}</span>",
                  layout=w.Layout(width=f"{_LABEL_PX}px", min_width=f"{_LABEL_PX}px", overflow="hidden"))


class FactControl:
    """A control of one fact: ``value`` (Python value), ``set`` (silently), ``on_change`` and ``widget``."""

    def __init__(self, spec: FactSpec):
        self.spec = spec
        self.name = spec.name
        self.widget: w.Widget = w.HTML()
        self.error = ""
        self._callbacks: list[Callable[[str], None]] = []
        self._silent = False

    @property
    def value(self) -> object:
        """The fact's value the control shows."""
        raise NotImplementedError

    def set(self, value: object) -> None:
        """Show ``value`` without notifying ``on_change`` callbacks."""
        self._silent = True
        try:
            self._show(value)
        finally:
            self._silent = False

    def _show(self, value: object) -> None:
        raise NotImplementedError

    def on_change(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(fact name)`` after each user change."""
        self._callbacks.append(callback)

    def _changed(self, *_: Any) -> None:
        if not self._silent:
            for callback in self._callbacks:
                callback(self.name)


class BoolControl(FactControl):
    """A checkbox labelled with the fact name (its meaning as the tooltip)."""

    def __init__(self, spec: FactSpec):
        super().__init__(spec)
        self.box = w.Checkbox(description=spec.name, indent=False, layout=w.Layout(width="auto", margin="0"))
        self.box.tooltip = spec.description
        self.box.observe(self._changed, names="value")
        self.widget = self.box

    @property
    def value(self) -> bool:
        """True when ticked."""
        return bool(self.box.value)

    def _show(self, value: object) -> None:
        self.box.value = bool(value)


class StatusControl(FactControl):
    """A dropdown of the rulebook's statuses."""

    def __init__(self, spec: FactSpec):
        super().__init__(spec)
        self.dropdown = w.Dropdown(options=list(spec.allowed), layout=w.Layout(width="150px"))
        self.dropdown.tooltip = spec.description
        self.dropdown.observe(self._changed, names="value")
        self.widget = w.HBox([_label(spec), self.dropdown], layout=_ROW)

    @property
    def value(self) -> str:
        """The chosen status."""
        return str(self.dropdown.value)

    def _show(self, value: object) -> None:
        self.dropdown.value = value


class SetControl(FactControl):
    """One toggle button per member; a click toggles only that member."""

    def __init__(self, spec: FactSpec):
        super().__init__(spec)
        self.buttons = {m: w.ToggleButton(description=m, tooltip=f"{spec.name}: {m}",
                                          layout=w.Layout(width="auto", height="28px"))
                        for m in spec.allowed}
        for button in self.buttons.values():
            button.observe(self._restyle, names="value")
            button.observe(self._changed, names="value")
        self.widget = w.VBox([w.HTML(f"<span title='{esc(spec.description)}'>{esc(spec.name)}</span>"),
                              w.HBox(list(self.buttons.values()), layout=w.Layout(flex_flow="row wrap"))],
                             layout=_ROW)

    def _restyle(self, change: dict[str, Any]) -> None:
        change["owner"].button_style = "info" if change["new"] else ""
        change["owner"].icon = "check" if change["new"] else ""

    @property
    def value(self) -> frozenset[str]:
        """The members toggled on."""
        return frozenset(m for m, b in self.buttons.items() if b.value)

    @property
    def selected(self) -> tuple[str, ...]:
        """The members toggled on, in vocabulary order."""
        return tuple(m for m, b in self.buttons.items() if b.value)

    def toggle(self, member: str) -> None:
        """Toggle one member as a click does (notifies)."""
        if member not in self.buttons:
            raise ValueError(f"{self.name}: got {member!r}; allowed: {', '.join(self.buttons)}")
        self.buttons[member].value = not self.buttons[member].value

    def _show(self, value: object) -> None:
        for m, button in self.buttons.items():
            button.value = m in value  # type: ignore[operator]


class NumberControl(FactControl):
    """Slider + typed value + unknown button; unknown never stands for a value."""

    def __init__(self, spec: FactSpec, seed: float):
        super().__init__(spec)
        assert spec.minimum is not None and spec.maximum is not None
        step = 0.1 if spec.maximum <= 50 else 1.0
        self.slider = w.FloatSlider(value=seed, min=spec.minimum, max=spec.maximum, step=step, readout=False,
                                    continuous_update=False, layout=w.Layout(width="80px"))
        self.text = w.Text(value="", placeholder="unknown", continuous_update=False,
                           layout=w.Layout(width="60px"))
        self.text.tooltip = f"{spec.description} ({spec.allowed_text()})"
        self.clear = w.Button(description="unknown", tooltip=f"set {spec.name} unknown",
                              layout=w.Layout(width="68px", height="28px", padding="0"))
        self.unit = w.HTML(f"<span style='font-size:12px;color:#6b7280;white-space:nowrap'>{esc(spec.unit)}</span>")
        self._known: float | None = None
        self.slider.observe(self._on_slider, names="value")
        self.text.observe(self._on_text, names="value")
        self.clear.on_click(lambda _: self._set_unknown_by_user())
        self.widget = w.HBox([_label(spec), self.slider, self.text, self.clear], layout=_ROW)
        self._style()

    @property
    def value(self) -> float | None:
        """The number, or None when unknown."""
        return self._known

    @property
    def unknown(self) -> bool:
        """Whether the number is unknown."""
        return self._known is None

    def type(self, text: str) -> None:
        """Type ``text`` into the box as a user does (empty = unknown; notifies)."""
        self.text.value = text

    def slide(self, value: float) -> None:
        """Move the slider as a user does (makes the number known; notifies)."""
        self.slider.value = value

    def set_unknown(self) -> None:
        """Press the unknown button as a user does (notifies)."""
        self._set_unknown_by_user()

    def _show(self, value: object) -> None:
        self.error = ""
        self._known = None if value is None else float(value)  # type: ignore[arg-type]
        if self._known is not None:
            self.slider.value = min(max(self._known, self.slider.min), self.slider.max)
        self.text.value = "" if self._known is None else f"{self._known:g}"
        self._style()

    def _style(self) -> None:
        if self._known is None:
            self.slider.add_class("lr-unknown")
            self.clear.button_style = "info"
        else:
            self.slider.remove_class("lr-unknown")
            self.clear.button_style = ""
        self.slider.style.handle_color = "#d1d5db" if self._known is None else "#1d4ed8"

    def _on_slider(self, change: dict[str, Any]) -> None:
        if self._silent:
            return
        self._silent = True
        try:
            self._known = float(change["new"])
            self.text.value = f"{self._known:g}"
            self.error = ""
        finally:
            self._silent = False
        self._style()
        self._changed()

    def _on_text(self, change: dict[str, Any]) -> None:
        if self._silent:
            return
        text = str(change["new"]).strip()
        if text == "":
            self._known, self.error = None, ""
        else:
            parsed = _parse(text, self.spec)
            if isinstance(parsed, str):
                self.error = parsed
                self._changed()
                return
            self._known, self.error = parsed, ""
            self._silent = True
            try:
                self.slider.value = parsed
            finally:
                self._silent = False
        self._style()
        self._changed()

    def _set_unknown_by_user(self) -> None:
        self._silent = True
        try:
            self._known, self.error = None, ""
            self.text.value = ""
        finally:
            self._silent = False
        self._style()
        self._changed()


def _parse(text: str, spec: FactSpec) -> float | str:
    """The typed number as :func:`lupus_rules.facts.read_cell` reads it, or its error (field, value, allowed)."""
    try:
        value = read_cell(spec, text)
    except PatientValidationError as exc:
        return str(exc)
    return float(value)  # type: ignore[arg-type]  # blank text never reaches here


def make_control(spec: FactSpec, rulebook: Rulebook) -> FactControl:
    """The control for one fact of the given kind."""
    if spec.kind == "bool":
        return BoolControl(spec)
    if spec.kind == "status":
        return StatusControl(spec)
    if spec.kind == "set":
        return SetControl(spec)
    return NumberControl(spec, _seed(spec, rulebook))


def _seed(spec: FactSpec, rulebook: Rulebook) -> float:
    """Where the slider rests while the number is unknown: the first threshold the rules test (not a value)."""
    for rule in rulebook.rules:
        for c in rule.when:
            if c.kind == "fact" and c.fact == spec.name and isinstance(c.value, float):
                return c.value
    return float(spec.minimum or 0.0)


class ControlPanel:
    """Every fact control, grouped by the ``group`` the rulebook declares, in declaration order."""

    def __init__(self, rulebook: Rulebook):
        self.rulebook = rulebook
        self.controls: dict[str, FactControl] = {n: make_control(s, rulebook) for n, s in rulebook.facts.items()}
        self.groups: dict[str, tuple[str, ...]] = rulebook.vocabulary.groups()
        self.group_boxes: dict[str, w.VBox] = {}
        children: list[w.Widget] = []
        for group, names in self.groups.items():
            box = w.VBox([w.HTML(f"<div class='lr-group-title'>{esc(group or 'other')}</div>")]
                         + [self.controls[n].widget for n in names], layout=w.Layout(width="100%"))
            box.add_class("lr-group")
            box.add_class(group_css(group))
            self.group_boxes[group] = box
            children.append(box)
        self.widget = w.VBox(children, layout=w.Layout(width="100%"))

    def facts(self) -> dict[str, object]:
        """The patient the controls describe (unknown numbers are None)."""
        return {name: control.value for name, control in self.controls.items()}

    def errors(self) -> list[str]:
        """Typed values refused, each naming field, value and what is allowed."""
        return [c.error for c in self.controls.values() if c.error]

    def set_facts(self, patient: Mapping[str, object]) -> None:
        """Show a validated patient in every control, silently."""
        for name, control in self.controls.items():
            control.set(patient[name])

    def on_change(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(fact name)`` after each user change of any control."""
        for control in self.controls.values():
            control.on_change(callback)


class PresetPicker:
    """Suite file, then scenario (short labels); shows which patient is on screen, ``custom (from <id>)`` after an edit."""

    def __init__(self, presets: Mapping[str, list[Preset]]):
        self.presets = {g: list(p) for g, p in presets.items()}
        self.by_id = {p.id: p for ps in self.presets.values() for p in ps}
        self.current: Preset | None = None
        self.edited = False
        self.group = w.Dropdown(options=["(suite file)", *self.presets], value="(suite file)",
                                layout=w.Layout(width="150px"))
        self.group.tooltip = "scenario suite file"
        self.scenario = w.Dropdown(options=[("(choose a scenario)", "")], value="", layout=w.Layout(width="196px"))
        self.scenario.tooltip = "preset patient from the scenario suite"
        self.label = w.HTML(self._label_html())
        self._callbacks: list[Callable[[Preset], None]] = []
        self.group.observe(self._on_group, names="value")
        self.scenario.observe(self._on_scenario, names="value")
        self.widget = w.VBox([w.HBox([self.group, self.scenario]), self.label], layout=w.Layout(width="100%"))

    @property
    def text(self) -> str:
        """Which patient is shown, in words."""
        return patient_label(self.current, self.edited)

    def on_pick(self, callback: Callable[[Preset], None]) -> None:
        """Call ``callback(preset)`` when the user picks a scenario."""
        self._callbacks.append(callback)

    def pick(self, preset_id: str) -> None:
        """Pick a preset by scenario id, as the user does (notifies)."""
        if preset_id not in self.by_id:
            allowed = ", ".join(list(self.by_id)[:8]) + (" …" if len(self.by_id) > 8 else "")
            raise KeyError(f"preset: got {preset_id!r}; allowed: {allowed or 'no presets loaded'}")
        preset = self.by_id[preset_id]
        self.group.value = preset.group
        self.scenario.value = preset.id

    def add_group(self, group: str, presets: list[Preset]) -> None:
        """Offer more presets under ``group`` (e.g. the patients of a FHIR bundle), replacing a group of that name."""
        self.presets[group] = list(presets)
        self.by_id.update({p.id: p for p in presets})
        self.group.options = ["(suite file)", *self.presets]

    def mark_edited(self) -> None:
        """A fact was edited: the label becomes ``custom (from <id>)``."""
        if not self.edited:
            self.edited = True
            self.label.value = self._label_html()

    def _label_html(self) -> str:
        title = esc(self.current.description) if self.current else "a patient built with the controls"
        return (f"<div class='lr-patient-label' title='{title}' style='white-space:nowrap;overflow:hidden;"
                f"text-overflow:ellipsis'>Patient: <b>{esc(self.text)}</b></div>")

    def _on_group(self, change: dict[str, Any]) -> None:
        group = change["new"]
        options = [("(choose a scenario)", "")] + [(p.label, p.id) for p in self.presets.get(group, [])]
        self.scenario.options = options
        self.scenario.value = ""

    def _on_scenario(self, change: dict[str, Any]) -> None:
        if not change["new"]:
            return
        self.current, self.edited = self.by_id[change["new"]], False
        self.label.value = self._label_html()
        for callback in self._callbacks:
            callback(self.current)
