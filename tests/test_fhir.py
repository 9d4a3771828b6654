"""FHIR R4 -> facts with provenance: the fixture bundles, the mapping's checks, invalid resources."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from lupus_rules import fhir
from lupus_rules.evaluate import default_rulebook

DATA = Path(__file__).parent / "data" / "fhir"
AS_OF = dt.date(2026, 1, 1)


def _patients(name: str, as_of: dt.date = AS_OF) -> tuple[dict[str, fhir.PatientFacts], list[str]]:
    found, problems = fhir.read_patients(DATA / name, as_of=as_of)
    return {p.patient_id: p for p in found}, problems


def _resources(prov: fhir.FactProvenance) -> list[str]:
    return [s.resource for s in prov.sources]


@pytest.fixture(scope="module")
def nephritis():
    return _patients("nephritis_labs.json")


@pytest.fixture(scope="module")
def history():
    return _patients("medication_history.json")


def test_every_rulebook_fact_has_provenance(nephritis, history):
    facts = list(default_rulebook().facts)
    for patient in [*nephritis[0].values(), *history[0].values()]:
        assert list(patient.provenance) == facts
        for name, prov in patient.provenance.items():
            assert (prov.unknown is None) == (name in patient.facts)
            assert prov.unknown in (None, *fhir.UNKNOWN_REASONS)
            if prov.unknown is None:
                assert prov.sources, f"{patient.patient_id} {name} known without a source"


def test_nephritis_labs_latest_and_baseline_at_regimen_start(nephritis):
    ln1 = nephritis[0]["ln1"]
    assert ln1.facts["manifestations"] == frozenset({"nephritis"})
    assert ln1.facts["proliferative_nephritis"] is True
    assert ln1.facts["mycophenolate"] == "current"
    assert ln1.facts["methotrexate"] == "intolerant"          # stopped, reason text "Adverse event"
    assert (ln1.facts["egfr"], ln1.facts["egfr_baseline"]) == (58.0, 72.0)
    assert _resources(ln1.provenance["egfr"]) == ["Observation/ln1-egfr-now"]
    assert _resources(ln1.provenance["egfr_baseline"]) == ["Observation/ln1-egfr-base"]   # not the 2024 value
    assert (ln1.facts["upcr"], ln1.facts["upcr_baseline"]) == (2.8, 3.5)                # 2800 mg/g -> 2.8 g/g
    assert ln1.facts["months_on_therapy"] == round(214 / 30.4375, 1)                    # since 2025-06-01
    assert _resources(ln1.provenance["months_on_therapy"]) == ["MedicationStatement/ln1-mmf"]
    assert ln1.facts["prednisone_mg"] == 7.5
    assert ln1.facts["planning_pregnancy"] is False
    assert "valueQuantity" in ln1.provenance["upcr"].sources[0].elements


def test_nephritis_unknowns_name_their_reason(nephritis):
    ln2 = nephritis[0]["ln2"]
    assert ln2.facts["proliferative_nephritis"] is False                 # ISN/RPS class V in stage.summary
    assert ln2.provenance["proliferative_nephritis"].sources[0].elements == ("stage[0].summary",)
    assert ln2.facts["azathioprine"] == "nonresponse"                     # SNOMED statusReason code
    assert ln2.facts["voclosporin"] == "current"                          # by name: "Lupkynis"
    assert ln2.provenance["egfr"].unknown == "stale"
    assert ln2.provenance["egfr_baseline"].unknown == "stale"
    upcr = ln2.provenance["upcr"]
    assert upcr.unknown == "ambiguous"
    assert set(_resources(upcr)) == {"Observation/ln2-upcr-a", "Observation/ln2-upcr-b"}
    assert ln2.provenance["planning_pregnancy"].unknown == "absent"


def test_invalid_and_orphan_resources_are_reported_not_fatal(nephritis):
    patients, problems = nephritis
    assert set(patients) == {"ln1", "ln2"}
    assert any("Observation/ln2-bad" in p and "valueQuantity.value" in p for p in problems)
    assert any("Observation/orphan" in p and "no patient" in p for p in problems)
    assert len(problems) == 2


def test_medication_history(history):
    mh1 = history[0]["mh1"]
    f = mh1.facts
    assert f["topical_calcineurin_inhibitor"] == "current"         # tacrolimus, topical route
    assert f["tacrolimus"] == "effective"                           # tacrolimus, completed, no route
    assert f["hydroxychloroquine"] == "intolerant"                  # AllergyIntolerance
    assert _resources(mh1.provenance["hydroxychloroquine"]) == ["AllergyIntolerance/mh1-hcq-allergy"]
    assert f["dapsone"] == "nonresponse"
    assert mh1.provenance["belimumab"].unknown == "ambiguous"       # on-hold
    assert f["rituximab"] == "current"                              # via a Medication resource
    assert "Medication/rtx" in mh1.provenance["rituximab"].sources[0].elements[0]
    assert f["ldn"] == "intolerant"                                 # 4.5 mg; the 50 mg naltrexone is not LDN
    assert f["prednisone_mg"] == 30.0                               # 2 x 4 mg MP x 1.25 + 1 x 20 mg tablet
    assert mh1.provenance["low_dose_glucocorticoid"].unknown == "ambiguous"
    assert f["manifestations"] == frozenset({"cutaneous"}) and f["bullous"] is True
    assert f["g6pd_deficient"] is True
    assert f["planning_pregnancy"] is True
    assert f["months_on_therapy"] == round(78 / 30.4375, 1)         # rituximab from 2025-10-15


def test_as_of_moves_months_and_staleness():
    later, _ = _patients("nephritis_labs.json", as_of=dt.date(2027, 6, 1))
    assert later["ln1"].facts["months_on_therapy"] == round(730 / 30.4375, 1)
    assert later["ln1"].provenance["egfr"].unknown == "stale"


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "synthea").glob("*.json")))
def test_synthea_bundles(name):
    patients, problems = fhir.read_patients(DATA / "synthea" / name, as_of=AS_OF)
    assert problems == [] and len(patients) == 1
    patient = patients[0]
    assert "sle" in patient.diagnoses                                # SNOMED 200936003
    cyclo = patient.provenance["cyclosporine"]                       # RxNorm 241834, stopped, no statusReason
    assert cyclo.unknown == "ambiguous" and len(cyclo.sources) >= 2
    assert patient.facts["prednisone_mg"] == 0.0                     # every prednisone request stopped
    assert patient.provenance["egfr"].unknown == "absent"
    raw = json.loads((DATA / "synthea" / name).read_text(encoding="utf-8"))
    requests = [e["resource"] for e in raw["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]
    prednisone = [r for r in requests if r["medicationCodeableConcept"]["coding"][0]["code"] == "312615"]
    latest = max(prednisone, key=lambda r: r["authoredOn"])
    assert _resources(patient.provenance["prednisone_mg"]) == [f"MedicationRequest/{latest['id']}"]
    cyclosporine = {f"MedicationRequest/{r['id']}" for r in requests
                    if r["medicationCodeableConcept"]["coding"][0]["code"] == "241834"}
    assert set(_resources(cyclo)) == cyclosporine                    # every record cited
    never_recorded = {"ldn", "methotrexate", "hydroxychloroquine"}
    assert all(patient.provenance[a].unknown == "absent" for a in never_recorded)


def test_results_evaluate(nephritis, history):
    import lupus_rules

    # on mycophenolate now, month 7, UPCR down only 20 %: the switch criterion stops it (issue 8)
    ln1 = lupus_rules.evaluate(nephritis[0]["ln1"].facts)
    assert ln1.preferred == "voclosporin" and "mycophenolate" not in ln1.continue_
    assert ln1.avoided["mycophenolate"] == ("R-SW-MMF",)
    assert lupus_rules.evaluate(history[0]["mh1"].facts).preferred is not None


# --- the mapping file -----------------------------------------------------------------------


def _mapping_with(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(fhir.DEFAULT_MAPPING_FILE.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, key, value", [
    (lambda d: d["agents"].__setitem__("methotrexat", d["agents"].pop("methotrexate")), "agents", "methotrexat"),
    (lambda d: d["conditions"]["lupus_nephritis"]["sets"].__setitem__("manifestations", ["kidney"]),
     "conditions.lupus_nephritis.sets.manifestations", "kidney"),
    (lambda d: d["conditions"]["bullous_lupus"].__setitem__("facts", ["blistering"]),
     "conditions.bullous_lupus.facts", "blistering"),
    (lambda d: d["labs"].__setitem__("gfr", d["labs"].pop("egfr")), "labs", "gfr"),
    (lambda d: d["request_status"].__setitem__("active", "running"), "request_status.active", "running"),
    (lambda d: d["stop_reasons"]["intolerant"].__setitem__("text", ["(unclosed"]),
     "stop_reasons.intolerant.text", "(unclosed"),
    (lambda d: d["agents"]["dapsone"].__setitem__("rxnorm", [3108]), "agents.dapsone.rxnorm", "3108"),
    (lambda d: d["labs"]["upcr"]["units"].__setitem__("g/g", -1), "labs.upcr.units.g/g", "-1"),
])
def test_mapping_errors_name_file_key_and_value(tmp_path, edit, key, value):
    path = _mapping_with(tmp_path, edit)
    with pytest.raises(fhir.MappingError) as err:
        fhir.load_mapping(path)
    message = str(err.value)
    assert str(path) in message and f"{key}:" in message and value in message and "allowed:" in message


def test_mapping_missing_agent_is_named(tmp_path):
    path = _mapping_with(tmp_path, lambda d: d["agents"].pop("retinoid"))
    with pytest.raises(fhir.MappingError, match="missing: retinoid"):
        fhir.load_mapping(path)


def test_mapping_is_safe_yaml_only(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text("!!python/object/apply:os.system ['echo pwned']\n", encoding="utf-8")
    with pytest.raises(fhir.MappingError, match="not valid YAML"):
        fhir.load_mapping(path)


def test_not_fhir_json_is_an_error_naming_the_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(fhir.BundleError, match="x.json: not a FHIR resource"):
        fhir.read_bundle_file(bad)
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(fhir.BundleError, match="not JSON"):
        fhir.read_bundle_file(bad)


def test_unknown_resource_types_are_skipped_and_unresolvable_entries_reported():
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p"}},
        {"resource": {"resourceType": "Encounter", "id": "e", "status": "finished"}},
        {"resource": "not an object"},
    ]}
    parsed = fhir.read_bundle(bundle, "inline")
    assert list(parsed.patients) == ["p"] and parsed.skipped == 1
    assert parsed.problems == ["inline entry[2]: not a resource (no resourceType)"]


def test_provenance_json_round_trips(nephritis):
    data = nephritis[0]["ln1"].provenance_json()
    assert json.loads(json.dumps(data)) == data
    assert data["egfr"]["sources"][0]["resource"] == "Observation/ln1-egfr-now"
    assert data["fertility_concern"] == {"unknown": "absent", "note": "not read from FHIR by the mapping", "sources": []}


# --- hostile resources: reported or ignored, never a crash ----------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_JUNK = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
                     | st.text(max_size=20) | st.sampled_from(["2024", "2024-13-40", "mg", "Patient/ln1", "active",
                                                             "stopped", "http://loinc.org", "2890-2"]),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=6)


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield prefix + (i,)
            yield from _paths(item, prefix + (i,))


_FIXTURE = json.loads((DATA / "nephritis_labs.json").read_text(encoding="utf-8"))
_HISTORY = json.loads((DATA / "medication_history.json").read_text(encoding="utf-8"))
_TARGETS = [(b, i, p) for b in (_FIXTURE, _HISTORY) for i, e in enumerate(b["entry"]) for p in _paths(e["resource"])]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_TARGETS) - 1), _JUNK), min_size=1, max_size=4))
def test_mutated_resources_never_crash(mutations):
    import copy

    bundle = copy.deepcopy(_FIXTURE)
    bundle["entry"] += copy.deepcopy(_HISTORY["entry"])
    offset = len(_FIXTURE["entry"])
    for index, junk in mutations:
        source, entry_no, path = _TARGETS[index]
        node = bundle["entry"][entry_no + (offset if source is _HISTORY else 0)]["resource"]
        try:
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = junk
        except (KeyError, IndexError, TypeError):
            continue
    mapping = fhir.load_mapping()
    parsed = fhir.read_bundle(bundle, "fuzz")
    for patient in fhir.extract_bundle(parsed, mapping, AS_OF):
        import lupus_rules

        lupus_rules.evaluate(patient.facts)            # every extracted fact is allowed by the vocabulary
        json.dumps(patient.provenance_json())
