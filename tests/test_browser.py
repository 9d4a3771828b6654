"""The scenario explorer notebook in a real browser: JupyterLab + headless Chromium via Playwright.

Starts its own JupyterLab on 127.0.0.1 (free port, no token, a temporary root
folder holding a copy of the explorer notebook with its outputs cleared),
runs all cells, ticks ``planning_pregnancy`` in the explorer and checks that
the preferred agent and the fired rules shown change to what
:func:`lupus_rules.evaluate` says. Saves a screenshot to ``tests/artifacts/``.
Skipped (loudly) only when Chromium is missing at /usr/bin/chromium.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from lupus_rules import evaluate

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_scenario_explorer.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: The patient the notebook's explorer opens with (``patient_1`` in the notebook).
PATIENT = {"manifestations": "nephritis", "methotrexate": "intolerant"}
SERVER_START_S = 90
CELL_RUN_MS = 120_000


def _require_chromium() -> None:
    """Skip, loudly (a warning in the summary as well as the skip reason), when Chromium is missing."""
    if CHROMIUM.exists():
        return
    reason = ("BROWSER TEST SKIPPED: Chromium is missing at /usr/bin/chromium; install it with "
              "`apt-get install -y chromium` (CI's .ci/run does) to test the explorer notebook in a real browser")
    print("\n" + "!" * 100 + "\n!!! " + reason + "\n" + "!" * 100, file=sys.stderr)
    warnings.warn(reason, pytest.PytestWarning, stacklevel=2)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _quiet_lab_settings(settings_dir: Path) -> None:
    """No news or update toasts over the notebook."""
    target = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "api/status", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """A JupyterLab server on a free port with a cleared copy of the explorer notebook; yields its URL."""
    _require_chromium()
    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, root / NOTEBOOK.name)
    _quiet_lab_settings(tmp_path / "settings")
    port = _free_port()
    env = {**os.environ,
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    log = tmp_path / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
               "--ServerApp.password=", f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:  # CI runs as root; JupyterLab refuses without this
        command.append("--allow-root")
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, proc, log)
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and the kernels it started (its own process group), politely first."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _shown(page) -> tuple[str, list[str]]:
    """The preferred agent and the fired rules the explorer displays."""
    preferred = page.locator(".lr-preferred").inner_text().strip()
    rules = [text.strip() for text in page.locator(".lr-trace code.lr-rule").all_inner_texts()]
    return preferred, rules


def test_explorer_reacts_to_a_control_in_chromium(lab: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=CELL_RUN_MS)

    before = evaluate(PATIENT)
    after = evaluate({**PATIENT, "planning_pregnancy": True})
    assert before.preferred != after.preferred, "the chosen change must alter the outcome for the test to mean anything"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.set_default_timeout(CELL_RUN_MS)
            page.goto(lab + "lab/tree/" + NOTEBOOK.name)
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible()
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            outcome = page.locator(".lr-preferred")
            expect(outcome).to_have_text(before.preferred or "none")
            assert _shown(page) == (before.preferred, list(before.fired_rules))

            box = page.locator(".widget-checkbox", has_text="planning_pregnancy").locator("input[type=checkbox]")
            box.scroll_into_view_if_needed()
            box.check()
            expect(outcome).to_have_text(after.preferred or "none")
            newly_fired = next(r for r in after.fired_rules if r not in before.fired_rules)
            expect(page.locator(".lr-trace code.lr-rule", has_text=newly_fired)).to_have_count(1)
            assert _shown(page) == (after.preferred, list(after.fired_rules))
            why_not = page.locator(".lr-why-not").inner_text()
            assert "set planning_pregnancy to false" in why_not

            # JupyterLab draws Mermaid as an <img> holding the SVG; a parse error shows a warning instead
            graph = page.locator(".widget-output .jp-RenderedMermaid img").last
            graph.wait_for(state="visible")
            expect(page.locator(".widget-output .jp-RenderedMermaid .jp-mod-warning")).to_have_count(0)
            page.locator(".lr-outcome").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "explorer_planning_pregnancy.png"))
            graph.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "explorer_graph.png"))
        finally:
            browser.close()
