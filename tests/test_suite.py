"""The scenario-suite loader, checker, report and ``lupus-rules check-suite`` command.

Scenario files are written to tmp_path. Expected outcomes come from the
guideline (e.g. methotrexate failure alone -> mycophenolate is the preferred
alternative; nothing failed and no nephritis -> outside the guideline).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lupus_rules import DISCLAIMER, LupusRulesError, default_rulebook
from lupus_rules.cli import main
from lupus_rules.rulebook import DEFAULT_RULES_DIR, Condition
from lupus_rules.suite import (
    EXPECTATION_COLUMNS,
    Scenario,
    SuiteFormatError,
    check_scenario,
    check_suite,
    load_suite,
)

SCENARIOS_DIR = Path(__file__).resolve().parents[1] / "scenarios"
HEADER = "scenario_id,description,manifestations,methotrexate,egfr,expect_preferred,expect_fired,expect_flags"


def write(folder: Path, name: str, *lines: str) -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_error(path: Path) -> SuiteFormatError:
    with pytest.raises(SuiteFormatError) as info:
        load_suite(path)
    return info.value


# -- loading ------------------------------------------------------------------------------

def test_load_types_facts_fills_defaults_and_splits_lists(tmp_path):
    path = write(tmp_path, "a.csv", HEADER,
                 "s1,MTX failed,joint; nephritis,intolerant,45, mycophenolate ,R-SCOPE-01 ; R-FL-07,")
    [scenario] = load_suite(path)
    assert isinstance(scenario, Scenario)
    assert (scenario.id, scenario.description, scenario.row, scenario.line) == ("s1", "MTX failed", 1, 2)
    assert scenario.file.endswith("a.csv")
    assert scenario.patient["manifestations"] == frozenset({"joint", "nephritis"})
    assert scenario.patient["egfr"] == 45.0
    assert scenario.patient["mycophenolate"] == "not_tried"  # column absent: default
    assert scenario.patient["upcr"] is None
    assert scenario.expect.preferred == "mycophenolate"
    assert scenario.expect.fired == ("R-SCOPE-01", "R-FL-07")
    assert scenario.expect.flags == ()  # empty cell: not checked


def test_folder_loads_every_csv_in_name_order_and_skips_blank_rows(tmp_path):
    write(tmp_path, "02_b.csv", HEADER, "b1,second file,,intolerant,,mycophenolate,,")
    write(tmp_path, "01_a.csv", HEADER, ",,,,,,,", "a1,first file,,,,none,,", "")
    write(tmp_path, "notes.txt", "not a scenario file")
    scenarios = load_suite(tmp_path)
    assert [s.id for s in scenarios] == ["a1", "b1"]
    assert scenarios[0].row == 2 and scenarios[0].line == 3


def test_suite_format_error_is_a_lupus_rules_error():
    assert issubclass(SuiteFormatError, LupusRulesError)


@pytest.mark.parametrize("row, column, fragment", [
    ("s1,bad egfr,,intolerant,-3,,R-FL-07,", "egfr", "-3"),
    ("s1,bad status,,tolerated,,,R-FL-07,", "methotrexate", "tolerated"),
    ("s1,bad manifestation,skin,intolerant,,,R-FL-07,", "manifestations", "skin"),
    ("s1,unknown agent,,intolerant,,mmf,,", "expect_preferred", "mmf"),
    ("s1,foundation agent,,intolerant,,hydroxychloroquine,,", "expect_preferred", "foundation"),
    ("s1,unknown rule,,intolerant,,,R-FL-99,", "expect_fired", "R-FL-99"),
    ("s1,unknown flag,,intolerant,,,,switch_now", "expect_flags", "switch_now"),
    ("s1,,,intolerant,,mycophenolate,,", "description", "must not be empty"),
    (",no id,,intolerant,,mycophenolate,,", "scenario_id", "must not be empty"),
])
def test_bad_cell_names_file_row_and_column(tmp_path, row, column, fragment):
    path = write(tmp_path, "bad.csv", HEADER, "ok,fine row,,intolerant,,mycophenolate,,", row)
    error = load_error(path)
    [problem] = error.problems
    assert (problem.row, problem.line, problem.column) == (2, 3, column)
    assert problem.file.endswith("bad.csv")
    message = str(error)
    assert "bad.csv" in message and "row 2" in message and f"column {column}" in message
    assert fragment in message


def test_unknown_column_is_named_with_the_allowed_ones(tmp_path):
    path = write(tmp_path, "cols.csv", "scenario_id,description,egfrr,expect_preferred",
                 "s1,typo in header,45,mycophenolate")
    [problem] = load_error(path).problems
    assert (problem.row, problem.column) == (0, "egfrr")
    assert "cols.csv, header, column egfrr: unknown column" in str(problem)
    assert "egfr" in problem.message and "expect_not_fired" in problem.message


def test_missing_required_column(tmp_path):
    path = write(tmp_path, "cols.csv", "scenario_id,methotrexate,expect_preferred", "s1,intolerant,mycophenolate")
    [problem] = load_error(path).problems
    assert (problem.row, problem.column) == (0, "description")
    assert "required" in problem.message


def test_wrong_number_of_cells(tmp_path):
    path = write(tmp_path, "short.csv", HEADER, "s1,too few,nephritis")
    [problem] = load_error(path).problems
    assert problem.row == 1 and "3 cells" in problem.message and "8 columns" in problem.message


def test_duplicate_id_across_files_names_both_places(tmp_path):
    write(tmp_path, "01.csv", HEADER, "dup,first,,intolerant,,mycophenolate,,")
    write(tmp_path, "02.csv", HEADER, "other,fine,,intolerant,,mycophenolate,,", "dup,second,,,,none,,")
    [problem] = load_error(tmp_path).problems
    assert problem.file.endswith("02.csv") and problem.row == 2 and problem.column == "scenario_id"
    assert "duplicate scenario_id 'dup'" in problem.message and "01.csv row 1" in problem.message


@pytest.mark.parametrize("columns, cells, column", [
    ("expect_recommendations,expect_not", "azathioprine;rituximab,rituximab", "expect_not"),
    ("expect_flags,expect_no_flags", "switch_therapy,switch_therapy", "expect_no_flags"),
    ("expect_fired,expect_not_fired", "R-FL-01,R-FL-01", "expect_not_fired"),
    ("expect_preferred,expect_not", "mycophenolate,mycophenolate", "expect_not"),
])
def test_contradictory_expectations_are_refused(tmp_path, columns, cells, column):
    path = write(tmp_path, "c.csv", f"scenario_id,description,methotrexate,{columns}", f"s1,contradiction,intolerant,{cells}")
    [problem] = load_error(path).problems
    assert problem.column == column and "cannot expect both" in problem.message


def test_a_row_that_checks_nothing_is_refused(tmp_path):
    path = write(tmp_path, "empty.csv", HEADER, "s1,no expectation,,intolerant,,,,")
    [problem] = load_error(path).problems
    assert "checks nothing" in problem.message
    assert all(column in problem.message for column in EXPECTATION_COLUMNS)


def test_every_problem_in_every_file_is_reported_at_once(tmp_path):
    write(tmp_path, "01.csv", HEADER, "a,bad egfr,,intolerant,999,none,,", "b,fine,,intolerant,,mycophenolate,,",
          "c,bad agent,,intolerant,,mmf,,")
    write(tmp_path, "02.csv", "scenario_id,description,nonsense", "d,x,y")
    problems = load_error(tmp_path).problems
    assert [(Path(p.file).name, p.row, p.column) for p in problems] == [
        ("01.csv", 1, "egfr"), ("01.csv", 3, "expect_preferred"), ("02.csv", 0, "nonsense")]


def test_missing_path_and_empty_folder(tmp_path):
    assert "no such file" in str(load_error(tmp_path / "absent.csv"))
    assert "no *.csv" in str(load_error(tmp_path))


# -- checking -------------------------------------------------------------------------------

def scenario(tmp_path: Path, header: str, row: str) -> Scenario:
    [found] = load_suite(write(tmp_path, "one.csv", header, row))
    return found


def test_met_expectations_pass(tmp_path):
    # Guideline: MMF is the recommended alternative after methotrexate failure; HCQ continues.
    s = scenario(tmp_path, "scenario_id,description,methotrexate,expect_preferred,expect_recommendations,expect_fired",
                 "s1,MTX intolerant,intolerant,mycophenolate,hydroxychloroquine,R-SCOPE-01")
    check = check_scenario(s)
    assert check.passed and check.mismatches == ()
    assert check.report().startswith("PASS s1")


def test_unmet_expectations_list_each_mismatch_with_patient_and_cited_trace(tmp_path):
    s = scenario(tmp_path, "scenario_id,description,methotrexate,expect_preferred,expect_not,expect_flags,expect_not_fired",
                 "s1,deliberately wrong,intolerant,azathioprine,mycophenolate,switch_therapy,R-SCOPE-01")
    check = check_scenario(s)
    assert not check.passed
    assert [m.column for m in check.mismatches] == ["expect_preferred", "expect_not", "expect_flags",
                                                    "expect_not_fired"]
    preferred = check.mismatches[0]
    assert (preferred.expected, preferred.actual) == ("azathioprine", "mycophenolate")
    report = check.report()
    assert report.startswith("FAIL s1 (") and "one.csv row 1, line 2" in report
    assert "Patient: methotrexate=intolerant" in report
    assert "MISMATCH expect_preferred: expected azathioprine; actual mycophenolate" in report
    assert "missing: switch_therapy" in report and "must not be present: mycophenolate" in report
    assert "R-SCOPE-01 [1] Methotrexate failed" in report  # the trace, with its citation
    assert DISCLAIMER in report


def test_expect_preferred_none(tmp_path):
    header = "scenario_id,description,methotrexate,manifestations,expect_preferred"
    out_of_scope = scenario(tmp_path, header, "s1,MTX works,effective,cutaneous,none")
    assert check_scenario(out_of_scope).passed
    in_scope = scenario(tmp_path, header, "s2,MTX failed,intolerant,cutaneous,none")
    [mismatch] = check_scenario(in_scope).mismatches
    assert mismatch.expected == "none" and mismatch.actual != "none"


def test_checks_against_an_edited_rulebook(tmp_path):
    # eGFR exactly 60 with UPCR 3 is preserved + nephrotic-range: voclosporin (R-SL-01).
    s = scenario(tmp_path, "scenario_id,description,manifestations,egfr,upcr,expect_preferred,expect_fired",
                 "s1,boundary,nephritis,60,3,voclosporin,R-SL-01")
    book = default_rulebook()
    assert check_scenario(s, book).passed
    stricter = book.replace_rule("R-KID-01", when=(Condition("fact", "egfr", ">", 60.0),))
    check = check_scenario(s, stricter)
    assert {m.column for m in check.mismatches} == {"expect_preferred", "expect_fired"}


def test_a_suite_naming_a_dropped_rule_still_loads_and_fails_that_row(tmp_path):
    write(tmp_path, "s.csv", "scenario_id,description,methotrexate,expect_fired",
          "s1,HCQ always,intolerant,R-FL-07", "s2,MMF,intolerant,R-FL-01")
    report = check_suite(tmp_path, default_rulebook().without_rule("R-FL-07"))
    assert [c.scenario.id for c in report.failures] == ["s1"]
    assert "R-FL-07" not in report.coverage


# -- the report --------------------------------------------------------------------------------

def small_suite(tmp_path: Path) -> Path:
    return write(tmp_path, "s.csv", "scenario_id,description,methotrexate,manifestations,expect_preferred",
                 "good,MTX failed,intolerant,,mycophenolate", "bad,wrong on purpose,intolerant,,leflunomide",
                 "scope,MTX works,effective,joint,none")


def test_report_counts_failures_and_rule_coverage(tmp_path):
    report = check_suite(small_suite(tmp_path))
    book = default_rulebook()
    assert [c.scenario.id for c in report.failures] == ["bad"]
    assert list(report.coverage) == [r.id for r in sorted(book.rules, key=lambda r: r.position)]
    assert report.coverage["R-FL-07"] == ("good", "bad", "scope")
    assert report.coverage["R-SCOPE-04"] == ("scope",)
    assert "R-LN-01" in report.uncovered and "R-FL-07" not in report.uncovered
    assert not report.ok
    assert report.rulebook_version == book.version


def test_report_frames(tmp_path):
    report = check_suite(small_suite(tmp_path))
    frame = report.to_frame()
    assert list(frame["scenario_id"]) == ["good", "bad", "scope"]
    assert list(frame["passed"]) == [True, False, True]
    assert "expect_preferred" in frame.loc[1, "mismatches"]
    assert frame.loc[0, "preferred"] == "mycophenolate" and frame.loc[2, "preferred"] == ""
    coverage = report.coverage_frame()
    assert len(coverage) == len(default_rulebook().rules)
    row = coverage.set_index("rule_id").loc["R-SCOPE-04"]
    assert row["scenarios"] == 1 and row["scenario_ids"] == "scope"


# -- the command ---------------------------------------------------------------------------------

def test_cli_shipped_suite_passes_with_full_coverage(capsys):
    assert main(["check-suite", str(SCENARIOS_DIR)]) == 0
    out = capsys.readouterr().out
    n = len(default_rulebook().rules)
    assert DISCLAIMER in out
    assert "PASS" in out and "FAIL " not in out
    assert f"Rule coverage: {n}/{n} rules" in out
    assert "Rules fired by no scenario: none" in out


def test_cli_failure_prints_table_failure_and_coverage(tmp_path, capsys):
    assert main(["check-suite", str(small_suite(tmp_path))]) == 1
    out = capsys.readouterr().out
    table = out.split("\n\n")[1].splitlines()
    assert table[0].split() == ["result", "scenario_id", "file", "description"]
    assert [line.split()[:2] for line in table[1:]] == [["PASS", "good"], ["FAIL", "bad"], ["PASS", "scope"]]
    assert "FAIL bad (" in out and "expected leflunomide; actual mycophenolate" in out
    assert "Rules fired by no scenario: " in out and "R-LN-01" in out


def test_cli_failures_only(tmp_path, capsys):
    main(["check-suite", "--failures-only", str(small_suite(tmp_path))])
    table = capsys.readouterr().out.split("\n\n")[1].splitlines()
    assert [line.split()[:2] for line in table[1:]] == [["FAIL", "bad"]]


def test_cli_exit_1_when_rules_are_uncovered_even_if_all_rows_pass(tmp_path, capsys):
    path = write(tmp_path, "s.csv", "scenario_id,description,methotrexate,expect_preferred",
                 "good,MTX failed,intolerant,mycophenolate")
    assert main(["check-suite", str(path)]) == 1
    assert "fired by no scenario" in capsys.readouterr().out


def test_cli_malformed_file_exit_2_names_file_row_column(tmp_path, capsys):
    path = write(tmp_path, "bad.csv", HEADER, "s1,bad egfr,,intolerant,abc,mycophenolate,,")
    assert main(["check-suite", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv, row 1 (line 2), column egfr: got 'abc'" in err


def test_cli_against_an_edited_rule_folder_reports_the_boundary_rows(tmp_path, capsys):
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, rules)
    second_line = rules / "20_second_line.yaml"
    text = second_line.read_text(encoding="utf-8")
    original = '{fact: egfr, op: ">=", value: 60}'
    assert text.count(original) == 1
    second_line.write_text(text.replace(original, '{fact: egfr, op: ">=", value: 65}'), encoding="utf-8")
    assert main(["check-suite", str(SCENARIOS_DIR), "--rules", str(rules), "--failures-only"]) == 1
    out = capsys.readouterr().out
    assert "FAIL    RSP31-egfr-60-upcr-3-cni" in out  # the row pinning 'eGFR exactly 60 is preserved'
