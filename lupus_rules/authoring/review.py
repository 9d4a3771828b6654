"""A change-review dossier: everything a guideline committee needs to judge a rule change, in one object.

``build_review(a, b, scenarios)`` gathers, for rulebooks A (before) and B (after):

* the rule changes in words (:func:`~lupus_rules.authoring.ruldiff.rule_diff`, each row marked
  ``+`` added, ``-`` removed or ``~`` changed) and the texts that still name a replaced number;
* the scenario impact, computed by :func:`lupus_rules.authoring.impact.impact` (the rule
  editor's own: one definition of a change), split into *outcome changes* (one of
  :data:`~lupus_rules.authoring.impact.OUTCOME_FIELDS` differs: preferred agent,
  recommendations, continue, avoided, cautions or flags) and *trace-only changes* (only the
  fired rules differ), each row with its expectations checked under A and under B by the
  suite loader (``pass -> FAIL`` is what a reviewer looks for first);
* rule coverage of the suite and ``lint`` under A and under B, and what changed between them;
* both rulebook versions and sources and the date.

:mod:`lupus_rules.authoring.review_render` writes it as one self-contained HTML file or as
Markdown; ``lupus-rules review A B --scenarios scenarios/ -o review.html`` does both steps.
Not for clinical use.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import LupusRulesError
from ..notice import DISCLAIMER
from ..rulebook import Rulebook
from .compare import read_scenarios
from .coverage import coverage
from .impact import OUTCOME_FIELDS, impact, load_impact_suite
from .lint import DEFAULT_MAX_ROWS, lint
from .ruldiff import item_changes, rule_diff, stale_texts
from .sources import resolve_rulebook

__all__ = ["Side", "Review", "build_review", "IMPACT_COLUMNS"]

#: Columns of :attr:`Review.impact`.
IMPACT_COLUMNS = ["scenario_id", "description", "kind", "preferred_before", "preferred_after",
                  "recommendations_removed", "recommendations_added", "flags_removed", "flags_added",
                  "fired_removed", "fired_added", "rules", "expect_before", "expect_after", "expectation",
                  "mismatches_after", "continue_removed", "continue_added", "avoided_removed", "avoided_added",
                  "cautions_removed", "cautions_added"]
#: The outcome lists shown item by item (``+``/``−``) besides the preferred agent.
_LISTS = tuple(f for f in OUTCOME_FIELDS if f != "preferred")


@dataclass(frozen=True)
class Side:
    """One rulebook of the review: where it came from, its version, and how the suite and lint judge it."""

    label: str
    source: str
    version: str
    rules: int
    passed: dict[str, bool] | None
    mismatches: dict[str, str]
    suite_error: str
    fired_rules: int
    uncovered: tuple[str, ...]
    one_sided: int
    conditions: int
    rule_scenarios: dict[str, int]
    lint_passed: bool | None
    lint_findings: pd.DataFrame | None
    about: str = ""

    @property
    def failing(self) -> int:
        """Scenarios whose expectations are not met (0 when they could not be checked)."""
        return sum(not ok for ok in (self.passed or {}).values())


@dataclass(frozen=True)
class Review:
    """The dossier's content; see the module docstring. ``impact`` has :data:`IMPACT_COLUMNS`."""

    before: Side
    after: Side
    changes: pd.DataFrame
    stale: pd.DataFrame
    impact: pd.DataFrame
    scenarios: str
    total: int
    created: str
    seconds: dict[str, float] = field(default_factory=dict)
    disclaimer: str = DISCLAIMER
    file_diff: str = ""

    @property
    def outcome_changes(self) -> pd.DataFrame:
        """Scenarios whose preferred agent, recommendations, continue, avoided, cautions or flags changed
        (the rule editor's definition, :attr:`lupus_rules.authoring.impact.Impact.outcome_changes`)."""
        return self.impact[self.impact["kind"] == "outcome"]

    @property
    def trace_changes(self) -> pd.DataFrame:
        """Scenarios where only the fired rules changed."""
        return self.impact[self.impact["kind"] == "trace"]

    @property
    def new_failures(self) -> pd.DataFrame:
        """Scenarios that met their expectations under A and do not under B."""
        return self.impact[self.impact["expectation"] == "pass → FAIL"]

    def lint_delta(self) -> tuple[list[str], list[str]]:
        """Lint findings only under A (resolved) and only under B (new), each as ``[severity] check: rules``."""
        a, b = _finding_keys(self.before.lint_findings), _finding_keys(self.after.lint_findings)
        return [k for k in a if k not in b], [k for k in b if k not in a]

    def coverage_delta(self) -> list[tuple[str, int | None, int | None]]:
        """Rules whose number of firing scenarios differs: (rule id, count under A, count under B)."""
        a, b = self.before.rule_scenarios, self.after.rule_scenarios
        ids = list(dict.fromkeys([*a, *b]))
        return [(r, a.get(r), b.get(r)) for r in ids if a.get(r) != b.get(r)]

    @property
    def verdict(self) -> str:
        """One line: what needs the committee's attention."""
        parts = [_count(len(self.changes), "rule change"),
                 _count(len(self.outcome_changes), "scenario") + " with a changed outcome",
                 f"{len(self.trace_changes)} trace-only", f"{len(self.new_failures)} pass → FAIL"]
        lost = [r for r in self.after.uncovered if r not in self.before.uncovered]
        if lost:
            parts.append(f"no scenario fires {', '.join(lost)} any more")
        if self.after.lint_passed is False:
            parts.append("lint FAILS after the change")
        if len(self.stale):
            parts.append(_count(len(self.stale), "text") + " still naming a replaced number")
        return "; ".join(parts)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def build_review(a: Rulebook | str | Path, b: Rulebook | str | Path, scenarios: str | Path, *,
                 run_lint: bool = True, max_rows: int = DEFAULT_MAX_ROWS, repo: str | Path | None = None,
                 labels: tuple[str, str] | None = None, now: _dt.datetime | None = None) -> Review:
    """The review of the change from ``a`` to ``b`` on a scenario suite (folder or file of CSVs).

    ``a``/``b``: anything :func:`~lupus_rules.authoring.sources.resolve_rulebook` takes (folder,
    ``WORKTREE``, git revision, ``variant:NAME``) or a :class:`Rulebook`. ``run_lint=False`` skips
    lint (seconds per rulebook). ``now`` fixes the date printed (default: now, UTC).
    """
    import time

    clock = {}
    started = time.perf_counter()
    book_a, book_b = resolve_rulebook(a, repo), resolve_rulebook(b, repo)
    rows = read_scenarios(scenarios)
    table = impact(book_a, book_b, load_impact_suite(rows, check=False)).rows  # expectations: per side, below
    clock["compare"] = time.perf_counter() - started
    names = labels or (str(a) if not isinstance(a, Rulebook) else "A", str(b) if not isinstance(b, Rulebook) else "B")
    sides = []
    for label, book in zip(names, (book_a, book_b)):
        sides.append(_side(label, book, scenarios, rows, run_lint, max_rows, clock))
    scenario_impact = _impact(table, sides[0], sides[1])
    created = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    clock["total"] = time.perf_counter() - started
    return Review(sides[0], sides[1], _marked(rule_diff(book_a, book_b)), stale_texts(book_a, book_b),
                  scenario_impact,
                  str(scenarios), len(rows), created, clock, file_diff=_file_diff(a, b))


