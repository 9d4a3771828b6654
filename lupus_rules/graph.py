"""The derivation graph as SVG drawn in Python, laid out by stratum from left to right.

Not for clinical use: the picture explains a teaching model of one guideline summary.

Columns, left to right: the patient facts the drawn rules test, then for each
stratum its rules followed by the facts those rules derive, and last the
outcome (recommended agents, flags, avoided agents). By default only the fired
path is drawn; ``include_not_fired`` adds the other rules greyed out. A
``step`` (0 … number of fired rules) draws the state of a step-by-step replay
(:mod:`lupus_rules.replay`): rules fired so far, the rule that just fired, the
rule that fires next, and what is not concluded yet.

The same SVG text is shown in JupyterLab and in the Voila app, so the picture
is identical in both; every label is at least :data:`FONT_PX` pixels high at
100 % zoom.
"""
from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field

from .evaluate import default_rulebook
from .result import Result
from .rulebook import Rule, Rulebook

__all__ = ["FONT_PX", "GraphNode", "GraphEdge", "GraphLayout", "layout_graph", "derivation_svg"]

#: Font size of every label in the SVG (px at 100 % zoom).
FONT_PX = 15
_LINE_PX = FONT_PX + 5
_PAD_X, _PAD_Y, _GAP_Y, _GAP_X, _MARGIN = 10, 7, 12, 56, 16
_TITLE_CHARS = 30

_STYLE = {  # kind/state -> (fill, stroke, text colour, dash)
    "fact": ("#eef2ff", "#6366f1", "#1e1b4b", ""),
    "fired": ("#fde68a", "#b45309", "#451a03", ""),
    "current": ("#f59e0b", "#7c2d12", "#1c0a00", ""),
    "next": ("#ffffff", "#b45309", "#451a03", "6 3"),
    "notfired": ("#f3f4f6", "#9ca3af", "#4b5563", "4 3"),
    "pending": ("#f9fafb", "#d1d5db", "#6b7280", "4 3"),
    "derived": ("#dcfce7", "#15803d", "#14532d", ""),
    "rec": ("#dbeafe", "#1d4ed8", "#1e3a8a", ""),
    "preferred": ("#1d4ed8", "#172554", "#ffffff", ""),
    "flag": ("#fee2e2", "#b91c1c", "#7f1d1d", ""),
    "avoid": ("#fff7ed", "#c2410c", "#7c2d12", ""),
}


@dataclass
class GraphNode:
    """One box of the picture: its id, text lines, kind, drawing state, column and position."""

    id: str
    lines: tuple[str, ...]
    kind: str
    state: str
    column: int
    tooltip: str = ""
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0


@dataclass(frozen=True)
class GraphEdge:
    """An arrow from one node to another; ``active`` = drawn solid (fired so far), else dashed grey."""

    source: str
    target: str
    active: bool
    label: str = ""


@dataclass
class GraphLayout:
    """Positioned nodes, edges, the column titles and the picture's size."""

    nodes: dict[str, GraphNode] = field(default_factory=dict)
    edges: list[GraphEdge] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def layout_graph(result: Result, rulebook: Rulebook | None = None, include_not_fired: bool = False,
                 step: int | None = None) -> GraphLayout:
    """Nodes and edges of the derivation of ``result``, each in its column, with positions.

    ``step`` must lie in 0 … ``len(result.trace)``; ``None`` = the finished evaluation.
    """
    book = rulebook if rulebook is not None else default_rulebook()
    fired = list(result.fired_rules)
    if step is not None and not (isinstance(step, int) and 0 <= step <= len(fired)):
        raise ValueError(f"step: got {step!r}; allowed: an integer from 0 to {len(fired)}")
    done = fired if step is None else fired[:step]
    rules = [book.rule(r) for r in fired]
    if include_not_fired:
        rules += [r for r in book.rules if r.id not in set(fired)]
    builder = _Builder(book, result, rules, done, step)
    return builder.build()


