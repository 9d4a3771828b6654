"""Hostile input and output files through run_file: nothing lost, nothing silent (issue 9)."""
from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lupus_rules import batch, load_rulebook
from lupus_rules.batch import MAX_ROW_BYTES, BatchInputError, run_batch, run_file

ENGINES = [("vectorized", {}), ("durable", {"processes": 1})]
HEADER = "scenario_id,description,egfr,upcr"
GOOD = ["a,first,60,0.2", "b,second,25,1.5", "c,third,,3", "d,fourth,90,"]


@pytest.fixture(scope="module")
def rulebook():
    return load_rulebook()


def run(tmp_path: Path, content: bytes, rulebook, engine="vectorized", name="in.csv", **options) -> pd.DataFrame:
    source = tmp_path / name
    source.write_bytes(content)
    target = tmp_path / f"out-{engine}.csv"
    kwargs = dict(ENGINES)[engine]
    run_file(source, target, engine, rulebook, progress=False, **kwargs, **options)
    return pd.read_csv(target, dtype=str, keep_default_na=False)


def csv_bytes(rows: list[str], end: str = "\n", final: bool = True) -> bytes:
    return (end.join([HEADER, *rows]) + (end if final else "")).encode()


def no_partials(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith((".partial", ".probe"))]


# --- line ends and file shapes ----------------------------------------------------------------


@pytest.mark.parametrize("engine", [e for e, _ in ENGINES])
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("final", [True, False])
def test_every_line_end_gives_the_same_rows(tmp_path, rulebook, engine, end, final):
    expected = run(tmp_path, csv_bytes(GOOD), rulebook, engine, name="lf.csv")
    got = run(tmp_path, csv_bytes(GOOD, end, final), rulebook, engine)
    assert len(got) == len(GOOD)
    pd.testing.assert_frame_equal(got, expected)


def test_mixed_line_ends_give_the_same_rows(tmp_path, rulebook):
    mixed = (HEADER + "\r\n" + GOOD[0] + "\r" + GOOD[1] + "\n" + GOOD[2] + "\r\n" + GOOD[3]).encode()
    expected = run(tmp_path, csv_bytes(GOOD), rulebook, name="lf.csv")
    pd.testing.assert_frame_equal(run(tmp_path, mixed, rulebook), expected)


@pytest.mark.parametrize("content", [HEADER.encode(), (HEADER + "\r").encode(), (HEADER + "\r\n").encode()])
def test_header_only_gives_the_header_and_no_rows(tmp_path, rulebook, content):
    got = run(tmp_path, content, rulebook)
    assert len(got) == 0
    assert list(got.columns) == HEADER.split(",") + list(batch.OUTCOME_COLUMNS)


def test_empty_file_is_refused_naming_it(tmp_path, rulebook):
    with pytest.raises(BatchInputError, match="in.csv.*empty"):
        run(tmp_path, b"", rulebook)
    assert not (tmp_path / "out-vectorized.csv").exists()


def test_byte_order_mark_is_not_part_of_the_first_column(tmp_path, rulebook):
    got = run(tmp_path, b"\xef\xbb\xbf" + csv_bytes(GOOD, "\r"), rulebook)
    assert list(got.columns[:2]) == ["scenario_id", "description"]
    assert list(got["scenario_id"]) == ["a", "b", "c", "d"]


# --- bad rows fail alone ----------------------------------------------------------------------

BAD_ROWS = {
    "too few cells": ("e,short,60", "ragged row: 3 cells"),
    "too many cells": ("e,long,60,0.2,9", "ragged row: 5 cells"),
    "not UTF-8 in description": ("e,caf\xe9,60,0.2", "not UTF-8: byte 0xe9"),
    "not UTF-8 in a fact": ("e,x,6\xff,0.2", "not UTF-8: byte 0xff"),
    "oversized cell": ("e," + "x" * (MAX_ROW_BYTES + 10) + ",60,0.2", "row too large"),
}


def latin1_csv(rows: list[str], end: str) -> bytes:
    return (end.join([HEADER, *rows]) + end).encode("latin-1")


