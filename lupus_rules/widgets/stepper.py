"""The step-by-step tab: replays forward chaining one firing at a time (step model: :mod:`lupus_rules.replay`).

Not for clinical use. A play button and a slider walk the steps; back/step
buttons move one firing; the card says which stratum runs, which rules are
activated, which facts exist so far and which rule fires next and why; the
graph below highlights the rule that just fired and the next one.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..graph import derivation_svg
from ..replay import Step, replay
from ..result import Result
from ..rulebook import Rulebook
from ._html import bullets, esc

__all__ = ["StepperView", "step_html"]


def step_html(step: Step, rulebook: Rulebook) -> str:
    """The card of one step (two columns: what happens, and what exists so far)."""
    def rule(rule_id: str) -> str:
        return f"<code>{esc(rule_id)}</code> {esc(rulebook.rule(rule_id).title)}"

    left = []
    if step.just_fired:
        left.append(f"<div><b>Just fired</b>: {rule(step.just_fired)} &rArr; {', '.join(map(esc, step.concluded))}</div>")
    if step.next_rule:
        left.append(f"<b>Fires next</b> (stratum {step.stratum}): {rule(step.next_rule)}<br>because"
                    f"{bullets(map(esc, step.next_because), 'lr-because')}")
        agenda = [f"<b>{esc(r)}</b> (next)" if r == step.next_rule else esc(r) for r in step.activated]
        left.append(f"<b>Activated</b> (on the agenda, stratum {step.stratum}): {', '.join(agenda)}")
    else:
        left.append("<b>Finished</b>: no activated rule is left in any stratum.")
    def inline(items: tuple[str, ...]) -> str:
        return ", ".join(map(esc, items)) or "<i style='color:#6b7280'>none</i>"

    right = [f"<div><b>Patient facts</b>: {inline(step.facts)}</div>",
             f"<div class='lr-step-derived'><b>Derived so far</b>: {inline(step.derived)}</div>",
             f"<div><b>Recommended so far</b>: {inline(step.recommended)}</div>"]
    if step.flags:
        right.append(f"<div><b>Flags so far</b>: {inline(step.flags)}</div>")
    if step.avoided:
        right.append(f"<div><b>Avoided so far</b>: {inline(step.avoided)}</div>")
    return (f"<div class='lr-step' data-step='{step.number}'><div class='lr-step-headline' "
            f"style='font-weight:bold;font-size:15px'>{esc(step.headline())}</div>"
            "<div style='display:grid;grid-template-columns:58% 40%;gap:2%'>"
            f"<div>{''.join(left)}</div><div>{''.join(right)}</div></div></div>")


class StepperView:
    """Play/slider/back/step controls, the step card and the highlighted graph."""

    def __init__(self, graph_height_px: int):
        self.play = w.Play(value=0, min=0, max=0, step=1, interval=1500, description="play",
                           layout=w.Layout(width="auto"))
        self.slider = w.IntSlider(value=0, min=0, max=0, description="step", continuous_update=True,
                                  layout=w.Layout(width="240px"), style={"description_width": "36px"})
        w.jslink((self.play, "value"), (self.slider, "value"))
        self.back = w.Button(description="back", icon="step-backward", layout=w.Layout(width="84px"))
        self.forward = w.Button(description="step", icon="step-forward", layout=w.Layout(width="84px"))
        self.back.on_click(lambda _: self.go(self.slider.value - 1))
        self.forward.on_click(lambda _: self.go(self.slider.value + 1))
        self.card = w.HTML()
        self.picture = w.HTML(layout=w.Layout(height=f"{graph_height_px}px", overflow="auto"))
        self.picture.add_class("lr-graph-box")
        self.steps: list[Step] = []
        self._result: Result | None = None
        self._rulebook: Rulebook | None = None
        self.slider.observe(self._on_step, names="value")
        self.widget = w.VBox([w.HBox([self.play, self.back, self.forward, self.slider]), self.card, self.picture])
        self.widget.add_class("lr-stepper")

    @property
    def step(self) -> int:
        """The step shown (0 = nothing fired yet)."""
        return int(self.slider.value)

    def load(self, result: Result, rulebook: Rulebook) -> None:
        """Replay ``result`` from step 0."""
        self._result, self._rulebook = result, rulebook
        self.steps = replay(result, rulebook)
        last = len(self.steps) - 1
        self.slider.value = 0
        self.slider.max = self.play.max = last
        self._render()

    def go(self, number: int) -> None:
        """Show step ``number`` (clipped to the replay)."""
        self.slider.value = max(0, min(number, len(self.steps) - 1))

    def _on_step(self, change: dict[str, Any]) -> None:
        self._render()

    def _render(self) -> None:
        if self._result is None or not self.steps:
            return
        k = min(self.step, len(self.steps) - 1)
        self.card.value = step_html(self.steps[k], self._rulebook)
        self.picture.value = ("<div class='lr-graph-picture'>"
                              + derivation_svg(self._result, self._rulebook, step=k, follow=True) + "</div>")
        self.back.disabled = k == 0
        self.forward.disabled = k == len(self.steps) - 1
