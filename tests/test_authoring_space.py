"""The reduced discretized space (authoring/space.py) and region cover (authoring/regions.py).

The reduction to equivalence classes claims to be exact: these tests check it
against brute force over the full band product, and check condition masks
against the vectorized engine's own firing.
"""
from __future__ import annotations

import copy
import importlib

import numpy as np
import pandas as pd
import pytest

from lupus_rules import default_rulebook
from lupus_rules.authoring.regions import cover, describe_classes, simplest_cell
from lupus_rules.authoring import lint, space as space_module
from lupus_rules.authoring.space import DEFAULT_MAX_ROWS, FactSpace
from lupus_rules.engines.vectorized import condition_mask
from lupus_rules.engines.vectorized import fire_matrix
from lupus_rules.facts import validate_frame
from lupus_rules.generate import band_columns, count, value_bands


@pytest.fixture(scope="module")
def book():
    return default_rulebook()


@pytest.fixture(scope="module")
def space(book):
    return FactSpace(book)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    typed, errors = validate_frame(frame)
    assert (errors == "").all()
    return typed


def _rows(bands: dict, picks: dict[str, np.ndarray]) -> pd.DataFrame:
    """Patients from band value indices per band key (pairs fill current and baseline together)."""
    columns: dict[str, object] = {}
    for key, index in picks.items():
        names = band_columns(key)
        for k, column in enumerate(names):
            cells = [v[k] if len(names) > 1 else v for v in bands[key]]
            cells = [";".join(sorted(c)) if isinstance(c, frozenset) else c for c in cells]
            table = np.array(cells)  # floats, bools or text: each its own fast dtype
            columns[column] = (table.astype(object) if table.dtype.kind == "U" else table)[index]
    return pd.DataFrame(columns)


