"""The outcome pane: preferred agent, recommendations, continue/cautions, flags, avoided agents.

Not for clinical use: the pane always says so. Pure HTML functions of a
:class:`~lupus_rules.result.Result` (no ipywidgets here).
"""
from __future__ import annotations

from ..result import DISCLAIMER, Result
from ..rulebook import Rulebook
from ..whatif import outcome_list
from ._html import bullets, esc

__all__ = ["preferred_html", "outcome_html", "flags_html", "avoided_html", "EXTRA_LISTS"]

#: Result fields shown when a Result has them (added by the clinical model): field -> heading.
EXTRA_LISTS: dict[str, str] = {"continue": "Continue", "cautions": "Cautions"}


def preferred_html(result: Result, rulebook: Rulebook) -> str:
    """The banner and the preferred agent: the part of the outcome that is always in view."""
    preferred = result.preferred
    name = rulebook.agents[preferred].name if preferred in rulebook.agents else _no_new_start(result, rulebook)
    return (f"<div class='lr-outcome'><div class='lr-banner'>Not for clinical use</div>"
            f"<div style='margin-top:4px;color:#374151'>Preferred agent</div>"
            f"<div><b class='lr-preferred'>{esc(preferred or 'none')}</b></div>"
            f"<div style='color:#4b5563'>{esc(name)}</div></div>")


def _no_new_start(result: Result, rulebook: Rulebook) -> str:
    """Why no agent is preferred: a disease-modifying agent continued, or none at all."""
    kept = [code for code in outcome_list(result, "continue") or []
            if code in rulebook.agents and not rulebook.agents[code].foundation]
    return f"no new start: {', '.join(kept)} continued" if kept else "no disease-modifying agent"


def outcome_html(result: Result, rulebook: Rulebook) -> str:
    """Recommendations (rank, rules, references), then continue/cautions when present, flags, avoided."""
    items = []
    for rec in result.recommendation_details:
        cites = "".join(f"<span title='{esc(rulebook.references.get(c, ''))}'>[{c}]</span>" for c in rec.citations)
        agent = f"<b>{esc(rec.agent)}</b>" if rec.agent == result.preferred else esc(rec.agent)
        note = f"<br><span style='color:#6b7280'>{esc('; '.join(rec.notes))}</span>" if rec.notes else ""
        items.append(f"<span class='lr-rec' title='{esc(rec.name)}; rules {esc(', '.join(rec.rules))}'>"
                     f"{agent}</span> <span style='color:#6b7280'>rank {rec.rank} {cites}</span>{note}")
    parts = [f"<div class='lr-outcome-details'><b>Recommendations</b>{bullets(items, 'lr-recommendations')}"]
    for field, heading in EXTRA_LISTS.items():
        values = outcome_list(result, field)
        if values is not None:
            parts.append(f"<b>{heading}</b>{bullets(_extra_items(field, values, rulebook), 'lr-' + field)}")
    parts.append(flags_html(result, rulebook))
    parts.append(avoided_html(result, rulebook))
    parts.append(f"<div style='color:#6b7280;font-size:12px;margin-top:6px'>Rulebook {esc(result.rulebook_version)}."
                 f" {esc(DISCLAIMER)}</div></div>")
    return "".join(parts)


def _extra_items(field: str, values: list[str], rulebook: Rulebook) -> list[str]:
    """Agents to continue as codes with their names as tooltips; cautions in words with their codes as tooltips."""
    if field == "cautions":
        return [f"<span title='{esc(code)}'>{esc(rulebook.cautions.get(code, code))}</span>" for code in values]
    return [f"<code title='{esc(rulebook.agents[code].name if code in rulebook.agents else code)}'>{esc(code)}</code>"
            for code in values]


def flags_html(result: Result, rulebook: Rulebook) -> str:
    """The flags raised, each with its meaning as a tooltip."""
    items = [f"<code title='{esc(rulebook.flags.get(f, ''))}'>{esc(f)}</code>" for f in result.flags]
    return f"<div class='lr-flags'><b>Flags</b>{bullets(items)}</div>"


def avoided_html(result: Result, rulebook: Rulebook) -> str:
    """Each avoided agent once, with the rules that say so (title as a tooltip)."""
    items = []
    for agent, rules in result.avoided.items():
        why = ", ".join(f"<span title='{esc(rulebook.rule(r).title)}'>{esc(r)}</span>" for r in rules)
        items.append(f"<code>{esc(agent)}</code> &larr; {why}")
    return f"<div class='lr-avoided'><b>Avoided</b>{bullets(items)}</div>"
