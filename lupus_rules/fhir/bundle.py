"""Read FHIR R4 JSON (a Bundle, a resource, or CDS Hooks prefetch) into validated models grouped by patient.

Each resource is validated on its own with the ``fhir.resources`` R4B models
(which read R4 JSON); an invalid or unsupported one is reported in
``problems`` and skipped, never fatal to the rest. Resources are assigned to a
patient through ``subject`` / ``patient`` references, resolved by
``Patient/<id>`` or by the entry's ``fullUrl`` (Synthea writes ``urn:uuid:``).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LupusRulesError

__all__ = ["BundleError", "PatientResources", "ParsedBundle", "USED_TYPES", "MAX_BUNDLE_BYTES", "read_bundle_file",
           "read_bundle", "read_resources", "resource_key"]

#: The resource types the mapping reads; others are skipped silently (counted in ``skipped``).
USED_TYPES: tuple[str, ...] = ("Patient", "Condition", "Observation", "MedicationRequest",
                               "MedicationStatement", "AllergyIntolerance", "Medication")
_SUBJECT = {"AllergyIntolerance": "patient"}
#: A bundle file larger than this is refused (a Synthea record is ~1 MB).
MAX_BUNDLE_BYTES = 256 * 1024 * 1024


class BundleError(LupusRulesError, ValueError):
    """A file or document that is not a FHIR Bundle or resource at all (names the source)."""


@dataclass
class PatientResources:
    """One patient's validated resources, by type (each a ``fhir.resources`` R4B model)."""

    patient_id: str
    by_type: dict[str, list[Any]] = field(default_factory=dict)

    def of(self, resource_type: str) -> list[Any]:
        """This patient's resources of one type (empty list if none)."""
        return self.by_type.get(resource_type, [])


@dataclass
class ParsedBundle:
    """Patients found, shared Medication resources, and one line per resource that could not be used."""

    source: str
    patients: dict[str, PatientResources] = field(default_factory=dict)
    medications: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    skipped: int = 0


def resource_key(resource: Any) -> str:
    """``Type/id`` of a model (``Type/(no id)`` when it has none)."""
    return f"{resource.get_resource_type()}/{resource.id or '(no id)'}"


def read_bundle_file(path: str | Path) -> ParsedBundle:
    """Read one JSON file (a Bundle or a single resource); :class:`BundleError` if it is not FHIR JSON."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_BUNDLE_BYTES:
            raise BundleError(f"{file}: larger than {MAX_BUNDLE_BYTES // 2**20} MiB; split the bundle")
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{file}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{file}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return read_bundle(data, str(file))


def read_bundle(data: object, source: str = "bundle") -> ParsedBundle:
    """Read a parsed JSON document: a Bundle (entries), or one resource."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise BundleError(f"{source}: not a FHIR resource (a JSON object with resourceType); "
                          f"got {type(data).__name__}")
    return read_resources(_entries(data, source), source)


def _entries(data: dict[str, Any], where: str) -> Iterator[tuple[str, str | None, object]]:
    """``(where, fullUrl, resource)`` for every resource, descending into nested Bundles."""
    if data.get("resourceType") != "Bundle":
        yield where, None, data
        return
    entries = data.get("entry") or []
    if not isinstance(entries, list):
        yield f"{where} Bundle.entry", None, entries
        return
    for i, entry in enumerate(entries):
        place = f"{where} entry[{i}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
            yield from _entries(resource, place)
        else:
            yield place, entry.get("fullUrl") if isinstance(entry, dict) else None, resource


def read_resources(items: Iterable[tuple[str, str | None, object]], source: str) -> ParsedBundle:
    """Validate each ``(where, fullUrl, resource dict)`` and group the resources by patient."""
    parsed = ParsedBundle(source)
    aliases: dict[str, str] = {}
    pending: list[tuple[str, Any]] = []
    for where, full_url, raw in items:
        model = _validate(where, raw, parsed)
        if model is None:
            continue
        kind = model.get_resource_type()
        if kind == "Patient":
            pid = model.id or (full_url or where)
            parsed.patients.setdefault(pid, PatientResources(pid)).by_type.setdefault("Patient", []).append(model)
            # urn:uuid:<id> too: Synthea (and many exporters) reference patients by it
            aliases.update({f"Patient/{pid}": pid, f"urn:uuid:{pid}": pid, **({full_url: pid} if full_url else {})})
        elif kind == "Medication":
            for alias in filter(None, (f"Medication/{model.id}" if model.id else None, full_url)):
                parsed.medications[alias] = model
        else:
            pending.append((where, model))
    for where, model in pending:
        _assign(where, model, parsed, aliases)
    return parsed


def _validate(where: str, raw: object, parsed: ParsedBundle) -> Any | None:
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    if not isinstance(raw, dict) or not isinstance(raw.get("resourceType"), str):
        parsed.problems.append(f"{where}: not a resource (no resourceType)")
        return None
    kind = raw["resourceType"]
    if kind not in USED_TYPES:
        parsed.skipped += 1
        return None
    try:
        return get_fhir_model_class(kind).model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or "(resource)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        parsed.problems.append(f"{where} {kind}/{raw.get('id', '(no id)')}: invalid {loc}: {first.get('msg')}{more}")
    except (ValueError, TypeError) as exc:
        parsed.problems.append(f"{where} {kind}/{raw.get('id', '(no id)')}: invalid: {exc}")
    return None


def _assign(where: str, model: Any, parsed: ParsedBundle, aliases: dict[str, str]) -> None:
    kind = model.get_resource_type()
    ref = getattr(model, _SUBJECT.get(kind, "subject"), None)
    target = aliases.get(ref.reference) if ref is not None and ref.reference else None
    if target is None and ref is not None and ref.reference and ref.reference.startswith("Patient/"):
        target = ref.reference.split("/", 1)[1]     # a patient not in this document (prefetch without Patient)
        parsed.patients.setdefault(target, PatientResources(target))
    if target is None:
        parsed.problems.append(f"{where} {resource_key(model)}: no patient: its "
                               f"{_SUBJECT.get(kind, 'subject')} reference "
                               f"{getattr(ref, 'reference', None)!r} names no Patient in the bundle")
        return
    parsed.patients[target].by_type.setdefault(kind, []).append(model)
