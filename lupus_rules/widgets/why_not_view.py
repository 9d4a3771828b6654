"""The why-not panel: every rule that did not fire, in plain words, changes that alter the preferred agent first.

Not for clinical use. No ipywidgets here; the words come from :mod:`lupus_rules.words`.
"""
from __future__ import annotations

from collections.abc import Mapping

from ..words import PlainWhyNot
from ._html import esc

__all__ = ["why_not_html", "clauses_html"]

_SECTIONS = (
    ("alters", "One change alters the preferred agent"),
    ("fixable", "One change makes the rule fire (preferred agent unchanged)"),
    ("rest", "No single change makes the rule fire"),
)


def _section(item: PlainWhyNot) -> str:
    return "alters" if item.alters_preferred else "fixable" if item.change else "rest"


def clauses_html(marks: tuple[tuple[str, bool], ...]) -> str:
    """One line of a rule's conditions: green ✓ for each that held for this patient, red ✗ otherwise."""
    cells = [f"<span class='lr-clause lr-clause-{'held' if held else 'failed'}' "
             f"style='color:{'#166534' if held else '#b91c1c'};white-space:nowrap'>"
             f"{'&#10003;' if held else '&#10007;'} {esc(text)}</span>" for text, held in marks]
    return f"<div class='lr-clauses' style='font-size:14px'>{' &middot; '.join(cells)}</div>"


def why_not_html(items: list[PlainWhyNot], preferred: str | None,
                 clauses: Mapping[str, tuple[tuple[str, bool], ...]] | None = None) -> str:
    """Three sections (see ``_SECTIONS``), each rule one sentence plus its verified change and effect.

    ``clauses`` (rule id -> :func:`lupus_rules.explain.clause_marks`) adds under each
    rule which of its conditions held for the patient and which did not.
    """
    parts = [f"<div class='lr-why-not'><div>{len(items)} rules did not fire. Each change below was checked by "
             "evaluating the changed patient.</div>"]
    for key, heading in _SECTIONS:
        rows = [i for i in items if _section(i) == key]
        if not rows:
            continue
        parts.append(f"<div class='lr-group-title lr-wn-{key}'>{esc(heading)} ({len(rows)})</div>"
                     "<ul class='lr-whynot' style='padding-left:18px;margin:2px 0'>")
        for item in rows:
            change = ""
            if item.change:
                effect = (f"preferred agent becomes <b>{esc(item.preferred_after or 'none')}</b> "
                          f"(now {esc(preferred or 'none')})" if item.alters_preferred
                          else f"preferred agent stays {esc(preferred or 'none')}")
                change = f"<br><span style='color:#166534'>&rArr; {esc(item.change)}: {effect}</span>"
            parts.append(f"<li data-rule='{esc(item.rule_id)}'><code>{esc(item.rule_id)}</code> "
                         f"{esc(item.title)} did not fire: {esc('; '.join(item.reasons))}{change}"
                         f"{clauses_html(clauses[item.rule_id]) if clauses and item.rule_id in clauses else ''}</li>")
        parts.append("</ul>")
    parts.append("</div>")
    return "".join(parts)