@pytest.mark.parametrize("engine", [e for e, _ in ENGINES])
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_a_bad_row_fails_alone_with_its_line(tmp_path, rulebook, engine, end, case):
    row, problem = BAD_ROWS[case]
    rows = GOOD[:2] + [row] + GOOD[2:]
    got = run(tmp_path, latin1_csv(rows, end), rulebook, engine)
    assert len(got) == len(rows)
    assert got.loc[2, "error"].startswith("line 4: ") and problem in got.loc[2, "error"]
    assert (got.loc[2, ["preferred", "recommendations", "flags", "fired_rules"]] == "").all()
    good = got.drop(index=2).reset_index(drop=True)
    expected = run(tmp_path, csv_bytes(GOOD), rulebook, engine, name="clean.csv")
    pd.testing.assert_frame_equal(good, expected)


@pytest.mark.parametrize("engine", [e for e, _ in ENGINES])
def test_a_nul_byte_in_a_fact_fails_that_row_only(tmp_path, rulebook, engine):
    rows = GOOD[:1] + ["e,nul,60\x00,0.2"] + GOOD[1:]
    got = run(tmp_path, csv_bytes(rows), rulebook, engine)
    assert len(got) == len(rows)
    assert "egfr" in got.loc[1, "error"] and got.loc[1, "preferred"] == ""
    expected = run(tmp_path, csv_bytes(GOOD), rulebook, engine, name="clean.csv")
    pd.testing.assert_frame_equal(got.drop(index=1).reset_index(drop=True), expected)


def test_many_bad_rows_among_many_good_keep_order_and_count(tmp_path, rulebook):
    rows = [f"r{i},d{i},{30 + i % 60},0.{i % 9}" for i in range(5_000)]
    bad = {7, 2_500, 4_999}
    hostile = [("r%d,caf\xe9,60" % i) if i in bad else row for i, row in enumerate(rows)]
    got = run(tmp_path, latin1_csv(hostile, "\r"), rulebook, chunk_size=700)
    assert list(got["scenario_id"]) == [f"r{i}" for i in range(5_000)]
    failed = set(got.index[got["error"] != ""])
    assert failed == bad
    for i in bad:
        assert got.loc[i, "error"].startswith(f"line {i + 2}: ")
    expected = run(tmp_path, csv_bytes([r for i, r in enumerate(rows) if i not in bad]), rulebook, name="c.csv")
    pd.testing.assert_frame_equal(got.drop(index=sorted(bad)).reset_index(drop=True), expected)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_quoted_line_ends_keep_later_line_numbers_right(tmp_path, rulebook, end):
    rows = ['a,"two\nlines",60,0.2', 'b,"cr\rinside",25,1', 'c,"crlf\r\nin""side",,3', "d,short"]
    got = run(tmp_path, latin1_csv(rows, end), rulebook)
    assert list(got["description"]) == ["two\nlines", "cr\rinside", 'crlf\r\nin"side', "short"]
    # header line 1; a: lines 2-3; b: 4-5; c: 6-7 (CRLF is one line end); d: line 8
    assert got.loc[3, "error"].startswith("line 8: ragged row")
    assert (got.loc[:2, "error"] == "").all()


# --- output paths, checked before any work ----------------------------------------------------


def refused(tmp_path: Path, target: Path, match: str, monkeypatch) -> None:
    source = tmp_path / "in.csv"
    if not source.exists():
        source.write_bytes(csv_bytes(GOOD))
    monkeypatch.setattr(batch, "_Evaluator", None)  # any work at all would fail with a TypeError
    with pytest.raises(BatchInputError, match=match):
        run_file(source, target, progress=False)


def test_missing_output_folder_is_refused_before_work(tmp_path, monkeypatch):
    target = tmp_path / "nowhere" / "out.csv"
    refused(tmp_path, target, "folder not found: .*nowhere", monkeypatch)


