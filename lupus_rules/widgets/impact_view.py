"""The impact of a rule edit on the suite, as an author reads it: changed scenarios, before → after, pass → FAIL.

:func:`impact_html` renders an :class:`~lupus_rules.authoring.impact.Impact` (one
row per changed scenario: expectations before → after, the preferred agent, each
changed outcome list with + added / − removed, fired rules, rules responsible);
:class:`ImpactView` is the widget around it with the "outcome changes only" filter.
Not for clinical use.
"""
from __future__ import annotations

import ipywidgets as w

from ..authoring.impact import OUTCOME_FIELDS, Impact
from ._html import esc as _e
from ._html import table as _table

__all__ = ["ImpactView", "impact_html", "summary_html", "before_after_html", "list_diff_html", "IMPACT_STYLE"]

_LISTS = tuple(f for f in OUTCOME_FIELDS if f != "preferred")
_FAIL_BADGE = ("<span class='lr-pass-fail' style='background:#b91c1c;color:#fff;font-weight:bold;padding:0 5px;"
               "border-radius:3px;white-space:nowrap'>pass → FAIL</span>")

#: Style of the impact view (text at least 14 px, for projection).
IMPACT_STYLE = """
<style>
.lr-impact, .lr-impact .widget-html-content, .lr-impact .widget-label, .lr-impact label { font-size: 14px; }
.lr-impact .widget-html-content { line-height: 1.35; }
.lr-impact-table table { width: 100%; }
.lr-impact-table td, .lr-impact-table th { border-bottom: 1px solid #e5e7eb; }
.lr-impact-table th { background: #f3f4f6; }
.lr-impact-scroll { overflow-y: auto !important; }
</style>
"""


def before_after_html(before: str, after: str) -> str:
    """``before → after`` with the old value struck through in red and the new in green (one value when equal)."""
    if before == after:
        return _e(before)
    return f"<s style='color:#b91c1c'>{_e(before)}</s> &rarr; <b style='color:#166534'>{_e(after)}</b>"


def list_diff_html(before: str, after: str, only_changes: bool = False) -> str:
    """Items of two ``;``-joined lists: kept plain, ``+added`` green, ``−removed`` red (kept ones left out on request)."""
    old = [x for x in str(before).split(";") if x]
    new = [x for x in str(after).split(";") if x]
    parts = [f"<span style='color:#166534;white-space:nowrap'>+{_e(x)}</span>" for x in new if x not in old]
    parts += [f"<span style='color:#b91c1c;white-space:nowrap'>&minus;{_e(x)}</span>" for x in old if x not in new]
    if not only_changes:
        parts = [f"<span style='white-space:nowrap'>{_e(x)}</span>" for x in new if x in old] + parts
    return ", ".join(parts) or "<span style='color:#6b7280'>same</span>"


def summary_html(impact: Impact) -> str:
    """The one-line count: changed scenarios, outcome vs trace-only, pass → FAIL, suite failures before → after."""
    c = impact.counts
    fail = (f"<b style='color:#b91c1c'>{c['pass_to_fail']} pass → FAIL</b>" if c["pass_to_fail"]
            else "0 pass → FAIL")
    fixed = f", {c['fail_to_pass']} FAIL → pass" if c["fail_to_pass"] else ""
    return (f"<div class='lr-impact-summary'><b>{c['changed']} of {c['total']} scenarios changed</b>: "
            f"{c['outcome']} outcome, {c['trace']} trace-only &middot; {fail}{fixed} &middot; suite failures "
            f"{c['failing_before']} → {c['failing_after']} of {c['checked']} checked</div>")


def impact_html(impact: Impact, outcome_only: bool = True) -> str:
    """The changed scenarios as a table (outcome changes only, by default), pass → FAIL rows first."""
    shown = impact.shown(outcome_only)
    hidden = len(impact.rows) - len(shown)
    note = (f"<div style='color:#6b7280'>{hidden} trace-only change{'s' if hidden != 1 else ''} hidden "
            f"(only the fired rules differ): untick <i>outcome changes only</i> to list "
            f"{'them' if hidden != 1 else 'it'}.</div>" if hidden else "")
    if shown.empty:
        empty = "No scenario of the suite changes outcome." if outcome_only else "No scenario of the suite changes."
        return f"<div class='lr-impact-table'><div>{empty}</div>{note}</div>"
    rows = [_row(record) for record in shown.to_dict("records")]
    headers = ["scenario", "expectations", "preferred", "what changed (+ added, − removed)", "rules responsible"]
    return f"<div class='lr-impact-table'>{_table(headers, rows, font='14px')}{note}</div>"


