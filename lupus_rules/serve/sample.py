"""Sample CDS Hooks requests from a FHIR bundle, and a loopback server in a thread (for tests and trials)."""
from __future__ import annotations

import socket
import threading
import time
import uuid
from typing import Any

from .services import PREFETCH_KEYS

__all__ = ["prefetch_from_bundle", "sample_request", "free_port", "BackgroundServer"]

_KEY_OF_TYPE = {"Patient": "patient", "Condition": "conditions", "Observation": "observations",
                "MedicationRequest": "medicationRequests", "MedicationStatement": "medicationStatements",
                "AllergyIntolerance": "allergies"}


def _subject(resource: dict[str, Any]) -> str | None:
    ref = resource.get("patient" if resource.get("resourceType") == "AllergyIntolerance" else "subject")
    return ref.get("reference") if isinstance(ref, dict) else None


def prefetch_from_bundle(bundle: dict[str, Any], patient_id: str) -> dict[str, Any]:
    """Prefetch data as an EHR would send it: the Patient, and a searchset Bundle per other key."""
    aliases = {f"Patient/{patient_id}"}
    aliases |= {e.get("fullUrl") for e in bundle.get("entry", [])
                if e.get("resource", {}).get("resourceType") == "Patient" and e["resource"].get("id") == patient_id}
    out: dict[str, Any] = {k: {"resourceType": "Bundle", "type": "searchset", "entry": []}
                           for k in PREFETCH_KEYS if k != "patient"}
    out["patient"] = None
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        key = _KEY_OF_TYPE.get(resource.get("resourceType"))
        if key == "patient":
            if resource.get("id") == patient_id:
                out["patient"] = resource
        elif key is not None and _subject(resource) in aliases:
            out[key]["entry"].append({"fullUrl": entry.get("fullUrl"), "resource": resource})
    return out


def sample_request(bundle: dict[str, Any], patient_id: str, hook: str = "patient-view",
                   draft_orders: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A complete CDS Hooks request for one patient of a bundle, with prefetch."""
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": patient_id}
    if hook == "order-select":
        drafts = draft_orders or []
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"resource": d} for d in drafts]}
        context["selections"] = [f"{d['resourceType']}/{d['id']}" for d in drafts]
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context,
            "prefetch": prefetch_from_bundle(bundle, patient_id)}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BackgroundServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a daemon thread; a context manager.

    ``with BackgroundServer(app) as base_url: ...`` starts it (waiting until it
    listens, at most ``timeout`` seconds) and stops it on leaving.
    """

    def __init__(self, app: Any, port: int | None = None, timeout: float = 20.0):
        import uvicorn

        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.timeout = timeout
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=self.timeout)
