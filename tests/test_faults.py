"""Faults: a run killed halfway (SIGKILL) or interrupted (SIGINT) never leaves a truncated output (issue 9).

Each test starts ``lupus-rules run`` as a subprocess on a generated file big
enough to take seconds, waits until the run's partial file holds evaluated
rows, then signals it. Waiting is bounded only as a safety net; nothing here
asserts a duration.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ROWS = 200_000
PARTIAL = re.compile(r"^\.out\.csv\.\d+\.[0-9a-f]{12}\.partial$")


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """A CSV of varied patients, and beside it ``clean.csv``: an uninterrupted run's output."""
    folder = tmp_path_factory.mktemp("faults")
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"scenario_id": [f"p{i}" for i in range(ROWS)],
                          "egfr": rng.integers(5, 120, ROWS), "upcr": np.round(rng.random(ROWS) * 5, 2)})
    source = folder / "big.csv"
    frame.to_csv(source, index=False)
    assert subprocess.run(command(source, folder / "clean.csv"), capture_output=True).returncode == 0
    return source


def command(source: Path, target: Path) -> list[str]:
    return [sys.executable, "-m", "lupus_rules", "run", str(source), "-o", str(target),
            "--no-progress", "--chunk-size", "5000"]


def partials(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".partial")]


def start_and_wait_for_rows(source: Path, target: Path) -> subprocess.Popen:
    """The run, once its partial file holds some evaluated rows (the header alone is a few hundred bytes)."""
    process = subprocess.Popen(command(source, target), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120  # a safety net for a loaded machine, not an assertion
    while time.monotonic() < deadline and process.poll() is None:
        sizes = [(target.parent / name).stat().st_size for name in partials(target.parent)]
        if any(size > 50_000 for size in sizes):
            return process
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"the run finished or stalled before writing rows: {process.stderr.read()!r}")


@pytest.mark.parametrize("older", [False, True])
def test_sigkill_halfway_then_rerun_gives_the_clean_bytes(big, older):
    folder = big.parent / f"kill-{older}"
    folder.mkdir()
    target = folder / "out.csv"
    if older:
        target.write_bytes(b"scenario_id,error\nold,\n")
    process = start_and_wait_for_rows(big, target)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if older:
        assert target.read_bytes() == b"scenario_id,error\nold,\n"
    else:
        assert not target.exists()
    stale = partials(folder)
    assert len(stale) <= 1 and all(PARTIAL.match(name) for name in stale)
    rerun = subprocess.run(command(big, target), capture_output=True)
    assert rerun.returncode == 0, rerun.stderr
    assert target.read_bytes() == (big.parent / "clean.csv").read_bytes()
    assert partials(folder) == stale  # the rerun used its own partial file and removed it


def test_sigint_leaves_nothing_partial(big):
    folder = big.parent / "interrupt"
    folder.mkdir()
    target = folder / "out.csv"
    process = start_and_wait_for_rows(big, target)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate()
    assert process.returncode != 0
    assert b"Traceback" not in stderr
    assert not target.exists()
    assert partials(folder) == []
    assert os.listdir(folder) == []