def test_output_that_is_a_directory_is_refused_before_work(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    target.mkdir()
    refused(tmp_path, target, "out.csv is a directory", monkeypatch)


def test_output_same_as_input_is_refused_before_work(tmp_path, monkeypatch):
    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes(GOOD))
    refused(tmp_path, tmp_path / "." / "in.csv", "is the input file", monkeypatch)
    link = tmp_path / "link.csv"
    link.symlink_to(source)
    refused(tmp_path, link, "is the input file", monkeypatch)
    assert source.read_bytes() == csv_bytes(GOOD)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only folder")
def test_read_only_output_folder_is_refused_before_work(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        refused(tmp_path, folder / "out.csv", "ro/out.csv.*not writable", monkeypatch)
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


def test_unsupported_output_suffix_is_refused_before_work(tmp_path, monkeypatch):
    refused(tmp_path, tmp_path / "out.xlsx", "out.xlsx.*suffix", monkeypatch)


# --- partial files: unique, removed, never a mixed output -------------------------------------


def test_success_leaves_no_partial_file(tmp_path, rulebook):
    run(tmp_path, csv_bytes(GOOD), rulebook)
    assert no_partials(tmp_path) == []


def test_a_failure_mid_write_keeps_the_old_output_byte_identical(tmp_path, rulebook, monkeypatch):
    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes([f"r{i},d,60,0.2" for i in range(50)]))
    target = tmp_path / "out.csv"
    target.write_bytes(b"old,complete\n1,2\n")
    real = batch._Writer.write
    calls = []

    def failing(self, frame):
        calls.append(len(frame))
        if len(calls) == 3:
            raise RuntimeError("boom")
        real(self, frame)

    monkeypatch.setattr(batch._Writer, "write", failing)
    with pytest.raises(RuntimeError, match="boom"):
        run_file(source, target, "vectorized", chunk_size=10, progress=False)
    assert target.read_bytes() == b"old,complete\n1,2\n"
    assert no_partials(tmp_path) == []


class _FullDisk:
    """A pyarrow writer whose every write fails as on a full disk."""

    def __init__(self, *args, **kwargs):
        pass

    def write_table(self, table):
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self):
        pass


@pytest.mark.parametrize("module, writer, name", [("pyarrow.csv", "CSVWriter", "out.csv"),
                                                  ("pyarrow.parquet", "ParquetWriter", "out.parquet")])
def test_full_disk_is_a_clear_error_naming_the_output(tmp_path, monkeypatch, module, writer, name):
    import importlib

    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes(GOOD))
    target = tmp_path / name
    monkeypatch.setattr(importlib.import_module(module), writer, _FullDisk)
    with pytest.raises(BatchInputError, match=f"{name}.*No space left"):
        run_file(source, target, "vectorized", progress=False)
    assert not target.exists() and no_partials(tmp_path) == []


def test_concurrent_runs_on_one_output_give_one_runs_rows_whole(tmp_path, rulebook):
    sources = []
    for tag in ("A", "B"):
        path = tmp_path / f"{tag}.csv"
        path.write_bytes(csv_bytes([f"{tag}{i},d,{30 + i % 50},0.2" for i in range(3_000)]))
        sources.append(path)
    target = tmp_path / "out.csv"
    errors: list[BaseException] = []

    def one(source: Path) -> None:
        try:
            run_file(source, target, "vectorized", rulebook, chunk_size=100, progress=False)
        except BaseException as exc:  # noqa: BLE001 (checked below)
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(s,)) for s in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    got = pd.read_csv(target, dtype=str, keep_default_na=False)
    ids = list(got["scenario_id"])
    tag = ids[0][0]
    assert ids == [f"{tag}{i}" for i in range(3_000)]
    assert no_partials(tmp_path) == []


# --- excel_safe -------------------------------------------------------------------------------

RISKY = ["=1+1", "+cmd", "-x", "@SUM(A1)", "\tlead", "\rlead"]


def test_excel_safe_neutralizes_formula_cells_but_not_numbers(tmp_path, rulebook):
    rows = [f'r{i},"{text}",60,0.2' for i, text in enumerate(RISKY)] + ["n,-1.5,60,0.2", "m,+2e3,60,0.2"]
    got = run(tmp_path, csv_bytes(rows), rulebook, excel_safe=True)
    assert list(got["description"]) == ["'" + t for t in RISKY] + ["-1.5", "+2e3"]
    plain = run(tmp_path, csv_bytes(rows), rulebook)
    assert list(plain["description"]) == RISKY + ["-1.5", "+2e3"]


