"""Batches: run_batch with both engines, bad rows, column checks, streaming files, summaries."""
from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from lupus_rules import FACTS, evaluate, load_rulebook
from lupus_rules.batch import (
    OUTCOME_COLUMNS,
    POOL_MIN_ROWS,
    BatchInputError,
    BatchSummary,
    failure_reasons,
    run_batch,
    run_file,
    write_chunks,
)
from lupus_rules.generate import band_columns, cartesian, count, value_bands

OUTCOMES = ["preferred", "recommendations", "flags", "fired_rules", "error"]


@pytest.fixture(scope="module")
def rulebook():
    return load_rulebook()


@pytest.fixture(scope="module")
def scenarios(rulebook) -> pd.DataFrame:
    """Varied patients as CSV text: every fact drawn from its value bands (a random slice of the product).

    The bands are split into groups whose product is small; each group's
    product is sampled and the groups' columns are put side by side.
    """
    bands = value_bands(rulebook)
    n = POOL_MIN_ROWS + 100
    groups: list[list[str]] = [[]]
    for key in bands:
        if count(bands, groups[-1] + [key]) > 20_000:
            groups.append([])
        groups[-1].append(key)
    frame = pd.DataFrame({"scenario_id": [f"s{i}" for i in range(n)]})
    for seed, group in enumerate(groups):
        sample = cartesian(bands, group).sample(n=n, replace=True, random_state=seed).reset_index(drop=True)
        for key in group:
            for column in band_columns(key):
                frame[column] = sample[column]
    return frame.astype(object).fillna("").astype(str)


def with_bad_rows(frame: pd.DataFrame) -> pd.DataFrame:
    bad = frame.iloc[:3].copy()
    bad["scenario_id"] = ["bad-egfr", "bad-status", "bad-two"]
    bad.loc[bad.index[0], "egfr"] = "abc"
    bad.loc[bad.index[1], "methotrexate"] = "stopped"
    bad.loc[bad.index[2], ["upcr", "manifestations"]] = ["-1", "skin"]
    mixed = pd.concat([frame.iloc[:20], bad, frame.iloc[20:]], ignore_index=True)
    return mixed


def test_engines_agree_and_keep_input_order(scenarios, rulebook):
    """Durable in 2 worker processes (enough rows to start the pool) vs vectorized, row by row."""
    data = with_bad_rows(scenarios)
    vectorized = run_batch(data, "vectorized", rulebook)
    durable = run_batch(data, "durable", rulebook, processes=2, chunk_size=len(data))
    python = run_batch(data, "python", rulebook, chunk_size=97)
    pd.testing.assert_frame_equal(vectorized[OUTCOMES], durable[OUTCOMES])
    pd.testing.assert_frame_equal(python[OUTCOMES], durable[OUTCOMES])
    assert list(durable["scenario_id"]) == list(python["scenario_id"]) == list(data["scenario_id"])
    assert set(vectorized["engine"]) == {"vectorized"} and set(durable["engine"]) == {"durable"}
    assert set(python["engine"]) == {"python"}


def test_durable_batch_equals_evaluate_one_by_one(scenarios, rulebook):
    data = scenarios.iloc[:40]
    batch = run_batch(data, "durable", rulebook, processes=1)
    for i, row in data.drop(columns="scenario_id").iterrows():
        expected = evaluate(row.to_dict(), rulebook).to_row()
        assert {k: batch.loc[i, k] for k in expected} == expected


@pytest.mark.parametrize("engine", ["vectorized", "durable", "python"])
def test_bad_rows_get_their_error_and_the_others_are_evaluated(scenarios, rulebook, engine):
    data = with_bad_rows(scenarios.iloc[:40])
    result = run_batch(data, engine, rulebook, processes=1)
    by_id = result.set_index("scenario_id")
    assert "egfr: got 'abc'" in by_id.loc["bad-egfr", "error"]
    assert "methotrexate: got 'stopped'" in by_id.loc["bad-status", "error"]
    assert "allowed: one of not_tried" in by_id.loc["bad-status", "error"]
    two = by_id.loc["bad-two", "error"]
    assert "manifestations: got 'skin'" in two and "upcr: got '-1'" in two
    bad = result["error"] != ""
    assert bad.sum() == 3
    assert (result.loc[bad, ["preferred", "recommendations", "flags", "fired_rules"]] == "").all().all()
    assert (result.loc[~bad, "fired_rules"] != "").all()
    assert (result["rulebook_version"] == rulebook.version).all()


