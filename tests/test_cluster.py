"""run_on_cluster / run --scheduler: the workers read, evaluate and write; only counts come back (issue 12)."""
from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

distributed = pytest.importorskip("distributed", reason="distributed is not installed (pip install 'lupus-rules[dask]')")

from lupus_rules import load_rulebook  # noqa: E402
from lupus_rules.batch import OUTCOME_COLUMNS, BatchInputError, run_file  # noqa: E402
from lupus_rules.cli import main  # noqa: E402
from lupus_rules.cluster import ClusterSummary, input_files, parse_scheduler, run_on_cluster  # noqa: E402
from lupus_rules.generate import sample, value_bands  # noqa: E402

ROWS = 4_000
OUTCOMES = ["preferred", "recommendations", "continue", "avoided", "cautions", "flags", "fired_rules", "error"]


@pytest.fixture(scope="module")
def cluster():
    """2 worker processes, 1 thread each, loopback only; (address, client) for this module."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local:
        with distributed.Client(local, set_as_default=False) as client:
            yield local.scheduler_address, client


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    """Generated patients (a seeded sample of the whole fact space) with some bad rows."""
    frame = sample(value_bands(load_rulebook()), None, ROWS, seed=12)
    frame.loc[17, "egfr"] = 500.0  # out of range
    frame.loc[1_203, "methotrexate"] = "sometimes"
    frame.loc[2_950, ["upcr", "manifestations"]] = [-1.0, "skin"]  # two fields in one row
    frame.loc[3_999, "planning_pregnancy"] = "maybe"
    return frame


@pytest.fixture(scope="module")
def folder(tmp_path_factory, population) -> Path:
    """The population as a partitioned folder: 3 files (natural order part-2 < part-10), row groups of 400 rows."""
    root = tmp_path_factory.mktemp("population")
    (root / "in").mkdir()
    for name, (start, stop) in {"part-1": (0, 1_000), "part-2": (1_000, 2_600), "part-10": (2_600, ROWS)}.items():
        table = pa.Table.from_pandas(population.iloc[start:stop], preserve_index=False)
        pq.write_table(table, root / "in" / f"{name}.parquet", row_group_size=400)
    (root / "in" / "_SUCCESS").write_text("")  # markers and hidden files are not input
    return root / "in"


@pytest.fixture(scope="module")
def in_process(tmp_path_factory, population):
    """The reference: in-process run_file on the same rows as one Parquet file."""
    root = tmp_path_factory.mktemp("reference")
    population.to_parquet(root / "all.parquet", index=False)
    summary = run_file(root / "all.parquet", root / "out.parquet", progress=False)
    return summary, pd.read_parquet(root / "out.parquet")


def parts(folder: Path) -> pd.DataFrame:
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"part-{i:0{len(str(len(files) - 1))}d}.parquet" for i in range(len(files))]
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def outgoing_bytes(client) -> int:
    """Bytes every worker has served so far (to the client or other workers): what gathering would cost."""
    return sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())


def test_parts_written_by_the_workers_equal_the_in_process_result(cluster, folder, in_process, tmp_path):
    address, client = cluster
    expected_summary, expected = in_process
    before = outgoing_bytes(client)
    summary = run_on_cluster(folder, tmp_path / "out", address, partition_rows=800)
    served = outgoing_bytes(client) - before

    got = parts(tmp_path / "out")
    pd.testing.assert_frame_equal(got, expected)  # row for row, in input order, same types
    assert list(got.columns)[-len(OUTCOME_COLUMNS):] == list(OUTCOME_COLUMNS)
    assert (got["rulebook_version"] == load_rulebook().version).all()
    assert (got["error"] != "").sum() == 4 and got.loc[2_950, "error"].count("got") == 2

    assert isinstance(summary, ClusterSummary)
    assert (summary.rows, summary.failed, summary.failures) == (
        expected_summary.rows, expected_summary.failed, expected_summary.failures)
    assert summary.failures == {"egfr": 1, "methotrexate": 1, "upcr": 1, "manifestations": 1,
                                "planning_pregnancy": 1}
    good = expected[expected["error"] == ""]
    assert summary.preferred == good["preferred"].value_counts().to_dict()
    assert summary.rulebook_version == load_rulebook().version
    # each file's row groups of 400 in pairs (<= 800 rows): 1000 -> 800+200, 1600 -> 800+800, 1400 -> 800+600
    assert summary.partitions == len(list((tmp_path / "out").iterdir())) == 6
    assert len(summary.workers) == 2 and sum(summary.workers.values()) == 6
    assert summary.seconds > 0

    # Nothing big came back: the summary is a few hundred bytes, and the workers served
    # (to anyone, the client included) a tiny fraction of what the result frame weighs.
    assert len(pickle.dumps(summary)) < 4_000
    assert got.memory_usage(deep=True).sum() > 2_000_000
    assert served < 50_000


def test_durable_engine_on_the_workers_agrees_with_vectorized(cluster, folder, in_process, tmp_path):
    address, _ = cluster
    small = tmp_path / "small"
    small.mkdir()
    reference = pq.read_table(next(f for f in input_files(folder) if f.name == "part-1.parquet"))
    pq.write_table(reference.slice(0, 300), small / "a.parquet", row_group_size=150)  # holds the egfr=500 row
    summary = run_on_cluster(small, tmp_path / "out", address, engine="durable", partition_rows=150)
    got = parts(tmp_path / "out")
    expected = in_process[1].iloc[:300]
    pd.testing.assert_frame_equal(got[OUTCOMES], expected[OUTCOMES])
    assert (got["engine"] == "durable").all() and summary.engine == "durable"
    assert summary.failed == 1 and summary.partitions == 2 and len(summary.workers) == 2


def test_csv_files_are_read_on_the_workers_with_per_row_read_errors(cluster, tmp_path):
    """A ragged CSV row fails alone, exactly as run_file reports it."""
    address, _ = cluster
    (tmp_path / "in").mkdir()
    lines = ["scenario_id,manifestations,methotrexate,egfr", "a,joint,intolerant,70", "b,joint,intolerant,70,extra",
             "c,nephritis,nonresponse,sixty", "d,,,"]
    (tmp_path / "in" / "one.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "in" / "two.csv").write_text("\n".join(lines[:2] + lines[4:]) + "\n")
    summary = run_on_cluster(tmp_path / "in", tmp_path / "out", address)
    got = parts(tmp_path / "out")
    run_file(tmp_path / "in" / "one.csv", tmp_path / "one.parquet", progress=False)
    run_file(tmp_path / "in" / "two.csv", tmp_path / "two.parquet", progress=False)
    expected = pd.concat([pd.read_parquet(tmp_path / f"{n}.parquet") for n in ("one", "two")], ignore_index=True)
    pd.testing.assert_frame_equal(got, expected)
    assert "line 3" in got.loc[1, "error"] and "ragged" in got.loc[1, "error"]
    assert (summary.rows, summary.failed, summary.partitions) == (6, 2, 2)


def test_run_file_with_a_scheduler_delegates(cluster, folder, tmp_path):
    address, _ = cluster
    summary = run_file(folder, tmp_path / "out", scheduler=address, progress=False)
    assert isinstance(summary, ClusterSummary) and summary.rows == ROWS and summary.failed == 4
    assert len(parts(tmp_path / "out")) == ROWS
    with pytest.raises(BatchInputError, match="excel_safe"):
        run_file(folder, tmp_path / "other", scheduler=address, excel_safe=True)
    assert not (tmp_path / "other").exists()


def test_a_failing_partition_leaves_no_output_folder(cluster, folder, tmp_path):
    """A Parquet file whose pages are damaged (its footer intact): the worker's error reaches the client, nothing is left."""
    address, _ = cluster
    (tmp_path / "in").mkdir()
    good = input_files(folder)[0]
    (tmp_path / "in" / "a.parquet").write_bytes(good.read_bytes())
    data = bytearray(good.read_bytes())
    data[200:4_000] = bytes(3_800)
    (tmp_path / "in" / "b.parquet").write_bytes(bytes(data))
    with pytest.raises(BatchInputError, match=r"input \S+b\.parquet(: could not read| is not a readable Parquet file)"):
        run_on_cluster(tmp_path / "in", tmp_path / "out", address)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no output, no hidden partial folder


