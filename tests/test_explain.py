"""why_not names the failed condition and proposes only verified single changes; the graph shows the fired path."""
from __future__ import annotations

import re
from dataclasses import replace

import pytest

from lupus_rules import FACTS, Condition, default_rulebook, evaluate, validate_patient
from lupus_rules.explain import derivation_graph, derivation_table, why_not
from lupus_rules.rulebook import Rule, Rulebook

NEPHRITIS_LOW_EGFR = {"manifestations": "nephritis", "methotrexate": "intolerant", "egfr": 40, "upcr": 4.2,
                      "upcr_baseline": 5, "egfr_baseline": 45, "months_on_therapy": 6}
PATIENTS = [
    NEPHRITIS_LOW_EGFR,
    {"manifestations": "nephritis", "mycophenolate": "nonresponse", "egfr": 50, "upcr": 4},
    {"manifestations": "joint;cutaneous", "methotrexate": "nonresponse", "ldn": "intolerant", "prednisone_mg": 10},
    {},
]

#: Values tried for each number fact by the brute-force check (a grid, not the search's own candidates).
NUMBER_GRID = {
    "egfr": [0, 10, 30, 44, 45, 50, 59, 60, 70, 90, 120, 200],
    "egfr_baseline": [1, 10, 30, 40, 45, 47, 50, 52, 60, 90, 200],
    "upcr": [0, 0.1, 0.3, 0.49, 0.5, 0.8, 1, 1.5, 2, 2.5, 2.9, 3, 3.75, 4, 5, 6, 8, 10, 15, 30],
    "upcr_baseline": [0.1, 0.5, 1, 2, 3, 4, 4.2, 5, 5.6, 6, 8, 8.4, 10, 20, 30],
    "months_on_therapy": [0, 2, 3, 4, 11, 12, 23, 24, 35, 36, 100],
    "months_immunosuppression": [0, 12, 35, 36, 60],
    "prednisone_mg": [0, 0.5, 5, 7.4, 7.5, 10, 40],
}


def _single_changes(facts: dict[str, object]):
    """Every single change of one fact over its allowed values (numbers over NUMBER_GRID and unknown)."""
    for name, spec in FACTS.items():
        current = facts[name]
        if spec.kind == "set":
            values = [frozenset(set(current) ^ {m}) for m in spec.allowed]
        elif spec.kind == "status":
            values = [v for v in spec.allowed if v != current]
        elif spec.kind == "bool":
            values = [not current]
        else:
            values = [v for v in NUMBER_GRID[name] + [None] if v != current]
        for value in values:
            yield name, value


def _number_rule(fact: str, op: str) -> Rule:
    """The first rule whose only condition compares ``fact`` with ``op`` (found by structure, not by id)."""
    for rule in default_rulebook().rules:
        if len(rule.when) == 1 and rule.when[0].fact == fact and rule.when[0].op == op:
            return rule
    raise LookupError(f"no single-condition rule '{fact} {op} ...' in the rulebook")


def test_failed_condition_is_named_with_the_actual_value():
    rule = _number_rule("egfr", ">=")
    threshold = rule.when[0].value
    patient = {**NEPHRITIS_LOW_EGFR, "egfr": threshold - 5}
    items = {item.rule_id: item for item in why_not(patient)}
    item = items[rule.id]
    assert item.first_failed.condition == rule.when[0]
    assert item.first_failed.actual == threshold - 5
    assert re.search(rf"egfr is {threshold - 5:g}\b.*>= {threshold:g}\b", item.first_failed.text)
    assert item.fix is not None and item.fix.fact == "egfr" and item.fix.new >= threshold


def test_unknown_number_is_reported_as_unknown():
    rule = _number_rule("egfr", ">=")
    item = next(i for i in why_not({"manifestations": "nephritis"}) if i.rule_id == rule.id)
    assert "egfr is unknown" in item.first_failed.text and item.first_failed.actual is None


