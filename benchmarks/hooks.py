"""Benchmark: CDS Hooks latency of ``lupus-rules serve``, beside a no-op endpoint of the same server.

    python benchmarks/hooks.py                  # 300 requests per case, interleaved
    python benchmarks/hooks.py --requests 1000

The server runs as its own process (``python -m lupus_rules serve`` on a free
127.0.0.1 port), as an EHR would call it; this process is the client, with one
keep-alive connection. Cases, interleaved round by round so a busy machine
slows them alike: ``POST /healthz`` with the same body as the hook (the floor:
HTTP, uvicorn and Starlette, no work), ``GET /cds-services`` (discovery),
``patient-view`` and ``order-select`` with prefetch for the fixture patient ln1
(tests/data/fhir/nephritis_labs.json; pregnancy planned, so the drafted
leflunomide gets a warning card). Target (issue 13): hook p95 < 50 ms. Only
loopback traffic; bounded in count and time. Not for clinical use.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lupus_rules.serve.sample import free_port, sample_request  # noqa: E402

#: Stop a case after this many seconds whatever --requests says.
MAX_SECONDS = 120.0


def _requests(patient_bundle: dict) -> dict[str, tuple[str, str, bytes | None]]:
    bundle = json.loads(json.dumps(patient_bundle))
    bundle["entry"].append({"resource": {
        "resourceType": "Observation", "id": "bench-preg", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "86645-9"}]},
        "subject": {"reference": "Patient/ln1"}, "effectiveDateTime": "2025-12-20",
        "valueCodeableConcept": {"text": "Yes"}}})
    draft = {"resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "proposal",
             "subject": {"reference": "Patient/ln1"}, "medicationCodeableConcept": {
                 "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "27169"}]}}
    view = json.dumps(sample_request(bundle, "ln1")).encode()
    order = json.dumps(sample_request(bundle, "ln1", "order-select", [draft])).encode()
    return {"floor: POST /healthz (same body, no work)": ("POST", "/healthz", view),
            "GET /cds-services (discovery)": ("GET", "/cds-services", None),
            "patient-view (lupus-alternatives)": ("POST", "/cds-services/lupus-alternatives", view),
            "order-select (lupus-order-check)": ("POST", "/cds-services/lupus-order-check", order)}


def _start(port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "lupus_rules", "serve", "--port", str(port), "--as-of",
                             "2026-01-01", "--feedback-log", str(log), "--log-level", "warning"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc


def _wait(client, proc: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()}")
        try:
            client.get("/healthz")
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("server did not start within 60 s")


def measure(requests: int) -> dict[str, list[float]]:
    """Milliseconds of every request of each case (after 20 warm-up rounds)."""
    import httpx

    bundle = json.loads((ROOT / "tests" / "data" / "fhir" / "nephritis_labs.json").read_text(encoding="utf-8"))
    cases = _requests(bundle)
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-hooks-{os.getpid()}.jsonl"
    proc = _start(port, log)
    times: dict[str, list[float]] = {name: [] for name in cases}
    headers = {"content-type": "application/json"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _wait(client, proc)
            started = time.monotonic()
            for round_no in range(requests + 20):
                for name, (method, path, body) in cases.items():
                    t0 = time.perf_counter()
                    response = client.request(method, path, content=body, headers=headers)
                    elapsed = (time.perf_counter() - t0) * 1000
                    if response.status_code != 200:
                        raise SystemExit(f"{name}: HTTP {response.status_code}: {response.text[:300]}")
                    if round_no >= 20:
                        times[name].append(elapsed)
                if time.monotonic() - started > MAX_SECONDS:
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.unlink(missing_ok=True)
    return times


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> None:
    """Print median and p95 per case, and each as a ratio to the floor."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="measured requests per case (default 300)")
    args = parser.parse_args()
    times = measure(args.requests)
    floor = statistics.median(next(iter(times.values())))
    print(f"{'case':<44} {'n':>5} {'median ms':>10} {'p95 ms':>8} {'median / floor':>15}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<44} {len(values):>5} {median:>10.2f} {_p95(values):>8.2f} {median / floor:>14.1f}x")
    hooks = [v for n, v in times.items() if "select" in n or "view" in n]
    worst = max(_p95(v) for v in hooks)
    print(f"hook p95 (worst of patient-view, order-select): {worst:.2f} ms; target < 50 ms: "
          f"{'met' if worst < 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
