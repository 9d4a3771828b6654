"""``lupus-rules run`` and ``lupus-rules generate``: files in, files out, exit codes, messages."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from lupus_rules import load_rulebook
from lupus_rules.batch import OUTCOME_COLUMNS
from lupus_rules.cli import main
from lupus_rules.generate import count, value_bands

GOOD = [
    {"scenario_id": "mtx-joint", "manifestations": "joint", "methotrexate": "intolerant"},
    {"scenario_id": "ln-mmf", "manifestations": "nephritis", "mycophenolate": "nonresponse",
     "egfr": "72", "upcr": "3.4"},
    {"scenario_id": "ldn-skin", "manifestations": "cutaneous", "ldn": "nonresponse", "topicals_tried": "true"},
    {"scenario_id": "nothing"},
]
BAD = [
    {"scenario_id": "bad-egfr", "manifestations": "nephritis", "egfr": "sixty"},
    {"scenario_id": "bad-mtx", "methotrexate": "maybe"},
]


def write_patients(path, rows=GOOD[:2] + BAD[:1] + GOOD[2:] + BAD[1:]) -> pd.DataFrame:
    frame = pd.DataFrame(rows).fillna("")
    frame.to_csv(path, index=False)
    return frame


def read_csv(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def check_output(out: pd.DataFrame, given: pd.DataFrame, engine: str) -> None:
    assert list(out.columns) == list(given.columns) + list(OUTCOME_COLUMNS)
    assert list(out["scenario_id"]) == list(given["scenario_id"])
    pd.testing.assert_frame_equal(out[given.columns].astype(str), given.astype(str), check_dtype=False)
    assert (out["rulebook_version"] == load_rulebook().version).all()
    assert (out["engine"] == engine).all()
    errors = out.set_index("scenario_id")["error"]
    assert "egfr" in errors["bad-egfr"] and "'sixty'" in errors["bad-egfr"]
    assert "methotrexate" in errors["bad-mtx"] and "'maybe'" in errors["bad-mtx"]
    good = out[~out["scenario_id"].str.startswith("bad-")]
    assert (good["error"] == "").all() and (good["fired_rules"] != "").all()
    assert (out.loc[out["error"] != "", "fired_rules"] == "").all()


@pytest.mark.parametrize("engine", ["vectorized", "durable"])
def test_run_in_process_writes_every_row_and_exits_1_on_bad_rows(tmp_path, capsys, engine):
    given = write_patients(tmp_path / "in.csv")
    code = main(["run", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), "--engine", engine,
                 "--no-progress"])
    assert code == 1
    check_output(read_csv(tmp_path / "out.csv"), given, engine)
    printed = capsys.readouterr().out
    assert "Not for clinical use" in printed
    assert "rows: 6" in printed and "failed: 2" in printed and "egfr 1, methotrexate 1" in printed


def test_run_as_a_subprocess_with_parquet_output(tmp_path):
    given = write_patients(tmp_path / "in.csv")
    done = subprocess.run([sys.executable, "-m", "lupus_rules", "run", str(tmp_path / "in.csv"),
                           "-o", str(tmp_path / "out.parquet")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "failed: 2" in done.stdout
    check_output(pq.read_table(tmp_path / "out.parquet").to_pandas(), given, "vectorized")


def test_run_exits_0_when_every_row_succeeds(tmp_path, capsys):
    write_patients(tmp_path / "in.csv", GOOD)
    assert main(["run", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), "--no-progress"]) == 0
    assert "failed: 0" in capsys.readouterr().out


def test_run_exits_2_for_unusable_input(tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert main(["run", str(tmp_path / "missing.csv"), "-o", str(out)]) == 2
    assert "missing.csv" in capsys.readouterr().err

    pd.DataFrame([{"scenario_id": "a", "methotrexat": "intolerant"}]).to_csv(tmp_path / "typo.csv", index=False)
    assert main(["run", str(tmp_path / "typo.csv"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'methotrexat'" in err and "methotrexate" in err

    broken = tmp_path / "rules"
    broken.mkdir()
    (broken / "rulebook.yaml").write_text("rules:\n  - id: R-X\n    when: [{fact: egfr, op: '~', value: 1}]\n")
    write_patients(tmp_path / "in.csv")
    assert main(["run", str(tmp_path / "in.csv"), "-o", str(out), "--rules", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "rules" in err and "R-X" in err and "'~'" in err
    assert not out.exists()


def test_run_with_edited_rules_stamps_their_version(tmp_path, capsys):
    rules = tmp_path / "rules"
    rules.mkdir()
    book = load_rulebook()
    for name, data in book.replace_rule(book.rules[-1].id, title="Edited in a test").to_documents():
        (rules / name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    edited = load_rulebook(rules)
    write_patients(tmp_path / "in.csv", GOOD)
    assert main(["run", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), "--rules", str(rules),
                 "--no-progress"]) == 0
    out = read_csv(tmp_path / "out.csv")
    assert (out["rulebook_version"] == edited.version).all() and edited.version != book.version


def test_generate_prints_the_count_before_writing(tmp_path, capsys):
    target = tmp_path / "scenarios.csv"
    facts = "manifestations,methotrexate,upcr"
    expected = count(value_bands(load_rulebook()), facts.split(","))
    assert main(["generate", "-o", str(target), "--facts", facts, "--limit", str(expected - 1)]) == 2
    captured = capsys.readouterr()
    assert f"{expected:,} scenarios" in captured.out and "--yes" in captured.err
    assert not target.exists()

    assert main(["generate", "-o", str(target), "--facts", facts, "--limit", str(expected - 1), "--yes",
                 "--no-progress"]) == 0
    assert f"{expected:,} scenarios" in capsys.readouterr().out
    assert len(read_csv(target)) == expected


def test_generated_scenarios_run_without_failures(tmp_path, capsys):
    scenarios, results = tmp_path / "s.parquet", tmp_path / "r.csv"
    assert main(["generate", "-o", str(scenarios), "--facts", "manifestations,mycophenolate,egfr",
                 "--no-progress"]) == 0
    assert main(["run", str(scenarios), "-o", str(results), "--no-progress", "--chunk-size", "500"]) == 0
    out = read_csv(results)
    assert out["scenario_id"].is_unique and (out["error"] == "").all()
    assert len(out) == count(value_bands(load_rulebook()), ["manifestations", "mycophenolate", "egfr"])


def test_generate_refuses_unknown_facts(tmp_path, capsys):
    assert main(["generate", "-o", str(tmp_path / "s.csv"), "--facts", "manifestations,pregnant"]) == 2
    err = capsys.readouterr().err
    assert "'pregnant'" in err and "planning_pregnancy" in err


def test_generate_states_rows_size_and_time_and_samples_huge_spaces(tmp_path, capsys):
    target = tmp_path / "all.csv"
    assert main(["generate", "-o", str(target)]) == 2  # every fact: far above the limit
    err = capsys.readouterr().err
    assert "rows, about" in err and "--sample N" in err and not target.exists()
    sampled = tmp_path / "sample.csv"
    assert main(["generate", "-o", str(sampled), "--sample", "2500", "--seed", "9", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "a sample of 2,500 (seed 9): 2,500 rows, about" in captured.err
    assert "wrote 2,500 scenarios" in captured.out
    first = read_csv(sampled)
    assert main(["generate", "-o", str(sampled), "--sample", "2500", "--seed", "9", "--no-progress"]) == 0
    pd.testing.assert_frame_equal(read_csv(sampled), first)
    assert first["scenario_id"].is_unique and len(first) == 2500
    assert main(["run", str(sampled), "-o", str(tmp_path / "r.csv"), "--no-progress"]) == 0
    with pytest.raises(SystemExit) as stopped:
        main(["generate", "-o", str(sampled), "--sample", "0"])
    assert stopped.value.code == 2 and "--sample: got '0'" in capsys.readouterr().err