def _with_probes(book: Rulebook) -> tuple[Rulebook, dict[str, Condition]]:
    """The rulebook plus one probe rule per distinct condition: the engine tells which conditions hold."""
    conditions = list(dict.fromkeys(c for rule in book.rules for c in rule.when))
    flag = next(iter(book.flags))
    probes = {f"PROBE-{i}": c for i, c in enumerate(conditions)}
    rules = [Rule(id=pid, title="probe", section="test", citation=(next(iter(book.references)),), when=(c,),
                  flag=(flag,), rationale="probe", file="zz_probe.yaml") for pid, c in probes.items()]
    return book.with_rules([*sorted(book.rules, key=lambda r: r.position), *rules]), probes


def test_every_rule_that_did_not_fire_is_listed_once_with_exactly_its_failed_conditions():
    book = default_rulebook()
    result = evaluate(NEPHRITIS_LOW_EGFR, book)
    probed, probes = _with_probes(book)
    holds = {probes[r] for r in evaluate(NEPHRITIS_LOW_EGFR, probed).fired_rules if r in probes}
    items = why_not(result, book)
    assert [i.rule_id for i in items] == [r.id for r in book.rules if r.id not in result.fired_rules]
    for item in items:
        rule = book.rule(item.rule_id)
        assert [f.condition for f in item.failed] == [c for c in rule.when if c not in holds], item.rule_id
        assert item.first_failed == item.failed[0]


@pytest.mark.parametrize("facts", PATIENTS, ids=["low-egfr", "refractory", "joint-cutaneous", "empty"])
def test_every_proposed_change_is_one_fact_and_really_makes_the_rule_fire(facts):
    items = why_not(facts)
    original = validate_patient(facts).facts()
    assert any(item.fix for item in items)
    for item in (i for i in items if i.fix):
        changed = {**original, item.fix.fact: item.fix.new}
        assert item.fix.old == original[item.fix.fact] and item.fix.new != item.fix.old
        after = evaluate(changed)
        assert item.rule_id in after.fired_rules, item.describe()
        assert item.fix.preferred_after == after.preferred


@pytest.mark.parametrize("facts", PATIENTS[:3], ids=["low-egfr", "refractory", "joint-cutaneous"])
def test_no_fix_means_no_single_change_on_a_grid_makes_the_rule_fire(facts):
    original = validate_patient(facts).facts()
    unfixable = {i.rule_id for i in why_not(facts) if i.fix is None}
    assert unfixable
    for name, value in _single_changes(original):
        fired = set(evaluate({**original, name: value}).fired_rules)
        assert not fired & unfixable, f"setting {name}={value!r} fires {sorted(fired & unfixable)}"


def test_chain_fix_changes_an_input_fact_of_a_derived_condition():
    items = {i.rule_id: i for i in why_not(NEPHRITIS_LOW_EGFR)}
    book = default_rulebook()
    chained = [i for i in items.values()
               if i.fix and i.first_failed.condition.kind == "derived"]
    assert chained, "expected at least one rule blocked only by a derived fact that one change unlocks"
    for item in chained:
        assert item.fix.fact not in {c.fact for c in book.rule(item.rule_id).when}


def test_rulebook_argument_is_used_and_a_mismatched_result_is_refused():
    book = default_rulebook()
    rule = _number_rule("egfr", ">=")
    lowered = book.replace_rule(rule.id, when=(replace(rule.when[0], value=rule.when[0].value - 20),))
    patient = {**NEPHRITIS_LOW_EGFR, "egfr": rule.when[0].value - 10}
    assert rule.id in [i.rule_id for i in why_not(patient, book)]
    assert rule.id not in [i.rule_id for i in why_not(patient, lowered)]
    with pytest.raises(ValueError, match="rulebook"):
        why_not(evaluate(patient, lowered), book)