def test_input_columns_pass_through_unchanged(rulebook):
    data = pd.DataFrame({
        "scenario_id": ["a", "b"], "description": ["x", "y"], "expect_preferred": ["z", ""],
        "methotrexate": ["intolerant", "effective"], "egfr": [50.0, float("nan")],
        "planning_pregnancy": [True, False], "manifestations": [frozenset({"joint"}), "nephritis"],
    }, index=[10, 20])
    result = run_batch(data, rulebook=rulebook)
    assert list(result.columns) == list(data.columns) + list(OUTCOME_COLUMNS)
    pd.testing.assert_frame_equal(result[data.columns], data)
    assert (result["error"] == "").all()
    durable = run_batch(data, "durable", rulebook, processes=1)
    pd.testing.assert_frame_equal(result[OUTCOMES], durable[OUTCOMES])


def test_unknown_column_is_refused_before_evaluating(rulebook):
    data = pd.DataFrame({"methotrexate": ["intolerant"], "egrf": ["50"], "expect_x": [""]})
    with pytest.raises(BatchInputError) as caught:
        run_batch(data, rulebook=rulebook)
    message = str(caught.value)
    assert "'egrf'" in message and "egfr" in message and "methotrexate" in message
    assert "expect_x" not in message.split("allowed")[0]


def test_bad_options_are_refused(rulebook):
    data = pd.DataFrame({"methotrexate": ["intolerant"]})
    with pytest.raises(BatchInputError, match="engine: got 'fast'; allowed: durable, vectorized, python"):
        run_batch(data, engine="fast")
    with pytest.raises(BatchInputError, match="chunk_size: got 0"):
        run_batch(data, chunk_size=0)


def test_an_edited_rulebook_reaches_the_worker_processes(scenarios, rulebook):
    """The durable workers rebuild the rulebook from its documents: same version, same outcome."""
    first = rulebook.rules[0]
    edited = rulebook.without_rule(first.id)
    data = scenarios.iloc[:POOL_MIN_ROWS]
    durable = run_batch(data, "durable", edited, processes=2)
    vectorized = run_batch(data, "vectorized", edited)
    assert (durable["rulebook_version"] == edited.version).all() and edited.version != rulebook.version
    assert not durable["fired_rules"].str.contains(first.id, regex=False).any()
    pd.testing.assert_frame_equal(vectorized[OUTCOMES], durable[OUTCOMES])


def test_empty_frame_gives_the_outcome_columns(rulebook):
    data = pd.DataFrame({"scenario_id": pd.Series([], dtype=str), "egfr": pd.Series([], dtype=str)})
    for engine in ("vectorized", "durable", "python"):
        result = run_batch(data, engine, rulebook)
        assert len(result) == 0 and list(result.columns) == ["scenario_id", "egfr", *OUTCOME_COLUMNS]


def test_failure_reasons_name_each_field():
    error = ("egfr: got 'abc'; allowed: a number from 0 to 200, or empty (unknown); "
             "manifestations: got 'skin'; allowed: any of cutaneous, joint (CSV: ';'-separated)")
    assert failure_reasons(error) == ["egfr", "manifestations"]
    assert failure_reasons("something else") == ["other"]


