"""Get the FHIR data a hook needs: from prefetch when the EHR sent it, else from ``fhirServer``.

A prefetch value that is missing, ``null`` or an OperationOutcome (CDS Hooks 2.0
lets a client send one when it could not prefetch) is fetched from the FHIR
server with the bearer token of ``fhirAuthorization``. The token is only sent in
the Authorization header; it is never logged nor put in an error message.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

__all__ = ["FetchError", "FHIR_ID", "fill_template", "allowed_server", "gather", "MAX_PAGES"]

#: A FHIR id (R4: 1-64 of A-Z a-z 0-9 - .): a patientId must be one, so it is safe in a query.
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
#: Pages of a searchset followed through ``link[relation=next]``.
MAX_PAGES = 20
TIMEOUT_S = 10.0


class FetchError(Exception):
    """The FHIR server could not give the data (the message names the query, never the token)."""


def fill_template(template: str, context: dict[str, Any]) -> str:
    """A prefetch template with ``{{context.X}}`` replaced (only fields checked to be FHIR ids)."""
    def value(match: re.Match[str]) -> str:
        field = match.group(1)
        found = context.get(field)
        if not isinstance(found, str) or not FHIR_ID.match(found):
            raise FetchError(f"context.{field} is not a FHIR id; cannot fill {template!r}")
        return found
    return re.sub(r"\{\{\s*context\.(\w+)\s*\}\}", value, template)


def _usable(value: object) -> bool:
    return isinstance(value, dict) and value.get("resourceType") not in (None, "OperationOutcome")


def allowed_server(server: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``server`` is one of (or under one of) the ``allowed`` base URLs; any server when none are given."""
    base = server.rstrip("/")
    return not allowed or any(base == a.rstrip("/") or base.startswith(a.rstrip("/") + "/") for a in allowed)


async def gather(templates: dict[str, str], request: dict[str, Any], client: Any,
                 allowed: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str]]:
    """Every prefetch key's data (prefetch, else fetched) and the keys that had to be fetched.

    ``allowed``: FHIR base URLs the service may fetch from (empty: any http(s) server the request names).
    """
    prefetch = request.get("prefetch") or {}
    data: dict[str, Any] = {}
    fetched: list[str] = []
    for key, template in templates.items():
        if _usable(prefetch.get(key)):
            data[key] = prefetch[key]
            continue
        server = request.get("fhirServer")
        if not server:
            raise FetchError(f"prefetch {key!r} missing and no fhirServer to fetch it from")
        if not allowed_server(server, allowed):
            raise FetchError(f"prefetch {key!r} missing and fhirServer {server[:200]!r} is not one this service "
                             "may fetch from (lupus-rules serve --fhir-server)")
        data[key] = await _fetch(server, fill_template(template, request.get("context") or {}),
                                 request.get("fhirAuthorization"), client)
        fetched.append(key)
    return data, fetched


async def _fetch(server: str, query: str, auth: object, client: Any) -> Any:
    import httpx

    base = server.rstrip("/")
    if urlsplit(base).scheme not in ("http", "https"):
        raise FetchError(f"fhirServer must be an http(s) URL; got scheme {urlsplit(base).scheme!r}")
    headers = {"Accept": "application/fhir+json"}
    if isinstance(auth, dict) and isinstance(auth.get("access_token"), str):
        headers["Authorization"] = f"Bearer {auth['access_token']}"
    url: str | None = f"{base}/{query}"
    pages: list[Any] = []
    while url and len(pages) < MAX_PAGES:
        try:
            response = await client.get(url, headers=headers, timeout=TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise FetchError(f"GET {query}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise FetchError(f"GET {query}: FHIR server answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise FetchError(f"GET {query}: FHIR server answered with something other than JSON") from None
        pages.append(body)
        url = _next_link(body, base)
    if len(pages) == 1:
        return pages[0]
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [e for page in pages for e in (page.get("entry") or [])]}


def _next_link(body: object, base: str) -> str | None:
    """The next page of a searchset, only when it is on the same FHIR server."""
    if not isinstance(body, dict):
        return None
    for link in body.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"] if link["url"].startswith(base + "/") else None
    return None
