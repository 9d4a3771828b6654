"""The what-if tab: pin the current patient, change facts, see both outcomes side by side, differences marked.

Not for clinical use. The comparison itself is :func:`lupus_rules.whatif.compare_outcomes`.
"""
from __future__ import annotations

import ipywidgets as w

from ..result import Result
from ..whatif import OutcomeDiff, compare_outcomes
from ._html import esc, table

__all__ = ["WhatIfView", "whatif_html"]

_NAMES = {"recommendations": "recommendations", "continue": "continue", "cautions": "cautions",
          "flags": "flags", "avoided": "avoided", "fired_rules": "fired rules"}


def whatif_html(diff: OutcomeDiff) -> str:
    """Pinned and current outcome in two columns; changed rows marked, added/removed items coloured."""
    def cell(items: tuple[str, ...], other: tuple[str, ...], css: str) -> str:
        return ", ".join(f"<span class='{css}'>{esc(x)}</span>" if x not in other else esc(x) for x in items) or "–"

    before, after = diff.preferred
    mark = " class='lr-diff-mark'" if diff.preferred_changed else ""
    rows = [[f"<span{mark}>preferred agent</span>", f"<b>{esc(before or 'none')}</b>",
             f"<b class='{'lr-add' if diff.preferred_changed else ''}'>{esc(after or 'none')}</b>"]]
    for d in diff.lists:
        label = _NAMES.get(d.name, d.name)
        label = f"<span class='lr-diff-mark'>{esc(label)}</span>" if not d.same else esc(label)
        rows.append([label, cell(d.before, d.after, "lr-del"), cell(d.after, d.before, "lr-add")])
    facts = "; ".join(f"{esc(n)}: {esc(a)} &rarr; <b>{esc(b)}</b>" for n, a, b in diff.facts) or "none yet"
    verdict = ("<b class='lr-add'>The preferred agent changes.</b>" if diff.preferred_changed
               else "Same outcome." if diff.same else "Same preferred agent; other parts differ (marked).")
    return (f"<div class='lr-whatif'><div>Changed facts: {facts}</div><div>{verdict}</div>"
            + table(["", "pinned patient", "current patient"], rows, font="100%") + "</div>")


class WhatIfView:
    """A pin button and the side-by-side comparison (``pinned`` is the pinned Result or None)."""

    def __init__(self) -> None:
        self.pin = w.Button(description="pin this patient", icon="thumb-tack", layout=w.Layout(width="170px"))
        self.unpin = w.Button(description="unpin", layout=w.Layout(width="80px"), disabled=True)
        self.html = w.HTML("<i>Pin the current patient, then change facts on the left: both outcomes "
                           "appear here side by side.</i>")
        self.pinned: Result | None = None
        self.current: Result | None = None
        self.pin.on_click(lambda _: self.pin_current())
        self.unpin.on_click(lambda _: self.clear())
        self.widget = w.VBox([w.HBox([self.pin, self.unpin]), self.html])

    def pin_current(self) -> None:
        """Pin the patient shown now."""
        self.pinned = self.current
        self.unpin.disabled = self.pinned is None
        self.render()

    def clear(self) -> None:
        """Forget the pinned patient."""
        self.pinned = None
        self.unpin.disabled = True
        self.html.value = "<i>Nothing pinned.</i>"

    def show(self, result: Result) -> None:
        """The current result changed."""
        self.current = result
        self.render()

    def render(self) -> None:
        """Redraw the comparison (nothing to compare until a patient is pinned)."""
        if self.pinned is not None and self.current is not None:
            self.html.value = whatif_html(compare_outcomes(self.pinned, self.current))
