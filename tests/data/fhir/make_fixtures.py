"""Writes the hand-written FHIR R4 fixture bundles of tests/data/fhir/ (run from the repository root).

Every resource is spelled out here so a reader can see what each test asserts about.
Not real patients; not for clinical use.
"""
from __future__ import annotations

import json
from pathlib import Path

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
HERE = Path(__file__).parent


def cc(system: str, code: str, display: str = "", text: str | None = None) -> dict:
    out: dict = {"coding": [{"system": system, "code": code, **({"display": display} if display else {})}]}
    if text:
        out["text"] = text
    return out


def patient(pid: str) -> dict:
    return {"fullUrl": f"urn:uuid:{pid}", "resource": {"resourceType": "Patient", "id": pid, "gender": "female",
                                                        "birthDate": "1990-04-02"}}


def entry(resource: dict) -> dict:
    return {"fullUrl": f"http://example.org/fhir/{resource['resourceType']}/{resource['id']}", "resource": resource}


def condition(rid: str, pid: str, code: dict, stage: str | None = None) -> dict:
    r = {"resourceType": "Condition", "id": rid, "subject": {"reference": f"Patient/{pid}"}, "code": code,
         "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active")}
    if stage:
        r["stage"] = [{"summary": {"text": stage}}]
    return entry(r)


