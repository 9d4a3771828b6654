"""Medication history -> agent status facts, glucocorticoid dose and months on the current regimen."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .bundle import PatientResources, resource_key
from .mapping import Mapping
from .provenance import FactProvenance, Source, known, unknown
from .records import agents_of, cc_text, codings, dosages, is_topical, matches_any, medication_concept, record_date

__all__ = ["MedRecord", "medication_records", "agent_statuses", "glucocorticoid_dose", "regimen_start"]

#: When two records of one agent share the latest date, the stronger statement wins.
_TIE_ORDER = ("current", "intolerant", "nonresponse", "contraindicated", "effective", "ambiguous")


@dataclass(frozen=True)
class MedRecord:
    """One medication record (or allergy) read as a statement about one agent."""

    agent: str
    outcome: str                 # a status, or 'ambiguous'
    date: dt.date | None
    source: Source
    resource: Any
    concept: Any
    note: str = ""
    taking: bool | None = None   # taking it now (current), not (stopped/completed), or the record does not say


def medication_records(patient: PatientResources, medications: dict[str, Any], mapping: Mapping) -> list[MedRecord]:
    """Every medication record and drug allergy of a patient, as statements about agents."""
    out: list[MedRecord] = []
    for kind in ("MedicationStatement", "MedicationRequest", "AllergyIntolerance"):
        for resource in patient.of(kind):
            out.extend(_read_record(resource, medications, mapping))
    return out


def _read_record(resource: Any, medications: dict[str, Any], mapping: Mapping) -> list[MedRecord]:
    concept, element = medication_concept(resource, medications)
    if concept is None:
        return []
    agents, where = agents_of(concept, element, is_topical(resource, concept, mapping), mapping)
    if not agents:
        return []
    outcome, elements, note = _outcome(resource, mapping)
    if outcome == "ignore":
        return []
    date, date_element = record_date(resource)
    source = Source(resource_key(resource), tuple(e for e in (where, *elements, date_element) if e))
    records = []
    for agent in agents:
        if agent.max_daily_mg is not None and (_daily_mg(resource) or 0) > agent.max_daily_mg:
            continue                              # e.g. full-dose naltrexone is not LDN
        records.append(MedRecord(agent.fact, outcome, date, source, resource, concept, note, _taking(resource, outcome)))
    return records


def _taking(resource: Any, outcome: str) -> bool | None:
    if resource.get_resource_type() == "AllergyIntolerance":
        return None
    if outcome == "current":
        return True
    return False if resource.status in ("stopped", "completed") else None


def _outcome(resource: Any, mapping: Mapping) -> tuple[str, tuple[str, ...], str]:
    kind = resource.get_resource_type()
    if kind == "AllergyIntolerance":
        verification = {c for _, _, c, _ in codings(resource.verificationStatus, "v")}
        clinical = {c for _, _, c, _ in codings(resource.clinicalStatus, "c")}
        if verification & {"refuted", "entered-in-error"} or clinical & {"inactive", "resolved"}:
            return "ignore", (), ""
        return "intolerant", ("code",), "recorded as an allergy or intolerance"
    table = mapping.data["request_status" if kind == "MedicationRequest" else "statement_status"]
    outcome = table.get(resource.status, "ambiguous")
    if outcome != "stopped":
        return outcome, ("status",), "" if outcome != "ambiguous" else f"status {resource.status!r}"
    return _stop_reason(resource, mapping)


def _stop_reason(resource: Any, mapping: Mapping) -> tuple[str, tuple[str, ...], str]:
    reasons = resource.statusReason
    concepts = reasons if isinstance(reasons, list) else ([reasons] if reasons is not None else [])
    snomed = mapping.systems("snomed")
    for status, spec in mapping.data["stop_reasons"].items():
        for i, cc in enumerate(concepts):
            element = "statusReason" if not isinstance(reasons, list) else f"statusReason[{i}]"
            coded = any(sys in snomed and code in spec.get("snomed", []) for _, sys, code, _ in codings(cc, element))
            if coded or matches_any(mapping.patterns[f"stop:{status}"], cc_text(cc)):
                return status, ("status", element), ""
    return "ambiguous", ("status",), "stopped without a recognised reason (statusReason)"


def agent_statuses(records: list[MedRecord], mapping: Mapping) -> dict[str, FactProvenance]:
    """Per agent with records: the latest record's status (ties: the stronger), or unknown: ambiguous."""
    out: dict[str, FactProvenance] = {}
    for agent in mapping.agents:
        mine = [r for r in records if r.agent == agent]
        if not mine:
            continue
        latest = max(mine, key=lambda r: (r.date or dt.date.min, -_TIE_ORDER.index(r.outcome)))
        sources = [r.source for r in sorted(mine, key=lambda r: r.date or dt.date.min, reverse=True)]
        if latest.outcome == "ambiguous":
            out[agent] = unknown("ambiguous", f"latest record {latest.source.resource}: {latest.note}", *sources)
        else:
            out[agent] = known(latest.outcome, latest.source, *sources, note=latest.note)
    return out


