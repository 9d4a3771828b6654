"""The rule editor as an author sees it: a page with the editor in headless Chromium at 1366x768.

Voila serves a small notebook showing :class:`lupus_rules.widgets.RuleEditor` on a copy
of the shipped rule folder (in the test's temporary folder). The test types a new eGFR
threshold into R-KID-01's condition and checks that the impact area shows what
:func:`lupus_rules.authoring.impact.impact` computes for that edit (changed scenarios,
the pass → FAIL marks), that a value the loader refuses shows its message and leaves the
impact alone, that the page fits 1366 px with no text under 14 px, and that Show diff +
Save write the edit into the copy. Screenshot: ``tests/artifacts/editor.png``. Fixtures and
helpers are those of ``tests/test_browser.py``; skipped (loudly) without Chromium or Voila.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from test_browser import ARTIFACTS, VIEWPORT, open_page, serve_voila

from lupus_rules.authoring.editing import edit_rule
from lupus_rules.authoring.impact import impact
from lupus_rules.presets import default_scenarios_dir
from lupus_rules.rulebook import DEFAULT_RULES_DIR, load_rulebook

pytestmark = pytest.mark.browser

_CODE = """\
from lupus_rules.widgets import RuleEditor

RuleEditor({folder!r}, {scenarios!r}, rule_id="R-KID-01")
"""


@pytest.fixture
def editor_app(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Voila serving a one-cell notebook with the editor on a copy of the rule folder; yields (URL, folder)."""
    folder = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, folder)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(_CODE.format(folder=str(folder),
                                                             scenarios=str(default_scenarios_dir())))]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    page = tmp_path / "editor.ipynb"
    nbformat.write(notebook, page)
    with serve_voila(page, tmp_path, "editor page") as url:
        yield url, folder


_SMALLEST_TEXT = """e => {
  let smallest = 1000, where = '';
  for (const el of e.querySelectorAll('*')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || box.width === 0 || box.height === 0) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < smallest) { smallest = size; where = el.tagName + ' ' + el.className + ': ' + el.textContent.trim().slice(0, 40); }
  }
  for (const el of e.querySelectorAll('input, select, textarea, button')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < smallest) { smallest = size; where = el.tagName + ' ' + el.className; }
  }
  return [smallest, where];
}"""


def test_editor_threshold_edit_updates_the_impact_at_1366x768(editor_app: tuple[str, Path]) -> None:
    from playwright.sync_api import expect

    url, folder = editor_app
    base = load_rulebook(folder)
    expected = impact(base, edit_rule(base, "R-KID-01", when=[{"fact": "egfr", "op": ">=", "value": 45}]),
                      default_scenarios_dir())
    counts = expected.counts
    assert counts["outcome"] and counts["pass_to_fail"], "the edit must change something to be seen"
    with open_page(url) as page:
        editor = page.locator(".lr-editor")
        editor.wait_for()
        summary = page.locator(".lr-impact-summary")
        expect(summary).to_contain_text(f"0 of {counts['total']} scenarios changed")
        value = page.locator(".lr-rule-form .lr-condition input[type=text]").first
        expect(value).to_have_value("60")

        value.fill("45")
        expect(summary).to_contain_text(f"{counts['changed']} of {counts['total']} scenarios changed")
        expect(summary).to_contain_text(f"{counts['outcome']} outcome, {counts['trace']} trace-only")
        expect(page.locator(".lr-impact-table .lr-pass-fail")).to_have_count(counts["pass_to_fail"])
        for ident in expected.outcome_changes["scenario_id"]:
            expect(page.locator(".lr-impact-table code", has_text=ident)).to_have_count(1)
        for ident in expected.trace_changes["scenario_id"]:  # outcome changes only, by default
            expect(page.locator(".lr-impact-table code", has_text=ident)).to_have_count(0)

        value.fill("-5")  # refused: the loader's message, the impact as it was
        expect(page.locator(".lr-form-error")).to_contain_text(
            "when[0].value: got -5; allowed: a number from 0 to 200 (the range of egfr)")
        expect(summary).to_contain_text(f"{counts['changed']} of {counts['total']} scenarios changed")
        expect(page.locator(".lr-impact-held")).to_contain_text("not updated")
        value.fill("45")
        expect(page.locator(".lr-impact-held")).to_have_count(0)
        expect(page.locator(".lr-form-ok")).to_be_visible()

        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / "editor.png"))
        box = editor.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], box
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
        smallest, where = editor.evaluate(_SMALLEST_TEXT)
        assert smallest >= 14, f"text under 14 px: {smallest} px at {where}"

        page.get_by_role("button", name="Show diff").click()
        expect(page.locator(".lr-diff")).to_contain_text('value: 45}')
        page.locator(".lr-diff").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "editor_diff.png"))
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".lr-saved")).to_contain_text("Wrote 20_second_line.yaml")

        page.get_by_role("button", name="+ new rule").click()  # a blank rule: the loader says what it lacks
        error = page.locator(".lr-form-error")
        expect(error).to_contain_text("title: missing")
        expect(error).to_contain_text("then: missing: a rule needs at least one conclusion")
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / "editor_new_rule.png"))
    assert load_rulebook(folder).rule("R-KID-01").when[0].value == 45


_SELECTED = "s => s.options[s.selectedIndex] ? s.options[s.selectedIndex].text.replace(/\\s/g, ' ') : ''"


def test_renaming_a_rule_renames_it_in_the_rule_picker(editor_app: tuple[str, Path]) -> None:
    """The id typed into the form is the id the rule picker and the form heading show once accepted."""
    import re

    from playwright.sync_api import expect

    url, _ = editor_app
    with open_page(url) as page:
        page.locator(".lr-editor").wait_for()
        picker = page.locator(".lr-editor .widget-dropdown", has=page.locator("label", has_text=re.compile(
            r"^rule$"))).locator("select")
        expect(picker).to_have_count(1)
        assert "R-KID-01 · " in picker.evaluate(_SELECTED)
        ident = page.locator(".lr-rule-form .widget-text", has=page.locator("label", has_text=re.compile(
            r"^id$"))).locator("input")
        ident.fill("R-KID-45")
        expect(page.locator(".lr-form-ok")).to_be_visible()
        page.wait_for_function("() => [...document.querySelectorAll('.lr-editor select')].some(s => "
                               "s.options[s.selectedIndex] && s.options[s.selectedIndex].text"
                               ".replace(/\\s/g, ' ').includes('R-KID-45 (was R-KID-01) · '))")
        selected = picker.evaluate(_SELECTED)
        assert "✎ R-KID-45 (was R-KID-01) · " in selected, selected
        labels = picker.evaluate("s => [...s.options].map(o => o.text.replace(/\\s/g, ' '))")
        assert not any(label.split(" · ")[0].endswith("R-KID-01") for label in labels), labels
        expect(page.locator(".lr-rule-form .lr-form-heading").first).to_contain_text(
            "Editing R-KID-45 (was R-KID-01)")
        expect(page.locator(".lr-edits")).to_contain_text("renamed: R-KID-01 → R-KID-45")
