"""Hostile rule folders and documents: every one loads and runs on both engines, or is a RulebookError.

Issue #9: the loader must check what the engines need (finite numbers in range, text names and keys,
UTF-8 regular files within a size, bounded alias expansion, a strata depth both engines run), and
the version hash must be canonical.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lupus_rules import rulebook as rulebook_module
from lupus_rules.engines.durable import shared
from lupus_rules.engines.vectorized import fire_matrix
from lupus_rules.errors import RulebookError
from lupus_rules.facts import validate_frame, validate_patient
from lupus_rules.rulebook import (DEFAULT_RULES_DIR, MAX_RULES, MAX_STRATA, MAX_VALUES, load_rulebook,
                                  rulebook_from_documents)

SHIPPED = {p.name: p.read_text(encoding="utf-8") for p in sorted(DEFAULT_RULES_DIR.glob("*.yaml"))}
PATIENTS = [
    {},
    {"methotrexate": "intolerant", "manifestations": "nephritis", "egfr": 70, "upcr": 3.5},
    {"ldn": "nonresponse", "manifestations": "cutaneous;joint", "mycophenolate": "intolerant"},
    {"methotrexate": "nonresponse", "planning_pregnancy": True, "azathioprine": "intolerant", "egfr": 30},
]


def shipped_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for name, text in SHIPPED.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def problems(path: Path) -> list:
    with pytest.raises(RulebookError) as info:
        load_rulebook(path)
    return info.value.problems


def fired_on_both(book) -> None:
    """Both engines fire the same rules, in the same order, for every test patient."""
    typed, errors = validate_frame(pd.DataFrame(PATIENTS, dtype=object))
    assert (errors == "").all()
    matrix = fire_matrix(typed, book)
    for i, patient in enumerate(PATIENTS):
        vectorized = [book.rules[j].id for j in np.flatnonzero(matrix[i])]
        assert shared().fire(validate_patient(patient), book) == vectorized, patient


# -- numbers, names and keys --------------------------------------------------------------------

RULE = """rules:
  - id: X-1
    title: t
    section: s
    citation: [1]
    rationale: r
    when:
      - {when}
    then:
      {then}