def _mermaid_nodes(graph: str) -> dict[str, str]:
    """node id -> class, from lines like `    r_R_X["label"]:::fired`."""
    return dict(re.findall(r"^\s+(\w+)[\[\(\{][^\n]*:::(\w+)$", graph, flags=re.M))


def test_graph_draws_the_fired_path_and_only_declared_nodes():
    result = evaluate(NEPHRITIS_LOW_EGFR)
    graph = derivation_graph(result)
    assert graph.startswith("flowchart")
    nodes = _mermaid_nodes(graph)
    rule_nodes = {n: c for n, c in nodes.items() if n.startswith("r_")}
    assert len(rule_nodes) == len(result.fired_rules) and set(rule_nodes.values()) == {"fired"}
    for step in result.trace:
        assert re.search(rf"\b{re.escape(step.rule_id)}\b", graph)
    assert [c for n, c in nodes.items() if c == "preferred"] == ["preferred"]
    assert result.preferred in graph
    edges = re.findall(r"^\s+(\w+) -(?:->|\.->)(?:\|[^|]*\|)? (\w+)$", graph, flags=re.M)
    assert edges and all(a in nodes and b in nodes for a, b in edges)
    for fact in ("egfr", "methotrexate"):
        assert any(a == f"f_{fact}" and b.startswith("r_") for a, b in edges)


def test_graph_can_add_rules_that_did_not_fire_greyed_out():
    result = evaluate(NEPHRITIS_LOW_EGFR)
    nodes = _mermaid_nodes(derivation_graph(result, include_not_fired=True))
    rule_classes = [c for n, c in nodes.items() if n.startswith("r_")]
    assert len(rule_classes) == len(default_rulebook().rules)
    assert rule_classes.count("notfired") == len(default_rulebook().rules) - len(result.fired_rules)


def test_labels_cannot_break_the_mermaid_syntax():
    book = default_rulebook()
    first = book.rules[0]
    tricky = book.replace_rule(first.id, title='Quote " ; <b>bold</b> # end')
    graph = derivation_graph(evaluate(NEPHRITIS_LOW_EGFR, tricky), tricky)
    label = re.search(r'r_\w+\["([^"]*Quote[^"]*)"\]', graph)
    assert label, "the label must stay inside one pair of quotes"
    assert label.group(1).endswith("Quote #quot; #59; #lt;b#gt;bold#lt;/b#gt; #35; end")


def test_derivation_table_has_one_row_per_fired_rule_in_firing_order():
    result = evaluate(NEPHRITIS_LOW_EGFR)
    table = derivation_table(result)
    assert list(table["rule"]) == list(result.fired_rules)
    assert list(table["step"]) == list(range(1, len(result.fired_rules) + 1))
    book = default_rulebook()
    for _, row in table.iterrows():
        assert row["derives"] == ", ".join(book.rule(row["rule"]).derive)


def test_clause_marks_say_which_conditions_held():
    from lupus_rules.explain import clause_marks

    result = evaluate({"manifestations": {"joint"}, "methotrexate": "intolerant"})
    rule = next(r for r in default_rulebook().rules if r.id == "R-JNT-02")
    marks = dict(clause_marks(rule, result))
    assert marks["manifestations has joint"] and marks["derived needs_alternative"]
    assert not marks["derived joint_step1_done"] and marks["mycophenolate == not_tried"]


@pytest.mark.parametrize("index", range(0, 200, 7))
def test_clause_marks_agree_with_firing(index):
    """Every condition of a fired rule held; every rule that did not fire has one that did not."""
    from lupus_rules.explain import clause_marks
    from lupus_rules.presets import load_presets

    presets = [p for group in load_presets().values() for p in group]
    result = evaluate(presets[index % len(presets)].facts)
    for rule in default_rulebook().rules:
        held = [ok for _, ok in clause_marks(rule, result)]
        assert all(held) == (rule.id in result.fired_rules), rule.id
