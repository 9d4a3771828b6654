"""An evaluation as CDS Hooks 2.0 cards: summary, indicator, source, detail (markdown), overrideReasons.

Cards show ``Result.continue_`` and ``Result.cautions`` when the result has them
(read with ``getattr`` so older results work too). Every card says "Not for
clinical use".
"""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from ..notice import DISCLAIMER

if TYPE_CHECKING:
    from ..fhir.extract import PatientFacts
    from ..result import Result
    from ..rulebook import Rulebook

__all__ = ["SUMMARY_MAX", "OVERRIDE_SYSTEM", "OVERRIDE_REASONS", "patient_cards", "order_cards", "source"]

#: CDS Hooks: summary "<140 characters".
SUMMARY_MAX = 139
OVERRIDE_SYSTEM = "urn:lupus-rules:cds-override-reason"
#: Reasons a clinician may give for overriding a card (sent back in feedback).
OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("not-applicable", "Not applicable to this patient"),
    ("patient-preference", "Patient preference"),
    ("already-addressed", "Already addressed"),
    ("record-incorrect", "The record's data is incorrect or incomplete"),
)


def _summary(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def source(rulebook: Rulebook) -> dict[str, Any]:
    """The card source: the guideline label, and the rulebook version as its topic."""
    name = str(rulebook.meta.get("name", "lupus_rules rulebook"))
    return {"label": f"{name} (lupus_rules, not for clinical use)",
            "topic": {"system": "urn:lupus-rules:rulebook-version", "code": rulebook.version,
                      "display": f"rulebook_version {rulebook.version}"}}


def _card(summary: str, indicator: str, detail: str, rulebook: Rulebook) -> dict[str, Any]:
    return {"uuid": str(uuid.uuid4()), "summary": _summary(summary), "indicator": indicator,
            "detail": detail, "source": source(rulebook),
            "overrideReasons": [{"code": c, "system": OVERRIDE_SYSTEM, "display": d} for c, d in OVERRIDE_REASONS]}


def _name(rulebook: Rulebook, agent: str) -> str:
    found = rulebook.agents.get(agent)
    return found.name if found is not None else agent.replace("_", " ")


def _current_avoided(result: Result, facts: dict[str, object]) -> list[str]:
    return [agent for agent in result.avoided if facts.get(agent) == "current"]


def _detail(result: Result, patient: PatientFacts, rulebook: Rulebook) -> str:
    refs = rulebook.references
    lines = [f"**{DISCLAIMER}**", "", "**Recommendations** (lower rank = stronger):"]
    for rec in result.recommendation_details:
        cites = " ".join(f"[{n}] {refs.get(n, '')}" for n in rec.citations)
        note = f" ({'; '.join(rec.notes)})" if rec.notes else ""
        lines.append(f"- {rec.rank} **{rec.name}**{note}: rules {', '.join(rec.rules)}; {cites}")
    if not result.recommendation_details:
        lines.append("- none")
    kept = [_name(rulebook, a) for a in getattr(result, "continue_", ())]
    if kept:
        lines += ["", "**Continue:** " + ", ".join(kept)]
    cautions = [rulebook.cautions.get(c, c) for c in getattr(result, "cautions", ())]
    if cautions:
        lines += ["", "**Check before starting:**"] + [f"- {text}" for text in cautions]
    if result.avoided:
        lines += ["", "**Avoid:**"] + [f"- {_name(rulebook, a)}: {', '.join(r)}" for a, r in result.avoided.items()]
    if result.flags:
        lines += ["", "**Flags:** " + ", ".join(result.flags)]
    lines += ["", "**Fired rules** (firing order):"] + [f"{i}. {step.describe()}" for i, step in
                                                        enumerate(result.trace, 1)]
    unknown = [f"{name} ({p.unknown})" for name, p in patient.provenance.items()
               if p.unknown in ("ambiguous", "stale")]
    if unknown:
        lines += ["", "**Facts left unknown** (record ambiguous or stale): " + ", ".join(unknown)]
    lines += ["", f"Patient/{patient.patient_id}; rulebook_version {result.rulebook_version}."]
    return "\n".join(lines)


def patient_cards(result: Result, patient: PatientFacts, rulebook: Rulebook) -> list[dict[str, Any]]:
    """patient-view: one card with the preferred new agent, plus a warning per current agent that is avoided."""
    avoided_now = _current_avoided(result, patient.facts)
    kept = [a for a in getattr(result, "continue_", ()) if not rulebook.agents[a].foundation]
    if result.preferred:
        summary = f"Lupus: consider {_name(rulebook, result.preferred)} (preferred new agent)"
    elif kept:
        summary = "Lupus: no new agent; continue " + ", ".join(_name(rulebook, a) for a in kept)
    else:
        summary = "Lupus: no new agent preferred by the rulebook; see details"
    if len(summary) >= 140:  # CDS Hooks: summary under 140 characters
        summary = summary[:138].rstrip(" ,;") + "…"
    cards = [_card(summary, "warning" if avoided_now else "info", _detail(result, patient, rulebook), rulebook)]
    for agent in avoided_now:
        rules = ", ".join(result.avoided[agent])
        cards.append(_card(f"Lupus: current {_name(rulebook, agent)} is avoided for this patient ({rules})",
                           "warning", f"**{DISCLAIMER}**\n\nThe rules {rules} avoid {_name(rulebook, agent)} "
                           f"for this patient; it is recorded as current.", rulebook))
    return cards


def order_cards(result: Result, patient: PatientFacts, rulebook: Rulebook,
                drafted: dict[str, str]) -> list[dict[str, Any]]:
    """order-select: a warning per drafted order whose agent is avoided (``drafted``: agent -> order id)."""
    cards = []
    for agent, order in drafted.items():
        if agent not in result.avoided:
            continue
        rules = ", ".join(result.avoided[agent])
        instead = f"; preferred instead: {_name(rulebook, result.preferred)}" if result.preferred else ""
        card = _card(f"Lupus: drafted {_name(rulebook, agent)} is avoided ({rules}){instead}", "warning",
                     f"Drafted order {order}.\n\n" + _detail(result, patient, rulebook), rulebook)
        card["suggestions"] = [{"label": f"Remove the drafted {_name(rulebook, agent)} order",
                                "uuid": str(uuid.uuid4()),
                                "actions": [{"type": "delete", "description": f"Remove {order}",
                                             "resourceId": [order]}]}]
        card["selectionBehavior"] = "at-most-one"
        cards.append(card)
    return cards
