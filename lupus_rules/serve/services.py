"""The CDS Hooks services this server offers (discovery), and their prefetch templates.

Prefetch templates ask the EHR for exactly what the FHIR mapping reads:
the patient, their conditions, the observations with a LOINC code the mapping
uses, medication requests/statements and allergies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..fhir.mapping import Mapping

__all__ = ["Service", "services", "discovery", "prefetch_templates", "PREFETCH_KEYS"]

#: Prefetch key -> the FHIR search each fetches (``{{context.patientId}}`` filled in by the EHR or by us).
PREFETCH_KEYS: tuple[str, ...] = ("patient", "conditions", "observations", "medicationRequests",
                                  "medicationStatements", "allergies")


@dataclass(frozen=True)
class Service:
    """One CDS service: its hook, id, title, description and prefetch templates."""

    hook: str
    id: str
    title: str
    description: str
    prefetch: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """The service's entry in the discovery response."""
        return {"hook": self.hook, "id": self.id, "title": self.title, "description": self.description,
                "prefetch": dict(self.prefetch),
                "usageRequirements": "Not for clinical use: a prototyping and teaching rulebook."}


def prefetch_templates(mapping: Mapping) -> dict[str, str]:
    """The prefetch templates, with the observation codes taken from the mapping."""
    loinc = sorted({code for lab in mapping.data["labs"].values() for code in lab["loinc"]}
                   | set(mapping.data["pregnancy_intention"]["loinc"])
                   | set(mapping.data["nephritis_class"]["observation_loinc"]))
    system = mapping.data["systems"]["loinc"][0]
    codes = ",".join(f"{system}|{code}" for code in loinc)
    pid = "{{context.patientId}}"
    return {
        "patient": f"Patient/{pid}",
        "conditions": f"Condition?patient={pid}",
        "observations": f"Observation?patient={pid}&code={codes}",
        "medicationRequests": f"MedicationRequest?patient={pid}",
        "medicationStatements": f"MedicationStatement?patient={pid}",
        "allergies": f"AllergyIntolerance?patient={pid}",
    }


def services(mapping: Mapping) -> dict[str, Service]:
    """The services by id: ``lupus-alternatives`` (patient-view) and ``lupus-order-check`` (order-select)."""
    prefetch = prefetch_templates(mapping)
    return {
        "lupus-alternatives": Service(
            "patient-view", "lupus-alternatives", "Lupus treatment alternatives (not for clinical use)",
            "When a lupus patient's chart opens: the guideline's preferred new agent after methotrexate / "
            "low-dose naltrexone, the recommendations with citations, and agents to avoid.", prefetch),
        "lupus-order-check": Service(
            "order-select", "lupus-order-check", "Lupus order check (not for clinical use)",
            "When a medication is selected for a lupus patient: a warning if the drafted agent is one the "
            "guideline's rules avoid for this patient, with the preferred alternative.", prefetch),
    }


def discovery(mapping: Mapping) -> dict[str, Any]:
    """The body of ``GET /cds-services``."""
    return {"services": [s.to_json() for s in services(mapping).values()]}