class _Builder:
    """Assigns columns by stratum, orders each column to limit crossings, then positions the boxes."""

    def __init__(self, book: Rulebook, result: Result, rules: list[Rule], done: list[str], step: int | None):
        self.book, self.result, self.rules = book, result, rules
        self.done = set(done)
        self.current = done[-1] if step and done else None
        fired = list(result.fired_rules)
        self.next = fired[step] if step is not None and step < len(fired) else None
        self.derived_now = {d for r in done for d in book.rule(r).derive}
        self.layout = GraphLayout()
        self.producer_col: dict[str, int] = {}
        self.consumer_col: dict[str, int] = {}

    def build(self) -> GraphLayout:
        strata = sorted({r.stratum for r in self.rules})
        rule_col = {s: 1 + 2 * i for i, s in enumerate(strata)}
        last = 1 + 2 * len(strata)
        self.layout.columns = ["patient facts"]
        for s in strata:
            self.layout.columns += [f"stratum {s}: rules", f"stratum {s}: derived"]
        self.layout.columns.append("outcome")
        for rule in self.rules:
            self._rule(rule, rule_col[rule.stratum], last)
        for key, node in self.layout.nodes.items():
            if node.kind == "derived":
                node.column = self.producer_col.get(key, self.consumer_col.get(key, node.column))
        self._drop_empty_columns()
        self._position()
        return self.layout

    # -- nodes and edges ------------------------------------------------------------------

    def _state(self, rule: Rule) -> str:
        if rule.id not in set(self.result.fired_rules):
            return "notfired"
        if rule.id == self.current:
            return "current"
        if rule.id == self.next:
            return "next"
        return "fired" if rule.id in self.done else "pending"

    def _node(self, node_id: str, lines: tuple[str, ...], kind: str, state: str, column: int,
              tooltip: str = "") -> str:
        nodes = self.layout.nodes
        if node_id not in nodes:
            nodes[node_id] = GraphNode(node_id, lines, kind, state, column, tooltip)
        else:
            node = nodes[node_id]
            if _RANK.get(state, 0) > _RANK.get(node.state, 0):
                node.state = state
        return node_id

    def _edge(self, source: str, target: str, active: bool, label: str = "") -> None:
        edge = GraphEdge(source, target, active, label)
        if edge not in self.layout.edges:
            self.layout.edges.append(edge)

    def _rule(self, rule: Rule, column: int, last: int) -> None:
        state = self._state(rule)
        title = rule.title if len(rule.title) <= _TITLE_CHARS else rule.title[:_TITLE_CHARS - 1] + "…"
        node = self._node("r:" + rule.id, (rule.id, title), "rule", state, column,
                          f"{rule.id}: {rule.title}\n{rule.rationale}")
        active = rule.id in self.done
        patient = self.result.patient
        for c in rule.when:
            if c.kind == "fact":
                shown = _value(patient.get(c.fact) if hasattr(patient, "get") else patient[c.fact])
                source = self._node("f:" + c.fact, (f"{c.fact} = {shown}",), "fact", "fact", 0,
                                    c.describe())
                self._edge(source, node, active, "" if state != "notfired" else c.describe())
            elif c.kind == "derived":
                self._edge(self._derived(c.fact, column - 1, produced=False), node, active)
            elif c.fact in self.derived_now and state == "notfired":
                self._edge(self._derived(c.fact, column - 1, produced=False), node, False, "blocks")
        for name in rule.derive:
            self._edge(node, self._derived(name, column + 1, produced=True), active)
        self._conclusions(rule, node, last, active)

    def _derived(self, name: str, column: int, produced: bool) -> str:
        """A derived fact sits right after the latest stratum deriving it (else just before its first user)."""
        key = "d:" + name
        if produced:
            self.producer_col[key] = max(self.producer_col.get(key, column), column)
        else:
            self.consumer_col[key] = min(self.consumer_col.get(key, column), column)
        state = "derived" if name in self.derived_now else "pending"
        return self._node("d:" + name, (name,), "derived", state, column, self.book.derived_facts.get(name, ""))

    def _conclusions(self, rule: Rule, node: str, last: int, active: bool) -> None:
        concluded = {s.agent for r in self.done for s in self.book.rule(r).recommend}
        preferred = self.result.preferred
        for spec in rule.recommend:
            kind = "preferred" if spec.agent == preferred and (spec.agent in concluded) else "rec"
            state = kind if spec.agent in concluded else "pending"
            label = spec.agent + (" (preferred)" if spec.agent == preferred and spec.agent in concluded else "")
            target = self._node("a:" + spec.agent, (label,), "rec", state, last,
                                self.book.agents[spec.agent].name if spec.agent in self.book.agents else "")
            self._edge(node, target, active, f"rank {spec.rank}")
        flags = {f for r in self.done for f in self.book.rule(r).flag}
        for code in rule.flag:
            target = self._node("g:" + code, (f"flag: {code}",), "flag", "flag" if code in flags else "pending",
                                last, self.book.flags.get(code, ""))
            self._edge(node, target, active)
        avoided = {a for r in self.done for a in self.book.rule(r).avoid}
        for agent in rule.avoid:
            target = self._node("x:" + agent, (f"avoid {agent}",), "avoid",
                                "avoid" if agent in avoided else "pending", last)
            self._edge(node, target, active, "avoid")

    # -- layout ---------------------------------------------------------------------------

    def _drop_empty_columns(self) -> None:
        used = sorted({n.column for n in self.layout.nodes.values()})
        remap = {old: new for new, old in enumerate(used)}
        for node in self.layout.nodes.values():
            node.column = remap[node.column]
        self.layout.columns = [self.layout.columns[c] for c in used]

    def _position(self) -> None:
        columns = self._ordered_columns()
        x = float(_MARGIN)
        for col in sorted(columns):
            members = columns[col]
            width = max(_text_width(n.lines) for n in members) + 2 * _PAD_X
            y = float(_MARGIN + _LINE_PX + 8)
            for node in members:
                node.width, node.height = width, len(node.lines) * _LINE_PX + 2 * _PAD_Y
                node.x, node.y = x, y
                y += node.height + _GAP_Y
            self.layout.height = max(self.layout.height, y + _MARGIN)
            x += width + _GAP_X
        self.layout.width = x - _GAP_X + _MARGIN

    def _ordered_columns(self) -> dict[int, list[GraphNode]]:
        """Each column's boxes, ordered to limit crossings: barycenter sweeps left to right and back."""
        columns: dict[int, list[GraphNode]] = {}
        for node in self.layout.nodes.values():  # insertion order: trace order, a good first guess
            columns.setdefault(node.column, []).append(node)
        incoming: dict[str, list[str]] = {}
        outgoing: dict[str, list[str]] = {}
        for edge in self.layout.edges:
            incoming.setdefault(edge.target, []).append(edge.source)
            outgoing.setdefault(edge.source, []).append(edge.target)
        order = sorted(columns)
        index = {n.id: float(i) for col in order for i, n in enumerate(columns[col])}
        for _ in range(_SWEEPS):
            for cols, links in ((order[1:], incoming), (order[-2::-1], outgoing)):
                for col in cols:
                    members = columns[col]
                    members.sort(key=lambda n: _barycenter(n, links, index))
                    index.update({n.id: float(i) for i, n in enumerate(members)})
        return columns