def test_cli_reports_a_worker_error_in_one_line(folder, tmp_path):
    """The worker's own log of the failed task (a traceback) stays out of the command's output."""
    (tmp_path / "in").mkdir()
    data = bytearray(input_files(folder)[0].read_bytes())
    data[200:4_000] = bytes(3_800)
    (tmp_path / "in" / "b.parquet").write_bytes(bytes(data))
    done = subprocess.run([sys.executable, "-m", "lupus_rules", "run", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                           "--scheduler", "local:1", "--no-progress"],
                          capture_output=True, text=True, timeout=240, env=_env())
    assert done.returncode == 2
    assert done.stderr.startswith("lupus-rules run: input ") and "b.parquet" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out").exists()


def _env() -> dict[str, str]:
    """This environment with this checkout first on PYTHONPATH (the subprocess and its workers import it)."""
    root = str(Path(__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


def test_cli_scheduler_local_2_end_to_end(folder, in_process, tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # an empty folder is accepted
    env = _env()
    done = subprocess.run([sys.executable, "-m", "lupus_rules", "run", str(folder), "-o", str(out),
                           "--scheduler", "local:2", "--partition-rows", "800", "--no-progress"],
                          capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 1, done.stderr  # some rows failed: all are still written
    assert "Traceback" not in done.stderr
    assert f"rows: {ROWS:,}" in done.stdout and "failed: 4" in done.stdout
    assert "partitions: 6 written by 2 workers" in done.stdout and "scheduler local:2" in done.stdout
    pd.testing.assert_frame_equal(parts(out), in_process[1])


@pytest.mark.parametrize("value", ["local:x", "local:0", "local:", "local", "", "tcp://a b:1", "nohost",
                                   "foo://x:1"])
def test_a_bad_scheduler_value_is_one_line_and_exit_2(folder, tmp_path, capsys, value):
    code = main(["run", str(folder), "-o", str(tmp_path / "out"), "--scheduler", value, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lupus-rules run: scheduler: got ") and repr(value) in err
    assert "local:N" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_parse_scheduler():
    assert parse_scheduler("local:3") == 3 and parse_scheduler(" LOCAL:1_0 ") == 10
    assert parse_scheduler("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    with pytest.raises(BatchInputError, match=r"got 'local:-1'; allowed: local:N"):
        parse_scheduler("local:-1")


def test_an_unreachable_scheduler_is_one_line_and_exit_2(folder, tmp_path, capsys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = main(["run", str(folder), "-o", str(tmp_path / "out"), "--scheduler", f"tcp://127.0.0.1:{port}",
                 "--connect-timeout", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"lupus-rules run: scheduler tcp://127.0.0.1:{port}: could not connect within 1 s")
    assert "dask scheduler" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_output_that_exists_or_overlaps_the_input_is_refused(folder, tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.parquet").write_text("")
    (tmp_path / "file").write_text("")
    cases = {tmp_path / "full": "exists and is not empty", tmp_path / "file": "exists and is a file",
             folder / "out": "overlaps the input", tmp_path / "no" / "out": "parent not found"}
    for out, message in cases.items():
        assert main(["run", str(folder), "-o", str(out), "--scheduler", "local:1", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (folder / "out").exists()
    assert main(["run", str(folder), "-o", str(tmp_path / "o"), "--scheduler", "local:1", "--excel-safe"]) == 2
    assert "--excel-safe applies to CSV output" in capsys.readouterr().err
    assert main(["run", str(folder), "-o", str(tmp_path / "o.parquet"), "--partition-rows", "10"]) == 2
    assert "--partition-rows applies with --scheduler" in capsys.readouterr().err


def test_unusable_inputs_are_refused_before_any_cluster(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "mixed").mkdir()
    pd.DataFrame({"scenario_id": ["a"]}).to_csv(tmp_path / "mixed" / "a.csv", index=False)
    pd.DataFrame({"scenario_id": ["a"]}).to_parquet(tmp_path / "mixed" / "b.parquet")
    (tmp_path / "typo").mkdir()
    pd.DataFrame({"scenario_id": ["a"], "egfr": [60.0]}).to_parquet(tmp_path / "typo" / "a.parquet")
    pd.DataFrame({"scenario_id": ["a"], "egrf": [60.0]}).to_parquet(tmp_path / "typo" / "b.parquet")
    cases = {"missing": "input not found", "empty": "holds no .csv or .parquet files",
             "mixed": "mixes .csv and .parquet files", "typo": "'egrf'"}
    for name, message in cases.items():
        # an address nothing listens on: had the input been accepted, this would wait for it
        assert main(["run", str(tmp_path / name), "-o", str(tmp_path / f"out-{name}"),
                     "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "30"]) == 2
        assert message in capsys.readouterr().err


def test_without_distributed_the_message_says_what_to_install(folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails
    with pytest.raises(BatchInputError, match=r"pip install 'lupus-rules\[dask\]'"):
        run_on_cluster(folder, tmp_path / "out", "local:2")
    assert not (tmp_path / "out").exists()


def test_help_and_import_do_not_import_dask():
    code = ("import sys, lupus_rules, lupus_rules.cluster; from lupus_rules.cli import build_parser; "
            "build_parser().parse_args(['run', 'in.parquet', '-o', 'out', '--scheduler', 'local:2']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_ctrl_c_stops_the_run_with_one_line_and_leaves_nothing(tmp_path):
    """SIGINT to the whole process group (a terminal's Ctrl-C): exit 130, one line, no output, workers gone."""
    from lupus_rules.generate import write_generated

    write_generated(tmp_path / "in.parquet", value_bands(load_rulebook()), sample=20_000, seed=5)
    env = _env()
    run = subprocess.Popen([sys.executable, "-m", "lupus_rules", "run", str(tmp_path / "in.parquet"),
                            "-o", str(tmp_path / "out"), "--scheduler", "local:2", "--engine", "durable",
                            "--no-progress"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".out.*.partial")):  # the parts' folder: the workers are at work
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.1)
        time.sleep(1.0)
        os.killpg(run.pid, signal.SIGINT)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 130, err
    assert err.strip() == "lupus-rules run: interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]
    assert _live_in_group(run.pid) == []  # the worker processes are gone (zombies, already exited, aside)


def _live_in_group(group: int) -> list[str]:
    """Processes of the process group ``group`` that have not exited, waiting up to 10 s for them to go."""
    deadline = time.monotonic() + 10
    while True:
        table = subprocess.run(["ps", "-eo", "pgid=,stat=,args="], capture_output=True, text=True).stdout
        live = [line for line in table.splitlines() if line.split()[0] == str(group) and not line.split()[1].startswith("Z")]
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.2)
