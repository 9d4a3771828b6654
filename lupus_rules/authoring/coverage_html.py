"""The rulebook as one self-contained HTML page, every condition marked with how the suite exercises it.

``coverage_html(report, rulebook)`` takes a :class:`~lupus_rules.authoring.coverage.CoverageReport`
and shows, section by section, each rule with how many scenarios fire it and, per
condition, in how many scenarios it was true, false, and false while every other
condition of the rule held (the scenario shows that this condition alone stops the
rule). A condition for which one of these never happens is marked, as measure-testing
tools mark clauses: the suite would not notice if it were dropped or inverted.
Inline style only; no script or link. ``lupus-rules coverage --html FILE`` writes it.
Not for clinical use.
"""
from __future__ import annotations

import html

from ..notice import DISCLAIMER
from ..rulebook import Rulebook
from .coverage import CoverageReport

__all__ = ["coverage_html"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;margin:0;background:#f5f6f8}
main{max-width:1180px;margin:0 auto;padding:18px 24px 40px}h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid #d5d9e0;padding-bottom:4px}
.notice{background:#fff4e5;border:1px solid #f0b45c;padding:6px 10px;border-radius:4px;margin:8px 0}
.rule{background:#fff;border:1px solid #d5d9e0;border-radius:4px;padding:8px 12px;margin:8px 0}
.rule.cold{border-left:5px solid #b3261e}.rule.warm{border-left:5px solid #1e7b34}
.head{display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}.head code{font-weight:700}
.fired{margin-left:auto;font-size:13px;color:#5b6472}
ul{margin:6px 0 0;padding-left:18px}li{margin:2px 0}
.badge{display:inline-block;font-size:12px;padding:0 6px;border-radius:9px;margin-left:6px}
.yes{background:#e3f4e6;color:#1e7b34}.no{background:#fde7e6;color:#b3261e;font-weight:700}
.muted{color:#5b6472}.legend span{margin-right:12px}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def coverage_html(report: CoverageReport, rulebook: Rulebook) -> str:
    """The page: a summary, then each rule (in file order, by section) with its conditions marked."""
    conditions = {rid: group for rid, group in report.conditions.groupby("rule_id", sort=False)}
    fired = dict(zip(report.rules["rule_id"], report.rules["scenarios"]))
    one_sided = len(report.one_sided())
    never_alone = int((report.conditions["alone_false"] == 0).sum())
    parts = [f"<h1>Rule coverage of the scenario suite</h1><p class=\"muted\">Rulebook {_e(report.rulebook_version)}"
             f" ({_e(rulebook.source)}); {report.scenarios} scenarios"
             f"{f', {report.invalid} invalid rows skipped' if report.invalid else ''}.</p>",
             f'<p class="notice"><b>{_e(DISCLAIMER)}</b></p>',
             f"<p>Rules fired by some scenario: <b>{sum(1 for n in fired.values() if n)}/{len(fired)}</b>; "
             f"conditions with only one outcome in the suite: <b>{one_sided}/{len(report.conditions)}</b>; "
             f"conditions no scenario shows stopping their rule alone: <b>{never_alone}/{len(report.conditions)}"
             "</b>.</p>",
             '<p class="legend"><span class="badge yes">true 12</span> scenarios where the condition held, '
             '<span class="badge yes">false 3</span> where it did not, <span class="badge yes">alone stops it 2'
             "</span> where every other condition of the rule held and this one did not (the scenario shows the "
             'condition matters); <span class="badge no">never ...</span> that never happens in the suite.</p>']
    by_section: dict[str, list] = {}
    for rule in sorted(rulebook.rules, key=lambda r: r.position):
        by_section.setdefault(rule.section, []).append(rule)
    for section, rules in by_section.items():
        parts.append(f"<h2>{_e(section)}</h2>")
        parts += [_rule(rule, int(fired.get(rule.id, 0)), conditions.get(rule.id)) for rule in rules]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Rule coverage {_e(report.rulebook_version)}</title><style>{_CSS}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>\n")


def _rule(rule, fired: int, conditions) -> str:
    items = []
    for _, c in (conditions.iterrows() if conditions is not None else []):
        alone = int(c["alone_false"])
        decisive = (f'<span class="badge yes">alone stops it {alone}</span>' if alone else
                    '<span class="badge no">never alone stops it</span>')
        items.append(f"<li><code>{_e(c['text'])}</code>{_badge('true', int(c['true']))}"
                     f"{_badge('false', int(c['false']))}{decisive}</li>")
    if not rule.when:
        items.append('<li class="muted">no conditions: fires for every patient</li>')
    then = ", ".join([f"recommend {r.agent} ({r.rank})" for r in rule.recommend] + [f"derive {d}" for d in rule.derive]
                     + [f"avoid {a}" for a in rule.avoid] + [f"flag {f}" for f in rule.flag])
    state = "warm" if fired else "cold"
    count = f"fired by {fired} scenario{'' if fired == 1 else 's'}" if fired else "fired by NO scenario"
    return (f'<div class="rule {state}" id="{_e(rule.id)}"><div class="head"><code>{_e(rule.id)}</code>'
            f"<span>{_e(rule.title)}</span><span class=\"fired\">{_e(count)}</span></div>"
            f"<ul>{''.join(items)}</ul><div class=\"muted\">then {_e(then)}</div></div>")


def _badge(word: str, count: int) -> str:
    if count:
        return f'<span class="badge yes">{word} {count}</span>'
    return f'<span class="badge no">never {word}</span>'