"""
OK_WHEN = "{fact: egfr, op: '>=', value: 30}"
OK_THEN = "recommend: [{agent: azathioprine, rank: 40}]"


@pytest.mark.parametrize(("when", "then", "field", "fragment"), [
    ("{fact: egfr, op: '>=', value: .nan}", OK_THEN, "when[0].value", "nan"),
    ("{fact: egfr, op: '>=', value: .inf}", OK_THEN, "when[0].value", "inf"),
    ("{fact: egfr, op: '>=', value: -.inf}", OK_THEN, "when[0].value", "inf"),
    ("{fact: egfr, op: '>=', value: 1.0e+13}", OK_THEN, "when[0].value", "from -1e+12 to 1e+12"),
    (f"{{fact: egfr, op: '>=', value: {10**400}}}", OK_THEN, "when[0].value", "401-digit"),
    (OK_WHEN, f"recommend: [{{agent: azathioprine, rank: {10**30}}}]", "then.recommend[0].rank", "31-digit"),
    (OK_WHEN, "recommend: [{agent: azathioprine, rank: 1000001}]", "then.recommend[0].rank", "1 to 1,000,000"),
    (OK_WHEN, "recommend: [{agent: azathioprine, rank: 1.5}]", "then.recommend[0].rank", "whole number"),
    (OK_WHEN, "recommend: [{agent: [azathioprine], rank: 4}]", "then.recommend[0].agent", "unknown agent"),
    (OK_WHEN, "recommend: [{agent: azathioprine, rank: 4, note: [x]}]", "then.recommend[0]", "note (text)"),
    ("{fact: [egfr], op: '>=', value: 30}", OK_THEN, "when[0].fact", "unknown fact ['egfr']"),
    ("{fact: egfr, op: ['>='], value: 30}", OK_THEN, "when[0].op", "unknown operator"),
    ("{derived: [needs_alternative]}", OK_THEN, "when[0].derived", "unknown derived fact"),
    ("{fact: methotrexate, op: in, value: [[intolerant]]}", OK_THEN, "when[0].value", "a list of"),
    ("{fact: manifestations, op: has, value: [nephritis]}", OK_THEN, "when[0].value", "one of"),
    (OK_WHEN, "avoid: [[azathioprine]]", "then.avoid", "unknown agent"),
    (OK_WHEN, "flag: [{a: b}]", "then.flag", "unknown flag"),
    ("{1: egfr, op: '>=', value: 30}", OK_THEN, "when[0]", "key 1 is a int"),
    ("{fact: egfr, op: '>=', value: 30, true: 1}", OK_THEN, "when[0]", "key True is a bool"),
    ("{fact: egfr, op: '>=', value: !!binary aGVsbG8=}", OK_THEN, "when[0].value", "!!binary"),
    ("{fact: egfr, op: '>=', value: 2025-10-11}", OK_THEN, "when[0].value", "quote a date"),
])
def test_values_an_engine_cannot_use_are_refused_by_name(tmp_path, when, then, field, fragment):
    folder = shipped_folder(tmp_path)
    (folder / "x.yaml").write_text(RULE.format(when=when, then=then), encoding="utf-8")
    found = problems(folder)
    assert any(p.file == "x.yaml" and p.rule_id == "X-1" and p.field == field and fragment in p.message
               for p in found), found


@pytest.mark.parametrize(("vocabulary", "field", "fragment"), [
    ("agents: [mycophenolate]", "agents", "must be a mapping"),
    ("agents: {mycophenolate: {name: [MMF]}}", "agents.mycophenolate", "a name (text)"),
    ("agents: {mycophenolate: {name: MMF, foundation: maybe}}", "agents.mycophenolate", "true/false"),
    ("references: {1: Guideline, note: extra}", "references.note", "a whole number"),
    ("references: {1: [Guideline]}", "references.1", "reference as text"),
    ("references: [Guideline]", "references", "must be a mapping"),
    ("flags: {switch_therapy: [x]}", "flags.switch_therapy", "description (text)"),
    ("accepted_gaps: {GAP: x}", "accepted_gaps", "must be a list"),
    ("definitions: {x: !!set {a, b}}", "rulebook.definitions.x", "!!set"),
    ("definitions: {x: .nan}", "rulebook.definitions.x", "finite number"),
    ("definitions: {? [a, b] : c}", None, "not valid YAML"),
])
def test_bad_vocabulary_is_refused_by_name(tmp_path, vocabulary, field, fragment):
    folder = shipped_folder(tmp_path)
    text = SHIPPED["rulebook.yaml"]
    key = vocabulary.split(":")[0]
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {key}:"))
    end = next(i for i in range(start + 1, len(lines) + 1) if i == len(lines) or not lines[i].startswith("    "))
    (folder / "rulebook.yaml").write_text("\n".join(lines[:start] + ["  " + vocabulary] + lines[end:]) + "\n",
                                          encoding="utf-8")
    found = problems(folder)
    assert any(p.file == "rulebook.yaml" and p.field == field and fragment in p.message for p in found), found


# -- files ---------------------------------------------------------------------------------------


def test_non_utf8_files_are_named(tmp_path):
    folder = shipped_folder(tmp_path)
    (folder / "latin.yaml").write_bytes("rules: []\n# caf\xe9\n".encode("latin-1"))
    (folder / "wide.yaml").write_bytes("rules: []\n".encode("utf-16"))
    found = {p.file: p.message for p in problems(folder)}
    assert "not UTF-8" in found["latin.yaml"] and "line 2" in found["latin.yaml"]
    assert "UTF-16" in found["wide.yaml"]


def test_utf8_with_bom_loads(tmp_path):
    folder = shipped_folder(tmp_path)
    (folder / "rulebook.yaml").write_bytes(b"\xef\xbb\xbf" + SHIPPED["rulebook.yaml"].encode("utf-8"))
    assert load_rulebook(folder).version == load_rulebook().version


def _load_within(path: Path, seconds: float) -> BaseException | None:
    """Load in a thread; fail the test (not hang it) if loading blocks."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            load_rulebook(path)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"load_rulebook({path}) blocked for {seconds} s"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    folder = shipped_folder(tmp_path)
    os.mkfifo(folder / "x.yaml")
    error = _load_within(folder, 10)
    assert isinstance(error, RulebookError)
    assert [(p.file, "named pipe" in p.message) for p in error.problems] == [("x.yaml", True)]
    assert isinstance(_load_within(folder / "x.yaml", 10), RulebookError)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_links_to_devices_and_nothing_and_folders_are_refused(tmp_path):
    folder = shipped_folder(tmp_path)
    (folder / "zero.yaml").symlink_to("/dev/zero")
    (folder / "gone.yaml").symlink_to(tmp_path / "missing.yaml")
    (folder / "dir.yaml").mkdir()
    (folder / "00_scope.yaml").rename(folder / "scope.txt")
    (folder / "00_scope.yaml").symlink_to(folder / "scope.txt")  # a link to a plain file is a plain file
    found = {p.file: p.message for p in _load_within(folder, 10).problems}
    assert "character device" in found.pop("zero.yaml")
    assert "dangling link" in found.pop("gone.yaml")
    assert "a folder" in found.pop("dir.yaml")
    assert found == {}


