"""run_batch on a Dask DataFrame, evaluated on a local ``distributed`` cluster of 2 worker processes."""
from __future__ import annotations

import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe", reason="dask is not installed (pip install 'lupus-rules[dask]')")
distributed = pytest.importorskip("distributed", reason="distributed is not installed (pip install 'lupus-rules[dask]')")

from lupus_rules import load_rulebook  # noqa: E402
from lupus_rules.batch import OUTCOME_COLUMNS, BatchInputError, run_batch  # noqa: E402
from lupus_rules.generate import cartesian, value_bands  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """2 worker processes, 1 thread each, loopback only, no dashboard; closed after this module."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    with cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture(scope="module")
def patients() -> pd.DataFrame:
    frame = cartesian(value_bands(load_rulebook()), ["manifestations", "methotrexate", "mycophenolate", "upcr"])
    frame = frame.sample(n=600, random_state=3).reset_index(drop=True)
    frame.loc[5, "egfr"] = 500.0  # out of range: one bad row
    frame.loc[7, "methotrexate"] = "sometimes"
    return frame


def test_partitions_on_the_cluster_equal_the_in_process_result(client, patients):
    rulebook = load_rulebook()
    expected = run_batch(patients, rulebook=rulebook)
    lazy = run_batch(dd.from_pandas(patients, npartitions=4), rulebook=rulebook)
    assert isinstance(lazy, dd.DataFrame)
    got = client.compute(lazy).result()
    # Dask may store text as pyarrow strings: compare values, not string dtypes.
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert (got["error"] != "").sum() == 2
    workers = client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2


def test_durable_engine_per_partition_matches_vectorized(client, patients):
    sample = patients.iloc[:120]
    lazy = run_batch(dd.from_pandas(sample, npartitions=2), engine="durable")
    got = client.compute(lazy).result()
    expected = run_batch(sample)
    columns = ["preferred", "recommendations", "flags", "fired_rules", "error"]
    pd.testing.assert_frame_equal(got[columns], expected[columns], check_dtype=False)
    assert (got["engine"] == "durable").all()


def test_unknown_column_is_refused_before_computing(patients):
    frame = dd.from_pandas(patients.rename(columns={"ldn": "naltrexone"}), npartitions=2)
    with pytest.raises(BatchInputError, match="'naltrexone'"):
        run_batch(frame)


def test_meta_matches_the_computed_columns(patients):
    lazy = run_batch(dd.from_pandas(patients.iloc[:10], npartitions=1))
    assert list(lazy.columns) == list(patients.columns) + list(OUTCOME_COLUMNS)
