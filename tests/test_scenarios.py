"""The scenario suite under scenarios/: one test per row, rule coverage, and every threshold pinned.

Each CSV row is its own test (id = scenario_id, so ``pytest -k RSP03`` runs
one row); a failure prints the patient, expected vs actual and the cited
trace. The coverage tests name every rule no scenario reaches or asserts. The
threshold test mutates each numeric boundary of the shipped rulebook (``>=``
to ``>``, or the value 0.01 lower) and requires some scenario to fail, so the
suite really pins every boundary rather than merely touching it.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lupus_rules import default_rulebook
from lupus_rules.errors import RulebookError
from lupus_rules.rulebook import Condition, Rulebook
from lupus_rules.suite import Check, Scenario, SuiteFormatError, check_scenario, load_suite, rule_coverage

SCENARIOS_DIR = Path(__file__).resolve().parents[1] / "scenarios"


def _load() -> tuple[list[Scenario], SuiteFormatError | None]:
    try:
        return load_suite(SCENARIOS_DIR), None
    except SuiteFormatError as exc:  # reported by test_scenario_files_are_well_formed, not a collection error
        return [], exc


SCENARIOS, LOAD_ERROR = _load()
_CHECKS: dict[str, Check] = {}


def _check(scenario: Scenario) -> Check:
    """Each scenario is evaluated once per session, shared by the row test and the coverage tests."""
    if scenario.id not in _CHECKS:
        _CHECKS[scenario.id] = check_scenario(scenario)
    return _CHECKS[scenario.id]


def test_scenario_files_are_well_formed():
    if LOAD_ERROR is not None:
        pytest.fail(str(LOAD_ERROR), pytrace=False)


def test_suite_is_organised_by_guideline_section():
    files = {Path(s.file).name for s in SCENARIOS}
    sections = ("first_line", "second_line", "biologics", "cutaneous", "joint", "nephritis",
                "response", "special_situations", "safety", "scope")
    missing = [sec for sec in sections if not any(sec in name for name in files)]
    assert not missing, f"no scenario file for guideline sections: {missing}"
    assert len(SCENARIOS) >= 60


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario(scenario: Scenario):
    check = _check(scenario)
    if not check.passed:
        pytest.fail(check.report(), pytrace=False)


def test_every_rule_is_fired_by_some_scenario():
    coverage = rule_coverage([_check(s) for s in SCENARIOS], default_rulebook())
    unreached = [rule_id for rule_id, ids in coverage.items() if not ids]
    assert not unreached, "rules fired by no scenario (add a row that reaches each): " + ", ".join(unreached)


def test_every_rule_is_asserted_in_some_expect_fired():
    named = {rule_id for s in SCENARIOS for rule_id in s.expect.fired}
    unasserted = [rule_id for rule_id in default_rulebook().rule_ids if rule_id not in named]
    assert not unasserted, ("rules no scenario names in expect_fired (the path is not checked): "
                            + ", ".join(unasserted))


_FLIP = {">=": ">", ">": ">=", "<": "<=", "<=": "<"}


def _threshold_mutants(book: Rulebook) -> list[tuple[str, str, int, Condition]]:
    """(test id, rule id, condition index, mutated condition) for every numeric comparison."""
    mutants = []
    for rule in book.rules:
        for i, c in enumerate(rule.when):
            if c.kind == "fact" and c.op in _FLIP:
                for new in (replace(c, op=_FLIP[c.op]), replace(c, value=round(c.value - 0.01, 6))):
                    if _inside_range(book, rule.id, i, new):
                        mutants.append((f"{rule.id}: {c.describe()} -> {new.describe()}", rule.id, i, new))
    return mutants


def _inside_range(book: Rulebook, rule_id: str, index: int, mutated: Condition) -> bool:
    """Whether the loader accepts the mutant's value for its fact.

    A threshold shifted below the fact's lowest value (``prednisone_mg > 0`` to
    ``> -0.01``) is refused by the loader, and over the fact's range it means
    the same as the operator flip (``>= 0``), which is a mutant of its own.
    """
    when = list(book.rule(rule_id).when)
    when[index] = mutated
    try:
        book.replace_rule(rule_id, when=tuple(when))
    except RulebookError:
        return False
    return True


_MUTANTS = _threshold_mutants(default_rulebook())


def test_the_rulebook_has_thresholds_to_mutate():
    assert len(_MUTANTS) >= 20


_MEASURE_INPUTS = {"upcr_reduction_pct": ("upcr", "upcr_baseline"), "egfr_change_pct": ("egfr", "egfr_baseline")}


def _first_failure(book: Rulebook, fact: str) -> str | None:
    """Id of a scenario that fails under ``book``; rows setting ``fact`` are tried first (speed only)."""
    inputs = _MEASURE_INPUTS.get(fact, (fact,))
    ordered = sorted(SCENARIOS, key=lambda s: not any(s.facts.get(name) for name in inputs))
    return next((s.id for s in ordered if not check_scenario(s, book).passed), None)


@pytest.mark.parametrize("rule_id, index, mutated", [m[1:] for m in _MUTANTS], ids=[m[0] for m in _MUTANTS])
def test_every_threshold_is_pinned_by_a_scenario(rule_id: str, index: int, mutated: Condition):
    book = default_rulebook()
    when = list(book.rule(rule_id).when)
    when[index] = mutated
    caught = _first_failure(book.replace_rule(rule_id, when=tuple(when)), mutated.fact)
    assert caught is not None, (f"no scenario notices {rule_id} changed to '{mutated.describe()}': "
                                "add rows exactly at and just past this boundary")
