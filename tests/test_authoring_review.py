"""The change-review dossier (authoring/review.py, review_render.py, ``lupus-rules review``)."""
from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from lupus_rules.authoring import compare, read_scenarios
from lupus_rules.authoring.editing import drop_rule, edit_rule
from lupus_rules.authoring.impact import impact
from lupus_rules.authoring.review import build_review
from lupus_rules.authoring.review_render import to_html, to_markdown
from lupus_rules.authoring.saving import save_rulebook
from lupus_rules.authoring.variants import load_variant
from lupus_rules.cli import main
from lupus_rules.notice import DISCLAIMER
from lupus_rules.rulebook import DEFAULT_RULES_DIR, load_rulebook
from lupus_rules.suite import check_suite

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
VARIANT = "variant:gc-target-5mg"
NOW = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def variant_review():
    return build_review("WORKTREE", VARIANT, SCENARIOS, now=NOW)


@pytest.fixture()
def edited_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, folder, ignore=shutil.ignore_patterns("variants"))
    book = load_rulebook(folder)
    save_rulebook(folder, edit_rule(book, "R-KID-01", when=[{"fact": "egfr", "op": ">=", "value": 45}],
                                    title="Preserved kidney function <script>alert(1)</script>"))
    return folder


def _outcome_ids(table) -> set[str]:
    fields = ("preferred", "recommendations", "flags")
    return {r["scenario_id"] for _, r in table.iterrows() if any(r[f"{f}_before"] != r[f"{f}_after"] for f in fields)}


def test_variant_review_separates_outcome_changes_and_marks_new_failures(variant_review):
    review = variant_review
    base, variant = load_rulebook(), load_variant(VARIANT)
    table = compare(base, variant, SCENARIOS)
    assert set(review.impact["scenario_id"]) == set(table["scenario_id"])
    assert set(review.outcome_changes["scenario_id"]) == _outcome_ids(table)
    assert set(review.trace_changes["scenario_id"]) == set(table["scenario_id"]) - _outcome_ids(table)
    failing_after = {c.scenario.id for c in check_suite(SCENARIOS, variant).failures}
    assert set(review.new_failures["scenario_id"]) == failing_after  # all pass under the shipped rulebook
    assert (review.before.version, review.after.version) == (base.version, variant.version)
    assert review.before.lint_passed is True and review.after.lint_passed is True
    assert [r for r, _, _ in review.coverage_delta()] == ["R-GC-01", "R-GC-02"]
    doses = [float(v) for v in read_scenarios(SCENARIOS)["prednisone_mg"] if str(v).strip()]
    withdraw_at_5_or_less = any(0 < d <= 5 for d in doses)  # what R-GC-02 fires on under the variant
    assert ("R-GC-02" in review.after.uncovered) == (not withdraw_at_5_or_less)
    assert review.changes.loc[review.changes["field"] == "references.6", "mark"].tolist() == ["+"]


def test_html_is_self_contained_and_shows_what_a_committee_reads(variant_review):
    page = to_html(variant_review)
    assert not re.search(r"(?i)<script|<link|<img|src=|https?://|@import|url\(", page)
    for text in (variant_review.before.version, variant_review.after.version, "2026-01-02 03:04 UTC",
                 DISCLAIMER, "EULAR 2023", "prednisone_mg condition &gt;= 7.5 → &gt; 5"):
        assert text in page
    for sid in variant_review.new_failures["scenario_id"]:
        row = page[page.index(sid):]
        assert row.index('class="failnew">pass → FAIL') < row.index("</tr>")
    assert '<span class="minus">−glucocorticoid_withdraw</span>' in page
    assert '<span class="plus">+glucocorticoid_taper</span>' in page


def test_markdown_for_a_pull_request(variant_review):
    text = to_markdown(variant_review)
    assert text.startswith("## Rule change review")
    sid = variant_review.new_failures["scenario_id"].iloc[0]
    line = next(line for line in text.splitlines() if f"`{sid}`" in line)
    assert "**pass → FAIL**" in line and "−glucocorticoid_withdraw +glucocorticoid_taper" in line
    assert f"`{variant_review.after.version}`" in text


def test_review_of_an_edited_copy_flags_stale_text_and_escapes_rule_text(edited_folder):
    review = build_review("WORKTREE", edited_folder, SCENARIOS, run_lint=False, now=NOW)
    table = compare(load_rulebook(), load_rulebook(edited_folder), SCENARIOS)
    assert set(review.outcome_changes["scenario_id"]) == _outcome_ids(table)
    assert set(review.trace_changes["scenario_id"]) == set(table["scenario_id"]) - _outcome_ids(table)
    assert review.stale["rule_id"].tolist() == ["R-KID-01"]
    page = to_html(review)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Texts that still name a replaced number" in page
    assert review.after.lint_passed is None and "not run" in page


