"""The CDS Hooks 2.0 service as a Starlette (ASGI) app.

Routes: ``GET /cds-services`` (discovery), ``POST /cds-services/{id}`` (cards),
``POST /cds-services/{id}/feedback`` (appended to a JSON-lines log),
``GET|POST /healthz`` (no work; the benchmark's floor). Errors follow the
specification: 400 malformed request, 404 unknown service, 412 the FHIR data
could not be had (no prefetch and no usable fhirServer), 413 body too large;
each with ``{"error": message}``. Nothing a request sends is executed, and
``fhirAuthorization`` is never logged or echoed.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cards import order_cards, patient_cards
from .fetch import FHIR_ID, FetchError, gather
from .services import Service, discovery, services

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from ..fhir.mapping import Mapping
    from ..rulebook import Rulebook

__all__ = ["create_app", "HookError", "MAX_BODY_BYTES"]

#: A request body larger than this is refused with 413.
MAX_BODY_BYTES = 16 * 1024 * 1024
_LOG = logging.getLogger("lupus_rules.serve")
#: Conditions that do not make a patient a lupus patient on their own.
_NOT_LUPUS = {"g6pd_deficiency"}


class HookError(Exception):
    """A request the service refuses: HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_app(feedback_log: str | Path = "cds-feedback.jsonl", as_of: dt.date | None = None,
               mapping: Mapping | None = None, rulebook: Rulebook | None = None,
               fhir_servers: tuple[str, ...] = ()) -> Starlette:
    """The ASGI app. ``as_of`` fixes "today" (default: the date of each request); ``fhir_servers``
    limits the FHIR base URLs data may be fetched from (default: any the request names)."""
    import httpx
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.routing import Route

    from ..evaluate import default_rulebook
    from ..fhir.mapping import load_mapping

    book = rulebook or default_rulebook()
    state = _State(load_mapping(rulebook=book) if mapping is None else mapping, book, Path(feedback_log), as_of)
    state.fhir_servers = tuple(fhir_servers)
    state.warm_up()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(follow_redirects=False) as client:
            state.client = client
            yield

    routes = [Route("/cds-services", state.discovery, methods=["GET"]),
              Route("/cds-services/{service_id}", state.hook, methods=["POST"]),
              Route("/cds-services/{service_id}/feedback", state.feedback, methods=["POST"]),
              Route("/healthz", state.health, methods=["GET", "POST"])]
    middleware = [Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST", "OPTIONS"],
                             allow_headers=["Authorization", "Content-Type"])]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