def obs(rid: str, pid: str, loinc: str, when: str, value: float | None = None, unit: str = "",
        text: str | None = None, status: str = "final") -> dict:
    r = {"resourceType": "Observation", "id": rid, "status": status, "code": cc(LOINC, loinc),
         "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when}
    if value is not None:
        r["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    if text is not None:
        r["valueCodeableConcept"] = {"text": text}
    return entry(r)


def dose(mg: float | None = None, tablets: float | None = None, per_day: int = 1, route: dict | None = None) -> list:
    quantity = {"value": mg, "unit": "mg", "code": "mg", "system": "http://unitsofmeasure.org"} if mg is not None \
        else {"value": tablets, "unit": "tablet", "code": "{tbl}", "system": "http://unitsofmeasure.org"}
    d = {"timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
         "doseAndRate": [{"doseQuantity": quantity}]}
    if route:
        d["route"] = route
    return [d]


def statement(rid: str, pid: str, med: dict, status: str, start: str, reason: dict | None = None,
              dosage: list | None = None) -> dict:
    r = {"resourceType": "MedicationStatement", "id": rid, "status": status, "medicationCodeableConcept": med,
         "subject": {"reference": f"Patient/{pid}"}, "effectivePeriod": {"start": start}}
    if reason:
        r["statusReason"] = [reason]
    if dosage:
        r["dosage"] = dosage
    return entry(r)


def request(rid: str, pid: str, med: dict | None, status: str, authored: str, reason: dict | None = None,
            dosage: list | None = None, med_ref: str | None = None) -> dict:
    r = {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
         "subject": {"reference": f"Patient/{pid}"}, "authoredOn": authored}
    if med is not None:
        r["medicationCodeableConcept"] = med
    if med_ref:
        r["medicationReference"] = {"reference": med_ref}
    if reason:
        r["statusReason"] = reason
    if dosage:
        r["dosageInstruction"] = dosage
    return entry(r)


def nephritis_labs() -> dict:
    """ln1: class IV nephritis on mycophenolate since 2025-06-01, labs before/after; ln2: class V, stale/odd labs."""
    e = [patient("ln1"),
         condition("ln1-ln", "ln1", cc(SCT, "36402006", "SLE glomerulonephritis syndrome, WHO class IV")),
         statement("ln1-mmf", "ln1", cc(RX, "68149", "mycophenolate mofetil"), "active", "2025-06-01"),
         statement("ln1-hcq", "ln1", cc(RX, "5521", "hydroxychloroquine"), "active", "2020-03-01"),
         statement("ln1-mtx", "ln1", cc(RX, "6851", "methotrexate"), "stopped", "2024-01-10",
                   reason={"text": "Adverse event: hepatotoxicity"}),
         request("ln1-pred", "ln1", cc(RX, "8640", "prednisone"), "active", "2025-06-01", dosage=dose(mg=7.5)),
         obs("ln1-egfr-old", "ln1", "62238-1", "2024-01-01", 80, "mL/min/{1.73_m2}"),
         obs("ln1-egfr-base", "ln1", "62238-1", "2025-05-20", 72, "mL/min/{1.73_m2}"),
         obs("ln1-egfr-now", "ln1", "98979-8", "2025-12-01", 58, "mL/min/{1.73_m2}"),
         obs("ln1-upcr-base", "ln1", "2890-2", "2025-05-25", 3.5, "g/g"),
         obs("ln1-upcr-now", "ln1", "2890-2", "2025-12-01", 2800, "mg/g"),
         obs("ln1-preg", "ln1", "86645-9", "2025-11-01", text="No"),
         patient("ln2"),
         condition("ln2-ln", "ln2", cc(ICD, "M32.14", "Glomerular disease in SLE"), stage="ISN/RPS class V"),
         request("ln2-aza", "ln2", cc(RX, "1256", "azathioprine"), "stopped", "2024-02-01",
                 reason=cc(SCT, "266721009", "Absent response to treatment")),
         request("ln2-voclo", "ln2", {"text": "Lupkynis 7.9 mg oral capsule"}, "active", "2025-09-01"),
         obs("ln2-egfr", "ln2", "33914-3", "2023-03-01", 50, "mL/min/{1.73_m2}"),
         obs("ln2-upcr-a", "ln2", "2890-2", "2025-12-10", 1.1, "g/g"),
         obs("ln2-upcr-b", "ln2", "2890-2", "2025-12-10", 1.9, "g/g"),
         obs("ln2-upcr-unit", "ln2", "2890-2", "2025-12-20", 4.0, "mmol/L"),
         obs("ln2-bad", "ln2", "2890-2", "2025-12-21", 1.0, "g/g"),
         obs("orphan", "nobody", "2890-2", "2025-12-21", 1.0, "g/g")]
    e[-1]["resource"]["subject"] = {"reference": "urn:uuid:not-in-bundle"}
    e[-2]["resource"]["valueQuantity"]["value"] = "one point nine"      # invalid: reported, not fatal
    return {"resourceType": "Bundle", "id": "nephritis-labs", "type": "collection", "entry": e}


def medication_history() -> dict:
    """mh1: topical vs oral tacrolimus, allergy, stop reasons, a Medication reference, glucocorticoid doses, LDN."""
    topical_route = cc(SCT, "6064005", "Topical route")
    med = {"resourceType": "Medication", "id": "rtx", "code": cc(RX, "121191", "rituximab")}
    e = [patient("mh1"),
         {"fullUrl": "http://example.org/fhir/Medication/rtx", "resource": med},
         condition("mh1-bsle", "mh1", cc(SCT, "239889005", "Bullous systemic lupus erythematosus")),
         condition("mh1-g6pd", "mh1", cc(ICD, "D55.0", "Anemia due to G6PD deficiency")),
         request("mh1-tac-top", "mh1", cc(RX, "42316", "tacrolimus"), "active", "2025-08-01",
                 dosage=[{"route": topical_route, "text": "apply thinly twice daily"}]),
         request("mh1-tac-oral", "mh1", cc(RX, "42316", "tacrolimus"), "completed", "2023-01-01"),
         entry({"resourceType": "AllergyIntolerance", "id": "mh1-hcq-allergy", "patient": {"reference": "Patient/mh1"},
                "code": cc(RX, "5521", "hydroxychloroquine"), "recordedDate": "2022-05-05",
                "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active")}),
         statement("mh1-dapsone", "mh1", cc(RX, "3108", "dapsone"), "stopped", "2024-03-01",
                   reason={"text": "lack of efficacy"}),
         request("mh1-belim", "mh1", cc(RX, "1092437", "belimumab"), "on-hold", "2025-09-01"),
         request("mh1-rtx", "mh1", None, "active", "2025-10-15", med_ref="Medication/rtx"),
         request("mh1-mp", "mh1", cc(RX, "6902", "methylprednisolone"), "active", "2025-10-15",
                 dosage=dose(mg=4, per_day=2)),
         request("mh1-pred", "mh1", cc(RX, "312615", "predniSONE 20 MG Oral Tablet"), "active", "2025-10-15",
                 dosage=dose(tablets=1)),
         statement("mh1-ldn", "mh1", cc(RX, "7243", "naltrexone"), "stopped", "2024-06-01",
                   reason={"text": "side effect: vivid dreams"}, dosage=dose(mg=4.5)),
         statement("mh1-naltrexone-full", "mh1", cc(RX, "7243", "naltrexone"), "active", "2025-11-01",
                   dosage=dose(mg=50)),
         obs("mh1-preg", "mh1", "86645-9", "2025-12-01", text="Yes, I want to become pregnant")]
    return {"resourceType": "Bundle", "id": "medication-history", "type": "collection", "entry": e}


if __name__ == "__main__":
    for name, bundle in (("nephritis_labs", nephritis_labs()), ("medication_history", medication_history())):
        (HERE / f"{name}.json").write_text(json.dumps(bundle, indent=1) + "\n", encoding="utf-8")
