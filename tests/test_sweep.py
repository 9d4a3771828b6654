"""Sensitivity sweeps: counts cross-checked against independent run_batch runs, errors, the CLI."""
from __future__ import annotations

from dataclasses import replace

import copy
import json

import numpy as np
import pandas as pd
import pytest

from lupus_rules import load_rulebook, run_batch
from lupus_rules.cli import main
from lupus_rules.generate import sample, value_bands
from lupus_rules.rulebook import rulebook_from_documents
from lupus_rules.sweep import (
    MAX_VALUES,
    SweepError,
    find_threshold,
    parse_values,
    sweep,
    variant_rulebook,
)

VALUES = [45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0]


@pytest.fixture(scope="module")
def book():
    return load_rulebook()


@pytest.fixture(scope="module")
def population(book) -> pd.DataFrame:
    """A seeded sample of the generated space with eGFR spread over its range (so every cut moves someone)."""
    rows = sample(value_bands(book), None, 4000, seed=12)
    rng = np.random.default_rng(5)
    egfr = np.round(rng.uniform(20, 110, len(rows)), 1)
    rows["egfr"] = np.where(rng.random(len(rows)) < 0.1, np.nan, egfr)
    rows["manifestations"] = np.where(rng.random(len(rows)) < 0.6, "nephritis", rows["manifestations"])
    return rows


def edited_by_hand(book, moves: dict[tuple[str, int], float]):
    """The rulebook with condition values changed in its documents: independent of sweep.variant_rulebook."""
    documents = copy.deepcopy(book.to_documents())
    for _, data in documents:
        for rule in data.get("rules", []):
            for (rule_id, index), value in moves.items():
                if rule["id"] == rule_id:
                    rule["when"][index]["value"] = value
    return rulebook_from_documents(documents, source="edited in a test")


def expected_row(population, base, variant):
    """Changed counts and preferred transitions between two rulebooks, from two plain run_batch runs."""
    a = run_batch(population, rulebook=base)
    b = run_batch(population, rulebook=variant)
    ok = a["error"] == ""
    a, b = a[ok], b[ok]
    shown = ("preferred", "recommendations", "continue", "avoided", "cautions", "flags")  # what a clinician reads
    counts = {f"{name}_changed": int((a[name] != b[name]).sum()) for name in (*shown, "fired_rules")}
    counts["changed"] = int(np.logical_or.reduce([(a[name] != b[name]).to_numpy() for name in shown]).sum())
    moved = a["preferred"] != b["preferred"]
    pairs = pd.DataFrame({"from": a.loc[moved, "preferred"].replace("", "none"),
                          "to": b.loc[moved, "preferred"].replace("", "none")})
    transitions = {(f, t): int(n) for (f, t), n in pairs.value_counts().items()}
    return counts, transitions, int(ok.sum()), b["rulebook_version"].iloc[0]


def test_counts_equal_independent_runs_of_each_variant(book, population):
    result = sweep(population, VALUES, rule="R-KID-01", rulebook=book)
    assert list(result.table["value"]) == VALUES
    assert result.base_rulebook_version == book.version
    moved_somebody = 0
    for row in result.table.to_dict("records"):
        variant = edited_by_hand(book, {("R-KID-01", 0): row["value"]})
        counts, transitions, patients, version = expected_row(population, book, variant)
        assert row["rulebook_version"] == version == variant.version
        assert row["base_rulebook_version"] == book.version
        assert row["patients"] == patients == result.patients
        assert {k: row[k] for k in counts} == counts, row["value"]
        got = result.transitions[result.transitions["value"] == row["value"]]
        assert {(f, t): n for f, t, n in zip(got["from"], got["to"], got["count"])} == transitions
        moved_somebody += row["changed"] > 0
    assert moved_somebody == len(VALUES) - 1  # every value but the base changes some outcome


def test_the_base_value_changes_nothing_and_keeps_the_version(book, population):
    result = sweep(population, "55:65:5", rule="R-KID-01", rulebook=book)
    base = result.table[result.table["base"]].iloc[0]
    assert base["value"] == 60 and base["rulebook_version"] == book.version
    assert base["changed"] == base["preferred_changed"] == base["fired_rules_changed"] == 0
    assert base["transitions"] == ""
    others = result.table[~result.table["base"]]
    assert len(set(others["rulebook_version"]) | {book.version}) == len(result.table)


