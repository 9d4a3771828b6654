"""``lupus-rules serve``: the CDS Hooks 2.0 service on 127.0.0.1 (uvicorn), until Ctrl-C or SIGTERM."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..notice import DISCLAIMER
from .fhir import iso_date

__all__ = ["register", "port_number"]


def port_number(text: str) -> int:
    """An ``argparse`` type: a TCP port 1-65535 (0 = any free port)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a port number from 0 to 65535")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command."""
    parser = subparsers.add_parser(
        "serve", help="run the CDS Hooks 2.0 service (patient-view, order-select) on 127.0.0.1",
        description="Serve CDS Hooks 2.0 on 127.0.0.1: GET /cds-services (discovery), POST /cds-services/{id} "
                    "(cards), POST /cds-services/{id}/feedback (appended to --feedback-log). Prefetch is used "
                    "when the EHR sends it, else the data is fetched from fhirServer with fhirAuthorization. "
                    + DISCLAIMER)
    parser.add_argument("--port", type=port_number, default=8765, help="TCP port on 127.0.0.1 (default 8765)")
    parser.add_argument("--feedback-log", type=Path, default=Path("cds-feedback.jsonl"),
                        help="JSON-lines file feedback is appended to (default ./cds-feedback.jsonl)")
    parser.add_argument("--as-of", type=iso_date, default=None,
                        help="read facts as of this date (YYYY-MM-DD; default: the day of each request)")
    parser.add_argument("--fhir-server", action="append", default=[], metavar="BASE_URL",
                        help="fetch missing prefetch only from this FHIR base URL (repeatable; default: any "
                             "http(s) fhirServer a request names)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info",
                        help="server log level (default info; never logs credentials)")
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from ..output import check_output_path
    from ..serve import create_app

    if not args.feedback_log.exists():
        check_output_path(args.feedback_log, role="feedback log")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(args.feedback_log, args.as_of, fhir_servers=tuple(args.fhir_server))
    print(f"{DISCLAIMER}\nCDS Hooks discovery: http://127.0.0.1:{args.port}/cds-services", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level=args.log_level, access_log=False)
    return 0
