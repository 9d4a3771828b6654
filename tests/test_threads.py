"""Thread safety of the vectorized engine and its caches: threads on cold rulebook versions equal a sequential run.

A *cold* version is one no evaluation in this process has used yet: its
compiled steps and pattern-text tables are built while the threads race.
Each round edits a rule's title (outcomes and fired rules stay the same, the
version changes), so every round starts cold. The expected rows come from a
sequential run on another such copy. The interpreter switches threads every
few microseconds here so that the races the caches must survive really occur.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest

from lupus_rules import default_rulebook
from lupus_rules.batch import run_batch
from lupus_rules.engines import vectorized
from lupus_rules.engines.vectorized import evaluate_frame
from lupus_rules.facts import validate_frame
from lupus_rules.rulebook import Rulebook
from test_differential import generated_rows

THREADS = 8
ROUNDS = 3
ROWS = 1_500
OUTCOMES = ["preferred", "recommendations", "flags", "fired_rules", "error"]


@pytest.fixture(autouse=True)
def fast_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.fixture(scope="module")
def book() -> Rulebook:
    return default_rulebook()


@pytest.fixture(scope="module")
def frames(book) -> list[pd.DataFrame]:
    """Different rows per thread, so threads keep adding patterns the others have not seen."""
    return [generated_rows(ROWS, seed=100 + i, rulebook=book) for i in range(THREADS)]


def cold(book: Rulebook, label: str) -> Rulebook:
    """The same rules under a version no evaluation has used yet."""
    first = book.rules[0]
    edited = book.replace_rule(first.id, title=f"{first.title} ({label})")
    assert edited.version != book.version
    return edited


def in_threads(work: Callable[[int], object]) -> list[object]:
    """``work(i)`` for i in 0..THREADS-1, all started together; exceptions are returned, not lost."""
    out: list[object] = [None] * THREADS
    barrier = threading.Barrier(THREADS)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # noqa: BLE001 (compared below)
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def assert_same_rows(got: list[object], expected: list[pd.DataFrame]) -> None:
    failures = [repr(g) for g in got if isinstance(g, Exception)]
    assert not failures, failures
    wrong = sum(int((g[OUTCOMES] != e[OUTCOMES]).any(axis=1).sum()) for g, e in zip(got, expected))
    assert wrong == 0, f"{wrong} rows differ from the sequential run"


@pytest.fixture(scope="module")
def expected(book, frames) -> list[pd.DataFrame]:
    reference = cold(book, "sequential reference")
    return [run_batch(frame, rulebook=reference) for frame in frames]


def test_run_batch_from_threads_on_cold_versions_equals_sequential(book, frames, expected):
    for round_ in range(ROUNDS):
        version = cold(book, f"threads {round_}")
        got = in_threads(lambda i: run_batch(frames[i], rulebook=version))
        assert_same_rows(got, expected)
        assert all((g["rulebook_version"] == version.version).all() for g in got)


def test_sorted_pattern_lookup_from_threads_equals_sequential(book, frames, expected, monkeypatch):
    # rulebooks too large for direct tables look patterns up in sorted arrays; small memo restarts them often
    monkeypatch.setattr(vectorized, "_DENSE_ENTRIES", 0)
    monkeypatch.setattr(vectorized, "_MAX_MEMO", 300)
    version = cold(book, "sorted lookup")
    got = in_threads(lambda i: run_batch(frames[i], rulebook=version))
    assert not vectorized._compile(version).dense
    assert_same_rows(got, expected)


def test_evaluate_frame_chunks_from_threads_share_one_cold_version(book, frames, expected):
    # many small calls: each thread adds a few patterns at a time while the others read
    version = cold(book, "small chunks")
    typed = [validate_frame(frame)[0] for frame in frames]

    def work(i: int) -> pd.DataFrame:
        parts = [evaluate_frame(typed[i].iloc[s:s + 50], version) for s in range(0, ROWS, 50)]
        return pd.concat(parts).assign(error="")

    assert_same_rows(in_threads(work), expected)


def test_dask_threaded_scheduler_on_a_cold_version_equals_sequential(book, frames, expected):
    dd = pytest.importorskip("dask.dataframe")
    version = cold(book, "dask")
    data = pd.concat(frames, ignore_index=True)
    got = run_batch(dd.from_pandas(data, npartitions=4 * THREADS), rulebook=version).compute(scheduler="threads")
    want = pd.concat(expected, ignore_index=True)
    assert len(got) == len(want)
    differ = (got[OUTCOMES].reset_index(drop=True) != want[OUTCOMES]).any(axis=1)
    assert not differ.any(), f"{int(differ.sum())} rows differ"


def test_threads_compiling_one_cold_version_share_one_compilation(book):
    version = cold(book, "compile")
    compiled = in_threads(lambda i: vectorized._compile(version))
    assert all(c is compiled[0] for c in compiled)
    tables = in_threads(lambda i: vectorized._pattern_texts(compiled[0], "probe", [0, 1], ";".join))
    assert all(t is tables[0] for t in tables)


def test_reference_rows_fire_rules(expected):
    # the comparison above is only meaningful if the rows show many different outcomes
    fired = pd.concat(expected)["fired_rules"]
    assert fired.nunique() > 1_000 and not fired.str.startswith(";").any()
    assert np.all(pd.concat(expected)["error"] == "")
