"""The scenario explorer as a person sees it: JupyterLab and the Voila app in headless Chromium at 1366x768.

Each test starts its own server on 127.0.0.1 (free port; JupyterLab with no
token and a temporary root holding a cleared copy of the explorer notebook;
Voila serving ``app/explorer.ipynb``) and checks positions, not just presence:

* the outcome box lies inside the viewport while a control of every control
  group is edited, and each edit shows the outcome :func:`lupus_rules.evaluate`
  gives for the edited patient;
* every label of the graph is at least 14 px high at 100 % zoom;
* the step control walks the whole trace, one firing per click.

Screenshots go to ``tests/artifacts/``. Skipped (loudly) only when Chromium is
missing at /usr/bin/chromium; the app test also when Voila is not installed.
"""
from __future__ import annotations

import contextlib
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

from lupus_rules import default_rulebook, evaluate
from lupus_rules.widgets.controls import group_css

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_scenario_explorer.ipynb"
APP = ROOT / "app" / "explorer.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 768}
#: The patient the notebook's explorer and the app open with.
PATIENT = {"manifestations": "nephritis", "methotrexate": "intolerant"}
SERVER_START_S = 90
CELL_RUN_MS = 120_000


def _require_chromium() -> None:
    """Skip, loudly (a warning in the summary as well as the skip reason), when Chromium is missing."""
    if CHROMIUM.exists():
        return
    reason = ("BROWSER TEST SKIPPED: Chromium is missing at /usr/bin/chromium; install it with "
              "`apt-get install -y chromium` (CI's .ci/run does) to test the explorer in a real browser")
    print("\n" + "!" * 100 + "\n!!! " + reason + "\n" + "!" * 100, file=sys.stderr)
    warnings.warn(reason, pytest.PytestWarning, stacklevel=2)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"server did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


def _start(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and the kernels it started (its own process group), politely first."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _jupyter_env(tmp_path: Path) -> dict[str, str]:
    settings = tmp_path / "settings"
    return {**os.environ,
            "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}


def _project_settings(tmp_path: Path) -> Path:
    """The project's JupyterLab overrides (make lab installs the same file): no news popup, no autosave."""
    folder = tmp_path / "app-settings"
    folder.mkdir()
    (folder / "overrides.json").write_text((ROOT / "jupyter" / "overrides.json").read_text())
    return folder


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
    port = _free_port()
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
               "--ServerApp.password=", f"--ServerApp.root_dir={root}",
               f"--LabApp.app_settings_dir={_project_settings(tmp_path)}"]
    if os.geteuid() == 0:  # CI runs as root; JupyterLab refuses without this
        command.append("--allow-root")
    log = tmp_path / "jupyterlab.log"
    proc = _start(command, root, _jupyter_env(tmp_path), log)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url + "api/status", proc, log)
        yield url
    finally:
        _stop(proc)


@contextlib.contextmanager
def serve_voila(notebook: Path, tmp_path: Path, what: str) -> Iterator[str]:
    """Voila serving ``notebook`` on a free loopback port; yields its URL.

    Skips (loudly) without Chromium, or without Voila (``what`` names the page not tested).
    """
    _require_chromium()
    voila = Path(sys.executable).with_name("voila")
    if not voila.exists():
        pytest.skip(f"Voila is not installed in this environment (pip install -e '.[app]'): {what} not tested")
    port = _free_port()
    command = [str(voila), str(notebook), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}",
               "--VoilaConfiguration.show_tracebacks=True"]
    log = tmp_path / "voila.log"
    proc = _start(command, ROOT, _jupyter_env(tmp_path), log)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, proc, log)
        yield url
    finally:
        _stop(proc)


@pytest.fixture
def voila_app(tmp_path: Path) -> Iterator[str]:
    """The code-free app (Voila serving app/explorer.ipynb) on a free port; yields its URL."""
    with serve_voila(APP, tmp_path, "app") as url:
        yield url


# ---------------------------------------------------------------------------------------
# What a person does and sees


