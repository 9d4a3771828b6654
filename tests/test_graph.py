"""The SVG derivation graph: columns by stratum, arrows left to right, readable text, step highlighting."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from lupus_rules import default_rulebook, evaluate
from lupus_rules.graph import FONT_PX, derivation_svg, layout_graph
from lupus_rules.suite import load_suite
from lupus_rules.presets import default_scenarios_dir

NEPHRITIS = {"manifestations": "nephritis", "methotrexate": "intolerant"}


def _patients():
    return [s.patient for s in load_suite(default_scenarios_dir())][::6]


@pytest.mark.parametrize("include_not_fired", [False, True])
def test_rules_are_laid_out_by_stratum_and_every_arrow_points_right(include_not_fired):
    book = default_rulebook()
    for patient in _patients():
        result = evaluate(patient, book)
        layout = layout_graph(result, book, include_not_fired=include_not_fired)
        rules = {n.id[2:]: n for n in layout.nodes.values() if n.kind == "rule"}
        expected = set(book.rule_ids) if include_not_fired else set(result.fired_rules)
        assert set(rules) == expected
        for rule_id, node in rules.items():
            assert layout.columns[node.column] == f"stratum {book.rule(rule_id).stratum}: rules"
        for a, b in ((rules[x], rules[y]) for x in rules for y in rules):
            if book.rule(a.id[2:]).stratum < book.rule(b.id[2:]).stratum:
                assert a.x < b.x
        for edge in layout.edges:
            source, target = layout.nodes[edge.source], layout.nodes[edge.target]
            assert source.x + source.width < target.x, (edge, source.column, target.column)


def test_boxes_of_a_column_do_not_overlap_and_fit_the_picture():
    layout = layout_graph(evaluate(NEPHRITIS), include_not_fired=True)
    by_column = {}
    for node in layout.nodes.values():
        by_column.setdefault(node.column, []).append(node)
        assert node.x + node.width <= layout.width and node.y + node.height <= layout.height
    for nodes in by_column.values():
        nodes.sort(key=lambda n: n.y)
        for upper, lower in zip(nodes, nodes[1:]):
            assert upper.y + upper.height <= lower.y


def test_svg_is_well_formed_and_every_label_is_at_least_14_px():
    result = evaluate({**NEPHRITIS, "planning_pregnancy": True})
    svg = derivation_svg(result, include_not_fired=True)
    root = ET.fromstring(svg)
    assert FONT_PX >= 14 and root.get("font-size") == f"{FONT_PX}px"
    sizes = [float(s) for s in re.findall(r"font-size='([0-9.]+)px'", svg)]
    assert sizes and min(sizes) >= 14
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert all(r in texts for r in result.fired_rules)
    assert f"{result.preferred} (preferred)" in texts


def test_a_step_highlights_what_has_fired_the_current_and_the_next_rule():
    result = evaluate(NEPHRITIS)
    fired = result.fired_rules
    for k in range(len(fired) + 1):
        states = {n.id[2:]: n.state for n in layout_graph(result, step=k).nodes.values() if n.kind == "rule"}
        for i, rule_id in enumerate(fired):
            want = ("current" if i == k - 1 else "fired") if i < k else ("next" if i == k else "pending")
            assert states[rule_id] == want, (k, rule_id)
    with pytest.raises(ValueError, match=rf"step: got {len(fired) + 1}; allowed: an integer from 0 to {len(fired)}"):
        layout_graph(result, step=len(fired) + 1)


def test_follow_starts_the_picture_near_the_next_rule():
    result = evaluate(NEPHRITIS)
    last = len(result.fired_rules) - 1
    svg = derivation_svg(result, step=last, follow=True)
    x0, y0, width, height = map(float, re.search(r"viewBox='([-0-9. ]+)'", svg).group(1).split())
    layout = layout_graph(result, step=last)
    nxt = next(n for n in layout.nodes.values() if n.state == "next")
    assert 0 < x0 < nxt.x and x0 + width == pytest.approx(layout.width, abs=1)
    assert y0 <= nxt.y and nxt.y + nxt.height <= y0 + height
    assert re.search(r"viewBox='0 ", derivation_svg(result, step=0, follow=True))