def test_oversized_files_are_refused(tmp_path, monkeypatch):
    folder = shipped_folder(tmp_path)
    monkeypatch.setattr(rulebook_module, "MAX_FILE_BYTES", 4096)
    found = problems(folder)
    assert found and all("larger than 4,096 bytes" in p.message for p in found), found
    assert {p.file for p in found} == {n for n, t in SHIPPED.items() if len(t.encode()) > 4096}


# -- alias bombs, sets and the canonical version -------------------------------------------------

BOMB = "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] +
                 [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)])


@pytest.mark.parametrize("where", ["definitions", "note"])
def test_billion_laughs_is_refused_quickly(tmp_path, where):
    folder = shipped_folder(tmp_path)
    bomb = "rules: []\nbomb:\n" + "\n".join("  " + line for line in BOMB.splitlines()) + "\n"
    if where == "definitions":
        text = SHIPPED["rulebook.yaml"].replace("  definitions:\n", "  definitions:\n" + "\n".join(
            "    " + line for line in BOMB.splitlines()) + "\n")
        (folder / "rulebook.yaml").write_text(text, encoding="utf-8")
    else:
        (folder / "x.yaml").write_text(RULE.format(when=OK_WHEN, then=OK_THEN).replace(
            "    rationale: r\n", "    rationale: r\n    note: *a8\n") .replace("rules:\n", bomb.replace(
                "rules: []\n", "").replace("bomb:", "x-bomb:") + "rules:\n"), encoding="utf-8")
    started = time.perf_counter()
    found = problems(folder)
    assert time.perf_counter() - started < 5
    assert any(f"more than {MAX_VALUES:,} values" in p.message for p in found), found


def test_an_alias_that_contains_itself_is_refused(tmp_path):
    folder = shipped_folder(tmp_path)
    (folder / "rulebook.yaml").write_text(SHIPPED["rulebook.yaml"].replace(
        "  definitions:\n", "  definitions:\n    loop: &loop [*loop]\n"), encoding="utf-8")
    assert any("alias refers to itself" in p.message for p in problems(folder))


def test_few_aliases_still_load(tmp_path):
    folder = shipped_folder(tmp_path)
    text = SHIPPED["00_scope.yaml"].replace("citation: [1]", "citation: &one [1]", 1)
    text = text.replace("citation: [1]", "citation: *one")
    (folder / "00_scope.yaml").write_text(text, encoding="utf-8")
    assert load_rulebook(folder).version == load_rulebook().version


@pytest.mark.parametrize(("depth", "fragment"), [(50, "nested more than 32 levels"), (5000, "nesting depth")])
def test_deep_nesting_is_refused(tmp_path, depth, fragment):
    folder = shipped_folder(tmp_path)
    (folder / "x.yaml").write_text("rules: []\nx: " + "[" * depth + "]" * depth + "\n", encoding="utf-8")
    assert [p.file for p in problems(folder) if fragment in p.message] == ["x.yaml"]


_VERSION_SCRIPT = ("import sys; from lupus_rules import load_rulebook\n"
                   "try:\n    print(load_rulebook(sys.argv[1]).version)\n"
                   "except Exception as exc:\n    print(type(exc).__name__)\n")