class _State:
    """What the routes share: mapping, rulebook, services, feedback log, HTTP client."""

    def __init__(self, mapping: Mapping, rulebook: Rulebook, feedback_log: Path, as_of: dt.date | None):
        self.mapping, self.rulebook, self.feedback_log, self.as_of = mapping, rulebook, feedback_log, as_of
        self.services: dict[str, Service] = services(mapping)
        self.lock = threading.Lock()
        self.client: Any = None
        self.fhir_servers: tuple[str, ...] = ()

    def warm_up(self) -> None:
        """Build the FHIR models and the engine once, so the first hook is as fast as the rest."""
        from ..evaluate import evaluate
        from ..fhir.bundle import read_bundle

        read_bundle({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": t, "id": "w", "status": "active", "intent": "order",
                          "subject": {"reference": "Patient/w"}}} for t in ("MedicationRequest",)]})
        evaluate({}, self.rulebook)

    async def health(self, request: Request) -> JSONResponse:
        from starlette.responses import JSONResponse

        await request.body()
        return JSONResponse({"status": "ok"})

    async def discovery(self, request: Request) -> JSONResponse:
        from starlette.responses import JSONResponse

        return JSONResponse(discovery(self.mapping))

    async def hook(self, request: Request) -> JSONResponse:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        started = time.perf_counter()
        service_id = request.path_params["service_id"]
        body: dict[str, Any] = {}
        try:
            service = self._service(service_id)
            body = await _json_body(request)
            _check_request(body, service)
            try:
                data, fetched = await gather(service.prefetch, body, self.client, self.fhir_servers)
            except FetchError as exc:
                raise HookError(412, f"cannot get the FHIR data: {exc}") from None
            cards = await run_in_threadpool(self._cards, service, body, data)
        except HookError as exc:
            _LOG.info("%s %s -> %s (%s)", service_id, _instance(body), exc.status, exc)
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        _LOG.info("%s %s -> 200, %d cards, fetched %s, %.1f ms", service_id, _instance(body), len(cards),
                  fetched or "nothing", (time.perf_counter() - started) * 1000)
        return JSONResponse({"cards": cards})

    def _service(self, service_id: str) -> Service:
        if service_id not in self.services:
            raise HookError(404, f"no CDS service {service_id!r}; services: {', '.join(self.services)}")
        return self.services[service_id]

    def _cards(self, service: Service, body: dict[str, Any], data: dict[str, Any]) -> list[dict[str, Any]]:
        from ..evaluate import evaluate
        from ..fhir.bundle import PatientResources, read_bundle
        from ..fhir.extract import extract_patient

        context = body["context"]
        bundle = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"resource": value} for value in data.values()]}
        parsed = read_bundle(bundle, "prefetch")
        pid = context["patientId"]
        resources = parsed.patients.get(pid, PatientResources(pid))
        as_of = self.as_of or dt.date.today()
        patient = extract_patient(resources, parsed.medications, self.mapping, as_of, self.rulebook)
        if not set(patient.diagnoses) - _NOT_LUPUS:
            return []                      # not a lupus patient: nothing to say
        result = evaluate(patient.facts, self.rulebook)
        if service.hook == "order-select":
            return order_cards(result, patient, self.rulebook, _drafted_agents(context, self.mapping))
        return patient_cards(result, patient, self.rulebook)

    async def feedback(self, request: Request) -> JSONResponse:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        service_id = request.path_params["service_id"]
        try:
            self._service(service_id)
            body = await _json_body(request)
            items = _check_feedback(body)
        except HookError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        line = json.dumps({"received": dt.datetime.now(dt.timezone.utc).isoformat(), "service": service_id,
                           "feedback": items}, separators=(",", ":"))
        await run_in_threadpool(self._append, line)
        _LOG.info("%s feedback: %d item(s)", service_id, len(items))
        return JSONResponse({})

    def _append(self, line: str) -> None:
        with self.lock, open(self.feedback_log, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def _instance(body: object) -> str:
    value = body.get("hookInstance") if isinstance(body, dict) else None
    return value if isinstance(value, str) and len(value) <= 100 else "(no hookInstance)"


async def _json_body(request: Request) -> dict[str, Any]:
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_BODY_BYTES:
        raise HookError(413, f"request body larger than {MAX_BODY_BYTES // 2**20} MiB")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise HookError(413, f"request body larger than {MAX_BODY_BYTES // 2**20} MiB")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HookError(400, f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise HookError(400, f"request body: got a JSON {type(body).__name__}; allowed: a JSON object")
    return body


def _check_request(body: dict[str, Any], service: Service) -> None:
    """CDS Hooks 2.0 request fields; 400 naming the field, the value and what is allowed."""
    if body.get("hook") != service.hook:
        raise HookError(400, f"hook: got {str(body.get('hook'))[:80]!r}; allowed: {service.hook!r} for "
                             f"service {service.id!r}")
    if not isinstance(body.get("hookInstance"), str) or not body["hookInstance"]:
        raise HookError(400, "hookInstance: required, a UUID string")
    context = body.get("context")
    if not isinstance(context, dict):
        raise HookError(400, "context: required, a JSON object")
    pid = context.get("patientId")
    if not isinstance(pid, str) or not FHIR_ID.match(pid):
        raise HookError(400, f"context.patientId: got {str(pid)[:80]!r}; allowed: a FHIR id "
                             "(1-64 of A-Z a-z 0-9 - .)")
    if "prefetch" in body and not isinstance(body["prefetch"], (dict, type(None))):
        raise HookError(400, "prefetch: allowed: a JSON object of prefetch keys")
    auth = body.get("fhirAuthorization")
    if auth is not None:
        if not body.get("fhirServer"):
            raise HookError(400, "fhirAuthorization given without fhirServer (CDS Hooks cds-r-1)")
        if not isinstance(auth, dict) or not isinstance(auth.get("access_token"), str) \
                or str(auth.get("token_type", "")).lower() != "bearer":
            raise HookError(400, "fhirAuthorization: allowed: an object with access_token and token_type 'Bearer'")
    if "fhirServer" in body and not isinstance(body["fhirServer"], str):
        raise HookError(400, "fhirServer: allowed: the FHIR base URL as a string")
    if service.hook == "order-select":
        drafts = context.get("draftOrders")
        if not isinstance(drafts, dict) or drafts.get("resourceType") != "Bundle":
            raise HookError(400, "context.draftOrders: required for order-select, a FHIR Bundle")


def _drafted_agents(context: dict[str, Any], mapping: Mapping) -> dict[str, str]:
    """Agent -> order id for each selected draft order (all drafts when ``selections`` is empty)."""
    from ..fhir.bundle import read_bundle, resource_key
    from ..fhir.records import agents_of, is_topical, medication_concept

    parsed = read_bundle(context["draftOrders"], "context.draftOrders")
    selections = {s for s in context.get("selections") or [] if isinstance(s, str)}
    drafted: dict[str, str] = {}
    for patient in parsed.patients.values():
        for kind in ("MedicationRequest", "MedicationStatement"):
            for order in patient.of(kind):
                key = resource_key(order)
                if selections and key not in selections:
                    continue
                concept, element = medication_concept(order, parsed.medications)
                if concept is None:
                    continue
                for agent in agents_of(concept, element, is_topical(order, concept, mapping), mapping)[0]:
                    drafted.setdefault(agent.fact, key)
    return drafted


def _check_feedback(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise HookError(400, "feedback: required, a non-empty list of card feedback objects")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("card"), str):
            raise HookError(400, f"feedback[{i}].card: required, the card's uuid")
        if item.get("outcome") not in ("accepted", "overridden"):
            raise HookError(400, f"feedback[{i}].outcome: got {str(item.get('outcome'))[:40]!r}; "
                                 "allowed: 'accepted', 'overridden'")
        if not isinstance(item.get("outcomeTimestamp"), str):
            raise HookError(400, f"feedback[{i}].outcomeTimestamp: required, an instant")
    return items