def _random_rows(bands: dict, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return _rows(bands, {key: rng.integers(0, len(values), n) for key, values in bands.items()})


def _product_rows(bands: dict, keys: list[str]) -> pd.DataFrame:
    """Every combination of the bands of ``keys`` (other facts at their defaults)."""
    grid = np.indices([len(bands[k]) for k in keys]).reshape(len(keys), -1)
    return _rows(bands, dict(zip(keys, grid)))


def test_condition_masks_agree_with_the_engine(book):
    typed, errors = validate_frame(_random_rows(value_bands(book), 20_000, seed=1))
    assert (errors == "").all()
    fired = fire_matrix(typed, book)
    checked = 0
    for j, rule in enumerate(book.rules):
        if rule.when and all(c.kind == "fact" for c in rule.when):
            expected = np.logical_and.reduce([condition_mask(c, typed) for c in rule.when])
            assert (fired[:, j] == expected).all(), rule.id
            checked += 1
    assert checked >= 15


def test_classes_reproduce_every_outcome_of_the_full_band_product(book, space):
    # The response-assessment rules read manifestations, both measure pairs and months on therapy.
    targets = ["R-SW-01", "R-SW-02", "R-SW-03", "R-RESP-03", "R-RESP-04", "R-RESP-05"]
    plan = space.plan(targets)
    facts = list(plan.keys)
    bands = value_bands(book)
    assert count(bands, facts) > 100 * plan.classes  # the reduction is real
    brute = fire_matrix(_typed(_product_rows(bands, facts)), book)
    columns = [space.rule_column(r) for r in sorted(plan.rule_ids)]
    reduced = np.concatenate([chunk.fired[columns].T for chunk in space.chunks(plan)])
    assert plan.exhaustive and len(reduced) == plan.classes
    assert _patterns(reduced) == _patterns(brute[:, columns])
    assert len(_patterns(reduced)) > 10


def _patterns(fired: np.ndarray) -> set[int]:
    """The distinct rows (fired-rule patterns) of a bool matrix, each as one integer."""
    assert fired.shape[1] < 63
    return set(np.unique(fired.astype(np.int64) @ (1 << np.arange(fired.shape[1], dtype=np.int64))).tolist())


def test_class_zero_is_the_default_patient(space):
    plan = space.plan(["R-FL-01"])
    assert space.patient_of_classes(plan, [0] * len(plan.keys)) == {}
    full = space.patient_of_classes(plan, [0] * len(plan.keys), full=True)
    assert full["methotrexate"] == "not_tried" and full["egfr"] == "" and full["bullous"] == "false"


def test_a_plan_beyond_the_limit_is_sampled_and_says_so(space):
    plan = space.plan(["R-MON-01"], max_rows=1000, seed=3)
    assert not plan.exhaustive and plan.rows == 1000 and plan.classes > 1000
    assert "SAMPLED" in plan.describe()
    assert sum(len(chunk) for chunk in space.chunks(plan)) == 1000


def test_the_row_budget_samples_a_plan_of_many_rules_and_says_so(space, monkeypatch):
    exhaustive = space.plan(["R-FL-01"])
    rules, half = len(exhaustive.rule_ids), exhaustive.classes // 2
    assert exhaustive.exhaustive and exhaustive.budget == 0 and half >= 2
    monkeypatch.setattr(space_module, "WORK_CELLS", rules * half)  # room for half the classes
    plan = space.plan(["R-FL-01"], seed=3)
    assert not plan.exhaustive and plan.rows == plan.budget == half < plan.classes == exhaustive.classes
    assert f"SAMPLED: {half:,} random classes" in plan.describe()
    assert f"row budget for {rules:,} rules: {half:,}" in plan.describe()
    assert sum(len(chunk) for chunk in space.chunks(plan)) == half


def test_the_search_for_cases_stops_at_its_budget(book, monkeypatch):
    question = _recommending_rules(book)
    assert len(FactSpace(book).cases(question)) > 1  # with the default budget: cases
    monkeypatch.setattr(space_module, "SPLIT_WORK", 0)
    plans = FactSpace(book).cases(question)
    assert len(plans) == 1 and not plans[0].fixed  # no search: the whole plan


def _recommending_rules(book) -> frozenset[str]:
    """The recommending rules (the gap/tie question, whose plan the shipped lint splits into cases)."""
    return frozenset(r.id for r in book.rules if r.recommend)


def test_irrelevant_facts_are_not_enumerated(space):
    plan = space.plan(["R-GC-01"])
    assert plan.keys == ("prednisone_mg",) and plan.classes == 2


def test_number_classes_are_described_by_their_conditions(space):
    plan = space.plan(["R-KID-01", "R-SAFE-02"])  # egfr >= 60 and egfr < 45: three classes
    assert plan.shape == (3,)
    words = {describe_classes(space, plan, "egfr", [c]) for c in range(3)}
    assert "egfr >= 60" in " ".join(words) and "egfr < 45" in " ".join(words)
    assert describe_classes(space, plan, "egfr", range(3)) is None  # every class: any value


@pytest.mark.parametrize("seed", range(5))
def test_cover_boxes_hold_every_marked_cell_and_nothing_disallowed(seed):
    rng = np.random.default_rng(seed)
    marked = rng.random((4, 3, 5, 2)) < 0.3
    allowed = marked | (rng.random(marked.shape) < 0.2)
    boxes, left = cover(marked, allowed)
    assert left == 0
    covered = np.zeros_like(marked)
    for box in boxes:
        assert allowed[np.ix_(*box)].all()
        covered[np.ix_(*box)] = True
        cell = simplest_cell(marked, box)
        assert marked[cell]
    assert (covered | ~marked).all()


def test_cover_merges_a_full_slab_into_one_box():
    marked = np.zeros((3, 4), dtype=bool)
    marked[1, :] = True
    boxes, left = cover(marked)
    assert boxes == [((1,), (0, 1, 2, 3))] and left == 0


def _chain_rulebook(links: int = 6):
    """The shipped vocabulary plus a derived-fact chain: each link tests the previous one's fact."""
    from lupus_rules.rulebook import rulebook_from_documents

    documents = default_rulebook().to_documents()
    name, meta = documents[0]
    meta = copy.deepcopy(meta)
    tests = [{"fact": "egfr", "op": ">=", "value": 30 + 5 * i} for i in range(links)]
    rules = []
    for i, test in enumerate(tests):
        when = [test] + ([{"derived": f"link_{i - 1}"}] if i else [])
        then = {"derive": [f"link_{i}"]} if i + 1 < links else {"flag": [next(iter(default_rulebook().flags))]}
        if i + 1 < links:
            meta["rulebook"].setdefault("derived_facts", {})[f"link_{i}"] = "chain link"
        rules.append({"id": f"R-CHAIN-{i}", "title": "chain", "section": "chain", "citation": [1],
                      "when": when, "then": then, "rationale": "test"})
    return rulebook_from_documents([(name, meta), *documents[1:], ("chain.yaml", {"rules": rules})])


@pytest.mark.parametrize("max_rows", [DEFAULT_MAX_ROWS, 5000])
def test_findings_do_not_depend_on_chunk_size(monkeypatch, max_rows):
    """Chunks bounded by memory give the findings of one chunk holding every row (exhaustive and sampled)."""
    book = _chain_rulebook()
    reference = lint(book, max_rows=max_rows)  # plans of the shipped size fit in one chunk of CHUNK_ROWS
    monkeypatch.setattr(space_module, "CHUNK_BYTES", 1)  # the smallest chunks: 1 024 rows
    assert FactSpace(book).chunk_size() == 1024
    chunked = lint(book, max_rows=max_rows)
    pd.testing.assert_frame_equal(chunked.findings, reference.findings)
    pd.testing.assert_frame_equal(chunked.coverage, reference.coverage)


def _reference_lint(monkeypatch, book, **options):
    """lint evaluating every rule on every enumeration, each example patient on its own (the old path)."""
    lint_module = importlib.import_module("lupus_rules.authoring.lint")
    with monkeypatch.context() as patched:
        patched.setattr(FactSpace, "sub_rulebook", lambda self, rule_ids=None: (self.rulebook, self._column_of))
        patched.setattr(lint_module._Explainer, "preload", lambda self, patients: None)
        return lint(book, **options)


@pytest.mark.parametrize("which", ["shipped", "chain"])
@pytest.mark.parametrize("max_rows", [DEFAULT_MAX_ROWS, 5000])
def test_lint_on_sub_rulebooks_finds_what_evaluating_every_rule_finds(monkeypatch, which, max_rows):
    book = default_rulebook() if which == "shipped" else _chain_rulebook(8)
    reference = _reference_lint(monkeypatch, book, max_rows=max_rows)
    fast = lint(book, max_rows=max_rows)
    pd.testing.assert_frame_equal(fast.findings, reference.findings)
    pd.testing.assert_frame_equal(fast.coverage, reference.coverage)
    assert len(reference.findings) > 0


def test_a_sub_rulebook_fires_its_rules_exactly_as_the_whole_rulebook():
    book = _chain_rulebook(6)
    space = FactSpace(book)
    plan = space.plan(["R-CHAIN-5"])
    sub, column_of = space.sub_rulebook(["R-CHAIN-5", "R-FL-01"])
    assert set(column_of) == space.closure(["R-CHAIN-5", "R-FL-01"]) and len(sub.rules) < len(book.rules)
    assert {f"R-CHAIN-{i}" for i in range(6)} <= set(column_of)  # every producer of what it tests
    whole = list(space.chunks(plan, chunk_rows=1024))
    part = list(space.chunks(plan, chunk_rows=1024, rule_ids=["R-CHAIN-5", "R-FL-01"]))
    assert len(whole) == len(part) > 0
    for a, b in zip(whole, part):
        for rule_id in column_of:
            assert (a.fires(rule_id) == b.fires(rule_id)).all(), rule_id
    with pytest.raises(KeyError, match="not evaluated"):
        part[0].fires("R-GC-01")


def test_a_big_question_splits_into_cases_that_fire_exactly_as_the_whole(monkeypatch, book, space):
    """Cases (one band fixed each) produce the same fired-rule patterns as the unsplit enumeration."""
    targets = sorted(r.id for r in book.rules if r.id.startswith("R-JNT"))  # the joint algorithm
    whole = space.plan(targets)
    monkeypatch.setattr(space_module, "SPLIT_ABOVE", whole.classes // 20)
    cases = space.cases(targets)
    assert len(cases) > 1 and sum(c.classes for c in cases) <= whole.classes // 2
    assert all(c.fixed and c.case and c.exhaustive for c in cases)
    assert len({c.fixed for c in cases}) == len(cases)  # each case fixes the band at another value
    assert not any(c.covers(whole) or whole.covers(c) for c in cases)  # a case never stands for the whole
    # On the rules asked about: a rule that can only derive what a case forces is left at rest there
    columns = [space.rule_column(r) for r in targets]
    in_whole = set().union(*(_row_set(chunk.fired[columns].T) for chunk in space.chunks(whole)))
    in_cases = set().union(*(_row_set(chunk.fired[columns].T) for c in cases for chunk in space.chunks(c)))
    assert in_cases == in_whole and len(in_whole) > 5


def test_a_question_that_does_not_shrink_is_not_split(monkeypatch, space):
    monkeypatch.setattr(space_module, "SPLIT_ABOVE", 1)
    (plan,) = space.cases(["R-GC-01"])  # prednisone_mg alone: fixing it leaves nothing to save
    assert not plan.fixed and plan.classes == space.plan(["R-GC-01"]).classes == 2


#: Refractory-step agents whose status derives refractory_agent_under_way (R-UW-*).
UNDER_WAY_AGENTS = ("leflunomide", "rituximab", "belimumab", "cyclophosphamide", "retinoid", "dapsone")


def _without_counts(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings with class counts dropped: classes are an artifact of how the space is enumerated."""
    out = findings.drop(columns=["classes"]).copy()
    out["message"] = out["message"].str.replace(r"[\d,]+ classes", "N classes", regex=True)
    return out


def _joint_tie_without_nephritis(monkeypatch):
    """The shipped rules with azathioprine at mycophenolate's joint rank (a tie); lint's space without nephritis.

    The space leaves nephritis and its facts (and the refractory-step statuses) out, so
    that the enumeration without cases still fits ``max_rows`` and is exhaustive too
    (with nephritis it is sampled).
    """
    from lupus_rules.authoring.editing import edit_rule, rule_data

    recommend = copy.deepcopy(rule_data(default_rulebook(), "R-JNT-03")["then"]["recommend"])
    recommend[0]["rank"] = 20
    book = edit_rule(default_rulebook(), "R-JNT-03", recommend=recommend)
    bands = value_bands(book)
    bands["manifestations"] = [v for v in bands["manifestations"] if "nephritis" not in v]
    for key in ("months_on_therapy", "repeated_kidney_flares", "high_risk_kidney_failure", "proliferative_nephritis",
                *UNDER_WAY_AGENTS):
        bands[key] = bands[key][:1]
    lint_module = importlib.import_module("lupus_rules.authoring.lint")
    monkeypatch.setattr(lint_module, "FactSpace", lambda rulebook: FactSpace(rulebook, bands=bands))
    return book


def test_lint_finds_the_same_with_and_without_cases(monkeypatch):
    """A tie made by an edit (azathioprine at mycophenolate's rank) is found alike, with the same example."""
    book = _joint_tie_without_nephritis(monkeypatch)
    split = lint(book)
    assert "cases" in " ".join(split.coverage["description"])
    monkeypatch.setattr(space_module, "SPLIT_ABOVE", 10**15)
    monkeypatch.setattr(space_module, "WORK_CELLS", 10**15)  # one enumeration of 8 M classes × 120 rules: over budget
    whole = lint(book)
    assert "cases" not in " ".join(whole.coverage["description"]) and whole.coverage["exhaustive"].all()
    # without nephritis, many rules never fire; their "closest patient" depends on what is enumerated
    outcome = ["gap", "contradiction", "history"]
    pd.testing.assert_frame_equal(_without_counts(split.findings[split.findings["check"].isin(outcome)]),
                                  _without_counts(whole.findings[whole.findings["check"].isin(outcome)]))
    assert ("contradiction", ("R-JNT-02", "R-JNT-03")) in set(zip(split.findings["check"], split.findings["rules"]))


def _row_set(fired: np.ndarray) -> set[bytes]:
    """The distinct rows of a (rows × rules) bool matrix, each as bytes."""
    return {row.tobytes() for row in np.unique(np.packbits(fired, axis=1), axis=0)}


def test_a_case_drops_rules_that_only_derive_what_it_forces(book, space):
    """Nephritis alone forces needs_alternative (R-SCOPE-03): the scope rules change nothing, LDN drops out."""
    recommenders = sorted(r.id for r in book.rules if r.recommend)
    whole = space.plan(recommenders)
    bands = value_bands(book)
    index = next(i for i, v in enumerate(space.groups["manifestations"].values) if v == frozenset({"nephritis"}))
    case = space.plan(recommenders, fixed={"manifestations": index}, case="nephritis only")
    assert "ldn" in whole.keys and "ldn" not in case.keys and "manifestations" not in case.keys
    assert case.exhaustive and case.classes < whole.classes // 10
    columns = [space.rule_column(r) for r in recommenders]
    enumerated = set().union(*(_row_set(chunk.fired[columns].T) for chunk in space.chunks(case)))
    patients = _random_rows(bands, 30_000, seed=5)
    patients["manifestations"] = "nephritis"
    sampled = _row_set(fire_matrix(_typed(patients), book)[:, columns])
    assert sampled <= enumerated and len(sampled) > 20  # every patient's outcome has its class


def test_a_redundant_deriver_leaves_its_bands_at_rest(book, space):
    """Joint step 1 is done by the yes/no fact (R-JNT-00A) or the glucocorticoid's status (R-JNT-00B).

    Only "done or not" reaches the rest of the rulebook, and the yes/no fact alone
    already gives both, so the status need not vary: every random patient's firing
    of the rules besides those two (the status varied at random) has its class
    among the enumerated ones.
    """
    targets = sorted(r.id for r in book.rules if r.id.startswith("R-JNT") and r.recommend)
    plan = space.plan(targets)
    assert "R-JNT-00B" in plan.rule_ids and "R-JNT-00A" in plan.rule_ids
    assert "low_dose_glucocorticoid_tried" in plan.keys and "low_dose_glucocorticoid" not in plan.keys
    assert plan.exhaustive
    # the twins differ: leave out every rule deriving what a redundant deriver derives
    twins = {r.id for r in book.rules if {"joint_step1_done", "refractory_agent_under_way"} & set(r.derive)}
    others = sorted(plan.rule_ids - twins, key=space.rule_column)
    columns = [space.rule_column(r) for r in others]
    enumerated = set().union(*(_row_set(chunk.fired[columns].T) for chunk in space.chunks(plan)))
    patients = _random_rows(value_bands(book), 30_000, seed=11)
    patients["manifestations"] = "joint"
    patients["low_dose_glucocorticoid"] = np.resize(["nonresponse", "intolerant", "current", "not_tried"], len(patients))
    fired = fire_matrix(_typed(patients), book)
    assert fired[:, space.rule_column("R-JNT-00B")].any()
    assert _row_set(fired[:, columns]) <= enumerated


def test_a_rule_whose_bands_others_test_is_not_redundant(book, space):
    """The glucocorticoid's status stays varied where another rule of the question tests it too."""
    plan = space.plan(["R-JNT-02", "R-ST-GC-KEEP"])
    assert "low_dose_glucocorticoid" in plan.keys


def test_lint_finds_the_same_with_and_without_redundant_derivers(monkeypatch):
    """A tie made by an edit at joint step 2 is found alike when the step-1 statuses vary and when they rest."""
    book = _joint_tie_without_nephritis(monkeypatch)
    reduced = lint(book)
    monkeypatch.setattr(FactSpace, "without_redundant", lambda self, live, *args, **kwargs: live)
    full = lint(book)
    assert full.coverage["exhaustive"].all() and reduced.coverage["exhaustive"].all()
    def varied(report):
        rows = report.coverage[report.coverage["checks"].str.contains("gaps and ties")]
        return {f for facts in rows["relevant_facts"] for f in facts.split(", ")}
    assert {"low_dose_glucocorticoid", "topical_glucocorticoid"} <= varied(full)
    assert not {"low_dose_glucocorticoid", "topical_glucocorticoid"} & varied(reduced)
    outcome = ["gap", "contradiction", "history"]
    pd.testing.assert_frame_equal(_without_counts(reduced.findings[reduced.findings["check"].isin(outcome)]),
                                  _without_counts(full.findings[full.findings["check"].isin(outcome)]))
    assert ("contradiction", ("R-JNT-02", "R-JNT-03")) in set(zip(reduced.findings["check"], reduced.findings["rules"]))
