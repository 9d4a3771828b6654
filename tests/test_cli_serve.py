"""``lupus-rules serve`` as a user starts it: a real process on a loopback port, stopped with SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from lupus_rules.serve.sample import free_port


def test_serve_process_answers_discovery_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lupus_rules", "serve", "--port", str(port),
                             "--feedback-log", str(tmp_path / "fb.jsonl")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/cds-services", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        assert {s["hook"] for s in response.json()["services"]} == {"patient-view", "order-select"}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert "Not for clinical use" in out and f"http://127.0.0.1:{port}/cds-services" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("port", ["70000", "http"])
def test_bad_port_is_a_usage_error(port):
    done = subprocess.run([sys.executable, "-m", "lupus_rules", "serve", "--port", port],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "allowed: a port number from 0 to 65535" in done.stderr
