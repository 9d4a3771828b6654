"""FHIR R4 in: Bundles (or CDS Hooks prefetch) -> patient facts with provenance.

Not for clinical use. The mapping is data (``lupus_rules/fhir/mapping.yaml``),
checked against the rulebook's fact vocabulary; resources are parsed with the
``fhir.resources`` R4B models, and an invalid resource is reported, not fatal.

    from lupus_rules import fhir
    patients = fhir.read_patients("bundle.json", as_of=datetime.date(2026, 1, 1))
    patients[0].facts, patients[0].provenance["egfr"].to_json()
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from .bundle import BundleError, ParsedBundle, PatientResources, read_bundle, read_bundle_file, read_resources
from .extract import PatientFacts, extract_bundle, extract_patient
from .mapping import DEFAULT_MAPPING_FILE, Mapping, MappingError, load_mapping
from .provenance import UNKNOWN_REASONS, FactProvenance, Source
from .table import PATIENT_ID_COLUMN, PROVENANCE_COLUMN, patient_row, row_columns

if TYPE_CHECKING:
    from ..rulebook import Rulebook

__all__ = [
    "BundleError", "MappingError", "Mapping", "DEFAULT_MAPPING_FILE", "load_mapping",
    "ParsedBundle", "PatientResources", "read_bundle", "read_bundle_file", "read_resources",
    "PatientFacts", "FactProvenance", "Source", "UNKNOWN_REASONS", "extract_bundle", "extract_patient",
    "PATIENT_ID_COLUMN", "PROVENANCE_COLUMN", "patient_row", "row_columns", "read_patients",
]


def read_patients(path: str | Path, as_of: dt.date | None = None, mapping: Mapping | None = None,
                  rulebook: Rulebook | None = None) -> tuple[list[PatientFacts], list[str]]:
    """Facts of every patient in one bundle file, and the problems found (invalid resources)."""
    parsed = read_bundle_file(path)
    patients = extract_bundle(parsed, mapping or load_mapping(rulebook=rulebook), as_of, rulebook)
    return patients, parsed.problems
