"""Small readers over ``fhir.resources`` models: codings, dates, texts, medication identity and route."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from .mapping import AgentCodes, Mapping

__all__ = ["codings", "cc_text", "to_date", "matches_any", "record_date", "medication_concept",
           "is_topical", "agents_of", "dosages"]


def codings(cc: Any, element: str) -> Iterator[tuple[str, str | None, str, str]]:
    """``(element path, system, code, display)`` of each coding of a CodeableConcept."""
    for i, coding in enumerate(getattr(cc, "coding", None) or ()):
        if coding.code:
            yield f"{element}.coding[{i}]", coding.system, coding.code, coding.display or ""


def cc_text(cc: Any) -> str:
    """A CodeableConcept's text and every display, joined (for pattern matching)."""
    if cc is None:
        return ""
    parts = [cc.text or ""] + [c.display or "" for c in (cc.coding or ())]
    return " | ".join(p for p in parts if p)


def to_date(value: object) -> dt.date | None:
    """A FHIR date/dateTime/instant (model value or text, partial dates allowed) as a date."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value)
    match = re.match(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", text)
    if not match:
        return None
    year, month, day = match.group(1), match.group(2) or "01", match.group(3) or "01"
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def matches_any(patterns: tuple[re.Pattern[str], ...], text: str) -> bool:
    """Whether any pattern is found in ``text``."""
    return any(p.search(text) for p in patterns)


def record_date(resource: Any) -> tuple[dt.date | None, str]:
    """The start date of a medication record or allergy, and the element it came from."""
    kind = resource.get_resource_type()
    if kind == "MedicationStatement":
        period = resource.effectivePeriod
        candidates = [("effectivePeriod.start", period.start if period else None),
                      ("effectiveDateTime", resource.effectiveDateTime), ("dateAsserted", resource.dateAsserted)]
    elif kind == "MedicationRequest":
        validity = resource.dispenseRequest.validityPeriod if resource.dispenseRequest else None
        candidates = [("dispenseRequest.validityPeriod.start", validity.start if validity else None),
                      ("authoredOn", resource.authoredOn)]
    elif kind == "AllergyIntolerance":
        candidates = [("onsetDateTime", resource.onsetDateTime), ("recordedDate", resource.recordedDate)]
    else:
        candidates = [("effectiveDateTime", getattr(resource, "effectiveDateTime", None)),
                      ("effectivePeriod.start", getattr(getattr(resource, "effectivePeriod", None), "start", None)),
                      ("issued", getattr(resource, "issued", None))]
    for element, value in candidates:
        if to_date(value) is not None:
            return to_date(value), element
    return None, ""


def medication_concept(resource: Any, medications: dict[str, Any]) -> tuple[Any, str]:
    """The CodeableConcept naming the drug of a record, and its element path (resolving Medication references)."""
    if resource.get_resource_type() == "AllergyIntolerance":
        return resource.code, "code"
    if resource.medicationCodeableConcept is not None:
        return resource.medicationCodeableConcept, "medicationCodeableConcept"
    ref = resource.medicationReference
    if ref is not None and ref.reference:
        if ref.reference.startswith("#"):
            for contained in resource.contained or ():
                if f"#{contained.id}" == ref.reference and contained.get_resource_type() == "Medication":
                    return contained.code, f"contained[{ref.reference}].code"
        medication = medications.get(ref.reference)
        if medication is not None:
            return medication.code, f"medicationReference -> {ref.reference}.code"
    return None, ""


def dosages(resource: Any) -> list[Any]:
    """The Dosage list of a MedicationRequest (dosageInstruction) or MedicationStatement (dosage)."""
    kind = resource.get_resource_type()
    if kind == "MedicationRequest":
        return list(resource.dosageInstruction or ())
    if kind == "MedicationStatement":
        return list(resource.dosage or ())
    return []


def is_topical(resource: Any, concept: Any, mapping: Mapping) -> bool:
    """Whether a record is topical: a topical route code, or topical words in its drug name or route text."""
    routes = mapping.data["topical"].get("route_snomed", [])
    texts = [cc_text(concept)]
    for dosage in dosages(resource):
        if dosage.route is not None:
            if any(code in routes for _, _, code, _ in codings(dosage.route, "route")):
                return True
            texts.append(cc_text(dosage.route))
        texts.append(dosage.text or "")
    return matches_any(mapping.patterns["topical"], " | ".join(texts))


def agents_of(concept: Any, element: str, topical: bool, mapping: Mapping) -> tuple[list[AgentCodes], str]:
    """The agents a drug concept names (RxNorm code first, else a whole-word name) and the element that said so."""
    rxnorm = mapping.systems("rxnorm")
    found: list[AgentCodes] = []
    where = ""
    for path, system, code, _ in codings(concept, element):
        if system in rxnorm and mapping.agents_for_code(code):
            found, where = mapping.agents_for_code(code), path
            break
    if not found:
        text = cc_text(concept)
        found = [a for a in mapping.agents.values() if matches_any(a.names, text)]
        where = f"{element}.text/display" if found else ""
    if len(found) <= 1:
        return found, where
    wanted = "topical" if topical else "systemic"
    return [a for a in found if a.route in (wanted, "any")] or found, where
