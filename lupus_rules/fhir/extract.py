"""One patient's FHIR resources -> rulebook facts, each with its provenance.

Every fact of the rulebook gets a :class:`~lupus_rules.fhir.provenance.FactProvenance`:
the value and the resources/elements it came from, or ``unknown`` with the
reason (absent, ambiguous, stale). Unknown facts are left out of ``facts``, so
the rulebook's default applies (empty CSV cell). ``as_of`` fixes "today", so the
same bundle always gives the same facts.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .bundle import ParsedBundle, PatientResources, resource_key
from .mapping import Mapping
from .medications import agent_statuses, glucocorticoid_dose, medication_records, regimen_start
from .provenance import FactProvenance, Source, known, unknown
from .records import cc_text, codings, matches_any, record_date

if TYPE_CHECKING:
    from ..rulebook import Rulebook

__all__ = ["PatientFacts", "extract_patient", "extract_bundle"]

_COUNTING_OBSERVATION = {"final", "amended", "corrected"}


@dataclass
class PatientFacts:
    """The facts of one patient read from FHIR, their provenance, and the conditions recognised."""

    patient_id: str
    facts: dict[str, object]
    provenance: dict[str, FactProvenance]
    diagnoses: tuple[str, ...] = ()
    problems: list[str] = field(default_factory=list)

    def provenance_json(self) -> dict[str, Any]:
        """``{fact: provenance}`` as JSON-ready data, in rulebook fact order."""
        return {name: p.to_json() for name, p in self.provenance.items()}


def extract_bundle(parsed: ParsedBundle, mapping: Mapping, as_of: dt.date | None = None,
                   rulebook: Rulebook | None = None) -> list[PatientFacts]:
    """Facts for every patient of a parsed bundle, in the bundle's order."""
    return [extract_patient(p, parsed.medications, mapping, as_of, rulebook) for p in parsed.patients.values()]


def extract_patient(patient: PatientResources, medications: dict[str, Any], mapping: Mapping,
                    as_of: dt.date | None = None, rulebook: Rulebook | None = None) -> PatientFacts:
    """Facts and provenance of one patient as of ``as_of`` (default: today)."""
    from ..evaluate import default_rulebook

    book = rulebook or default_rulebook()
    today = as_of or dt.date.today()
    prov: dict[str, FactProvenance] = {}
    diagnoses = _conditions(patient, mapping, prov, book)
    records = medication_records(patient, medications, mapping)
    prov.update(agent_statuses(records, mapping))
    prov[mapping.data["glucocorticoid"]["fact"]] = glucocorticoid_dose(records, mapping)
    _low_dose_check(prov, mapping)
    start, start_sources = regimen_start(records, prov, mapping)
    prov[mapping.data["months_on_therapy"]["fact"]] = _months(start, start_sources, today, mapping)
    for lab, spec in mapping.data["labs"].items():
        prov[lab], prov[spec["baseline_fact"]] = _lab(patient, lab, spec, start, today, mapping)
    prov[mapping.data["pregnancy_intention"]["fact"]] = _pregnancy(patient, today, mapping)
    ordered = {name: _in_vocabulary(name, prov.get(name), mapping, book) for name in book.facts}
    facts = {name: p.value for name, p in ordered.items() if p.unknown is None}
    return PatientFacts(patient.patient_id, facts, ordered, diagnoses)


def _in_vocabulary(name: str, prov: FactProvenance | None, mapping: Mapping, book: Rulebook) -> FactProvenance:
    """The provenance, or unknown: absent when nothing was found, ambiguous when the value is not allowed."""
    from ..errors import PatientValidationError
    from ..facts import read_cell

    if prov is None:
        return unknown("absent", _absent_note(name, mapping))
    if prov.unknown is None:
        try:
            read_cell(name, prov.value, book.vocabulary)
        except PatientValidationError as exc:
            return unknown("ambiguous", f"value not allowed: {exc}", *prov.sources)
    return prov


def _absent_note(name: str, mapping: Mapping) -> str:
    mapped = set(mapping.agents) | set(mapping.data["labs"])
    return "no record of it in the bundle" if name in mapped else "not read from FHIR by the mapping"


# --- conditions -------------------------------------------------------------------------------


def _condition_counts(condition: Any) -> bool:
    clinical = {c for _, _, c, _ in codings(condition.clinicalStatus, "c")}
    verification = {c for _, _, c, _ in codings(condition.verificationStatus, "v")}
    return not (clinical & {"inactive", "resolved", "remission"} or verification & {"refuted", "entered-in-error"})


