"""The generated docs (README data dictionary, docs/RULES.md) and the two dependency lists stay in step."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_generated_docs_are_current():
    done = run_tool("tools/render_docs.py", "--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_environment_yml_matches_pyproject():
    done = run_tool("tools/check_env_sync.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:5]
    assert any("make lab" in line for line in lines) and any("make test" in line for line in lines)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