def _folder(spec: object) -> Path | None:
    """The rule folder or file on disk a rulebook spec names, else None (revisions, variants, objects)."""
    if isinstance(spec, Rulebook):
        return None
    if str(spec) == "WORKTREE":
        from ..rulebook import DEFAULT_RULES_DIR

        return DEFAULT_RULES_DIR
    path = Path(str(spec))
    return path if path.exists() else None


def _file_diff(a: object, b: object) -> str:
    """The YAML behind the change: a unified diff of two rule folders on disk, or a variant's overlay file."""
    import difflib

    for spec in (b, a):
        if isinstance(spec, str) and spec.startswith("variant:"):
            from .variants import read_variant

            variant = read_variant(spec)
            text = (variant.folder / variant.file).read_text(encoding="utf-8")
            return f"# the variant file {variant.file}, applied over its base rulebook\n{text}"
    old, new = _folder(a), _folder(b)
    if old is None or new is None:
        return ""
    texts = [{p.name: p.read_text(encoding="utf-8") for p in ([f] if f.is_file() else sorted(f.glob("*.y*ml")))}
             for f in (old, new)]
    parts = []
    for name in sorted(set(texts[0]) | set(texts[1])):
        parts += difflib.unified_diff(texts[0].get(name, "").splitlines(keepends=True),
                                      texts[1].get(name, "").splitlines(keepends=True), f"a/{name}", f"b/{name}")
    return "".join(p if p.endswith("\n") else p + "\n" for p in parts)


