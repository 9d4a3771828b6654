"""The supported Pythons (3.11-3.13): the engine works on the running one, and the set-up picks one well.

`tools/find_python.sh` is exercised with stand-in interpreters (small scripts that
answer the version probe), so its choices are checked for versions this machine
may not have.
"""
from __future__ import annotations

import datetime
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

import lupus_rules as lr

ROOT = Path(__file__).resolve().parents[1]
FIND_PYTHON = ROOT / "tools" / "find_python.sh"

PATIENT = {"methotrexate": "intolerant", "manifestations": "nephritis", "planning_pregnancy": True}


def test_durable_engine_fires_on_this_interpreter():
    """durable-rules imports and fires here (on 3.13 only when built with the flag), matching the vectorized engine."""
    from lupus_rules.engines import durable  # no importorskip: a broken build must fail this test

    assert sys.version_info[:2] >= (3, 11)
    result = lr.evaluate(PATIENT)
    assert result.engine == "durable"
    assert result.fired_rules, "durable-rules fired nothing"
    batch = lr.run_batch(pd.DataFrame([{k: str(v) for k, v in PATIENT.items()}]), engine="vectorized")
    assert batch.loc[0, "fired_rules"] == ";".join(f.rule_id for f in result.trace)
    assert durable.__name__.endswith("durable")


@pytest.mark.skipif(sys.version_info < (3, 12), reason="utcfromtimestamp is deprecated from Python 3.12 on")
def test_utcfromtimestamp_warning_is_filtered_only_inside_durable():
    """The pytest filter names durable's modules; the same warning from anywhere else still shows."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        datetime.datetime.utcfromtimestamp(0)  # noqa: DTZ004 - the deprecated call itself
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


def _fake_python(folder: Path, name: str, version: str) -> Path:
    """A stand-in interpreter: answers find_python.sh's probe with ``version`` and its own path."""
    path = folder / name
    path.write_text(f'#!/bin/sh\nprintf "%s\\n%s\\n" "{version}" "{path}"\n')
    path.chmod(0o755)
    return path


def _find(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": env_extra.pop("PATH", "/usr/bin:/bin"), **env_extra}
    return subprocess.run(["bash", str(FIND_PYTHON), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("version", ["3.11.9", "3.12.4", "3.13.0"])
def test_find_python_accepts_supported_versions(tmp_path, version):
    fake = _fake_python(tmp_path, "python", version)
    done = _find({"PYTHON": str(fake)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(fake)
    assert "warning" not in done.stderr


@pytest.mark.parametrize("version", ["3.10.14", "3.9.18", "2.7.18"])
def test_find_python_refuses_older_versions_and_says_what_is_supported(tmp_path, version):
    fake = _fake_python(tmp_path, "python", version)
    done = _find({"PYTHON": str(fake)})
    assert done.returncode == 1
    assert done.stdout == ""
    assert "3.11, 3.12 or 3.13" in done.stderr and version in done.stderr


def test_find_python_tries_untested_newer_versions_with_a_warning(tmp_path):
    fake = _fake_python(tmp_path, "python", "3.14.1")
    done = _find({"PYTHON": str(fake)})
    assert done.returncode == 0
    assert done.stdout.strip() == str(fake)
    assert "warning" in done.stderr and "untested" in done.stderr and "3.14.1" in done.stderr


def test_find_python_prefers_a_supported_version_over_an_untested_one(tmp_path):
    _fake_python(tmp_path, "python3", "3.14.0")
    supported = _fake_python(tmp_path, "python3.12", "3.12.7")
    done = _find({"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(supported)


def test_find_python_all_lists_one_interpreter_per_version_oldest_first(tmp_path):
    _fake_python(tmp_path, "python3.13", "3.13.1")
    _fake_python(tmp_path, "python3.11", "3.11.2")
    _fake_python(tmp_path, "python3", "3.11.2")  # the same version again: listed once
    done = _find({"PATH": f"{tmp_path}:/usr/bin:/bin"}, "--all")
    assert done.returncode == 0, done.stderr
    versions = [line.split()[0] for line in done.stdout.splitlines()]
    assert versions == ["3.11.2", "3.13.1"]


def test_find_python_explains_when_nothing_is_found(tmp_path):
    done = _find({"PATH": f"{tmp_path}:/usr/bin:/bin", "PYTHON": str(tmp_path / "missing")})
    assert done.returncode == 1
    assert "not found" in done.stderr and "PYTHON is set" in done.stderr


def test_running_interpreter_is_found_as_supported():
    """The venv's own interpreter passes the same check the set-up applies."""
    done = _find({"PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr
    assert os.path.samefile(done.stdout.strip(), sys.executable)
