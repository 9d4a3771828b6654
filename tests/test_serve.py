"""The CDS Hooks 2.0 service over real HTTP on a loopback port; every response checked against the schema."""
from __future__ import annotations

import copy
import datetime as dt
import json
import logging
from pathlib import Path

import httpx
import jsonschema
import pytest

from lupus_rules.serve import SUMMARY_MAX, create_app
from lupus_rules.serve.sample import BackgroundServer, prefetch_from_bundle, sample_request

DATA = Path(__file__).parent / "data"
FHIR = DATA / "fhir"
SCHEMA = json.loads((DATA / "cds_hooks" / "cds_hooks_2_0.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
AS_OF = dt.date(2026, 1, 1)
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
TOKEN = "s3cret-token-never-logged"


def _bundle(name: str) -> dict:
    return json.loads((FHIR / name).read_text(encoding="utf-8"))


def _checked(response: httpx.Response) -> dict:
    body = response.json()
    VALIDATOR.validate(body)
    return body


def _with_pregnancy_planned(bundle: dict, pid: str) -> dict:
    out = copy.deepcopy(bundle)
    out["entry"].append({"resource": {
        "resourceType": "Observation", "id": f"{pid}-preg-yes", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "86645-9"}]},
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2025-12-20",
        "valueCodeableConcept": {"text": "Yes"}}})
    return out


def _draft(code: str, rid: str = "draft-1", pid: str = "ln1") -> dict:
    return {"resourceType": "MedicationRequest", "id": rid, "status": "draft", "intent": "proposal",
            "subject": {"reference": f"Patient/{pid}"},
            "medicationCodeableConcept": {"coding": [{"system": RX, "code": code}]}}


@pytest.fixture(scope="module")
def feedback_log(tmp_path_factory):
    return tmp_path_factory.mktemp("cds") / "feedback.jsonl"


@pytest.fixture(scope="module")
def server(feedback_log):
    with BackgroundServer(create_app(feedback_log, as_of=AS_OF)) as url, httpx.Client(base_url=url) as client:
        yield client