def _code_matches(system: str | None, code: str, spec: dict[str, Any], mapping: Mapping) -> bool:
    if system in mapping.systems("snomed"):
        return code in spec.get("snomed", [])
    if system in mapping.systems("icd10"):
        return any(code == c or (c.endswith("*") and code.startswith(c[:-1])) for c in spec.get("icd10", []))
    return False


def _conditions(patient: PatientResources, mapping: Mapping, prov: dict[str, FactProvenance],
                book: Rulebook) -> tuple[str, ...]:
    members: dict[str, dict[str, list[Source]]] = {}
    bools: dict[str, list[Source]] = {}
    diagnoses: list[str] = []
    nephritis: list[Any] = []
    for condition in patient.of("Condition"):
        if not _condition_counts(condition):
            continue
        for name, spec in mapping.data["conditions"].items():
            hits = [p for p, s, c, _ in codings(condition.code, "code") if _code_matches(s, c, spec, mapping)]
            if not hits:
                continue
            diagnoses.append(name)
            source = Source(resource_key(condition), (hits[0], "clinicalStatus"))
            for fact, wanted in spec.get("sets", {}).items():
                for member in wanted:
                    members.setdefault(fact, {}).setdefault(member, []).append(source)
                if "nephritis" in wanted:
                    nephritis.append(condition)
            for fact in spec.get("facts", []):
                bools.setdefault(fact, []).append(source)
    for fact, found in members.items():
        ordered = [m for m in book.facts[fact].allowed if m in found]
        prov[fact] = known(frozenset(ordered), *[s for m in ordered for s in found[m]])
    for fact, sources in bools.items():
        prov[fact] = known(True, *sources)
    _nephritis_class(patient, nephritis, mapping, prov)
    return tuple(dict.fromkeys(diagnoses))


def _nephritis_class(patient: PatientResources, nephritis: list[Any], mapping: Mapping,
                     prov: dict[str, FactProvenance]) -> None:
    """ISN/RPS class from a nephritis Condition's stage or a kidney biopsy Observation (unless a code said so)."""
    if "proliferative_nephritis" in prov:
        return
    spec = mapping.data["nephritis_class"]
    pattern = mapping.patterns["nephritis_class"][0]
    found: list[tuple[str, Source]] = []
    for condition in nephritis:
        for i, stage in enumerate(condition.stage or ()):
            for cls in pattern.findall(cc_text(stage.summary)):
                found.append((cls.upper(), Source(resource_key(condition), (f"stage[{i}].summary",))))
    for obs in patient.of("Observation"):
        is_biopsy = any(c in spec["observation_loinc"] for _, _, c, _ in codings(obs.code, "code")) or \
            any(w.lower() in cc_text(obs.code).lower() for w in spec["observation_text"])
        if is_biopsy:
            text = " | ".join(filter(None, [obs.valueString, cc_text(obs.valueCodeableConcept)]))
            for cls in pattern.findall(text):
                found.append((cls.upper(), Source(resource_key(obs), ("code", "value[x]"))))
    if found:
        proliferative = [s for cls, s in found if cls in spec["proliferative"]]
        prov["proliferative_nephritis"] = known(bool(proliferative), *(proliferative or [s for _, s in found]),
                                                note="ISN/RPS class " + ", ".join(sorted({c for c, _ in found})))
    elif nephritis:
        prov["proliferative_nephritis"] = unknown("absent", "lupus nephritis without an ISN/RPS class",
                                                  *[Source(resource_key(c), ("stage",)) for c in nephritis])


# --- glucocorticoid / regimen -------------------------------------------------------------------


def _low_dose_check(prov: dict[str, FactProvenance], mapping: Mapping) -> None:
    spec = mapping.data["glucocorticoid"]
    status, dose = prov.get(spec["status_agent"]), prov.get(spec["fact"])
    if status and status.value == "current" and dose and dose.value is not None and dose.value > spec["low_dose_max"]:
        prov[spec["status_agent"]] = unknown("ambiguous", f"current glucocorticoid at {dose.value:g} mg/day "
                                             f"prednisone equivalent, above the low-dose range", *status.sources)


def _months(start: dt.date | None, sources: tuple[Source, ...], today: dt.date, mapping: Mapping) -> FactProvenance:
    if start is None:
        return unknown("absent", "no current disease-modifying agent with a start date")
    days = (today - start).days
    if days < 0:
        return unknown("ambiguous", f"current regimen starts after as_of ({start.isoformat()})", *sources)
    months = round(days / float(mapping.data["months_on_therapy"]["days_per_month"]), 1)
    return known(months, *sources, note=f"regimen started {start.isoformat()}")


