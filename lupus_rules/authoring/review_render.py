"""A :class:`~lupus_rules.authoring.review.Review` as one self-contained HTML page or as Markdown.

The HTML has its style inline and no script, font, image or link to fetch: it
opens from a mail attachment or a CI artifact, without Python. Every text from
the rules or the scenarios is escaped. The Markdown is for a pull request comment.
Not for clinical use.
"""
from __future__ import annotations

import html

from .review import Review, Side

__all__ = ["to_html", "to_markdown"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;margin:0;background:#f5f6f8}
main{max-width:1180px;margin:0 auto;padding:18px 24px 40px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #d5d9e0;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
.notice{background:#fff4e5;border:1px solid #f0b45c;padding:6px 10px;border-radius:4px;margin:8px 0}
.verdict{background:#fff;border:1px solid #d5d9e0;border-left:5px solid #3a6ea5;padding:8px 12px;margin:10px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px;margin:10px 0}
.card{background:#fff;border:1px solid #d5d9e0;border-radius:4px;padding:8px 10px}
.card b{display:block;font-size:20px}.card.bad b{color:#b3261e}.card.ok b{color:#1e7b34}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d5d9e0;padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}
table.impact{table-layout:fixed}table.impact td{overflow-wrap:anywhere}td>code{white-space:nowrap}
table.impact td>code{white-space:normal}.detail{font-size:12px;color:#5b6472;font-weight:400;display:block;margin-top:3px}
th{background:#eceff3}td.num{text-align:right}
.plus{color:#1e7b34;font-weight:600}.minus{color:#b3261e;font-weight:600}.tilde{color:#8a5a00;font-weight:600}
.failnew{background:#fde7e6;color:#b3261e;font-weight:700}.fixed{background:#e3f4e6;color:#1e7b34;font-weight:700}
.muted{color:#5b6472}code{background:#eceff3;padding:0 3px;border-radius:3px}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}
pre{background:#fff;border:1px solid #d5d9e0;padding:8px;overflow-x:auto;font-size:12px;white-space:pre-wrap}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _items(removed: str, added: str) -> str:
    parts = [f'<span class="minus">−{_e(x)}</span>' for x in removed.split(";") if x]
    parts += [f'<span class="plus">+{_e(x)}</span>' for x in added.split(";") if x]
    return " ".join(parts) or '<span class="muted">–</span>'


def _expect_cell(text: str, detail: str = "") -> str:
    css = {"pass → FAIL": "failnew", "FAIL → pass": "fixed"}.get(text, "")
    why = "".join(f'<span class="detail">{_e(line)}</span>' for line in detail.splitlines())
    return f'<td class="{css}">{_e(text)}{why}</td>'


def to_html(review: Review) -> str:
    """The dossier as one HTML document (UTF-8 text, inline style, no external assets)."""
    a, b = review.before, review.after
    body = [f"<h1>Rule change review</h1><p class=\"muted\">Generated {_e(review.created)} by lupus-rules "
            f"review; scenarios: <code>{_e(review.scenarios)}</code> ({review.total} rows)</p>",
            f'<p class="notice"><b>{_e(review.disclaimer)}</b></p>',
            f'<div class="verdict"><b>In short:</b> {_e(review.verdict)}.</div>',
            _cards(review), "<h2>Rulebooks</h2>", _sides_table(a, b),
            "<h2>Rule changes</h2>", _changes_html(review),
            "<h2>Scenario impact</h2>", _impact_html(review),
            "<h2>Coverage and lint, before and after</h2>", _quality_html(review), _files_html(review)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Rule change review {_e(a.version)} → {_e(b.version)}</title><style>{_CSS}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")


def _cards(review: Review) -> str:
    new_fail = len(review.new_failures)
    lint_bad = review.after.lint_passed is False
    cards = [("Rule changes", len(review.changes), ""),
             ("Outcome changes", len(review.outcome_changes), ""),
             ("Trace-only changes", len(review.trace_changes), ""),
             ("pass → FAIL", new_fail, "bad" if new_fail else "ok"),
             ("Failing after", review.after.failing, "bad" if review.after.failing else "ok"),
             ("Lint after", {True: "passed", False: "FAILED", None: "not run"}[review.after.lint_passed],
              "bad" if lint_bad else "ok")]
    return '<div class="cards">' + "".join(
        f'<div class="card {css}"><b>{_e(value)}</b>{_e(label)}</div>' for label, value, css in cards) + "</div>"


def _sides_table(a: Side, b: Side) -> str:
    rows = [("Rulebook", a.label, b.label), ("Source", a.source, b.source), ("Version", a.version, b.version),
            ("Rules", a.rules, b.rules)]
    cells = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(x)}</code></td><td><code>{_e(y)}</code></td></tr>"
                    for k, x, y in rows)
    about = "".join(f"<p><b>{_e(s.label)}:</b> {_e(s.about)}</p>" for s in (a, b) if s.about)
    return f"<table><tr><th></th><th>A (before)</th><th>B (after)</th></tr>{cells}</table>{about}"


def _changes_html(review: Review) -> str:
    if review.changes.empty:
        return "<p>No rule or vocabulary changes: A and B hold the same rules.</p>"
    css = {"+": "plus", "-": "minus", "~": "tilde"}
    sign = {"+": "+", "-": "−", "~": "~"}
    rows = "".join(
        f'<tr><td class="{css[r["mark"]]}">{sign[r["mark"]]}</td><td><code>{_e(r["rule_id"])}</code></td>'
        f'<td>{_e(r["field"])}</td><td>{_e(r["description"].split(": ", 1)[-1])}</td></tr>'
        for _, r in review.changes.iterrows())
    out = (f"<table><tr><th></th><th>Rule</th><th>Field</th><th>Change</th></tr>{rows}</table>"
           '<p class="muted">+ added, − removed, ~ changed; each recommendation, flag, derived fact and '
           "condition is its own row.</p>")
    if len(review.stale):
        items = "".join(f"<li>{_e(t)}</li>" for t in review.stale["description"])
        out += f"<h3>Texts that still name a replaced number ({len(review.stale)})</h3><ul>{items}</ul>"
    return out


#: Outcome lists shown in one extra column, only when some row of the table changes them.
_OTHER_LISTS = ("continue", "avoided", "cautions")
_OTHER_HEAD = "Continue, avoided, cautions"


def _has_other(frame) -> bool:
    return any(str(r[f"{n}_{side}"]) for _, r in frame.iterrows() for n in _OTHER_LISTS
               for side in ("removed", "added"))


def _other_html(r) -> str:
    parts = [f"<b>{n}</b> {_items(r[f'{n}_removed'], r[f'{n}_added'])}" for n in _OTHER_LISTS
             if r[f"{n}_removed"] or r[f"{n}_added"]]
    return "<br>".join(parts) or '<span class="muted">–</span>'


def _other_md(r) -> str:
    parts = [f"{n}: {_md_items(r[f'{n}_removed'], r[f'{n}_added'])}" for n in _OTHER_LISTS
             if r[f"{n}_removed"] or r[f"{n}_added"]]
    return "; ".join(parts) or "–"


def _impact_table(frame) -> str:
    other = _has_other(frame)
    head = ("<tr><th>Scenario</th><th>Preferred</th><th>Recommendations</th><th>Flags</th>"
            + (f"<th>{_OTHER_HEAD}</th>" if other else "")
            + "<th>Fired rules</th><th>Rules responsible</th><th>Expectations A → B</th></tr>")
    rows = []
    for _, r in frame.iterrows():
        pref = (_e(r["preferred_before"] or "(none)") if r["preferred_before"] == r["preferred_after"] else
                f'<span class="minus">{_e(r["preferred_before"] or "(none)")}</span> → '
                f'<span class="plus">{_e(r["preferred_after"] or "(none)")}</span>')
        rows.append(f'<tr><td><code>{_e(r["scenario_id"])}</code><br><span class="muted">{_e(r["description"])}'
                    f"</span></td><td>{pref}</td><td>{_items(r['recommendations_removed'], r['recommendations_added'])}"
                    f"</td><td>{_items(r['flags_removed'], r['flags_added'])}</td>"
                    + (f"<td>{_other_html(r)}</td>" if other else "")
                    + f"<td>{_items(r['fired_removed'], r['fired_added'])}</td><td>{_e(r['rules'] or '-')}</td>"
                    + _expect_cell(r["expectation"], r["mismatches_after"]) + "</tr>")
    columns = (15, 9, 12, 12, 13, 9, 8, 22) if other else (17, 10, 14, 15, 10, 9, 25)
    widths = "".join(f'<col style="width:{w}%">' for w in columns)
    return f'<table class="impact"><colgroup>{widths}</colgroup>{head}{"".join(rows)}</table>'


def _impact_html(review: Review) -> str:
    a, b = review.before, review.after
    notes = [f"<p>{len(review.impact)} of {review.total} scenarios changed: {len(review.outcome_changes)} in "
             f"their outcome (preferred agent, recommendations, continue, avoided, cautions or flags), "
             f"{len(review.trace_changes)} only in "
             "which rules fired.</p>"]
    for side in (a, b):
        if side.suite_error:
            notes.append(f'<p class="notice">Expectations under {_e(side.label)} not checked: '
                         f"{_e(side.suite_error)}</p>")
    out = "".join(notes)
    out += f"<h3>Outcome changes ({len(review.outcome_changes)})</h3>"
    out += _impact_table(review.outcome_changes) if len(review.outcome_changes) else "<p>None.</p>"
    trace = review.trace_changes
    out += (f"<details><summary>Trace-only changes ({len(trace)}): same outcome, other rules fired</summary>"
            + (_impact_table(trace) if len(trace) else "<p>None.</p>") + "</details>")
    return out


def _quality_html(review: Review) -> str:
    a, b = review.before, review.after
    rows = [("Scenarios meeting their expectations", _passing(a), _passing(b)),
            ("Rules fired by some scenario", f"{a.fired_rules}/{a.rules}", f"{b.fired_rules}/{b.rules}"),
            ("Rules no scenario fires", ", ".join(a.uncovered) or "none", ", ".join(b.uncovered) or "none"),
            ("Conditions with one outcome only", f"{a.one_sided}/{a.conditions}", f"{b.one_sided}/{b.conditions}"),
            ("Lint", _lint_word(a), _lint_word(b))]
    out = ("<table><tr><th></th><th>A (before)</th><th>B (after)</th></tr>" + "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(x)}</td><td>{_e(y)}</td></tr>" for k, x, y in rows) + "</table>")
    delta = review.coverage_delta()
    if delta:
        out += ("<h3>Coverage changes (scenarios firing each rule)</h3><table><tr><th>Rule</th><th>A</th><th>B</th>"
                "</tr>" + "".join(f"<tr><td><code>{_e(r)}</code></td><td class=\"num\">{_e('-' if x is None else x)}"
                                   f"</td><td class=\"num\">{_e('-' if y is None else y)}</td></tr>"
                                   for r, x, y in delta) + "</table>")
    resolved, new = review.lint_delta()
    if resolved or new:
        items = [f'<li><span class="minus">resolved</span> {_e(k)}</li>' for k in resolved]
        items += [f'<li><span class="plus">new</span> {_e(k)}</li>' for k in new]
        out += f"<h3>Lint findings that changed</h3><ul>{''.join(items)}</ul>"
    timing = ", ".join(f"{k} {v:.2f} s" for k, v in review.seconds.items())
    return out + f'<p class="muted">Time: {_e(timing)}.</p>'


def _files_html(review: Review) -> str:
    """The YAML behind the change (a diff of the rule files, or the variant's overlay), folded away."""
    if not review.file_diff:
        return ""
    lines = []
    for line in review.file_diff.splitlines():
        css = "plus" if line.startswith("+") and not line.startswith("+++") else \
            "minus" if line.startswith("-") and not line.startswith("---") else ""
        lines.append(f'<span class="{css}">{_e(line)}</span>' if css else _e(line))
    return ("<h2>Rule files</h2><details><summary>The YAML behind this change</summary>"
            f"<pre>{chr(10).join(lines)}</pre></details>")


def _passing(side: Side) -> str:
    if side.passed is None:
        return "not checked"
    return f"{len(side.passed) - side.failing}/{len(side.passed)}"


def _lint_word(side: Side) -> str:
    if side.lint_passed is None:
        return "not run"
    counts = side.lint_findings["severity"].value_counts().to_dict() if side.lint_findings is not None else {}
    detail = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no findings"
    return f"{'passed' if side.lint_passed else 'FAILED'} ({detail})"


# -- Markdown ----------------------------------------------------------------------------------

def _m(value: object) -> str:
    """Text safe in a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _md_items(removed: str, added: str) -> str:
    parts = [f"−{_m(x)}" for x in removed.split(";") if x] + [f"+{_m(x)}" for x in added.split(";") if x]
    return " ".join(parts) or "–"


def to_markdown(review: Review) -> str:
    """The dossier as GitHub-flavoured Markdown (for a pull request comment)."""
    a, b = review.before, review.after
    lines = ["## Rule change review", "", f"> **{review.disclaimer}**", "",
             f"**In short:** {_m(review.verdict)}.", "",
             "| | A (before) | B (after) |", "|---|---|---|",
             f"| Rulebook | `{_m(a.label)}` | `{_m(b.label)}` |", f"| Version | `{a.version}` | `{b.version}` |",
             f"| Rules | {a.rules} | {b.rules} |", f"| Expectations met | {_passing(a)} | {_passing(b)} |",
             f"| Rules fired by some scenario | {a.fired_rules}/{a.rules} | {b.fired_rules}/{b.rules} |",
             f"| Lint | {_m(_lint_word(a))} | {_m(_lint_word(b))} |", "",
             f"Generated {review.created}; scenarios `{_m(review.scenarios)}` ({review.total} rows).", "",
             f"### Rule changes ({len(review.changes)})", ""]
    sign = {"+": "+", "-": "−", "~": "~"}
    lines += [f"- {sign[r['mark']]} `{_m(r['rule_id'])}` {_m(r['description'].split(': ', 1)[-1])}"
              for _, r in review.changes.iterrows()] or ["None."]
    if len(review.stale):
        lines += ["", "**Texts that still name a replaced number:**", ""]
        lines += [f"- {_m(t)}" for t in review.stale["description"]]
    for title, frame in (("Outcome changes", review.outcome_changes), ("Trace-only changes", review.trace_changes)):
        lines += ["", f"### {title} ({len(frame)})", ""]
        if not len(frame):
            lines.append("None.")
            continue
        other = _has_other(frame)
        lines += ["| Scenario | Preferred | Recommendations | Flags | " + (f"{_OTHER_HEAD} | " if other else "")
                  + "Fired rules | Expectations A → B |", "|---|---|---|---|---|---|" + ("---|" if other else "")]
        for _, r in frame.iterrows():
            pref = _m(r["preferred_before"] or "(none)")
            if r["preferred_before"] != r["preferred_after"]:
                pref += f" → {_m(r['preferred_after'] or '(none)')}"
            mark = "**pass → FAIL**" if r["expectation"] == "pass → FAIL" else _m(r["expectation"])
            lines.append(f"| `{_m(r['scenario_id'])}` | {pref} | "
                         f"{_md_items(r['recommendations_removed'], r['recommendations_added'])} | "
                         f"{_md_items(r['flags_removed'], r['flags_added'])} | "
                         + (f"{_other_md(r)} | " if other else "")
                         + f"{_md_items(r['fired_removed'], r['fired_added'])} | {mark} |")
    resolved, new = review.lint_delta()
    if resolved or new:
        lines += ["", "### Lint findings that changed", ""]
        lines += [f"- resolved: {_m(k)}" for k in resolved] + [f"- new: {_m(k)}" for k in new]
    return "\n".join(lines) + "\n"