def test_excel_safe_leaves_parquet_untouched(tmp_path, rulebook):
    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes([f'r{i},"{t}",60,0.2' for i, t in enumerate(RISKY)]))
    target = tmp_path / "out.parquet"
    run_file(source, target, progress=False, excel_safe=True)
    assert list(pd.read_parquet(target)["description"]) == RISKY


def test_excel_safe_default_is_off_and_documented():
    import inspect

    assert inspect.signature(run_file).parameters["excel_safe"].default is False
    assert "excel_safe`` (off by default" in " ".join(run_file.__doc__.split())


# --- nested Parquet columns -------------------------------------------------------------------


def nested_parquet(tmp_path: Path) -> Path:
    table = pa.table({"scenario_id": ["a", "b"], "egfr": [60.0, 25.0],
                      "expect_tags": pa.array([["x", "y"], []], type=pa.list_(pa.string())),
                      "expect_meta": pa.array([{"k": 1}, {"k": 2}])})
    path = tmp_path / "nested.parquet"
    pq.write_table(table, path)
    return path


def test_nested_parquet_columns_pass_through_to_parquet(tmp_path, rulebook):
    target = tmp_path / "out.parquet"
    run_file(nested_parquet(tmp_path), target, "vectorized", rulebook, progress=False)
    got = pq.read_table(target)
    assert got.column("expect_tags").to_pylist() == [["x", "y"], []]
    assert got.column("expect_meta").to_pylist() == [{"k": 1}, {"k": 2}]


def test_nested_parquet_columns_to_csv_are_refused_before_work(tmp_path, rulebook, monkeypatch):
    monkeypatch.setattr(batch, "_Evaluator", None)
    with pytest.raises(BatchInputError, match="expect_tags"):
        run_file(nested_parquet(tmp_path), tmp_path / "out.csv", "vectorized", rulebook, progress=False)
    assert not (tmp_path / "out.csv").exists()
    assert no_partials(tmp_path) == []


# --- run_batch on the same hostile cells ------------------------------------------------------


@pytest.mark.parametrize("engine", [e for e, _ in ENGINES])
def test_run_batch_fails_a_nul_cell_alone(rulebook, engine):
    frame = pd.DataFrame({"scenario_id": ["a", "b", "c"], "egfr": ["60", "60\x00", "25"]})
    got = run_batch(frame, engine, rulebook, **dict(ENGINES)[engine])
    assert list(got["error"] != "") == [False, True, False]
    assert "egfr" in got.loc[1, "error"]


