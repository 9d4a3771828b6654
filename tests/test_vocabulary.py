"""The fact vocabulary is data: declared in rulebook.yaml, checked by the loader (issue 8, slice 1)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from lupus_rules import default_rulebook
from lupus_rules.errors import RulebookError
from lupus_rules.facts import FACTS, MEASURE_INPUTS, MEASURES, STATUSES, compute_measures
from lupus_rules.rulebook import DEFAULT_RULES_DIR, load_rulebook
from lupus_rules.vocabulary import KINDS, parse_vocabulary, shipped_vocabulary


META = yaml.safe_load((DEFAULT_RULES_DIR / "rulebook.yaml").read_text(encoding="utf-8"))["rulebook"]


def test_the_shipped_facts_are_the_declared_ones():
    vocabulary = shipped_vocabulary()
    assert FACTS is vocabulary.facts and MEASURES is vocabulary.measures
    assert list(FACTS) == list(META["facts"]) and STATUSES == tuple(META["statuses"])
    assert default_rulebook().facts == FACTS


def test_every_declared_fact_has_a_kind_a_meaning_and_a_group():
    for spec in FACTS.values():
        assert spec.kind in KINDS and spec.description.strip() and spec.group, spec.name


def test_every_fact_a_rule_tests_is_declared():
    tested = {c.fact for r in default_rulebook().rules for c in r.when if c.kind == "fact"}
    assert tested <= set(FACTS) | set(MEASURES)


def test_kind_defaults():
    defaults = {spec.kind: spec.default for spec in FACTS.values()}
    assert defaults == {"set": frozenset(), "status": "not_tried", "bool": False, "number": None}


def test_measures_follow_their_declared_formula():
    values = {name: np.array([np.nan]) for name in FACTS}
    values.update(upcr=np.array([1.0]), upcr_baseline=np.array([4.0]), egfr=np.array([45.0]),
                  egfr_baseline=np.array([60.0]))
    measures = compute_measures(values)
    assert measures["upcr_reduction_pct"][0] == 75.0  # (4 - 1) / 4: a reduction is positive
    assert measures["egfr_change_pct"][0] == -25.0  # (45 - 60) / 60: a fall is negative
    assert MEASURE_INPUTS == {name: (decl["current"], decl["baseline"]) for name, decl in META["measures"].items()}
    assert MEASURES["upcr_reduction_pct"].minimum == -math.inf and MEASURES["egfr_change_pct"].maximum == math.inf


def _with(section: str, name: str, declaration: object) -> dict:
    meta = {key: META[key] for key in ("statuses", "facts", "measures")}
    meta = {**meta, section: {**meta[section], name: declaration}}
    return meta


BAD = [
    ("facts", "x", {"kind": "colour", "meaning": "m", "group": "g"}, "facts.x.kind", "allowed: one of number"),
    ("facts", "x", {"kind": "number", "meaning": "m", "group": "g"}, "facts.x.range", "[low, high]"),
    ("facts", "x", {"kind": "number", "range": [5, 1], "meaning": "m", "group": "g"}, "facts.x.range", "low < high"),
    ("facts", "x", {"kind": "number", "range": [0, float("inf")], "meaning": "m", "group": "g"}, "facts.x.range",
     "two finite numbers"),
    ("facts", "x", {"kind": "status", "range": [0, 1], "meaning": "m", "group": "g"}, "facts.x.range",
     "not used by a status fact"),
    ("facts", "x", {"kind": "set", "members": [], "meaning": "m", "group": "g"}, "facts.x.members", "distinct"),
    ("facts", "x", {"kind": "bool", "meaning": "m"}, "facts.x.group", "missing"),
    ("facts", "x", {"kind": "bool", "meaning": "", "group": "g"}, "facts.x.meaning", "allowed: text"),
    ("facts", "x", {"kind": "bool", "meaning": "m", "group": "g", "colour": 1}, "facts.x.colour", "unknown key"),
    ("facts", "x", {"kind": "status", "meaning": "m", "group": "g", "default": "maybe"}, "facts.x.default",
     "one of not_tried"),
    ("facts", "X-1", {"kind": "bool", "meaning": "m", "group": "g"}, "facts.X-1", "lower-case"),
    ("facts", "x", "bool", "facts.x", "a mapping"),
    ("measures", "m", {"formula": "ratio", "current": "egfr", "baseline": "egfr_baseline", "range": [None, 1],
                       "meaning": "m"}, "measures.m.formula", "reduction_pct"),
    ("measures", "m", {"formula": "change_pct", "current": "bullous", "baseline": "egfr_baseline",
                       "range": [None, 1], "meaning": "m"}, "measures.m.current", "a number fact"),
    ("measures", "egfr", {"formula": "change_pct", "current": "egfr", "baseline": "egfr_baseline",
                          "range": [None, 1], "meaning": "m"}, "measures.egfr", "already declared as a fact"),
]


@pytest.mark.parametrize("section, name, declaration, field, fragment", BAD, ids=[b[3] + ":" + b[4] for b in BAD])
def test_bad_declarations_are_named(section, name, declaration, field, fragment):
    with pytest.raises(RulebookError) as info:
        parse_vocabulary(_with(section, name, declaration), "rulebook.yaml")
    found = [p for p in info.value.problems if p.field == field]
    assert found and fragment in found[0].message, info.value.problems
    assert all(p.file == "rulebook.yaml" for p in info.value.problems)


def test_statuses_must_be_distinct_names():
    with pytest.raises(RulebookError) as info:
        parse_vocabulary({**META, "statuses": ["a", "a"]}, "rulebook.yaml")
    assert [p.field for p in info.value.problems][:1] == ["statuses"]


def _folder(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for path in DEFAULT_RULES_DIR.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        (folder / path.name).write_text(edit(path.name, text), encoding="utf-8")
    return folder


def test_a_rulebook_without_declarations_uses_the_shipped_facts(tmp_path):
    data = yaml.safe_load((DEFAULT_RULES_DIR / "rulebook.yaml").read_text(encoding="utf-8"))
    for key in ("statuses", "facts", "measures"):
        del data["rulebook"][key]
    folder = _folder(tmp_path, lambda name, text: yaml.safe_dump(data) if name == "rulebook.yaml" else text)
    book = load_rulebook(folder)
    assert book.facts == FACTS and book.rule_ids == default_rulebook().rule_ids


def test_a_rule_on_an_undeclared_fact_is_refused_by_name(tmp_path):
    folder = _folder(tmp_path, lambda name, text: text.replace("{fact: egfr, op: \">=\", value: 60}",
                                                              "{fact: egfr_now, op: \">=\", value: 60}"))
    with pytest.raises(RulebookError) as info:
        load_rulebook(folder)
    problem = info.value.problems[0]
    assert (problem.rule_id, problem.field) == ("R-KID-01", "when[0].fact") and "egfr_now" in problem.message


def test_a_changed_declaration_is_refused_until_the_engines_read_declared_facts(tmp_path):
    """Slice 1 checks declarations; an engine cannot run a fact it does not know, so the loader says so."""
    def add_fact(name: str, text: str) -> str:
        if name != "rulebook.yaml":
            return text
        return text.replace("  facts:\n", "  facts:\n    antiphospholipid_positive: {kind: bool, group: safety, "
                            "meaning: Antiphospholipid antibodies present.}\n", 1)
    with pytest.raises(RulebookError) as info:
        load_rulebook(_folder(tmp_path, add_fact))
    assert [(p.file, p.field) for p in info.value.problems] == [("rulebook.yaml", "rulebook.facts")]
    assert "shipped vocabulary" in info.value.problems[0].message