#: Barycenter sweeps (left to right, then right to left) when ordering the columns.
_SWEEPS = 2


_RANK = {"pending": 0, "notfired": 0, "next": 1, "fired": 2, "derived": 2, "rec": 2, "flag": 2, "avoid": 2,
         "current": 3, "preferred": 4, "fact": 0}


def _barycenter(node: GraphNode, links: dict[str, list[str]], index: dict[str, float]) -> float:
    """Mean place of the node's neighbours on one side (its own place when it has none there)."""
    places = [index[s] for s in links.get(node.id, ()) if s in index]
    return sum(places) / len(places) if places else index[node.id]


def _text_width(lines: Iterable[str]) -> float:
    """Estimated drawn width of the longest line (capitals and digits are wider than lower case).

    Summed in whole hundredths of a pixel: a float sum rounds differently from
    Python 3.12 on (compensated ``sum``), which would move boxes by a pixel.
    """
    return max(sum(_char_hundredths(ch) for ch in line) for line in lines) / 100


def _char_hundredths(ch: str) -> int:
    if ch.isupper() or ch.isdigit() or ch in "_=%…":
        return 70 * FONT_PX
    if ch in " ,.:;-()/'|!il":
        return 36 * FONT_PX
    return 58 * FONT_PX


def _value(value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, frozenset):
        return ", ".join(sorted(value)) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ---------------------------------------------------------------------------------------
# SVG


def derivation_svg(result: Result, rulebook: Rulebook | None = None, include_not_fired: bool = False,
                   step: int | None = None, follow: bool = False) -> str:
    """The derivation of ``result`` as standalone SVG text (see :func:`layout_graph` for the arguments).

    With ``follow`` (and a ``step``), the picture starts one column before the
    rule that fires next (or that just fired), so a narrow view shows where the
    replay is; labels keep their size.
    """
    layout = layout_graph(result, rulebook, include_not_fired, step)
    x0, y0 = _follow_origin(layout) if follow and step is not None else (0.0, 0.0)
    width, height = layout.width - x0, layout.height - y0
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' class='lr-graph' width='{width:.0f}' "
             f"height='{height:.0f}' viewBox='{x0:.0f} {y0:.0f} {width:.0f} {height:.0f}' "
             f"font-family='DejaVu Sans, Arial, sans-serif' font-size='{FONT_PX}px' role='img' "
             f"aria-label='derivation graph'>",
             "<defs><marker id='lr-arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' "
             "markerHeight='7' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='#374151'/>"
             "</marker></defs>"]
    parts += _column_titles(layout)
    parts += [_edge_svg(layout, e) for e in layout.edges if not e.active]
    parts += [_edge_svg(layout, e) for e in layout.edges if e.active]
    parts += [_node_svg(n) for n in layout.nodes.values()]
    parts.append("</svg>")
    return "".join(parts)