@pytest.mark.parametrize("end", ["\n", "\r"])
def test_an_oversized_quoted_multiline_cell_keeps_later_line_numbers_right(tmp_path, rulebook, end):
    huge = '"' + ("x" * 1000 + end) * (MAX_ROW_BYTES // 1000 + 5) + '"'
    rows = GOOD[:1] + [f"big,{huge},60,0.2", "short,row"] + GOOD[1:]
    got = run(tmp_path, csv_bytes(rows, end), rulebook)
    assert list(got["scenario_id"]) == ["a", "", "short", "b", "c", "d"]
    assert got.loc[1, "error"].startswith("line 3: row too large")
    assert got.loc[2, "error"].startswith(f"line {3 + MAX_ROW_BYTES // 1000 + 5 + 1}: ragged row")
    assert (got.loc[[0, 3, 4, 5], "error"] == "").all()


def test_concurrent_processes_on_one_output_give_one_runs_rows_whole(tmp_path):
    import subprocess
    import sys

    for tag in ("A", "B", "C"):
        (tmp_path / f"{tag}.csv").write_bytes(csv_bytes([f"{tag}{i},d,{30 + i % 50},0.2" for i in range(20_000)]))
    target = tmp_path / "out.csv"
    runs = [subprocess.Popen([sys.executable, "-m", "lupus_rules", "run", str(tmp_path / f"{tag}.csv"), "-o",
                              str(target), "--no-progress", "--chunk-size", "1000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for tag in ("A", "B", "C")]
    for process in runs:
        assert process.wait() == 0, process.stderr.read()
    ids = list(pd.read_csv(target, dtype=str, keep_default_na=False)["scenario_id"])
    assert ids == [f"{ids[0][0]}{i}" for i in range(20_000)]
    assert no_partials(tmp_path) == []


def test_a_read_error_names_the_input_not_the_output(tmp_path, monkeypatch):
    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes(GOOD))
    real = batch._read_chunks

    def failing(path, chunk_size):
        yield next(real(path, chunk_size))
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(batch, "_read_chunks", failing)
    with pytest.raises(BatchInputError, match=r"input .*in\.csv: could not read \(Input/output error\)"):
        run_file(source, tmp_path / "out.csv", "vectorized", chunk_size=1, progress=False)
    assert not (tmp_path / "out.csv").exists()
    assert no_partials(tmp_path) == []


@pytest.mark.parametrize("end", ["\n", "\r"])
def test_an_unclosed_quote_is_named_not_called_ragged(tmp_path, rulebook, end):
    got = run(tmp_path, csv_bytes(GOOD[:2] + ['e,"never closed,60,0.2', "f,x,60,0.2"], end), rulebook)
    assert list(got["scenario_id"][:2]) == ["a", "b"] and (got["error"][:2] == "").all()
    assert len(got) == 3
    assert got.loc[2, "error"].startswith("line 4: a quoted value is not closed before the end of the file")


def test_raw_bytes_parquet_column_to_csv_is_refused_before_work(tmp_path, monkeypatch):
    path = tmp_path / "bytes.parquet"
    pq.write_table(pa.table({"scenario_id": ["a"], "egfr": [60.0], "expect_raw": [b"\xff"]}), path)
    monkeypatch.setattr(batch, "_Evaluator", None)
    with pytest.raises(BatchInputError, match="'expect_raw'.*raw bytes"):
        run_file(path, tmp_path / "out.csv", progress=False)
    assert no_partials(tmp_path) == []


@pytest.mark.parametrize("engine", [e for e, _ in ENGINES])
def test_excel_safe_reaches_categorical_parquet_columns(tmp_path, engine):
    path = tmp_path / "cat.parquet"
    ids = pa.array(["=cmd", "-1.5", "ok"]).dictionary_encode()
    pq.write_table(pa.table({"scenario_id": ids, "egfr": [60.0, 25.0, 90.0], "expect_note": ["@x", "+1", None]}), path)
    target = tmp_path / "out.csv"
    run_file(path, target, engine, progress=False, excel_safe=True, **dict(ENGINES)[engine])
    got = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert list(got["scenario_id"]) == ["'=cmd", "-1.5", "ok"]
    assert list(got["expect_note"]) == ["'@x", "+1", ""]





def test_ctrl_c_inside_atomic_output_removes_the_partial(tmp_path):
    from lupus_rules.output import atomic_output

    target = tmp_path / "out.csv"
    target.write_bytes(b"old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as partial:
            partial.write_bytes(b"new, half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old\n" and no_partials(tmp_path) == []


@pytest.mark.parametrize("when", ["probe", "partial"])
def test_ctrl_c_while_an_output_file_is_being_created_leaves_nothing(tmp_path, monkeypatch, when):
    """A signal right after the probe or the partial file is created (the full suite once caught it there)."""
    from lupus_rules import output

    real_close = os.close
    created = []

    def interrupted_close(fd):
        real_close(fd)
        created.append(fd)
        if len(created) == (1 if when == "probe" else 2):
            raise KeyboardInterrupt

    monkeypatch.setattr(output.os, "close", interrupted_close)
    with pytest.raises(KeyboardInterrupt):
        with output.atomic_output(tmp_path / "out.csv") as partial:
            partial.write_text("x")
    assert list(tmp_path.iterdir()) == []