# --- labs -------------------------------------------------------------------------------------


def _lab_values(patient: PatientResources, spec: dict[str, Any], today: dt.date,
                mapping: Mapping) -> tuple[list[tuple[dt.date, float, Source]], list[Source]]:
    values, unreadable = [], []
    for obs in patient.of("Observation"):
        hit = [p for p, s, c, _ in codings(obs.code, "code") if s in mapping.systems("loinc") and c in spec["loinc"]]
        if not hit or obs.status not in _COUNTING_OBSERVATION:
            continue
        date, date_element = record_date(obs)
        source = Source(resource_key(obs), (hit[0], "valueQuantity", date_element))
        quantity = obs.valueQuantity
        unit = (quantity.code or quantity.unit) if quantity is not None else None
        factor = spec["units"].get(unit) if unit is not None else None
        if date is None or quantity is None or quantity.value is None or factor is None or date > today:
            unreadable.append(source)
            continue
        values.append((date, round(float(quantity.value) * float(factor), 6), source))
    return sorted(values, key=lambda v: v[0]), unreadable


def _lab(patient: PatientResources, lab: str, spec: dict[str, Any], start: dt.date | None, today: dt.date,
         mapping: Mapping) -> tuple[FactProvenance, FactProvenance]:
    values, unreadable = _lab_values(patient, spec, today, mapping)
    if not values:
        reason = "ambiguous" if unreadable else "absent"
        note = "value, unit or date not readable (units allowed: " + ", ".join(spec["units"]) + ")"
        both = unknown(reason, note if unreadable else f"no {lab} observation", *unreadable)
        return both, both
    return _latest(values, today, mapping), _baseline(values, start, mapping)


def _latest(values: list[tuple[dt.date, float, Source]], today: dt.date, mapping: Mapping) -> FactProvenance:
    date, value, source = values[-1]
    same_day = {v for d, v, _ in values if d == date}
    if len(same_day) > 1:
        return unknown("ambiguous", f"different values on {date.isoformat()}", *[s for d, _, s in values if d == date])
    if (today - date).days > int(mapping.data["stale_after_days"]):
        return unknown("stale", f"latest value {value:g} from {date.isoformat()}", source)
    return known(value, source, note=f"latest, {date.isoformat()}")


def _baseline(values: list[tuple[dt.date, float, Source]], start: dt.date | None, mapping: Mapping) -> FactProvenance:
    if start is None:
        return unknown("absent", "no current regimen start to take a baseline at")
    before = [v for v in values if v[0] <= start]
    if not before:
        return unknown("absent", f"no value on or before the regimen start {start.isoformat()}")
    date, value, source = before[-1]
    if (start - date).days > int(mapping.data["baseline_window_days"]):
        return unknown("stale", f"nearest value {value:g} from {date.isoformat()}, "
                       f"{(start - date).days} days before the regimen start", source)
    return known(value, source, note=f"nearest before the regimen start {start.isoformat()}: {date.isoformat()}")


# --- pregnancy intention ----------------------------------------------------------------------


def _pregnancy(patient: PatientResources, today: dt.date, mapping: Mapping) -> FactProvenance:
    spec = mapping.data["pregnancy_intention"]
    found = []
    for obs in patient.of("Observation"):
        hit = [p for p, s, c, _ in codings(obs.code, "code") if s in mapping.systems("loinc") and c in spec["loinc"]]
        if hit and obs.status in _COUNTING_OBSERVATION:
            date, element = record_date(obs)
            found.append((date or dt.date.min, obs, Source(resource_key(obs), (hit[0], "value[x]", element))))
    if not found:
        return unknown("absent", "no pregnancy intention observation")
    date, obs, source = max(found, key=lambda f: f[0])
    if date == dt.date.min or (today - date).days > int(mapping.data["stale_after_days"]):
        return unknown("stale", f"pregnancy intention recorded {date.isoformat() if date != dt.date.min else 'undated'}",
                       source)
    if obs.valueBoolean is not None:
        return known(bool(obs.valueBoolean), source)
    text = " | ".join(filter(None, [obs.valueString, cc_text(obs.valueCodeableConcept)]))
    yes, no = matches_any(mapping.patterns["pregnancy:yes"], text), matches_any(mapping.patterns["pregnancy:no"], text)
    if yes != no:
        return known(yes, source, note=text)
    return unknown("ambiguous", f"answer {text!r}", source)



