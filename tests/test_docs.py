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


def test_readme_python_example_shows_real_output():
    import lupus_rules as lr

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    result = lr.evaluate({"methotrexate": "intolerant", "manifestations": "nephritis", "planning_pregnancy": True})
    assert f"result.preferred          # {result.preferred!r}" in text
    assert f"result.recommendations    # {result.recommendations!r}" in text
    assert f"result.flags              # {result.flags!r}" in text


def test_readme_rule_example_matches_the_rule_file():
    import lupus_rules as lr

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rule = lr.load_rulebook().rule("R-SL-01")
    shown = ", ".join(f"{{agent: {r.agent}, rank: {r.rank}}}" for r in rule.recommend)
    assert f"recommend: [{shown}]" in text


def test_every_command_the_docs_name_exists():
    """``lupus-rules WORD`` in README, the scenario README, docs/ and the notebooks is a real sub-command."""
    import re

    from lupus_rules.cli import build_parser

    parser = build_parser()
    commands = set(next(a for a in parser._actions if a.dest == "command").choices)
    files = [ROOT / "README.md", ROOT / "scenarios" / "README.md", *ROOT.glob("docs/**/*.md"),
             *ROOT.glob("notebooks/*.ipynb")]
    named = {(path.name, word) for path in files
             for word in re.findall(r"lupus-rules ([a-z][a-z-]*)", path.read_text(encoding="utf-8"))}
    assert {(name, word) for name, word in named if word not in commands} == set()