def test_a_definition_shared_by_rules_moves_together(book, population):
    """A second rule testing egfr >= 60: naming the fact moves both conditions, naming the rule only one."""
    rule = book.rule("R-SL-01")
    shared = book.replace_rule("R-SL-01", when=(*rule.when, book.rule("R-KID-01").when[0]))
    threshold = find_threshold(shared, fact="egfr", at=60)
    at_60 = {(r.id, i) for r in shared.rules for i, c in enumerate(r.when)
             if c.kind == "fact" and c.fact == "egfr" and c.value == 60}  # also e.g. leflunomide's kidney limit
    assert set(threshold.conditions) == at_60 and {("R-KID-01", 0), ("R-SL-01", len(rule.when))} <= at_60
    variant = variant_rulebook(shared, threshold, 50)
    assert variant.rule("R-KID-01").when[0].value == 50 and variant.rule("R-SL-01").when[-1].value == 50
    by_hand = edited_by_hand(shared, {key: 50.0 for key in at_60})
    assert variant.version == by_hand.version
    by_fact = sweep(population, [50], fact="egfr", at=60, rulebook=shared)
    counts, _, _, _ = expected_row(population, shared, by_hand)
    assert {k: by_fact.table.iloc[0][k] for k in counts} == counts
    by_rule = sweep(population, [50], rule="R-KID-01", rulebook=shared)
    assert by_rule.table.iloc[0]["rulebook_version"] != by_fact.table.iloc[0]["rulebook_version"]


def test_naming_by_fact_equals_naming_by_rule(book, population):
    """Where one rule alone compares a fact with a number, naming the fact or the rule is the same sweep."""
    rule = book.rule("R-KID-01")
    alone = book
    for other, at in (("R-SAFE-LEF-EGFR", 1), ("R-SAFE-LEF-LIMIT-EGFR", 0)):  # leflunomide's limit, also at 60
        when = list(alone.rule(other).when)
        when[at] = replace(when[at], value=59.0)
        alone = alone.replace_rule(other, when=tuple(when))
    assert [(r.id, c.value) for r in alone.rules for c in r.when if c.kind == "fact" and c.fact == "egfr"
            and c.value == 60] == [("R-KID-01", 60)]
    by_rule = sweep(population, [50, 70], rule="R-KID-01", rulebook=alone)
    by_fact = sweep(population, [50, 70], fact="egfr", at=60, rulebook=alone)
    pd.testing.assert_frame_equal(by_rule.table, by_fact.table)
    assert rule.title.split()[0] in by_rule.label and "egfr >= 60" in by_rule.label


def test_rejected_rows_are_counted_and_left_out(book, population):
    bad = population.head(50).astype(object).copy()
    bad.loc[bad.index[3], "egfr"] = "300"
    result = sweep(bad, [50], rule="R-KID-01", rulebook=book)
    assert result.rejected == 1 and result.patients == 49
    assert result.table.iloc[0]["patients"] == 49


@pytest.mark.parametrize("kwargs, message", [
    (dict(rule="R-KID-01", values=[45, 250]), r"values: 250 outside the range of egfr; allowed: 0 to 200"),
    (dict(rule="R-KID-01", values=[-1]), r"-1 outside the range of egfr"),
    (dict(rule="R-KID-1", values=[50]), r"no rule 'R-KID-1' \(did you mean 'R-KID-01'\?\)"),
    (dict(fact="egfr", values=[50]), r"fact egfr has \d+ thresholds .*R-KID-01 when\[0\] egfr >= 60.*R-SAFE-02"),
    (dict(fact="egfrr", values=[50]), r"unknown fact 'egfrr' \(did you mean 'egfr'\?\)"),
    (dict(fact="egfr", at=61, values=[50]), r"at: no fact egfr compares with 61; allowed: 60 \(R-KID-01\), 45"),
    (dict(rule="R-SL-01", values=[50]), r"rule R-SL-01 compares no number"),
    (dict(rule="R-KID-01", condition=1, values=[50]), r"condition: got 1; allowed for R-KID-01: 0 \(egfr >= 60\)"),
    (dict(fact="egfr", condition=0, values=[50]), r"condition: needs a rule"),
    (dict(values=[50]), r"name a rule"),
    (dict(rule="R-KID-01", values=[float("nan")]), r"values: got nan; allowed: a finite number"),
    (dict(rule="R-KID-01", values="75:45:5"), r"STEP > 0 and STOP >= START"),
])
def test_bad_requests_are_refused_naming_what_is_allowed(book, population, kwargs, message):
    values = kwargs.pop("values")
    with pytest.raises(SweepError, match=message):
        sweep(population.head(10), values, rulebook=book, **kwargs)


