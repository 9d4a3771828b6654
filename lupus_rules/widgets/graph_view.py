"""The graph tab: the SVG derivation graph (:mod:`lupus_rules.graph`) with unfired rules, zoom and full screen.

Not for clinical use. The picture is plain SVG text in an HTML widget, so
JupyterLab and the Voila app show exactly the same thing.
"""
from __future__ import annotations

import re
from typing import Any

import ipywidgets as w

from ..graph import derivation_svg
from ..result import Result
from ..rulebook import Rulebook

__all__ = ["GraphView", "scaled_svg", "ZOOMS"]

#: Zoom choices (label, factor); 100 % keeps every label at lupus_rules.graph.FONT_PX.
ZOOMS: tuple[tuple[str, float], ...] = (("50 %", 0.5), ("75 %", 0.75), ("100 %", 1.0), ("125 %", 1.25),
                                        ("150 %", 1.5))


def scaled_svg(svg: str, factor: float) -> str:
    """The SVG drawn ``factor`` times its size (its width and height attributes; the viewBox stays)."""
    if factor == 1.0:
        return svg

    def scale(match: re.Match[str]) -> str:
        return f"{match.group(1)}='{float(match.group(2)) * factor:.0f}'"

    head, _, rest = svg.partition(">")
    return re.sub(r"\b(width|height)='([0-9.]+)'", scale, head, count=2) + ">" + rest


class GraphView:
    """Toolbar (unfired rules, zoom, full screen) above the picture; ``show`` draws a result."""

    def __init__(self, height_px: int):
        self.height_px = height_px
        self.show_unfired = w.Checkbox(description="also rules that did not fire", indent=False,
                                       layout=w.Layout(width="auto"))
        self.zoom = w.Dropdown(options=list(ZOOMS), value=1.0, description="zoom",
                               layout=w.Layout(width="150px"), style={"description_width": "40px"})
        self.fullscreen = w.ToggleButton(description="full screen", icon="expand", layout=w.Layout(width="120px"))
        self.picture = w.HTML(layout=w.Layout(height=f"{height_px}px", overflow="auto"))
        self.picture.add_class("lr-graph-box")
        legend = w.HTML("<span style='font-size:13px;color:#4b5563'>facts &rarr; rules by stratum &rarr; "
                        "derived facts &rarr; outcome; hover a box for its full text</span>")
        self.widget = w.VBox([w.HBox([self.show_unfired, self.zoom, self.fullscreen]), legend, self.picture])
        self.widget.add_class("lr-graph-view")
        self.svg = ""
        self._result: Result | None = None
        self._rulebook: Rulebook | None = None
        self.show_unfired.observe(self._redraw, names="value")
        self.zoom.observe(self._redraw, names="value")
        self.fullscreen.observe(self._on_fullscreen, names="value")

    def show(self, result: Result, rulebook: Rulebook) -> None:
        """Draw the derivation of ``result`` (fired path, plus unfired rules when ticked)."""
        self._result, self._rulebook = result, rulebook
        self._redraw()

    def _redraw(self, *_: Any) -> None:
        if self._result is None:
            return
        self.svg = derivation_svg(self._result, self._rulebook, include_not_fired=self.show_unfired.value)
        self.picture.value = f"<div class='lr-graph-picture'>{scaled_svg(self.svg, self.zoom.value)}</div>"

    def _on_fullscreen(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.widget.add_class("lr-fullscreen")
            self.picture.layout.height = "calc(100vh - 70px)"
            self.fullscreen.description = "exit full screen"
        else:
            self.widget.remove_class("lr-fullscreen")
            self.picture.layout.height = f"{self.height_px}px"
            self.fullscreen.description = "full screen"
