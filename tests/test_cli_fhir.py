"""``lupus-rules fhir``: bundles -> patients CSV that ``lupus-rules run`` reads as it is."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from lupus_rules.cli import main
from lupus_rules.evaluate import default_rulebook

DATA = Path(__file__).parent / "data" / "fhir"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_fhir_then_run(tmp_path, capsys):
    patients = tmp_path / "patients.csv"
    code = main(["fhir", str(DATA / "nephritis_labs.json"), str(DATA / "medication_history.json"),
                 "-o", str(patients), "--as-of", "2026-01-01"])
    out, err = capsys.readouterr()
    assert code == 1                                  # two resources skipped, reported on stderr
    assert err.count("lupus-rules fhir: skipped:") == 2 and "Observation/ln2-bad" in err
    assert "wrote 3 patients from 2 bundles" in out and "Not for clinical use" in out
    rows = _rows(patients)
    assert list(rows[0]) == ["patient_id", *default_rulebook().facts, "provenance"]
    ln1 = next(r for r in rows if r["patient_id"] == "Patient/ln1")
    assert (ln1["egfr"], ln1["egfr_baseline"], ln1["upcr"], ln1["manifestations"]) == ("58", "72", "2.8", "nephritis")
    assert ln1["fertility_concern"] == ""             # unknown -> empty -> the rulebook default
    prov = json.loads(ln1["provenance"])
    assert prov["egfr_baseline"]["sources"][0]["resource"] == "Observation/ln1-egfr-base"
    results = tmp_path / "results.csv"
    assert main(["run", str(patients), "-o", str(results), "--no-progress"]) == 0
    done = {r["patient_id"]: r for r in _rows(results)}
    ln1_done = done["Patient/ln1"]  # takes mycophenolate now, UPCR down only 20 % by month 7: stopped (issue 8)
    assert (ln1_done["preferred"], ln1_done["error"]) == ("voclosporin", "")
    assert "mycophenolate" not in ln1_done["continue"].split(";") and "R-SW-MMF" in ln1_done["avoided"]
    assert json.loads(done["Patient/ln1"]["provenance"]) == prov      # passed through unchanged


def test_synthea_bundles_read_without_problems(tmp_path, capsys):
    patients = tmp_path / "p.csv"
    bundles = sorted(str(p) for p in (DATA / "synthea").glob("*.json"))
    assert main(["fhir", *bundles, "-o", str(patients), "--as-of", "2026-01-01"]) == 0
    rows = _rows(patients)
    assert len(rows) == len(bundles) and all(r["prednisone_mg"] == "0" for r in rows)


def test_unusable_input_exits_2_naming_it(tmp_path, capsys):
    out = tmp_path / "p.csv"
    assert main(["fhir", str(tmp_path / "missing.json"), "-o", str(out)]) == 2
    assert "missing.json" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("not json", encoding="utf-8")
    assert main(["fhir", str(bad), "-o", str(out)]) == 2
    assert "bad.json: not JSON" in capsys.readouterr().err
    assert main(["fhir", str(DATA / "nephritis_labs.json"), "-o", str(tmp_path / "p.parquet")]) == 2
    assert not out.exists()


def test_bad_as_of_is_a_usage_error(tmp_path, capsys):
    try:
        main(["fhir", str(DATA / "nephritis_labs.json"), "-o", str(tmp_path / "p.csv"), "--as-of", "01/02/2026"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "got '01/02/2026'; allowed: a date YYYY-MM-DD" in capsys.readouterr().err


def test_a_folder_stands_for_its_json_files(tmp_path, capsys):
    patients = tmp_path / "p.csv"
    assert main(["fhir", str(DATA / "synthea"), "-o", str(patients), "--as-of", "2026-01-01"]) == 0
    assert len(_rows(patients)) == len(list((DATA / "synthea").glob("*.json")))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["fhir", str(empty), "-o", str(patients)]) == 2
    assert "a folder with no *.json file" in capsys.readouterr().err
