"""The rulebook as an HTML page with every condition's coverage marked (authoring/coverage_html.py)."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from lupus_rules.authoring import coverage
from lupus_rules.authoring.coverage_html import coverage_html
from lupus_rules.authoring.variants import load_variant
from lupus_rules.cli import main

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def _rule_block(page: str, rule_id: str) -> str:
    start = page.index(f'id="{rule_id}"')
    end = page.find('<div class="rule', start + 1)
    return page[start:end if end >= 0 else len(page)]


def test_every_condition_is_marked_as_the_suite_exercises_it():
    variant = load_variant("gc-target-5mg")
    gc02 = variant.rule("R-GC-02")  # moved to a dose no scenario has, so the suite leaves it unexercised
    book = variant.replace_rule("R-GC-02", when=(replace(gc02.when[0], op=">", value=900.0),))
    report = coverage(SCENARIOS, book, propose=False)
    page = coverage_html(report, book)
    assert not re.search(r"(?i)<script|<link|<img|src=|https?://", page)
    assert page.count("<li><code>") == len(report.conditions) == sum(len(r.when) for r in book.rules)
    assert page.count("never alone stops it") == int((report.conditions["alone_false"] == 0).sum())
    assert page.count('badge no">never true') == int((report.conditions["true"] == 0).sum())
    assert "fired by NO scenario" in _rule_block(page, "R-GC-02")
    for _, row in report.rules.iterrows():
        assert ("fired by NO scenario" in _rule_block(page, row["rule_id"])) == (row["scenarios"] == 0)
    assert 'class="rule cold" id="R-GC-02"' in page
    for _, row in report.conditions[report.conditions["rule_id"] == "R-GC-01"].iterrows():
        assert f"true {row['true']}" in _rule_block(page, "R-GC-01")


def test_cli_coverage_writes_the_page(tmp_path: Path, capsys):
    out = tmp_path / "coverage.html"
    assert main(["coverage", "--scenarios", str(SCENARIOS), "--html", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["coverage", "--scenarios", str(SCENARIOS), "--html", str(tmp_path / "c.txt")]) == 2
    assert "allowed: .html, .htm" in capsys.readouterr().err