def test_a_change_only_in_avoided_is_an_outcome_change_for_the_editor_and_the_review():
    """One definition of an outcome change: the review dossier and the rule editor's impact agree."""
    book = load_rulebook()
    rule = book.rule("R-ST-LDN-AVOID")
    edited = edit_rule(book, rule.id, avoid=[*rule.avoid, "voclosporin"])
    editor = impact(book, edited, SCENARIOS)  # what the rule editor shows
    assert len(editor.rows) and set(editor.rows["changed"]) == {"avoided"}, "only the avoided list changes"
    assert len(editor.outcome_changes) == len(editor.rows) and editor.trace_changes.empty
    review = build_review(book, edited, SCENARIOS, run_lint=False, now=NOW)
    assert set(review.outcome_changes["scenario_id"]) == set(editor.outcome_changes["scenario_id"])
    assert review.trace_changes.empty
    assert set(review.outcome_changes["avoided_added"]) == {"voclosporin: R-ST-LDN-AVOID"}
    assert set(review.outcome_changes["avoided_removed"]) == {""}
    assert f"{len(editor.rows)} scenarios with a changed outcome" in review.verdict
    page = to_html(review)
    assert "<th>Continue, avoided, cautions</th>" in page
    assert '<b>avoided</b> <span class="plus">+voclosporin: R-ST-LDN-AVOID</span>' in page
    text = to_markdown(review)
    sid = editor.rows["scenario_id"].iloc[0]
    line = next(line for line in text.splitlines() if f"`{sid}`" in line)
    assert "avoided: +voclosporin: R-ST-LDN-AVOID" in line


def test_expectations_that_cannot_be_checked_are_said_so(tmp_path):
    """A generated batch (Parquet) is compared, but it is no scenario suite: no expectation is claimed."""
    from lupus_rules.authoring import read_scenarios

    batch = tmp_path / "batch.parquet"
    read_scenarios(SCENARIOS).to_parquet(batch)
    review = build_review("WORKTREE", VARIANT, batch, run_lint=False, now=NOW)
    assert review.before.passed is None and review.after.passed is None
    assert "batch.parquet" in review.after.suite_error
    assert len(review.impact) and set(review.impact["expectation"]) == {"not checked"}
    page = to_html(review)
    assert "Expectations under WORKTREE not checked" in page and "pass → FAIL" not in page.split("Scenario impact")[1]


def test_identical_rulebooks_review_says_no_change():
    review = build_review("WORKTREE", DEFAULT_RULES_DIR, SCENARIOS, run_lint=False, now=NOW)
    assert review.impact.empty and review.changes.empty
    assert "No rule or vocabulary changes" in to_html(review)


def test_cli_writes_html_and_markdown_and_strict_fails_on_new_failures(tmp_path, capsys):
    html_out, md_out = tmp_path / "review.html", tmp_path / "review.md"
    assert main(["review", "WORKTREE", VARIANT, "--scenarios", str(SCENARIOS), "-o", str(html_out),
                 "--no-lint"]) == 0
    assert html_out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["review", "WORKTREE", VARIANT, "--scenarios", str(SCENARIOS), "-o", str(md_out), "--no-lint",
                 "--strict"]) == 1
    assert md_out.read_text(encoding="utf-8").startswith("## Rule change review")
    assert main(["review", "WORKTREE", "WORKTREE", "--scenarios", str(SCENARIOS), "-o", str(md_out),
                 "--no-lint", "--strict"]) == 0
    assert "pass → FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["-o", "review.txt"], "suffix '.txt' not supported; allowed: .html, .htm, .md"),
    (["-o", "review.html", "--format", "md"], "does not fit --format md"),
])
def test_cli_refuses_bad_output_options(tmp_path, capsys, argv, words):
    argv = [a if not a.startswith("review.") else str(tmp_path / a) for a in argv]
    assert main(["review", "WORKTREE", VARIANT, *argv]) == 2
    assert words in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_vocabulary_only_change_is_listed_not_silent():
    """An older rule folder without the declared facts (shipped vocabulary implied) differs in version only
    through rulebook.yaml; the review lists that instead of reporting "0 rule changes"."""
    from lupus_rules.rulebook import rulebook_from_documents

    shipped = load_rulebook()
    docs = []
    for name, data in shipped.to_documents():
        if "rulebook" in data:
            data = {**data, "rulebook": {k: v for k, v in data["rulebook"].items()
                                         if k not in ("facts", "statuses", "measures")}}
        docs.append((name, data))
    older = rulebook_from_documents(docs, source="older")
    assert older.version != shipped.version
    review = build_review(older, shipped, SCENARIOS, run_lint=False, now=NOW)
    fields = set(review.changes["field"])
    assert "statuses" in fields and {f"facts.{name}" for name in shipped.facts} <= fields
    assert review.impact.empty and "No rule or vocabulary changes" not in to_html(review)


def test_the_yaml_behind_the_change_is_in_the_dossier(edited_folder, variant_review):
    review = build_review("WORKTREE", edited_folder, SCENARIOS, run_lint=False, now=NOW)
    changed = [line for line in review.file_diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert len(changed) == 4  # threshold 60 -> 45 and the title, one line each
    assert any("value: 45" in line for line in changed if line.startswith("+"))
    page = to_html(review)
    assert "<h2>Rule files</h2>" in page and '<span class="plus">+      - {fact: egfr, op: &quot;&gt;=&quot;, value: 45}' in page
    assert "gc-target-5mg.yaml" in variant_review.file_diff and "R-GC-01:" in variant_review.file_diff