def _fhir_stub(bundle: dict, pid: str, seen: list):
    """A tiny FHIR server: answers the service's searches for one patient from a bundle; wants the bearer token."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    prefetch = prefetch_from_bundle(bundle, pid)
    by_type = {"Condition": "conditions", "Observation": "observations", "MedicationRequest": "medicationRequests",
               "MedicationStatement": "medicationStatements", "AllergyIntolerance": "allergies"}

    async def read(request):
        seen.append((request.url.path, request.url.query, request.headers.get("authorization")))
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        kind = request.path_params["kind"]
        if kind == "Patient":
            return JSONResponse(prefetch["patient"])
        if request.query_params.get("patient") != pid:
            return JSONResponse({"resourceType": "Bundle", "type": "searchset", "entry": []})
        return JSONResponse(prefetch[by_type[kind]])

    routes = [Route("/fhir/{kind}", read), Route("/fhir/{kind}/{rid}", read)]
    return Starlette(routes=routes)


# --- discovery ---------------------------------------------------------------------------------


def test_discovery(server):
    body = _checked(server.get("/cds-services"))
    hooks = {s["id"]: s["hook"] for s in body["services"]}
    assert hooks == {"lupus-alternatives": "patient-view", "lupus-order-check": "order-select"}
    prefetch = body["services"][0]["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert "http://loinc.org|2890-2" in prefetch["observations"] and "33914-3" in prefetch["observations"]


# --- patient-view ------------------------------------------------------------------------------


def test_patient_view_card(server):
    body = _checked(server.post("/cds-services/lupus-alternatives", json=sample_request(_bundle("nephritis_labs.json"),
                                                                                         "ln1")))
    main = body["cards"][0]
    # ln1 takes mycophenolate now, but by month 7 UPCR fell only 20 %: the switch criterion stops it
    # (R-SW-MMF), refractory options follow, and a current agent that is avoided makes a warning
    assert main["summary"].startswith("Lupus: consider Voclosporin") and len(main["summary"]) < 140
    assert main["indicator"] == "warning" and len(body["cards"]) == 2
    assert "Mycophenolate" in body["cards"][1]["summary"] and "R-SW-MMF" in body["cards"][1]["summary"]
    assert "not for clinical use" in main["source"]["label"]
    detail = main["detail"]
    assert "Not for clinical use" in detail
    assert "Mycophenolate mofetil / mycophenolic acid (MMF/MPA): R-SW-MMF" in detail and "R-SW-01" in detail
    assert "R-LN-12" in detail and "months_on_therapy=7" in detail         # the fired trace with matched facts
    assert {r["code"] for r in main["overrideReasons"]} >= {"not-applicable", "patient-preference"}


def test_current_avoided_agent_makes_a_warning(server):
    bundle = _with_pregnancy_planned(_bundle("nephritis_labs.json"), "ln1")   # mycophenolate is current
    cards = _checked(server.post("/cds-services/lupus-alternatives", json=sample_request(bundle, "ln1")))["cards"]
    assert cards[0]["indicator"] == "warning"
    warnings = [c for c in cards[1:] if "Mycophenolate" in c["summary"]]
    assert len(warnings) == 1 and warnings[0]["indicator"] == "warning" and "R-SAFE-01" in warnings[0]["summary"]


def test_not_a_lupus_patient_gets_no_cards(server):
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": {"resourceType": "Patient", "id": "healthy"}}]}
    assert _checked(server.post("/cds-services/lupus-alternatives", json=sample_request(bundle, "healthy"))) == \
        {"cards": []}


PATIENTS = [("nephritis_labs.json", "ln1"), ("nephritis_labs.json", "ln2"), ("medication_history.json", "mh1"),
            *[(f"synthea/{p.name}", None) for p in sorted((FHIR / "synthea").glob("*.json"))]]


@pytest.mark.parametrize("name, pid", PATIENTS)
def test_every_fixture_end_to_end(server, name, pid):
    """Bundle -> prefetch -> cards: the summary names the preferred agent the library computes."""
    import lupus_rules
    from lupus_rules import fhir
    from lupus_rules.evaluate import default_rulebook

    bundle = _bundle(name)
    patients, _ = fhir.read_patients(FHIR / name, as_of=AS_OF)
    patient = next(p for p in patients if pid is None or p.patient_id == pid)
    expected = lupus_rules.evaluate(patient.facts).preferred
    cards = _checked(server.post("/cds-services/lupus-alternatives",
                                 json=sample_request(bundle, patient.patient_id)))["cards"]
    assert cards and all(len(c["summary"]) <= SUMMARY_MAX for c in cards)
    if expected:
        assert default_rulebook().agents[expected].name in cards[0]["summary"]
    else:
        assert "no new agent" in cards[0]["summary"]


# --- order-select ------------------------------------------------------------------------------


def test_order_select_warns_on_an_avoided_draft(server):
    bundle = _with_pregnancy_planned(_bundle("nephritis_labs.json"), "ln1")
    request = sample_request(bundle, "ln1", "order-select", [_draft("27169")])          # leflunomide
    cards = _checked(server.post("/cds-services/lupus-order-check", json=request))["cards"]
    assert len(cards) == 1 and cards[0]["indicator"] == "warning"
    assert "drafted Leflunomide is avoided" in cards[0]["summary"]
    assert "MedicationRequest/draft-1" in cards[0]["detail"]
    action = cards[0]["suggestions"][0]["actions"][0]
    assert action == {"type": "delete", "description": "Remove MedicationRequest/draft-1",
                      "resourceId": ["MedicationRequest/draft-1"]}


def test_order_select_is_quiet_for_an_allowed_draft_and_unselected_drafts(server):
    bundle = _with_pregnancy_planned(_bundle("nephritis_labs.json"), "ln1")
    allowed = sample_request(bundle, "ln1", "order-select", [_draft("5521")])          # hydroxychloroquine
    assert _checked(server.post("/cds-services/lupus-order-check", json=allowed)) == {"cards": []}
    unselected = sample_request(bundle, "ln1", "order-select", [_draft("27169")])
    unselected["context"]["selections"] = ["MedicationRequest/another"]
    assert _checked(server.post("/cds-services/lupus-order-check", json=unselected)) == {"cards": []}


# --- fetching from fhirServer ------------------------------------------------------------------


def test_without_prefetch_the_service_fetches_with_the_bearer_token(server, caplog):
    bundle = _bundle("nephritis_labs.json")
    seen: list = []
    with BackgroundServer(_fhir_stub(bundle, "ln1", seen)) as fhir_url, caplog.at_level(logging.DEBUG):
        request = sample_request(bundle, "ln1")
        expected = _checked(server.post("/cds-services/lupus-alternatives", json=request))["cards"][0]["summary"]
        del request["prefetch"]
        request.update(fhirServer=f"{fhir_url}/fhir", fhirAuthorization={
            "access_token": TOKEN, "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read",
            "subject": "lupus-rules"})
        cards = _checked(server.post("/cds-services/lupus-alternatives", json=request))["cards"]
    assert cards[0]["summary"] == expected
    assert {path for path, _, _ in seen} == {"/fhir/Patient/ln1", "/fhir/Condition", "/fhir/Observation",
                                             "/fhir/MedicationRequest", "/fhir/MedicationStatement",
                                             "/fhir/AllergyIntolerance"}
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in seen)
    assert "lupus-alternatives" in caplog.text and "fetched" in caplog.text    # the service did log
    assert TOKEN not in caplog.text


def test_partial_prefetch_fetches_only_the_missing_keys(server):
    bundle = _bundle("nephritis_labs.json")
    seen: list = []
    with BackgroundServer(_fhir_stub(bundle, "ln1", seen)) as fhir_url:
        request = sample_request(bundle, "ln1")
        request["prefetch"]["observations"] = None
        request["prefetch"]["allergies"] = {"resourceType": "OperationOutcome", "issue": []}
        request.update(fhirServer=f"{fhir_url}/fhir", fhirAuthorization={"access_token": TOKEN, "token_type": "Bearer"})
        _checked(server.post("/cds-services/lupus-alternatives", json=request))
    assert sorted(path for path, _, _ in seen) == ["/fhir/AllergyIntolerance", "/fhir/Observation"]


def test_unreachable_data_is_412(server):
    request = sample_request(_bundle("nephritis_labs.json"), "ln1")
    del request["prefetch"]
    response = server.post("/cds-services/lupus-alternatives", json=request)
    assert response.status_code == 412 and "no fhirServer" in _checked(response)["error"]
    seen: list = []
    with BackgroundServer(_fhir_stub(_bundle("nephritis_labs.json"), "ln1", seen)) as fhir_url:
        request.update(fhirServer=f"{fhir_url}/fhir", fhirAuthorization={"access_token": "wrong", "token_type": "Bearer"})
        response = server.post("/cds-services/lupus-alternatives", json=request)
    assert response.status_code == 412 and "answered 401" in _checked(response)["error"]
    assert "wrong" not in response.text


# --- bad requests ------------------------------------------------------------------------------


def _good() -> dict:
    return sample_request(_bundle("nephritis_labs.json"), "ln1")


@pytest.mark.parametrize("change, status, words", [
    (lambda r: "not json", 400, "not JSON"),
    (lambda r: [1, 2], 400, "allowed: a JSON object"),
    (lambda r: {**r, "hook": "order-sign"}, 400, "hook: got 'order-sign'"),
    (lambda r: {k: v for k, v in r.items() if k != "hookInstance"}, 400, "hookInstance"),
    (lambda r: {**r, "context": {}}, 400, "context.patientId"),
    (lambda r: {**r, "context": {"patientId": "ln1&_include=*"}}, 400, "a FHIR id"),
    (lambda r: {**r, "fhirAuthorization": {"access_token": "x", "token_type": "Bearer"}}, 400, "cds-r-1"),
    (lambda r: {**r, "fhirServer": "http://127.0.0.1:1/fhir", "fhirAuthorization": {"token_type": "MAC"}}, 400,
     "fhirAuthorization"),
    (lambda r: {**r, "prefetch": [1]}, 400, "prefetch"),
])
def test_bad_requests_get_the_spec_error_codes(server, change, status, words):
    changed = change(_good())
    content = changed if isinstance(changed, str) else json.dumps(changed)
    response = server.post("/cds-services/lupus-alternatives", content=content,
                           headers={"content-type": "application/json"})
    assert response.status_code == status
    assert words in _checked(response)["error"]


def test_order_select_needs_draft_orders(server):
    request = sample_request(_bundle("nephritis_labs.json"), "ln1", "order-select", [])
    del request["context"]["draftOrders"]
    response = server.post("/cds-services/lupus-order-check", json=request)
    assert response.status_code == 400 and "draftOrders" in _checked(response)["error"]


def test_unknown_service_is_404(server):
    response = server.post("/cds-services/nope", json=_good())
    assert response.status_code == 404 and "lupus-alternatives" in _checked(response)["error"]


def test_oversized_body_is_413(server):
    response = server.post("/cds-services/lupus-alternatives", content=b" " * (17 * 1024 * 1024),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and _checked(response)["error"]


# --- feedback ----------------------------------------------------------------------------------


def test_feedback_is_appended(server, feedback_log):
    card = _checked(server.post("/cds-services/lupus-alternatives", json=_good()))["cards"][0]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T10:00:00Z",
            "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "seen in clinic"}}
    before = feedback_log.read_text(encoding="utf-8").splitlines() if feedback_log.exists() else []
    response = server.post("/cds-services/lupus-alternatives/feedback", json={"feedback": [item]})
    assert response.status_code == 200 and _checked(response) == {}
    lines = feedback_log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(before) + 1
    logged = json.loads(lines[-1])
    assert logged["service"] == "lupus-alternatives" and logged["feedback"] == [item]


@pytest.mark.parametrize("body, words", [
    ({}, "feedback: required"),
    ({"feedback": [{"card": "x", "outcome": "maybe", "outcomeTimestamp": "2026-01-01T00:00:00Z"}]}, "outcome"),
    ({"feedback": [{"outcome": "accepted"}]}, "card"),
])
def test_bad_feedback_is_400(server, body, words):
    response = server.post("/cds-services/lupus-alternatives/feedback", json=body)
    assert response.status_code == 400 and words in _checked(response)["error"]


def test_fhir_servers_can_be_limited():
    from lupus_rules.serve.fetch import allowed_server

    assert allowed_server("https://ehr.example/fhir/", ("https://ehr.example/fhir",))
    assert not allowed_server("https://ehr.example/fhirx", ("https://ehr.example/fhir",))
    assert allowed_server("http://anything", ())
    request = sample_request(_bundle("nephritis_labs.json"), "ln1")
    del request["prefetch"]
    request.update(fhirServer="http://127.0.0.1:9/fhir", fhirAuthorization={"access_token": TOKEN, "token_type": "Bearer"})
    app = create_app(Path("/dev/null"), as_of=AS_OF, fhir_servers=("https://ehr.example/fhir",))
    with BackgroundServer(app) as url:
        response = httpx.post(f"{url}/cds-services/lupus-alternatives", json=request)
    assert response.status_code == 412 and "--fhir-server" in _checked(response)["error"]
    assert TOKEN not in response.text
