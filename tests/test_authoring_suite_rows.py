"""Adding a patient to the scenario suite (authoring/suite_rows.py), as the explorer does."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lupus_rules import evaluate
from lupus_rules.authoring.suite_rows import add_scenario, scenario_row
from lupus_rules.errors import OptionError, PatientValidationError, SuiteFormatError
from lupus_rules.suite import check_suite, load_suite

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
PATIENT = {"methotrexate": "intolerant", "prednisone_mg": 6, "manifestations": {"joint", "cutaneous"}}


@pytest.fixture()
def suite(tmp_path: Path) -> Path:
    target = tmp_path / "scenarios"
    shutil.copytree(SCENARIOS, target)
    return target


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.csv"))}


def test_a_patient_becomes_a_suite_row_with_the_pinned_expectations(suite: Path):
    target = suite / "09_safety.csv"
    before = target.read_bytes()
    added = add_scenario(target, PATIENT, "SAF99-prednisone-6", "Prednisone 6 mg/day on joints and skin",
                         pin=("preferred", "flags"), expect={"expect_not": "cyclophosphamide"})
    result = evaluate(PATIENT)
    assert added.row["expect_preferred"] == result.preferred
    assert added.row["expect_flags"].split(";") == list(result.flags)
    assert added.row["manifestations"] == "cutaneous;joint" and added.row["prednisone_mg"] == "6"
    assert "mycophenolate" not in added.row  # defaults stay empty
    assert added.check.passed
    after = target.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1
    report = check_suite(suite)
    row = next(c for c in report.checks if c.scenario.id == "SAF99-prednisone-6")
    assert row.passed and row.scenario.expect.not_recommended == ("cyclophosphamide",)
    assert not report.failures


def test_a_new_file_gets_the_full_header(suite: Path):
    added = add_scenario(suite / "11_new.csv", PATIENT, "NEW01", "first row", pin=("fired",))
    loaded = load_suite(suite / "11_new.csv")
    assert [s.id for s in loaded] == ["NEW01"]
    assert loaded[0].expect.fired == evaluate(PATIENT).fired_rules == tuple(added.row["expect_fired"].split(";"))


def test_crlf_files_stay_crlf(suite: Path):
    target = suite / "10_scope.csv"
    target.write_bytes(target.read_bytes().replace(b"\n", b"\r\n"))
    add_scenario(target, PATIENT, "SC99", "crlf")
    raw = target.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")


@pytest.mark.parametrize("kwargs, error, words", [
    ({"patient": {"egfr": 500}}, PatientValidationError, "egfr: got 500; allowed: a number from 0 to 200"),
    ({"scenario_id": "SAF01-prednisone-7.5-taper"}, SuiteFormatError, "duplicate scenario_id 'SAF01-prednisone-7.5-taper'"),
    ({"expect": {"expect_flags": "nope"}}, SuiteFormatError, "column expect_flags: unknown flag code 'nope'"),
    ({"expect": {"expect_colour": "red"}}, OptionError, "expect: got column 'expect_colour'; allowed: expect_preferred"),
    ({"pin": ("colour",)}, OptionError, "pin: got 'colour'; allowed: preferred, recommendations, continue, avoided, cautions, flags, fired"),
    ({"scenario_id": " "}, SuiteFormatError, "scenario_id: missing"),
])
def test_bad_rows_are_refused_naming_the_column_and_nothing_is_written(suite: Path, kwargs, error, words):
    before = _bytes(suite)
    args = {"patient": {"methotrexate": "intolerant"}, "scenario_id": "X01", "pin": ("preferred",), **kwargs}
    with pytest.raises(error) as caught:
        add_scenario(suite / "09_safety.csv", args["patient"], args["scenario_id"], "d", pin=args["pin"],
                     expect=args.get("expect"))
    assert words in str(caught.value)
    assert "/tmp" not in str(caught.value).replace(str(suite), "SUITE")  # names the real files, not the check's copy
    assert _bytes(suite) == before


def test_a_file_without_the_needed_column_is_refused(suite: Path):
    target = suite / "short.csv"
    target.write_text("scenario_id,description,methotrexate,expect_preferred\n")
    with pytest.raises(SuiteFormatError, match="short.csv.*no column 'manifestations', 'prednisone_mg'"):
        add_scenario(target, PATIENT, "S1", "d")
    with pytest.raises(SuiteFormatError, match="checks nothing"):  # the suite loader's own rule
        add_scenario(target, {"methotrexate": "intolerant"}, "S1", "d", pin=())
    assert scenario_row({"methotrexate": "intolerant"}, "S1", "d", pin=()) == {
        "scenario_id": "S1", "description": "d", "methotrexate": "intolerant"}
    add_scenario(target, {"methotrexate": "intolerant"}, "S1", "d")
    preferred = evaluate({"methotrexate": "intolerant"}).preferred
    assert target.read_text().splitlines()[1] == f"S1,d,intolerant,{preferred}"
