"""Patients read from FHIR as rows ``lupus-rules run`` reads: patient_id, every fact, provenance (JSON)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .extract import PatientFacts

if TYPE_CHECKING:
    from ..rulebook import Rulebook

__all__ = ["PATIENT_ID_COLUMN", "PROVENANCE_COLUMN", "fact_cell", "patient_row", "row_columns"]

PATIENT_ID_COLUMN = "patient_id"
PROVENANCE_COLUMN = "provenance"


def fact_cell(kind: str, value: object) -> str:
    """A fact value as a CSV cell as ``lupus-rules run`` reads it (unknown = empty)."""
    if value is None:
        return ""
    if kind == "set":
        return ";".join(value)  # type: ignore[arg-type]
    if kind == "bool":
        return "true" if value else "false"
    if kind == "number":
        return f"{float(value):g}"  # type: ignore[arg-type]
    return str(value)


def row_columns(rulebook: Rulebook) -> list[str]:
    """Column order: patient_id, every rulebook fact, provenance."""
    return [PATIENT_ID_COLUMN, *rulebook.facts, PROVENANCE_COLUMN]


def patient_row(patient: PatientFacts, rulebook: Rulebook) -> dict[str, str]:
    """One CSV row: unknown facts empty, provenance as compact JSON."""
    row = {PATIENT_ID_COLUMN: f"Patient/{patient.patient_id}"}
    for name, spec in rulebook.facts.items():
        row[name] = fact_cell(spec.kind, patient.facts.get(name))
    row[PROVENANCE_COLUMN] = json.dumps(patient.provenance_json(), separators=(",", ":"), sort_keys=False)
    return row