def _version_in_subprocess(folder: Path, seed: int) -> str:
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    done = subprocess.run([sys.executable, "-c", _VERSION_SCRIPT, str(folder)], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_version_is_identical_across_processes(tmp_path):
    folder = shipped_folder(tmp_path)
    (folder / "rulebook.yaml").write_text(SHIPPED["rulebook.yaml"].replace(
        "  definitions:\n", "  definitions:\n    sets: {" + ", ".join(f"k{i}: v" for i in range(40)) + "}\n"),
        encoding="utf-8")
    versions = {_version_in_subprocess(folder, seed) for seed in (1, 2, 3)}
    assert len(versions) == 1 and len(versions.pop()) == 12
    (folder / "rulebook.yaml").write_text(SHIPPED["rulebook.yaml"].replace(
        "  definitions:\n", "  definitions:\n    sets: !!set {" + ", ".join(f"k{i}" for i in range(40)) + "}\n"),
        encoding="utf-8")
    assert {_version_in_subprocess(folder, seed) for seed in (1, 2)} == {"RulebookError"}


# -- strata and size -----------------------------------------------------------------------------


def chain(length: int, extra_rules: int = 0) -> list[tuple[str, dict]]:
    """The shipped vocabulary plus a chain of ``length`` rules, each testing what the one before derives."""
    meta = copy.deepcopy(yaml.safe_load(SHIPPED["rulebook.yaml"])["rulebook"])
    meta["derived_facts"] = {f"c{i}": f"link {i}" for i in range(length - 1)}
    meta["accepted_gaps"] = []
    rules = []
    for i in range(length + extra_rules):
        when = [{"derived": f"c{i - 1}"}] if 0 < i < length else [{"fact": "egfr", "op": ">=", "value": 10}]
        last = i >= length - 1
        then = {"recommend": [{"agent": "azathioprine", "rank": 40}]} if last else {"derive": [f"c{i}"]}
        rules.append({"id": f"C{i}", "title": "t", "section": "s", "citation": [1], "when": when, "then": then,
                      "rationale": "r"})
    return [("rulebook.yaml", {"rulebook": meta}), ("chain.yaml", {"rules": rules})]


def test_the_deepest_allowed_chain_runs_on_both_engines():
    book = rulebook_from_documents(chain(MAX_STRATA, extra_rules=300))  # 300 more rules share the egfr test
    assert book.strata == MAX_STRATA
    fired_on_both(book)
    fired = shared().fire(validate_patient({"egfr": 50}), book)
    assert len(fired) == MAX_STRATA + 300 and fired[-1] == f"C{MAX_STRATA - 1}"


def test_one_stratum_more_is_refused():
    with pytest.raises(RulebookError) as info:
        rulebook_from_documents(chain(MAX_STRATA + 1))
    (problem,) = info.value.problems
    assert (problem.file, problem.rule_id, problem.field) == ("chain.yaml", f"C{MAX_STRATA}", "when")
    assert f"at most {MAX_STRATA} strata" in problem.message


def test_a_very_long_chain_is_refused_without_recursing_to_the_limit():
    with pytest.raises(RulebookError, match="at most 200 strata"):
        rulebook_from_documents(chain(3000))


def test_more_rules_than_durable_holds_are_refused():
    with pytest.raises(RulebookError, match=f"at most {MAX_RULES:,}"):
        rulebook_from_documents(chain(2, extra_rules=MAX_RULES))


def test_the_documented_size_loads_and_one_rule_more_is_refused_naming_file_count_and_limit():
    assert len(rulebook_from_documents(chain(2, extra_rules=MAX_RULES - 2)).rules) == MAX_RULES
    with pytest.raises(RulebookError) as info:
        rulebook_from_documents(chain(2, extra_rules=MAX_RULES - 1))
    (problem,) = info.value.problems
    assert (problem.file, problem.rule_id, problem.field) == ("chain.yaml", None, "rules")
    assert f"{MAX_RULES + 1:,} rules" in problem.message and f"at most {MAX_RULES:,}" in problem.message


def fan(rules: int) -> list[tuple[str, dict]]:
    """``rules`` rules whose tests all differ: half derive ``f<i>`` when egfr >= a threshold of their own,
    half recommend when ``f<i>`` is derived (a fan of distinct patient tests and of derived-fact names)."""
    half = rules // 2
    meta = copy.deepcopy(yaml.safe_load(SHIPPED["rulebook.yaml"])["rulebook"])
    meta["derived_facts"] = {f"f{i}": f"fan {i}" for i in range(half)}
    meta["accepted_gaps"] = []
    made = []
    for i in range(rules):
        when = [{"fact": "egfr", "op": ">=", "value": round(1 + i * 0.09, 2)}] if i < half else [{"derived": f"f{i - half}"}]
        then = {"derive": [f"f{i}"]} if i < half else {"recommend": [{"agent": "azathioprine", "rank": 40}]}
        made.append({"id": f"F{i}", "title": "t", "section": "s", "citation": [1], "when": when, "then": then,
                     "rationale": "r"})
    return [("rulebook.yaml", {"rulebook": meta}), ("fan.yaml", {"rules": made})]


def test_a_fan_of_distinct_tests_at_the_rule_limit_runs_on_both_engines():
    """Durable's matcher holds 64 nodes: 300 different first tests used to fail (error 303) or corrupt memory."""
    book = rulebook_from_documents(fan(MAX_RULES))
    assert len(book.rules) == MAX_RULES
    fired_on_both(book)
    fired = shared().fire(validate_patient({"egfr": 70}), book)
    assert len(fired) == 2 * sum(1 + i * 0.09 <= 70 for i in range(MAX_RULES // 2)) > MAX_RULES // 2


# -- fuzzing the shipped documents -------------------------------------------------------------

ODD = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from(["egfr", ">=", "in", "has", "nephritis", "azathioprine", "needs_alternative", "R-FL-01",
                     "\x00", "\u202e", "é", "$and", "__patient_seen", "t", "sid"]),
    st.lists(st.sampled_from(["intolerant", "nephritis", 1, None]), max_size=3),
    st.dictionaries(st.sampled_from(["fact", "op", "value", "derived", "agent", "rank"]),
                    st.sampled_from(["egfr", ">=", 30, "x", None]), max_size=3),
    st.sets(st.integers(0, 5), max_size=3), st.tuples(st.integers(), st.text(max_size=2)),
)
_DOCS = [(name, yaml.safe_load(text)) for name, text in SHIPPED.items()]


def _paths(data, prefix=()):
    """Every place in a document a mutation can replace (mapping values and list items)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield prefix + (i,)
            yield from _paths(value, prefix + (i,))


_PLACES = [(d, path) for d, (_, data) in enumerate(_DOCS) for path in _paths(data)]


def _alike(value) -> st.SearchStrategy:
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(min_value=-5, max_value=10**7)
    if isinstance(value, float):
        return st.floats(min_value=-2e12, max_value=2e12) | st.sampled_from([0.0, -0.0, 1e-7, 59.9999995])
    if isinstance(value, str):
        return st.text(max_size=12) | st.just(value + "\u00e9\u202e\x00")
    return st.just(value)


@st.composite
def mutated_documents(draw):
    docs = copy.deepcopy(_DOCS)
    for _ in range(draw(st.integers(1, 3))):
        d, path = draw(st.sampled_from(_PLACES))
        target = docs[d][1]
        try:
            for key in path[:-1]:
                target = target[key]
            how = draw(st.sampled_from(["alike", "odd", "key"]))
            if how == "alike":  # same type, other value: more documents that still load
                target[path[-1]] = draw(_alike(target[path[-1]]))
            elif how == "odd" or not isinstance(target, dict):
                target[path[-1]] = draw(ODD)
            else:
                target[draw(ODD.filter(lambda k: isinstance(k, (str, int, float, bool, tuple, type(None)))))] = \
                    target.pop(path[-1])
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or retyped this place
    return docs


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_mutated_documents_load_and_agree_or_are_refused(docs):
    try:
        book = rulebook_from_documents(docs)
    except RulebookError as error:
        assert error.problems and all(p.file and p.message for p in error.problems)
        return
    fired_on_both(book)
