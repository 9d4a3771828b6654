"""Rule-level diff (authoring/ruldiff.py) and rulebooks from git revisions (authoring/sources.py)."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from lupus_rules import Condition, RulebookError, default_rulebook
from lupus_rules.authoring import changed_rule_ids, resolve_rulebook, rule_diff
from lupus_rules.rulebook import DEFAULT_RULES_DIR, load_rulebook


@pytest.fixture(scope="module")
def book():
    return default_rulebook()


def _lower_egfr_threshold(book):
    return book.replace_rule("R-KID-01", when=(Condition("fact", "egfr", ">=", 45.0),))


def test_threshold_change_reads_as_a_sentence(book):
    diff = rule_diff(book, _lower_egfr_threshold(book))
    assert list(diff["rule_id"]) == ["R-KID-01"]
    row = diff.iloc[0]
    assert (row["change"], row["field"], row["before"], row["after"]) == ("changed", "when", "egfr >= 60",
                                                                          "egfr >= 45")
    assert row["description"].startswith("R-KID-01: egfr threshold 60 → 45")


def test_added_removed_and_conclusion_changes(book):
    fl01 = book.rule("R-FL-01")
    edited = book.without_rule("R-SW-03").replace_rule(
        "R-FL-01", recommend=(replace(fl01.recommend[0], rank=30),), flag=("switch_therapy",))
    edited = edited.with_rules([*sorted(edited.rules, key=lambda r: r.position),
                                replace(fl01, id="R-FL-99", title="Test rule")])
    diff = rule_diff(book, edited)
    text = "\n".join(diff["description"])
    assert "R-SW-03: rule removed" in text
    assert "R-FL-99: rule added" in text
    assert "R-FL-01: mycophenolate rank 40 → 30" in text
    assert "R-FL-01: now flags switch_therapy" in text
    assert changed_rule_ids(book, edited) == {"R-SW-03", "R-FL-99", "R-FL-01"}


def test_wording_changes_are_listed_but_do_not_count_as_logic_changes(book):
    edited = book.replace_rule("R-FL-02", title="Keep mycophenolate that works")
    diff = rule_diff(book, edited)
    assert list(diff["field"]) == ["title"]
    assert changed_rule_ids(book, edited) == set()


def test_identical_rulebooks_have_no_diff(book):
    assert rule_diff(book, load_rulebook()).empty


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path):
    """A git repository holding the shipped rules at lupus_rules/rules, one commit."""
    rules = tmp_path / "lupus_rules" / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "rules")
    text = (rules / "20_second_line.yaml").read_text(encoding="utf-8")
    (rules / "20_second_line.yaml").write_text(text.replace('op: ">=", value: 60', 'op: ">=", value: 45'),
                                               encoding="utf-8")
    return tmp_path


def test_revision_and_worktree_folder(repo, book):
    before = resolve_rulebook("HEAD", repo=repo)
    assert before.version == book.version
    after = resolve_rulebook(repo / "lupus_rules" / "rules")
    assert list(rule_diff(before, after)["rule_id"]) == ["R-KID-01"]
    one_file = resolve_rulebook("HEAD:lupus_rules/rules", repo=repo)
    assert one_file.version == book.version


def test_a_path_on_disk_wins_over_a_revision_name(repo, monkeypatch):
    shutil.copytree(repo / "lupus_rules" / "rules", repo / "HEAD")
    monkeypatch.chdir(repo)
    edited = resolve_rulebook("HEAD")
    assert edited.rule("R-KID-01").when[0].value == 45.0


def test_unknown_revision_is_refused_with_what_was_tried(repo):
    with pytest.raises(RulebookError, match="neither a file/folder on disk nor a git revision"):
        resolve_rulebook("no-such-rev", repo=repo)
    with pytest.raises(RulebookError, match="no rule files"):
        resolve_rulebook("HEAD:no/such/folder", repo=repo)