def _row(r: dict) -> list[str]:
    description = str(r["description"])
    short = description if len(description) <= 60 else description[:57] + "…"
    scenario = (f"<code style='font-size:14px'>{_e(r['scenario_id'])}</code><br>"
                f"<span style='color:#4b5563' title='{_e(description)}'>{_e(short)}</span>")
    changes = []
    for f in _LISTS:
        if r[f"{f}_before"] != r[f"{f}_after"]:
            before, after = (_agents(r[f"{f}_before"]), _agents(r[f"{f}_after"])) if f == "avoided" else (
                r[f"{f}_before"], r[f"{f}_after"])
            changes.append(f"<b>{_e(f)}</b>: {list_diff_html(before, after, only_changes=True)}")
    if r["fired_rules_before"] != r["fired_rules_after"]:
        changes.append("<span style='color:#4b5563'>fired: "
                       f"{list_diff_html(r['fired_rules_before'], r['fired_rules_after'], only_changes=True)}"
                       "</span>")
    rules = ", ".join(f"<span style='white-space:nowrap'>{_e(x)}</span>" for x in str(r["rules"]).split(";") if x)
    return [scenario, _expectation(r),
            before_after_html(r["preferred_before"] or "none", r["preferred_after"] or "none"),
            "<br>".join(changes) or "<span style='color:#6b7280'>same</span>", rules]


def _agents(cell: str) -> str:
    return ";".join(x.split(":", 1)[0].strip() for x in str(cell).split(";") if x)


def _expectation(r: dict) -> str:
    transition = r["expectation"]
    if transition == "pass → FAIL":
        first = str(r["mismatches_after"]).split("; expect_")[0]
        first = first if len(first) <= 90 else first[:87] + "…"
        return (f"{_FAIL_BADGE}<br><span style='color:#b91c1c' title='{_e(r['mismatches_after'])}'>"
                f"{_e(first)}</span>")
    if transition == "FAIL → pass":
        return "<span style='color:#166534;font-weight:bold;white-space:nowrap'>FAIL → pass</span>"
    if transition == "FAIL → FAIL":
        return f"<span style='color:#b91c1c' title='{_e(r['mismatches_after'])}'>FAIL (before too)</span>"
    if transition == "pass":
        return "<span style='color:#166534'>pass</span>"
    return f"<span style='color:#6b7280'>{_e(transition)}</span>"


class ImpactView:
    """The impact widget: summary, an "outcome changes only" checkbox (on by default) and the table.

    :meth:`show` takes a new :class:`Impact`; :meth:`hold` keeps the last one and
    says why it is not updated (an edit the loader refused never reaches it).
    """

    def __init__(self) -> None:
        self.impact: Impact | None = None
        self.outcome_only = w.Checkbox(value=True, description="outcome changes only", indent=False,
                                       layout=w.Layout(width="auto"))
        self.summary = w.HTML()
        self.status = w.HTML()
        self.table = w.HTML(layout=w.Layout(width="100%"))
        self.outcome_only.observe(lambda _: self._render(), names="value")
        scroll = w.Box([self.table], layout=w.Layout(max_height="560px", width="100%"))
        scroll.add_class("lr-impact-scroll")
        self.widget = w.VBox([w.HTML(IMPACT_STYLE), self.summary, w.HBox([self.outcome_only, self.status]), scroll],
                             layout=w.Layout(width="100%"))
        self.widget.add_class("lr-impact")

    def show(self, impact: Impact) -> None:
        """Display a new impact."""
        self.impact = impact
        self.status.value = ""
        self._render()

    def hold(self, reason: str) -> None:
        """Keep showing the last impact, with a note why it is not updated."""
        self.status.value = f"<span class='lr-impact-held' style='color:#92400e'>{_e(reason)}</span>"

    @property
    def table_html(self) -> str:
        """HTML of the table of changed scenarios as displayed."""
        return self.table.value

    def _render(self) -> None:
        if self.impact is None:
            self.summary.value, self.table.value = "", ""
            return
        self.summary.value = summary_html(self.impact)
        self.table.value = impact_html(self.impact, self.outcome_only.value)
