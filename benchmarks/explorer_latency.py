"""Widget-change latency of the explorer in a real browser (Voila app, headless Chromium, 1366x768).

Not for clinical use. Measures, in the browser, the time from a user's change to
the moment the outcome pane shows the new outcome (a MutationObserver on the
outcome column), for a checkbox that changes the preferred agent and for a typed
number; and, as the floor measured in the same run, the time of the cheapest
kernel round trip the explorer has (the graph's full-screen toggle: the kernel
only adds a CSS class to one box). Prints median and p99 per action and the ratio to the
floor's median. Target (issue 10): p99 < 100 ms.

    .venv/bin/python benchmarks/explorer_latency.py [--repeat 40]
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"

_MEASURE = """([selector, action, subtree]) => new Promise(resolve => {
  const target = document.querySelector(selector);
  const start = performance.now();
  const timer = setTimeout(() => { observer.disconnect(); resolve(null); }, 5000);
  const observer = new MutationObserver(() => {
    observer.disconnect(); clearTimeout(timer); resolve(performance.now() - start); });
  observer.observe(target, subtree ? {subtree: true, childList: true, characterData: true, attributes: true}
                                   : {attributes: true, attributeFilter: ['class']});
  action === 'click' ? window.__lrTarget.click() : window.__lrTarget.dispatchEvent(new Event('change', {bubbles: true}));
})"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    voila = Path(sys.executable).with_name("voila")
    proc = subprocess.Popen([str(voila), str(ROOT / "app" / "explorer.ipynb"), "--no-browser",
                             "--Voila.ip=127.0.0.1", f"--port={port}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(180):
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    raise SystemExit("explorer_latency: Voila did not start within 90 s")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _time(page, handle_js: str, watch: str, action: str, repeat: int, subtree: bool = True) -> list[float]:
    out = []
    for _ in range(repeat):
        page.evaluate(f"() => {{ window.__lrTarget = {handle_js}; }}")
        out.append(page.evaluate(_MEASURE, [watch, action, subtree]))
        page.wait_for_timeout(30)
    return out


def main() -> None:
    """Run the measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40, help="changes per action (default 40)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from lupus_rules import default_rulebook

    from lupus_rules import evaluate
    from lupus_rules.widgets.app import app

    book = default_rulebook()
    start = app().facts()  # the patient the app opens with
    base = evaluate(start).preferred
    boolean = next(n for n, s in book.facts.items()
                   if s.kind == "bool" and evaluate({**start, n: True}).preferred != base)
    number, threshold = next((c.fact, c.value) for r in book.rules for c in r.when
                             if c.kind == "fact" and c.op == ">=" and c.fact in book.facts)
    proc, url = _serve()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(url)
            page.locator(".lr-preferred").wait_for(timeout=120_000)
            page.wait_for_timeout(1000)
            checkbox = (f"[...document.querySelectorAll('.lr-explorer .widget-checkbox')].find(e => "
                        f"e.querySelector('span') && e.querySelector('span').textContent === '{boolean}').querySelector('input')")
            rows = {
                f"checkbox {boolean}": _time(page, checkbox, ".lr-outcome-box", "click", args.repeat),
            }
            field = (f"[...document.querySelectorAll('.lr-explorer .widget-hbox')].find(e => "
                     f"e.textContent.includes('{number}')).querySelector('input[type=text]')")
            typed = []
            for i in range(args.repeat):
                value = threshold if i % 2 == 0 else threshold - 1
                page.evaluate(f"() => {{ const f = {field}; f.value = '{value:g}'; "
                              "f.dispatchEvent(new Event('input', {bubbles: true})); window.__lrTarget = f; }")
                typed.append(page.evaluate(_MEASURE, [".lr-explorer .widget-tab", "change", True]))
                page.wait_for_timeout(30)
            rows[f"typed {number} {threshold:g}/{threshold - 1:g}"] = typed
            page.get_by_role("tab", name="Graph").click()
            page.wait_for_timeout(500)
            toggle = ("[...document.querySelectorAll('.lr-graph-view button')].find(b => "
                      "b.textContent.includes('full screen'))")
            rows["floor: full-screen toggle (CSS class only)"] = _time(page, toggle, ".lr-graph-view", "click",
                                                                       args.repeat, subtree=False)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    floor = statistics.median(v for v in rows["floor: full-screen toggle (CSS class only)"] if v is not None)
    print(f"explorer latency in Chromium via Voila, {args.repeat} changes each (ms); not for clinical use")
    print(f"{'action':<46} {'median':>8} {'p99':>8} {'median/floor':>13}")
    for name, values in rows.items():
        missed = values.count(None)
        values = [v for v in values if v is not None]
        if missed:
            name += f" ({missed} timed out)"
        if not values:
            print(f"{name:<46} no change observed")
            continue
        print(f"{name:<46} {statistics.median(values):8.1f} {_percentile(values, 0.99):8.1f} "
              f"{statistics.median(values) / floor:13.1f}")


if __name__ == "__main__":
    main()