def test_parse_values():
    assert parse_values("45:75:5") == VALUES
    assert parse_values("0.1:0.3:0.1") == [0.1, 0.2, 0.3]  # decimal steps, no float drift
    assert parse_values("60, 45,50") == [60.0, 45.0, 50.0]
    with pytest.raises(SweepError, match=f"at most {MAX_VALUES:,}"):
        parse_values("0:200:0.01")
    for text in ("45:75", "a", "", "45:75:0"):
        with pytest.raises(SweepError, match="values"):
            parse_values(text)


def test_a_measure_threshold_checks_the_measure_range(book, population):
    result = sweep(population.head(200), [-20, -10], rule="R-RESP-01", rulebook=book)
    assert result.threshold.fact == "egfr_change_pct"
    with pytest.raises(SweepError, match=r"-150 outside the range of egfr_change_pct; allowed: -100 to inf"):
        sweep(population.head(10), [-150], rule="R-RESP-01", rulebook=book)


def test_json_and_frame_carry_versions_and_transitions(book, population):
    result = sweep(population, [50, 60], rule="R-KID-01", rulebook=book)
    document = json.loads(result.to_json())
    assert document["base_rulebook_version"] == book.version
    assert document["threshold"]["conditions"] == [{"rule": "R-KID-01", "condition": 0,
                                                    "title": "Preserved kidney function"}]
    first = document["values"][0]
    assert first["rulebook_version"] == result.table.iloc[0]["rulebook_version"]
    assert sum(t["count"] for t in first["transitions"]) == first["preferred_changed"] > 0
    assert "Not for clinical use" in result.to_text().splitlines()[0]


# --- the command --------------------------------------------------------------------------------


def test_cli_sweep_of_a_file_writes_the_table(tmp_path, capsys, book, population):
    source, out = tmp_path / "pop.csv", tmp_path / "sweep.csv"
    population.to_csv(source, index=False)
    assert main(["sweep", str(source), "--rule", "R-KID-01", "--values", "50:70:10", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Not for clinical use" in printed and book.version in printed and "60 (base)" in printed
    written = pd.read_csv(out, dtype={"rulebook_version": str, "base_rulebook_version": str},
                          keep_default_na=False)
    expected = sweep(population, [50, 60, 70], rule="R-KID-01", rulebook=book).to_frame()
    assert list(written["changed"]) == list(expected["changed"]) and (written["changed"] > 0).sum() == 2
    assert list(written["rulebook_version"]) == list(expected["rulebook_version"])


def test_cli_generated_population_is_seeded(capsys):
    args = ["sweep", "--generated", "3000", "--seed", "4", "--fact", "egfr", "--at", "45",
            "--values", "30:60:15", "--format", "json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert first["patients"] == 3000 and [v["value"] for v in first["values"]] == [30, 45, 60]
    assert main([*args[:4], "5", *args[5:]]) == 0
    assert json.loads(capsys.readouterr().out)["values"] != first["values"]


@pytest.mark.parametrize("args, message", [
    (["--generated", "10", "--rule", "R-KID-01", "--values", "45,250"], "250 outside the range of egfr"),
    (["--generated", "10", "--rule", "R-KID-1", "--values", "45"], "did you mean 'R-KID-01'?"),
    (["--rule", "R-KID-01", "--values", "45"], "give a population file or --generated N"),
    (["{d}/missing.csv", "--rule", "R-KID-01", "--values", "45"], "population file not found"),
    (["--generated", "10", "--values", "45"], "give --rule RULE_ID"),
    (["--generated", "10", "--rule", "R-KID-01", "--values", "45", "-o", "{d}/x.txt"], "suffix '.txt'"),
])
def test_cli_unusable_input_exits_2_with_one_message(tmp_path, capsys, args, message):
    code = main(["sweep", *[a.replace("{d}", str(tmp_path)) for a in args]])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert err.startswith("lupus-rules sweep: ")


def test_cli_rejected_rows_exit_1(tmp_path, capsys, population):
    source = tmp_path / "pop.csv"
    bad = population.head(20).astype(object).copy()
    bad.loc[bad.index[0], "methotrexate"] = "sometimes"
    bad.to_csv(source, index=False)
    assert main(["sweep", str(source), "--rule", "R-KID-01", "--values", "50"]) == 1
    captured = capsys.readouterr()
    assert "1 population rows rejected" in captured.err and "19 patients" in captured.out
