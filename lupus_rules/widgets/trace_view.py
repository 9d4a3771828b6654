"""The fired-rules (trace) and derived-facts panels as HTML. Not for clinical use. No ipywidgets here."""
from __future__ import annotations

from ..result import Result
from ..rulebook import Rulebook
from ..words import value_words
from ._html import bullets, esc, table

__all__ = ["trace_html", "derived_html"]


def trace_html(result: Result, rulebook: Rulebook) -> str:
    """Fired rules in firing order: stratum, title, the facts each matched (yes/no for booleans), references."""
    rows = []
    for i, step in enumerate(result.trace, start=1):
        matched = ", ".join(f"{k} = {value_words(v, rulebook.vocabulary.spec(k))}" for k, v in step.matched.items())
        rows.append([str(i), str(step.stratum),
                     f"<code class='lr-rule' style='white-space:nowrap'>{esc(step.rule_id)}</code>",
                     esc(step.title), esc(matched or "every patient"), esc(",".join(map(str, step.citation)))])
    return ("<div class='lr-trace'><b>Fired rules, in firing order</b>"
            + table(["#", "stratum", "rule", "title", "matched facts", "refs"], rows, font="100%") + "</div>")


def derived_html(result: Result, rulebook: Rulebook) -> str:
    """The derived facts that hold, with their meaning and the rules that concluded them."""
    by: dict[str, list[str]] = {}
    for rule_id in result.fired_rules:
        for name in rulebook.rule(rule_id).derive:
            by.setdefault(name, []).append(rule_id)
    items = [f"<code>{esc(d)}</code>: {esc(rulebook.derived_facts.get(d, ''))} "
             f"<span style='color:#6b7280'>({esc(', '.join(by.get(d, [])))})</span>" for d in result.derived]
    return f"<div class='lr-derived'><b>Derived facts</b>{bullets(items)}</div>"