def test_streaming_many_chunks_equals_one_batch(scenarios, rulebook, tmp_path):
    data = with_bad_rows(scenarios)
    source = tmp_path / "in.csv"
    data.to_csv(source, index=False)
    whole = run_batch(data, rulebook=rulebook)
    for suffix, engine, ran in ((".csv", "vectorized", "vectorized"), (".parquet", "auto", "vectorized"),
                                (".csv", "auto", "python")):  # auto: a small CSV to CSV runs in pure Python
        target = tmp_path / f"out{suffix}"
        summary = run_file(source, target, engine, rulebook=rulebook, chunk_size=29, progress=False)
        out = (pd.read_csv(target, dtype=str, keep_default_na=False) if suffix == ".csv"
               else pq.read_table(target).to_pandas())
        assert set(out["engine"]) == {ran}
        pd.testing.assert_frame_equal(out.drop(columns="engine"), whole.drop(columns="engine"), check_dtype=False)
        assert summary.rows == len(data) and summary.failed == 3
        assert summary.failures == {"egfr": 1, "methotrexate": 1, "manifestations": 1, "upcr": 1}
        assert summary.rulebook_version == rulebook.version and summary.engine == ran


def test_parquet_input_streams_by_record_batch(scenarios, rulebook, tmp_path):
    source = tmp_path / "in.parquet"
    scenarios.to_parquet(source, index=False, row_group_size=100)
    target = tmp_path / "out.csv"
    summary = run_file(source, target, rulebook=rulebook, chunk_size=64, progress=True)
    out = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert list(out["scenario_id"]) == list(scenarios["scenario_id"])
    assert summary.ok and summary.rows == len(scenarios) and summary.rows_per_second > 0


def test_header_only_csv_writes_header_only(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("scenario_id,methotrexate\n", encoding="utf-8")
    summary = run_file(source, tmp_path / "out.csv", progress=False)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str)
    assert summary.rows == 0 and list(out.columns) == ["scenario_id", "methotrexate", *OUTCOME_COLUMNS]


def test_excel_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes("\ufeffscenario_id,methotrexate\np1,intolerant\n".encode("utf-8"))
    run_file(source, tmp_path / "out.csv", progress=False)
    assert pd.read_csv(tmp_path / "out.csv", dtype=str)["scenario_id"].tolist() == ["p1"]


def test_unusable_files_are_refused_before_writing(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(BatchInputError, match="input file not found"):
        run_file(tmp_path / "missing.csv", target, progress=False)
    typo = tmp_path / "typo.csv"
    typo.write_text("scenario_id,metotrexate\np1,intolerant\n", encoding="utf-8")
    with pytest.raises(BatchInputError, match="unknown column 'metotrexate'"):
        run_file(typo, target, progress=False)
    with pytest.raises(BatchInputError, match="suffix '.xlsx' not supported"):
        run_file(typo, tmp_path / "out.xlsx", progress=False)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(BatchInputError, match="empty"):
        run_file(empty, target, progress=False)
    assert not target.exists()


def test_a_failed_write_leaves_no_output(tmp_path):
    def chunks():
        yield pd.DataFrame({"a": ["1"]})
        raise RuntimeError("disk on fire")

    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        write_chunks(chunks(), target)
    assert list(tmp_path.iterdir()) == []


def test_summary_counts_and_prints(rulebook):
    data = pd.DataFrame({"scenario_id": ["a", "b", "c"], "egfr": ["x", "y", "50"],
                         "ldn": ["nope", "intolerant", "effective"]})
    summary = BatchSummary(rulebook.version, "vectorized")
    summary.add(run_batch(data, rulebook=rulebook))
    assert (summary.rows, summary.failed, summary.failures) == (3, 2, {"egfr": 2, "ldn": 1})
    text = summary.format()
    assert "Not for clinical use" in text and "failed: 2" in text and "egfr 2, ldn 1" in text
    assert rulebook.version in text


def test_facts_table_is_what_the_column_check_uses():
    data = pd.DataFrame({name: [] for name in FACTS})
    assert list(run_batch(data).columns) == [*FACTS, *OUTCOME_COLUMNS]


def test_parquet_written_with_a_pandas_index_is_read_without_it(tmp_path):
    source = tmp_path / "in.parquet"
    pd.DataFrame({"methotrexate": ["intolerant", "effective"]}, index=[5, 6]).to_parquet(source)
    summary = run_file(source, tmp_path / "out.csv", progress=False)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert summary.ok and list(out.columns) == ["methotrexate", *OUTCOME_COLUMNS]
    assert list(out["methotrexate"]) == ["intolerant", "effective"]
