"""The explorer's "Add to suite" tab: write the patient on screen as a scenario row, with chosen expectations.

Not for clinical use. Every decision is :func:`lupus_rules.authoring.suite_rows.add_scenario`'s:
it evaluates the patient, pins the chosen outcomes, loads the whole suite with the new row
before writing, and refuses (with the suite loader's own message) a duplicate id, a file
without a column the patient needs, or a row that checks nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import ipywidgets as w

from ..authoring.suite_rows import PINNABLE, add_scenario
from ..errors import LupusRulesError
from ..rulebook import Rulebook
from ._html import esc

__all__ = ["SuiteAddView", "DEFAULT_PINS"]

#: Outcomes ticked by default: what a reviewer most wants pinned.
DEFAULT_PINS: tuple[str, ...] = ("preferred", "avoided", "flags")


class SuiteAddView:
    """A form (file, id, description, outcomes to pin) and an "Add to suite" button.

    ``facts`` is called when the button is pressed, so the row holds the patient
    shown at that moment. ``status`` says what was written, or why nothing was.
    """

    def __init__(self, rulebook: Rulebook, folder: str | Path, facts: Callable[[], Mapping[str, object]]):
        self.rulebook = rulebook
        self.folder = Path(folder)
        self._facts = facts
        files = sorted(p.name for p in self.folder.glob("*.csv")) if self.folder.is_dir() else []
        wide = w.Layout(width="98%")
        self.file = w.Combobox(options=files, value=files[-1] if files else "", description="File",
                               placeholder="name.csv (new or existing)", ensure_option=False, layout=wide)
        self.scenario_id = w.Text(description="Id", placeholder="e.g. RA30-short-name", layout=wide)
        self.description = w.Textarea(description="Why", placeholder="what this row shows, and why it is right",
                                      layout=w.Layout(width="98%", height="64px"))
        self.pins = {name: w.Checkbox(value=name in DEFAULT_PINS, description=name, indent=False,
                                      layout=w.Layout(width="140px")) for name in PINNABLE}
        self.button = w.Button(description="Add to suite", button_style="primary", icon="plus")
        self.status = w.HTML()
        self.button.on_click(lambda _: self.add())
        note = w.HTML("<div style='font-size:14px'>Pin the outcomes this row must keep; the row is checked "
                      "with the whole suite before it is written. Not for clinical use.</div>")
        self.widget = w.VBox([note, self.file, self.scenario_id, self.description,
                              w.HTML("<b style='font-size:14px'>Pin</b>"),
                              w.HBox(list(self.pins.values()), layout=w.Layout(flex_flow="row wrap")),
                              self.button, self.status])
        self.widget.add_class("lr-suite-add")

    def add(self) -> bool:
        """Write the row; True when written. The status line names the file and row, or the problem."""
        name = self.file.value.strip()
        if not name.endswith(".csv") or "/" in name or "\\" in name:
            return self._say(f"File: got {name!r}; allowed: a file name ending in .csv in {self.folder}", False)
        pins = tuple(p for p, box in self.pins.items() if box.value)
        try:
            added = add_scenario(self.folder / name, self._facts(), self.scenario_id.value,
                                 self.description.value, rulebook=self.rulebook, pin=pins)
        except LupusRulesError as exc:
            return self._say(str(exc), False)
        pinned = ", ".join(f"{c}={v}" for c, v in added.row.items() if c.startswith("expect_")) or "nothing"
        return self._say(f"Added {added.row['scenario_id']} to {added.path.name}: pinned {pinned}", True)

    def _say(self, message: str, ok: bool) -> bool:
        colour = "#166534" if ok else "#b91c1c"
        self.status.value = f"<div class='lr-suite-status' style='color:{colour};font-size:14px'>{esc(message)}</div>"
        return ok
