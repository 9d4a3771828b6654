"""`make lab` / `make app` (tools/serve.sh): a short output that ends with the URL to open, and that URL works."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(mode: str, port: int, timeout_s: float = 120) -> tuple[list[str], str]:
    """Run tools/serve.sh until it prints the URL; returns every line printed and the status of GET URL."""
    proc = subprocess.Popen(["bash", "tools/serve.sh", mode, str(VENV), "127.0.0.1", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("http://"):
                with urllib.request.urlopen(line.strip(), timeout=30) as response:
                    return lines, str(response.status)
        return lines, "no URL"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_lab_prints_three_lines_ending_with_the_explorer_url():
    port = _free_port()
    lines, status = _serve("lab", port)
    assert status == "200", lines
    assert len(lines) <= 3 and "Not for clinical use" in lines[0], lines
    assert lines[-1].startswith(f"http://127.0.0.1:{port}/lab/tree/01_scenario_explorer.ipynb?token=")


def test_app_prints_three_lines_ending_with_the_app_url():
    if not (VENV / "bin" / "voila").exists():
        pytest.skip("Voila is not installed (pip install -e '.[app]')")
    port = _free_port()
    lines, status = _serve("app", port)
    assert status == "200", lines
    assert len(lines) <= 3 and lines[-1] == f"http://127.0.0.1:{port}/", lines


def test_a_busy_port_is_reported_with_the_variable_to_change():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(["bash", "tools/serve.sh", "lab", str(VENV), "127.0.0.1", str(port)], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"is port {port} in use? choose another with LAB_PORT=" in result.stderr


def test_an_unknown_mode_names_the_allowed_ones():
    result = subprocess.run(["bash", "tools/serve.sh", "web", str(VENV), "127.0.0.1", "1"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "got mode 'web'; allowed: lab, app" in result.stderr