def _follow_origin(layout: GraphLayout) -> tuple[float, float]:
    """Top-left corner of the view that follows a replay: the column before the next (else the
    current) rule, and a little above the higher of the current and the next rule's boxes."""
    nodes = layout.nodes.values()
    focus = [n for n in nodes if n.state == "next"] or [n for n in nodes if n.state == "current"]
    if not focus:
        return 0.0, 0.0
    column = max(focus[0].column - 1, 0)
    xs = [n.x for n in nodes if n.column == column]
    top = min(n.y for n in nodes if n.state in ("next", "current"))
    x0 = max(min(xs) - _MARGIN, 0.0) if xs else 0.0
    y0 = max(top - 3 * _LINE_PX, 0.0)
    return x0, (0.0 if y0 < 2 * _LINE_PX + _MARGIN else y0)


def _column_titles(layout: GraphLayout) -> list[str]:
    xs: dict[int, float] = {}
    for node in layout.nodes.values():
        xs.setdefault(node.column, node.x)
    return [f"<text class='lr-col' x='{xs[c]:.0f}' y='{_MARGIN + FONT_PX:.0f}' fill='#374151' "
            f"font-weight='bold'>{html.escape(title)}</text>"
            for c, title in enumerate(layout.columns) if c in xs]


def _edge_svg(layout: GraphLayout, edge: GraphEdge) -> str:
    a, b = layout.nodes[edge.source], layout.nodes[edge.target]
    x1, y1 = a.x + a.width, a.y + a.height / 2
    x2, y2 = b.x, b.y + b.height / 2
    if x2 <= x1:  # same column (cannot happen for a stratified rulebook): go round
        x2 = b.x + b.width
    bend = max(24.0, (x2 - x1) / 2)
    colour = "#374151" if edge.active else "#c0c4cc"
    dash = "" if edge.active else " stroke-dasharray='5 4'"
    if edge.label == "blocks":
        colour, dash = "#b91c1c", " stroke-dasharray='5 4'"
    path = (f"<path class='lr-edge' d='M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} "
            f"{x2:.0f},{y2:.0f}' fill='none' stroke='{colour}' stroke-width='{2 if edge.active else 1.3}'"
            f"{dash} marker-end='url(#lr-arrow)'>")
    title = f"<title>{html.escape(edge.label)}</title>" if edge.label else ""
    return path + title + "</path>"


def _node_svg(node: GraphNode) -> str:
    key = node.state if node.state in _STYLE else node.kind
    fill, stroke, text, dash = _STYLE.get(key, _STYLE["fact"])
    rx = 14 if node.kind in ("fact", "rec") else (2 if node.kind == "derived" else 6)
    width = 4 if node.state in ("current", "preferred") else 1.6
    dash_attr = f" stroke-dasharray='{dash}'" if dash else ""
    lines = "".join(
        f"<text x='{node.x + _PAD_X:.0f}' y='{node.y + _PAD_Y + (i + 1) * _LINE_PX - 5:.0f}' fill='{text}'"
        f"{' font-weight=' + chr(39) + 'bold' + chr(39) if i == 0 and node.kind == 'rule' else ''}>"
        f"{html.escape(line)}</text>"
        for i, line in enumerate(node.lines))
    tooltip = f"<title>{html.escape(node.tooltip)}</title>" if node.tooltip else ""
    return (f"<g class='lr-node lr-{node.kind} lr-state-{node.state}' data-node='{html.escape(node.id)}'>"
            f"{tooltip}<rect x='{node.x:.0f}' y='{node.y:.0f}' width='{node.width:.0f}' "
            f"height='{node.height:.0f}' rx='{rx}' fill='{fill}' stroke='{stroke}' stroke-width='{width}'"
            f"{dash_attr}/>{lines}</g>")