def _inside_viewport(page, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not displayed"
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= VIEWPORT["width"] + 0.5, (selector, box)
    assert box["y"] + box["height"] <= VIEWPORT["height"] + 0.5, (selector, box)
    return box


def _edit_first_control(page, group: str, name: str, patient: dict[str, object]) -> None:
    """Change the first fact of a control group the way a user does, and record it in ``patient``."""
    from playwright.sync_api import expect

    spec = default_rulebook().facts[name]
    box = page.locator("." + group_css(group))
    box.scroll_into_view_if_needed()
    if spec.kind == "bool":
        box.locator(".widget-checkbox", has_text=name).locator("input[type=checkbox]").click()
        patient[name] = not patient.get(name, False)
    elif spec.kind == "status":
        current = patient.get(name, spec.default)
        choice = next(v for v in spec.allowed if v != current)
        row = box.locator(".widget-hbox", has_text=name).first
        row.locator("select").select_option(choice)
        patient[name] = choice
    elif spec.kind == "set":
        chosen = set(str(patient.get(name, "")).split(";")) - {""}
        member = next(m for m in spec.allowed if m not in chosen)
        box.locator("button.widget-toggle-button", has_text=member).click()
        patient[name] = ";".join(sorted(chosen | {member}))
    else:
        row = box.locator(".widget-hbox", has_text=name).first
        field = row.locator("input[type=text]")
        field.fill("42")
        field.press("Enter")
        patient[name] = 42
    expect(page.locator(".lr-preferred")).to_have_text(evaluate(patient).preferred or "none")


def _check_explorer(page, where: str, play: bool = False) -> None:
    """Edit every control group with the outcome in view; graph text size; step through the trace."""
    from playwright.sync_api import expect

    book = default_rulebook()
    patient: dict[str, object] = dict(PATIENT)
    expect(page.locator(".lr-preferred")).to_have_text(evaluate(patient).preferred or "none")
    explorer = _inside_viewport(page, ".lr-explorer")
    assert explorer["height"] <= VIEWPORT["height"]
    for group, names in book.vocabulary.groups().items():
        _edit_first_control(page, group, names[0], patient)
        _inside_viewport(page, ".lr-outcome-box")
        _inside_viewport(page, ".lr-preferred")
        _inside_viewport(page, f".{group_css(group)} .lr-group-title")
        assert page.locator(".lr-explorer").first.bounding_box() == explorer, f"the page moved editing {group}"
    assert page.locator(".lr-patient-label").inner_text().startswith("Patient: custom")
    page.screenshot(path=str(ARTIFACTS / f"{where}_after_editing_every_group.png"))

    result = evaluate(patient)
    page.get_by_role("tab", name="Graph").click()
    graph = page.locator(".lr-graph-view svg.lr-graph")
    expect(graph).to_be_visible()
    sizes = graph.locator("text").evaluate_all(
        "els => els.map(e => [parseFloat(getComputedStyle(e).fontSize), e.getBoundingClientRect().height])")
    assert len(sizes) >= len(result.fired_rules)
    assert min(size for size, _ in sizes) >= 14, sizes
    assert min(height for _, height in sizes) >= 14, sizes  # drawn at 100 %, not scaled down
    _inside_viewport(page, ".lr-outcome-box")
    page.screenshot(path=str(ARTIFACTS / f"{where}_graph.png"))

    page.get_by_role("tab", name="Step by step").click()
    forward = page.locator(".lr-stepper button", has_text="step").first
    expect(page.locator(".lr-step[data-step='0']")).to_be_visible()
    for k, rule_id in enumerate(result.fired_rules, start=1):
        forward.click()
        card = page.locator(f".lr-step[data-step='{k}']")
        expect(card).to_contain_text(f"Just fired: {rule_id}")
        expect(page.locator(f".lr-stepper g.lr-state-current[data-node='r:{rule_id}']")).to_have_count(1)
        if k == 3:
            page.screenshot(path=str(ARTIFACTS / f"{where}_step_3.png"))
    expect(page.locator(".lr-step-headline")).to_contain_text("evaluation finished")
    expect(forward).to_be_disabled()
    _inside_viewport(page, ".lr-outcome-box")
    if play:  # the play button replays the whole evaluation on its own, from step 0
        page.locator(".lr-stepper .widget-play button").nth(1).click()  # stop: back to the first step
        expect(page.locator(".lr-step[data-step='0']")).to_be_visible()
        page.locator(".lr-stepper .widget-play button").first.click()
        expect(page.locator(f".lr-step[data-step='{len(result.fired_rules)}']")).to_be_visible(
            timeout=3000 * len(result.fired_rules) + 10_000)

    page.get_by_role("tab", name="Why not").click()
    expect(page.locator(".lr-why-not li").first).to_be_visible()
    assert page.locator(".lr-why-not li").count() == len(book.rules) - len(result.fired_rules)
    page.screenshot(path=str(ARTIFACTS / f"{where}_why_not.png"))

    page.get_by_role("tab", name="Add to suite").click()
    expect(page.locator(".lr-suite-add button")).to_be_visible()
    _inside_viewport(page, ".lr-suite-add button")   # the whole form fits beside the outcome
    _inside_viewport(page, ".lr-outcome-box")
    page.screenshot(path=str(ARTIFACTS / f"{where}_add_to_suite.png"))


def _browser(pw):
    return pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def _setting(lab: str, plugin: str) -> dict:
    """A plugin's effective settings: the user's, over the defaults (which the overrides replace)."""
    with urllib.request.urlopen(f"{lab}lab/api/settings/{plugin}", timeout=10) as response:
        data = json.loads(response.read())
    defaults = {k: v.get("default") for k, v in data["schema"].get("properties", {}).items()}
    return {**defaults, **data.get("settings", {})}


def test_jupyterlab_uses_the_project_settings(lab: str) -> None:
    """No news or update popup, no autosave, no widget state saved: using a notebook leaves git clean."""
    assert _setting(lab, "@jupyterlab/docmanager-extension:plugin")["autosave"] is False
    notification = _setting(lab, "@jupyterlab/apputils-extension:notification")
    assert notification["fetchNews"] == "false" and notification["checkForUpdates"] is False
    assert _setting(lab, "@jupyter-widgets/jupyterlab-manager:plugin")["saveState"] is False


def test_explorer_in_jupyterlab_at_1366x768(lab: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=CELL_RUN_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(CELL_RUN_MS)
            page.goto(lab + "lab/tree/" + NOTEBOOK.name)
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible()
            if page.locator("#jp-left-stack").is_visible():  # collapse the sidebar, as when projecting
                page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
            expect(page.locator("#jp-left-stack")).to_be_hidden()
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            explorer = page.locator(".lr-explorer")
            explorer.wait_for()
            expect(page.locator(".Toastify__toast")).to_have_count(0)  # no news / update popup
            expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible()
            page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-InputPrompt").click()
            page.wait_for_timeout(500)
            explorer.evaluate("""e => { const s = e.closest('.jp-WindowedPanel-outer');
                s.scrollTop += e.getBoundingClientRect().top - s.getBoundingClientRect().top - 4; }""")
            page.wait_for_timeout(800)
            page.screenshot(path=str(ARTIFACTS / "lab_opened.png"))
            _check_explorer(page, "lab")
        finally:
            browser.close()


@contextlib.contextmanager
def open_page(url: str) -> Iterator:
    """Headless Chromium at 1366x768 on ``url``; yields the page, closes the browser afterwards."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=CELL_RUN_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(CELL_RUN_MS)
            page.goto(url)
            yield page
        finally:
            browser.close()


def test_explorer_app_in_voila_at_1366x768(voila_app: str) -> None:
    with open_page(voila_app) as page:
        page.locator(".lr-explorer").wait_for()
        assert page.locator(".jp-InputArea, .jp-CodeCell .jp-Editor").count() == 0, "the app shows code"
        _check_explorer(page, "app", play=True)
