"""Rulebook variants (authoring/variants.py) and the shipped glucocorticoid-target variant."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lupus_rules.authoring import compare, lint, resolve_rulebook, rule_diff
from lupus_rules.authoring.ruldiff import stale_texts
from lupus_rules.authoring.variants import VARIANTS_DIR, load_variant, variant_names
from lupus_rules.cli import main
from lupus_rules.errors import RulebookError
from lupus_rules.rulebook import load_rulebook
from lupus_rules.suite import check_suite

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
GC = "gc-target-5mg"


@pytest.fixture(scope="module")
def base():
    return load_rulebook()


@pytest.fixture(scope="module")
def variant():
    return load_variant(GC)


def _doses() -> dict[str, float]:
    """Every suite scenario with a prednisone dose, read from the CSV files."""
    doses = {}
    for path in sorted(SCENARIOS.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("prednisone_mg", "").strip():
                    doses[row["scenario_id"]] = float(row["prednisone_mg"])
    return doses


def test_the_variant_is_shipped_and_loads_complete_with_its_own_version(base, variant):
    assert GC in variant_names()
    assert (VARIANTS_DIR / f"{GC}.yaml").is_file()
    assert variant.version != base.version
    assert variant.source.startswith(f"variant:{GC}")
    assert set(variant.rule_ids) == set(base.rule_ids)
    assert [c.describe() for c in variant.rule("R-GC-01").when] == ["prednisone_mg > 5"]
    assert [c.describe() for c in variant.rule("R-GC-02").when] == ["prednisone_mg > 0", "prednisone_mg <= 5"]
    assert "EULAR" in variant.references[6] and "2023" in variant.references[6]
    assert set(variant.rule("R-GC-01").citation) == {6, 7}
    for rule_id in set(base.rule_ids) - {"R-GC-01", "R-GC-02"}:
        assert variant.rule(rule_id).to_data() == base.rule(rule_id).to_data()
    assert resolve_rulebook(f"variant:{GC}").version == variant.version
    assert lint(variant).passed


def test_the_variant_changes_exactly_the_doses_between_5_and_7_5(base, variant):
    """Only a dose above 5 and below 7.5 mg/day is judged differently: 'withdraw' becomes 'taper'."""
    expected = {sid for sid, dose in _doses().items() if 5 < dose < 7.5}
    assert expected  # the suite has such a scenario (SAF02, 7.49 mg/day)
    table = compare(base, variant, SCENARIOS)
    assert set(table["scenario_id"]) == expected
    for _, row in table.iterrows():
        assert "glucocorticoid_withdraw" in row["flags_before"].split(";")
        assert "glucocorticoid_taper" in row["flags_after"].split(";")
        assert row["preferred_before"] == row["preferred_after"]
    failing = {c.scenario.id for c in check_suite(SCENARIOS, variant).failures}
    assert failing and failing <= expected  # the suite pins the guideline's 7.5; the variant breaks those rows
    assert not check_suite(SCENARIOS, base).failures


def test_the_rule_diff_reads_the_change_and_the_texts_were_updated(base, variant):
    text = "\n".join(rule_diff(base, variant)["description"])
    assert "R-GC-01: prednisone_mg condition >= 7.5 → > 5" in text
    assert "R-GC-02: prednisone_mg condition < 7.5 → <= 5" in text
    assert "references entry 6 added" in text
    assert stale_texts(base, variant).empty


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text("variant:\n  name: mine\n  title: A test variant\n  rationale: For a test.\n" + body)
    return path


@pytest.mark.parametrize("body, where, words", [
    ("change:\n  R-GC-99: {title: x}\n", "mine.yaml [R-GC-99] change.R-GC-99", "no rule 'R-GC-99' in the base rulebook"),
    ("change:\n  R-GC-01: {colour: red}\n", "mine.yaml [R-GC-01] change.R-GC-01", "allowed: a mapping of rule fields"),
    ("change:\n  R-GC-01:\n    when: [{fact: prednisone_mg, op: '>', value: -3}]\n",
     "mine.yaml [R-GC-01] change.R-GC-01.when[0].value", "allowed: a number from 0 to 1000"),
    ("drop: [R-NOPE]\n", "mine.yaml [R-NOPE] drop[0]", "no rule 'R-NOPE'"),
    ("add:\n  - {id: R-GC-01, title: t, section: s, citation: [1], rationale: r, then: {flag: [switch_therapy]}}\n",
     "mine.yaml [R-GC-01] add.R-GC-01.id", "duplicate rule id"),
    ("rulebook:\n  facts: {}\n", "mine.yaml rulebook.facts", "a variant cannot change the facts"),
    ("chnage: {}\n", "mine.yaml chnage", "unknown key; allowed: variant, rulebook"),
    ("", "mine.yaml", "changes nothing in its base rulebook"),
])
def test_bad_overlays_are_refused_naming_file_and_key(tmp_path, body, where, words):
    with pytest.raises(RulebookError) as caught:
        load_variant(_write(tmp_path, body))
    assert any(str(p).startswith(where) and words in str(p) for p in caught.value.problems), str(caught.value)


def test_an_overlay_on_a_base_folder_can_add_and_drop(tmp_path):
    body = ("drop: [R-SW-03]\nadd:\n  - {id: R-NEW-01, title: New, section: Test, citation: [1], rationale: Test.,\n"
            "     when: [{fact: egfr, op: '<', value: 15}], then: {flag: [side_effect_monitoring]}}\n")
    book = load_variant(_write(tmp_path, body))
    assert "R-SW-03" not in book.rule_ids and book.rule("R-NEW-01").file == "mine.yaml"


def test_unknown_variant_name_lists_the_shipped_ones(capsys):
    assert main(["lint", "--rules", "variant:nope"]) == 2
    err = capsys.readouterr().err
    assert "variant:nope" in err and GC in err


def test_run_and_diff_accept_the_variant_by_name(tmp_path, capsys, variant):
    out = tmp_path / "out.csv"
    assert main(["run", str(SCENARIOS / "09_safety.csv"), "-o", str(out), "--rules", f"variant:{GC}",
                 "--no-progress"]) == 0
    assert variant.version in out.read_text()
    assert main(["diff", "WORKTREE", f"variant:{GC}", "--scenarios", str(SCENARIOS)]) == 0
    printed = capsys.readouterr().out
    assert "flags: -glucocorticoid_withdraw +glucocorticoid_taper" in printed