def _side(label: str, book: Rulebook, scenarios: str | Path, rows: pd.DataFrame, run_lint: bool,
          max_rows: int, clock: dict[str, float]) -> Side:
    import time

    from ..suite import check_suite

    started = time.perf_counter()
    passed: dict[str, bool] | None = None
    mismatches: dict[str, str] = {}
    error = ""
    try:
        report = check_suite(scenarios, book)
        passed = {c.scenario.id: c.passed for c in report.checks}
        mismatches = {c.scenario.id: "\n".join(map(str, c.mismatches)) for c in report.checks if c.mismatches}
    except LupusRulesError as exc:  # e.g. an expectation names a rule this rulebook does not have
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        error = " ".join(lines[:3]) + (f" (and {len(lines) - 3} more)" if len(lines) > 3 else "") \
            if lines else type(exc).__name__
    cov = coverage(rows, book, propose=False)
    clock[f"suite+coverage {label}"] = time.perf_counter() - started
    started = time.perf_counter()
    report = lint(book, max_rows=max_rows) if run_lint else None
    if run_lint:
        clock[f"lint {label}"] = time.perf_counter() - started
    return Side(label, book.source, book.version, len(book.rules), passed, mismatches, error,
                int((cov.rules["scenarios"] > 0).sum()), cov.uncovered, len(cov.one_sided()), len(cov.conditions),
                dict(zip(cov.rules["rule_id"], map(int, cov.rules["scenarios"]))),
                None if report is None else report.passed, None if report is None else report.findings,
                _about(label))


def _about(label: str) -> str:
    """A variant's title and rationale (how the committee learns why it exists), else ''."""
    if not label.startswith("variant:"):
        return ""
    from .variants import read_variant

    info = read_variant(label).get("variant") or {}
    return f"{str(info.get('title', '')).strip()}. {str(info.get('rationale', '')).strip()}".strip(". ")


def _marked(changes: pd.DataFrame) -> pd.DataFrame:
    """The rule diff with a ``mark`` column: ``+`` something added, ``-`` removed, ``~`` changed."""
    def mark(row: Any) -> str:
        if row["change"] == "added" or (row["before"] == "" and row["after"] != ""):
            return "+"
        if row["change"] == "removed" or (row["after"] == "" and row["before"] != ""):
            return "-"
        return "~"

    out = changes.copy()
    out.insert(0, "mark", [mark(r) for _, r in changes.iterrows()] if len(changes) else [])
    return out


def _impact(table: pd.DataFrame, a: Side, b: Side) -> pd.DataFrame:
    """The dossier's rows from :attr:`~lupus_rules.authoring.impact.Impact.rows`: lists as items removed/added,
    expectations as the suite loader judged them under each side."""
    rows = []
    for _, row in table.iterrows():
        sid = str(row["scenario_id"])
        items = {}
        for name in (*_LISTS, "fired_rules"):
            gone, new = item_changes(row[f"{name}_before"], row[f"{name}_after"])
            short = "fired" if name == "fired_rules" else name
            items[f"{short}_removed"], items[f"{short}_added"] = ";".join(gone), ";".join(new)
        before, after = _status(a, sid), _status(b, sid)
        rows.append({
            "scenario_id": sid, "description": str(row["description"]), "kind": row["kind"],
            "preferred_before": row["preferred_before"], "preferred_after": row["preferred_after"],
            **items, "rules": row["rules"],
            "expect_before": before, "expect_after": after, "expectation": _transition(before, after),
            "mismatches_after": b.mismatches.get(sid, ""),
        })
    frame = pd.DataFrame(rows, columns=IMPACT_COLUMNS)
    order = {"pass → FAIL": 0, "FAIL → pass": 1, "FAIL → FAIL": 2}
    key = frame["expectation"].map(lambda e: order.get(e, 3)) * 2 + (frame["kind"] != "outcome")
    return frame.assign(_key=key).sort_values("_key", kind="stable").drop(columns="_key").reset_index(drop=True)


def _status(side: Side, sid: str) -> str:
    if side.passed is None or sid not in side.passed:
        return "not checked"
    return "pass" if side.passed[sid] else "FAIL"


def _transition(before: str, after: str) -> str:
    if "not checked" in (before, after):
        return "not checked"
    if before == after == "pass":
        return "pass"
    return f"{before} → {after}" if before != after else "FAIL → FAIL"


def _finding_keys(findings: pd.DataFrame | None) -> list[str]:
    if findings is None:
        return []
    return [f"[{r['severity']}] {r['check']}: {', '.join(r['rules']) or '-'}" for _, r in findings.iterrows()]
