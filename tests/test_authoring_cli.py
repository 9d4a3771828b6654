"""``lupus-rules diff``, ``coverage`` and ``lint`` (cli/authoring.py): output and exit codes."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lupus_rules import default_rulebook
from lupus_rules.cli import main
from lupus_rules.rulebook import DEFAULT_RULES_DIR

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _tiny_rulebook(folder: Path, rules: list[dict]) -> Path:
    """A rule folder with the shipped vocabulary (no derived facts or accepted gaps) and these rules."""
    meta = copy.deepcopy(default_rulebook().meta)
    meta["derived_facts"], meta["accepted_gaps"] = {}, []
    folder.mkdir()
    (folder / "rulebook.yaml").write_text(yaml.safe_dump({"rulebook": meta}), encoding="utf-8")
    (folder / "rules.yaml").write_text(yaml.safe_dump({"rules": rules}), encoding="utf-8")
    return folder


def _rule(rule_id: str, when: list, then: dict) -> dict:
    return {"id": rule_id, "title": rule_id, "section": "test", "citation": [1], "when": when, "then": then,
            "rationale": "test"}


PREGNANT = {"fact": "planning_pregnancy", "op": "==", "value": True}


def _new(agent: str) -> dict:
    """The guard a careful author writes on a new start: the patient has no history with the agent."""
    return {"fact": agent, "op": "==", "value": "not_tried"}


def test_lint_fails_on_a_contradiction(tmp_path, capsys):
    folder = _tiny_rulebook(tmp_path / "rules", [
        _rule("T-MMF", [PREGNANT, _new("mycophenolate")], {"recommend": [{"agent": "mycophenolate", "rank": 40}]}),
        _rule("T-AZA", [PREGNANT, _new("azathioprine")], {"recommend": [{"agent": "azathioprine", "rank": 40}]}),
    ])
    findings = tmp_path / "findings.csv"
    assert main(["lint", "--rules", str(folder), "-o", str(findings)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("Not for clinical use")
    assert "azathioprine and mycophenolate tie at the best rank 40" in out and "FAILED" in out
    assert "contradiction" in set(pd.read_csv(findings)["check"])


def test_lint_passes_with_warnings_only(tmp_path, capsys):
    folder = _tiny_rulebook(tmp_path / "rules", [
        _rule("T-REC", [PREGNANT, _new("azathioprine")], {"recommend": [{"agent": "azathioprine", "rank": 40}]}),
    ])
    assert main(["lint", "--rules", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "[warning] gap" in out and "planning_pregnancy = false" in out and "PASSED" in out


def test_diff_lists_rule_changes_and_changed_scenarios(tmp_path, capsys):
    before, after = tmp_path / "before", tmp_path / "after"
    shutil.copytree(DEFAULT_RULES_DIR, before)
    shutil.copytree(DEFAULT_RULES_DIR, after)
    path = after / "20_second_line.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('op: ">=", value: 60', 'op: ">=", value: 45'),
                    encoding="utf-8")
    output = tmp_path / "changed.csv"
    assert main(["diff", str(before), str(after), "--scenarios", str(SCENARIOS), "-o", str(output)]) == 0
    out = capsys.readouterr().out
    assert "R-KID-01: egfr threshold 60 → 45" in out
    changed = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert len(changed) > 0
    assert f"{len(changed)} of " in out.splitlines()[-1] and "scenarios changed" in out.splitlines()[-1]
    for scenario_id in changed["scenario_id"]:
        assert f"{scenario_id}: " in out


def test_diff_refuses_an_unknown_rulebook(capsys):
    assert main(["diff", "no-such-thing", "WORKTREE"]) == 2
    assert "neither a file/folder on disk nor a git revision" in capsys.readouterr().err


def test_coverage_strict_fails_when_a_rule_is_uncovered(tmp_path, capsys):
    suite = tmp_path / "suite.csv"
    rows = pd.read_csv(SCENARIOS / "01_first_line.csv", dtype=str, keep_default_na=False)
    rows.to_csv(suite, index=False)
    proposals = tmp_path / "proposals.csv"
    assert main(["coverage", "--scenarios", str(suite), "--proposals", str(proposals)]) == 0
    out = capsys.readouterr().out
    assert "Proposed scenario rows" in out
    assert main(["coverage", "--scenarios", str(suite), "--strict"]) == 1
    written = pd.read_csv(proposals, dtype=str, keep_default_na=False)
    assert len(written) > 0 and written["scenario_id"].str.startswith("COV-").all()


def test_coverage_of_the_full_suite_is_strictly_complete(capsys):
    assert main(["coverage", "--scenarios", str(SCENARIOS), "--strict"]) == 0
    assert "Every rule is fired by some scenario." in capsys.readouterr().out


@pytest.mark.parametrize("command", ["diff", "coverage", "lint"])
def test_help_mentions_clinical_use(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "Not for clinical use" in " ".join(capsys.readouterr().out.split())  # argparse wraps lines