def regimen_start(records: list[MedRecord], statuses: dict[str, FactProvenance],
                  mapping: Mapping) -> tuple[dt.date | None, tuple[Source, ...]]:
    """The latest start among current regimen agents (the last change of the regimen), with its source."""
    starts = []
    for record in records:
        agent = mapping.agents[record.agent]
        status = statuses.get(record.agent)
        if agent.regimen and record.outcome == "current" and status is not None and status.value == "current" \
                and record.date is not None:
            starts.append(record)
    if not starts:
        return None, ()
    latest = max(starts, key=lambda r: r.date)
    return latest.date, (latest.source,)


def glucocorticoid_dose(records: list[MedRecord], mapping: Mapping) -> FactProvenance:
    """prednisone_mg: the summed prednisone-equivalent daily dose of current systemic glucocorticoids."""
    spec = mapping.data["glucocorticoid"]
    mine = [r for r in records if r.agent == spec["status_agent"]]
    current = [r for r in mine if r.outcome == "current"]
    if not mine:
        return unknown("absent", "no systemic glucocorticoid record")
    if not current:
        latest = max(mine, key=lambda r: r.date or dt.date.min)
        if latest.taking is None:
            return unknown("ambiguous", "latest glucocorticoid record does not say whether it is taken",
                           latest.source)
        return known(0.0, latest.source, note="latest systemic glucocorticoid record is stopped or completed")
    total = 0.0
    for record in current:
        mg = _prednisone_mg(record, spec)
        if mg is None:
            return unknown("ambiguous", f"{record.source.resource}: dose not readable in mg "
                           "(dosage doseQuantity, unit mg or tablets of a known strength)", record.source)
        total += mg
    sources = [Source(r.source.resource, (*r.source.elements, "dosage.doseAndRate.doseQuantity", "dosage.timing"))
               for r in current]
    return known(round(total, 3), *sources)


def _prednisone_mg(record: MedRecord, spec: dict[str, Any]) -> float | None:
    ingredient, strength = _ingredient(record.concept, spec)
    if ingredient is None:
        return None
    daily = _daily_mg(record.resource, strength)
    return None if daily is None else daily * float(spec["ingredients"][ingredient]["factor"])


def _ingredient(concept: Any, spec: dict[str, Any]) -> tuple[str | None, float | None]:
    for _, _, code, _ in codings(concept, "c"):
        if code in spec["ingredients"]:
            return code, None
        product = spec.get("products", {}).get(code)
        if product:
            return str(product["ingredient"]), float(product["strength_mg"])
    text = cc_text(concept).lower()
    names = [(c, i["name"]) for c, i in spec["ingredients"].items()]
    for code, name in sorted(names, key=lambda pair: -len(pair[1])):     # methylprednisolone before prednisolone
        if name in text:
            return code, None
    return None, None


_TABLETS = {"tab", "tablet", "tablets", "{tbl}", "{tablet}", "1", "{tab}", "capsule", "{capsule}", "cap"}
_PER_DAY = {"d": 1.0, "h": 24.0, "min": 1440.0, "wk": 1 / 7, "mo": 1 / 30.4375, "a": 1 / 365.25}


def _daily_mg(resource: Any, strength: float | None = None) -> float | None:
    """Daily dose in mg from the first dosage: doseQuantity (mg, or tablets x strength) x frequency per day."""
    for dosage in dosages(resource):
        for dose_rate in dosage.doseAndRate or ():
            quantity = dose_rate.doseQuantity
            if quantity is None or quantity.value is None:
                continue
            unit = (quantity.code or quantity.unit or "").strip().lower()
            if unit == "mg":
                per_dose = float(quantity.value)
            elif unit == "g":
                per_dose = float(quantity.value) * 1000
            elif unit in _TABLETS and strength is not None:
                per_dose = float(quantity.value) * strength
            else:
                return None
            return per_dose * _per_day(dosage)
    return None


def _per_day(dosage: Any) -> float:
    """Doses per day from timing.repeat (frequency per period periodUnit); once daily when not given."""
    repeat = dosage.timing.repeat if dosage.timing is not None else None
    if repeat is None or repeat.periodUnit is None:
        return float(repeat.frequency or 1) if repeat is not None else 1.0
    frequency = float(repeat.frequency or 1)
    period = float(repeat.period or 1)
    return frequency / period * _PER_DAY.get(repeat.periodUnit, 1.0)
