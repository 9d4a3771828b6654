"""The scenario suite: patients with expected outcomes, checked against the rulebook.

A guideline author's safety net. Each CSV row under ``scenarios/`` is one
patient (the fact columns of :data:`~lupus_rules.facts.FACTS`, CSV
conventions) plus what the guideline says should come out of it
(:data:`EXPECTATION_COLUMNS`). :func:`check_suite` evaluates every row, lists
each mismatch with the patient, expected vs actual and the cited trace, and
counts how many scenarios fired each rule, so a rule no scenario reaches is
named. A malformed file is refused with :class:`SuiteFormatError` naming the
file, row and column of every problem at once.

Not for clinical use: a prototyping and teaching workbench.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PatientValidationError, SuiteFormatError, SuiteProblem
from .evaluate import default_rulebook, evaluate
from .facts import FACTS, Patient, validate_patient
from .result import DISCLAIMER, Result
from .rulebook import Rulebook
from .vocabulary import Vocabulary as FactVocabulary

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "ID_COLUMN",
    "DESCRIPTION_COLUMN",
    "EXPECTATION_COLUMNS",
    "NO_PREFERRED",
    "SuiteProblem",
    "SuiteFormatError",
    "Expectations",
    "Scenario",
    "Mismatch",
    "Check",
    "SuiteReport",
    "load_suite",
    "parse_expectations",
    "unmet_expectations",
    "check_scenario",
    "check_suite",
    "rule_coverage",
]

#: Column holding the scenario's unique id (the pytest test id).
ID_COLUMN = "scenario_id"
#: Column holding a short description of the patient and why the row exists.
DESCRIPTION_COLUMN = "description"
#: ``expect_preferred`` value meaning "no agent may be preferred" (e.g. outside the guideline).
NO_PREFERRED = "none"

#: Every expectation column and what it checks. An empty cell is not checked.
EXPECTATION_COLUMNS: dict[str, str] = {
    "expect_preferred": f"the preferred agent code, or '{NO_PREFERRED}' when no agent may be preferred",
    "expect_recommendations": "agent codes that must all be recommended as new starts (';'-separated)",
    "expect_not": "agent codes that must not be recommended as new starts (';'-separated)",
    "expect_continue": "agent codes that must all be continued (';'-separated)",
    "expect_avoided": "agent codes that must all be avoided (';'-separated)",
    "expect_cautions": "caution codes that must all be raised (';'-separated)",
    "expect_flags": "flag codes that must all be raised (';'-separated)",
    "expect_no_flags": "flag codes that must not be raised (';'-separated)",
    "expect_fired": "rule ids that must all fire (';'-separated)",
    "expect_not_fired": "rule ids that must not fire (';'-separated)",
}

#: Pairs of columns that must not name the same code in one row.
_CONTRADICTIONS = (
    ("expect_recommendations", "expect_not"),
    ("expect_flags", "expect_no_flags"),
    ("expect_fired", "expect_not_fired"),
)


@dataclass(frozen=True)
class Expectations:
    """What one scenario expects. ``preferred`` None = not checked; empty tuples = not checked."""

    preferred: str | None = None
    recommendations: tuple[str, ...] = ()
    not_recommended: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    no_flags: tuple[str, ...] = ()
    fired: tuple[str, ...] = ()
    not_fired: tuple[str, ...] = ()
    continued: tuple[str, ...] = ()
    avoided: tuple[str, ...] = ()
    cautions: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """True when the row checks nothing at all."""
        return self.preferred is None and not any(
            (self.recommendations, self.not_recommended, self.flags, self.no_flags, self.fired, self.not_fired,
             self.continued, self.avoided, self.cautions))


@dataclass(frozen=True)
class Scenario:
    """One suite row: a validated patient, what is expected of it, and where it was written."""

    id: str
    description: str
    facts: dict[str, str]
    patient: Patient
    expect: Expectations
    file: str
    row: int
    line: int

    @property
    def location(self) -> str:
        """``file row N, line L``, for messages."""
        return f"{self.file} row {self.row}, line {self.line}"

    def given_facts(self) -> str:
        """The facts the row sets (non-empty cells), as ``name=value`` pairs."""
        return ", ".join(f"{k}={v}" for k, v in self.facts.items() if v != "") or "(all defaults)"


@dataclass(frozen=True)
class Mismatch:
    """One expectation the result did not meet: the column, what was expected, what came out."""

    column: str
    expected: str
    actual: str
    problem: str

    def __str__(self) -> str:
        return f"{self.column}: {self.problem} (expected {self.expected}; actual {self.actual})"


@dataclass(frozen=True)
class Check:
    """The outcome of one scenario: its result and every unmet expectation (none = passed)."""

    scenario: Scenario
    result: Result
    mismatches: tuple[Mismatch, ...]

    @property
    def passed(self) -> bool:
        """True when every expectation of the row was met."""
        return not self.mismatches

    def report(self) -> str:
        """The full text a failing test shows: patient, expected vs actual, and the cited trace."""
        s = self.scenario
        lines = [f"{'PASS' if self.passed else 'FAIL'} {s.id} ({s.location}): {s.description}",
                 f"Patient: {s.given_facts()}"]
        measures = ", ".join(f"{k}={_show(self.result.patient[k])}"
                             for k in ("upcr_reduction_pct", "egfr_change_pct"))
        lines.append(f"Measures: {measures}")
        lines.append("Expected vs actual:")
        lines += [f"  {line}" for line in _comparison_lines(s.expect, self.result, self.mismatches)]
        lines.append("Result:")
        lines += [f"  {line}" for line in self.result.explain().splitlines()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


@dataclass(frozen=True)
class SuiteReport:
    """Every check of a suite plus rule coverage (rule id -> ids of the scenarios that fired it)."""

    source: str
    checks: tuple[Check, ...]
    coverage: dict[str, tuple[str, ...]]
    rulebook_version: str
    disclaimer: str = field(default=DISCLAIMER, repr=False)

    @property
    def failures(self) -> tuple[Check, ...]:
        """The checks that did not pass."""
        return tuple(c for c in self.checks if not c.passed)

    @property
    def uncovered(self) -> tuple[str, ...]:
        """Ids of rules that no scenario fired, in rule-file order."""
        return tuple(rule_id for rule_id, ids in self.coverage.items() if not ids)

    @property
    def ok(self) -> bool:
        """True when every scenario passed and every rule was fired by at least one scenario."""
        return not self.failures and not self.uncovered

    def to_frame(self) -> pd.DataFrame:
        """One row per scenario: id, file, row, description, passed, mismatches and the actual outcome."""
        import pandas as pd

        rows = [{
            ID_COLUMN: c.scenario.id, "file": c.scenario.file, "row": c.scenario.row,
            DESCRIPTION_COLUMN: c.scenario.description, "passed": c.passed,
            "mismatches": "; ".join(map(str, c.mismatches)), **c.result.to_row(),
        } for c in self.checks]
        return pd.DataFrame(rows, columns=[ID_COLUMN, "file", "row", DESCRIPTION_COLUMN, "passed",
                                           "mismatches", "preferred", "recommendations", "flags",
                                           "fired_rules"])

    def coverage_frame(self) -> pd.DataFrame:
        """One row per rule: how many scenarios fired it and which."""
        import pandas as pd

        rows = [{"rule_id": rule_id, "scenarios": len(ids), "scenario_ids": ";".join(ids)}
                for rule_id, ids in self.coverage.items()]
        return pd.DataFrame(rows, columns=["rule_id", "scenarios", "scenario_ids"])

    def text(self, failures_only: bool = False) -> str:
        """The printed report: pass/fail table, every failure in full, then rule coverage."""
        lines = [self.disclaimer, _summary_line(self), ""]
        lines += _table(self.checks, failures_only)
        for check in self.failures:
            lines += ["", check.report()]
        lines += ["", *_coverage_lines(self.coverage)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


# -- loading ---------------------------------------------------------------------------

def load_suite(path: str | Path, rulebook: Rulebook | None = None) -> list[Scenario]:
    """Read and validate a scenario CSV file, or every ``*.csv`` in a folder (sorted by name).

    Agent codes, flag codes and rule ids must exist in the shipped rulebook
    or in ``rulebook`` (so a suite still loads against an edited rulebook
    that dropped a rule: the rows naming it then fail their check instead).
    Fact columns are those of ``rulebook`` (its declared facts; the shipped
    ones without a rulebook). Raises :class:`SuiteFormatError` listing every problem (file, row,
    column), never only the first.
    """
    vocabulary = _Vocabulary.of(default_rulebook(), rulebook)
    files = _suite_files(Path(path))
    scenarios: list[Scenario] = []
    problems: list[SuiteProblem] = []
    for file in files:
        found, file_problems = _read_file(file, vocabulary)
        scenarios += found
        problems += file_problems
    problems += _duplicate_ids(scenarios)
    if problems:
        raise SuiteFormatError(problems)
    return scenarios


@dataclass(frozen=True)
class _Vocabulary:
    """The codes a scenario may name: agents (code -> foundation?), flags and rule ids, in rulebook order."""

    agents: dict[str, bool]
    flags: tuple[str, ...]
    rule_ids: tuple[str, ...]
    cautions: tuple[str, ...] = ()
    facts: FactVocabulary | None = None  # the fact columns: the last rulebook's (None = the shipped facts)

    @classmethod
    def of(cls, *books: Rulebook | None) -> _Vocabulary:
        agents: dict[str, bool] = {}
        flags: dict[str, None] = {}
        rule_ids: dict[str, None] = {}
        cautions: dict[str, None] = {}
        facts = None
        for book in (b for b in books if b is not None):
            facts = book.vocabulary
            cautions.update(dict.fromkeys(book.cautions))
            for code, agent in book.agents.items():
                agents.setdefault(code, agent.foundation)
            flags.update(dict.fromkeys(book.flags))
            rule_ids.update(dict.fromkeys(r.id for r in sorted(book.rules, key=lambda r: r.position)))
        return cls(agents, tuple(flags), tuple(rule_ids), tuple(cautions), facts)


def _suite_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv")
        if not files:
            raise SuiteFormatError([SuiteProblem(str(path), 0, 0, None, "no *.csv scenario files in this folder")])
        return files
    if path.is_file():
        return [path]
    raise SuiteFormatError([SuiteProblem(str(path), 0, 0, None, "no such file or folder")])


def _allowed_columns(facts: FactVocabulary | None = None) -> tuple[str, ...]:
    return (ID_COLUMN, DESCRIPTION_COLUMN, *(FACTS if facts is None else facts.facts), *EXPECTATION_COLUMNS)


def _decode(name: str, data: bytes) -> tuple[str | None, SuiteProblem | None]:
    """The text of a scenario file, or the problem naming where it is not UTF-8 (or is UTF-16)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, SuiteProblem(name, 0, 1, None, "UTF-16 text; save the file as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        return None, SuiteProblem(name, line - 1, line, None, f"not UTF-8 text (byte {data[exc.start]:#04x} at "
                                                       f"offset {exc.start}, line {line}); save the file as UTF-8")
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        return None, SuiteProblem(name, line - 1, line, None, f"NUL byte on line {line}: a binary file, not a CSV")
    return text, None


def _read_file(file: Path, vocabulary: _Vocabulary) -> tuple[list[Scenario], list[SuiteProblem]]:
    name = _display_name(file)
    text, problem = _decode(name, file.read_bytes())
    if problem is not None:
        return [], [problem]
    try:
        return _read_rows(name, io.StringIO(text, newline=""), vocabulary)
    except csv.Error as exc:
        return [], [SuiteProblem(name, 0, 1, None, f"not a readable CSV file ({exc})")]


def _read_rows(name: str, handle: io.StringIO,
               vocabulary: _Vocabulary) -> tuple[list[Scenario], list[SuiteProblem]]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return [], [SuiteProblem(name, 0, 1, None, "empty file: a header row is required")]
    columns = [c.strip() for c in header]
    problems = _header_problems(name, columns, vocabulary.facts)
    if problems:
        return [], problems
    scenarios: list[Scenario] = []
    for row_number, cells in enumerate(reader, start=1):
        if not any(cell.strip() for cell in cells):
            continue
        scenario, row_problems = _read_row(name, row_number, reader.line_num, columns, cells, vocabulary)
        problems += row_problems
        if scenario is not None:
            scenarios.append(scenario)
    return scenarios, problems


def _display_name(file: Path) -> str:
    try:
        return str(file.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(file)


def _header_problems(name: str, columns: list[str], facts: FactVocabulary | None = None) -> list[SuiteProblem]:
    allowed = _allowed_columns(facts)
    problems = []
    for column in columns:
        if column not in allowed:
            problems.append(SuiteProblem(name, 0, 1, column or "(empty)",
                                         f"unknown column; allowed: {', '.join(allowed)}"))
    for column in sorted({c for c in columns if columns.count(c) > 1}):
        problems.append(SuiteProblem(name, 0, 1, column, "column appears more than once"))
    for required in (ID_COLUMN, DESCRIPTION_COLUMN):
        if required not in columns:
            problems.append(SuiteProblem(name, 0, 1, required, "required column is missing"))
    return problems


def _read_row(name: str, row: int, line: int, columns: list[str], cells: list[str],
              vocabulary: _Vocabulary) -> tuple[Scenario | None, list[SuiteProblem]]:
    def problem(column: str | None, message: str) -> SuiteProblem:
        return SuiteProblem(name, row, line, column, message)

    if len(cells) != len(columns):
        return None, [problem(None, f"has {len(cells)} cells but the header has {len(columns)} columns")]
    values = {column: cell.strip() for column, cell in zip(columns, cells)}
    problems = [problem(c, "must not be empty") for c in (ID_COLUMN, DESCRIPTION_COLUMN) if not values[c]]
    known = FACTS if vocabulary.facts is None else vocabulary.facts.facts
    facts = {c: v for c, v in values.items() if c in known}
    patient = None
    try:
        patient = validate_patient(facts, vocabulary.facts)
    except PatientValidationError as exc:
        problems += [problem(e.field, f"got {e.value!r}; allowed: {e.allowed}") for e in exc.errors]
    expect, expect_problems = _expectations(values, vocabulary)
    problems += [problem(column, message) for column, message in expect_problems]
    if not expect_problems and expect.is_empty():
        problems.append(problem(None, "checks nothing: fill at least one of " + ", ".join(EXPECTATION_COLUMNS)))
    if problems or patient is None:
        return None, problems
    return Scenario(values[ID_COLUMN], values[DESCRIPTION_COLUMN], facts, patient, expect, name, row, line), []


def _expectations(values: dict[str, str], vocabulary: _Vocabulary) -> tuple[Expectations, list[tuple[str, str]]]:
    """Parse and check the expectation cells; returns (expectations, [(column, message)])."""
    agents, flags, rules = list(vocabulary.agents), list(vocabulary.flags), list(vocabulary.rule_ids)
    allowed_by_column = {
        "expect_recommendations": ("agent code", agents), "expect_not": ("agent code", agents),
        "expect_flags": ("flag code", flags), "expect_no_flags": ("flag code", flags),
        "expect_fired": ("rule id", rules), "expect_not_fired": ("rule id", rules),
        "expect_continue": ("agent code", agents), "expect_avoided": ("agent code", agents),
        "expect_cautions": ("caution code", list(vocabulary.cautions)),
    }
    problems: list[tuple[str, str]] = []
    parsed: dict[str, tuple[str, ...]] = {}
    for column, (what, allowed) in allowed_by_column.items():
        items = _split(values.get(column, ""))
        for item in items:
            if item not in allowed:
                problems.append((column, f"unknown {what} {item!r}; allowed: {', '.join(allowed)}"))
        parsed[column] = items
    preferred = _preferred(values.get("expect_preferred", ""), vocabulary, problems)
    for left, right in _CONTRADICTIONS:
        for item in sorted(set(parsed[left]) & set(parsed[right])):
            problems.append((right, f"{item!r} is also in {left}: a row cannot expect both"))
    if preferred and preferred in parsed["expect_not"]:
        problems.append(("expect_not", f"{preferred!r} is also expect_preferred: a row cannot expect both"))
    return Expectations(preferred, parsed["expect_recommendations"], parsed["expect_not"],
                        parsed["expect_flags"], parsed["expect_no_flags"], parsed["expect_fired"],
                        parsed["expect_not_fired"], parsed["expect_continue"], parsed["expect_avoided"],
                        parsed["expect_cautions"]), problems


def parse_expectations(values: Mapping[str, str], rulebook: Rulebook | None = None) -> Expectations:
    """The expectations of one suite row from its cells (``expect_*`` column -> text), as :func:`load_suite` reads them.

    Codes may come from the shipped rulebook or ``rulebook``. Raises
    :class:`SuiteFormatError` naming the column and what is allowed for every bad cell.
    """
    cells = {str(k): ("" if v is None else str(v).strip()) for k, v in values.items()}
    expect, problems = _expectations(cells, _Vocabulary.of(default_rulebook(), rulebook))
    if problems:
        raise SuiteFormatError([SuiteProblem(str(cells.get(ID_COLUMN, "(row)")), 0, 0, column, message)
                                for column, message in problems])
    return expect


def _preferred(cell: str, vocabulary: _Vocabulary, problems: list[tuple[str, str]]) -> str | None:
    if not cell:
        return None
    candidates = [code for code, foundation in vocabulary.agents.items() if not foundation]
    if cell != NO_PREFERRED and cell not in candidates:
        why = (f"{cell!r} is a foundation agent, never preferred" if cell in vocabulary.agents
               else f"unknown agent code {cell!r}")
        problems.append(("expect_preferred", f"{why}; allowed: {NO_PREFERRED}, {', '.join(candidates)}"))
        return None
    return cell


def _split(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(";") if part.strip())


def _duplicate_ids(scenarios: Iterable[Scenario]) -> list[SuiteProblem]:
    first: dict[str, Scenario] = {}
    problems = []
    for s in scenarios:
        if s.id in first:
            problems.append(SuiteProblem(s.file, s.row, s.line, ID_COLUMN,
                                         f"duplicate scenario_id {s.id!r}; first used at {first[s.id].location}"))
        else:
            first[s.id] = s
    return problems


# -- checking --------------------------------------------------------------------------

def check_scenario(scenario: Scenario, rulebook: Rulebook | None = None) -> Check:
    """Evaluate one scenario and compare the result with every expectation it states."""
    result = evaluate(scenario.patient, rulebook)
    return Check(scenario, result, unmet_expectations(scenario.expect, result))


def unmet_expectations(expect: Expectations, result: Result | Any) -> tuple[Mismatch, ...]:
    """Every expectation of one row that an outcome does not meet (empty = the row passes).

    ``result`` is a :class:`Result` or anything with the same outcome attributes
    (``preferred``, ``recommendations``, ``flags``, ``fired_rules``, ``continue_``,
    ``avoided`` (agent codes), ``cautions``), e.g. one row of a batch run; this is
    the one check :func:`check_scenario` and the rule-change impact both use.
    """
    out: list[Mismatch] = []
    if expect.preferred is not None:
        actual = result.preferred or NO_PREFERRED
        if actual != expect.preferred:
            out.append(Mismatch("expect_preferred", expect.preferred, actual, "different preferred agent"))
    for column, wanted, actual, must in _set_expectations(expect, result):
        bad = [code for code in wanted if (code in actual) != must]
        if bad:
            problem = ("missing: " if must else "must not be present: ") + ";".join(bad)
            out.append(Mismatch(column, ";".join(wanted), ";".join(actual) or "(none)", problem))
    return tuple(out)


def _set_expectations(expect: Expectations, result: Result) -> list[tuple[str, tuple[str, ...], tuple[str, ...], bool]]:
    """(column, expected codes, actual codes, must be present) for every list-valued expectation."""
    return [
        ("expect_recommendations", expect.recommendations, result.recommendations, True),
        ("expect_not", expect.not_recommended, result.recommendations, False),
        ("expect_flags", expect.flags, result.flags, True),
        ("expect_no_flags", expect.no_flags, result.flags, False),
        ("expect_fired", expect.fired, result.fired_rules, True),
        ("expect_not_fired", expect.not_fired, result.fired_rules, False),
        ("expect_continue", expect.continued, result.continue_, True),
        ("expect_avoided", expect.avoided, tuple(result.avoided), True),
        ("expect_cautions", expect.cautions, result.cautions, True),
    ]


def _comparison_lines(expect: Expectations, result: Result, mismatches: Sequence[Mismatch]) -> list[str]:
    failed = {m.column: m for m in mismatches}
    lines = []
    if expect.preferred is not None:
        lines.append(_mark("expect_preferred", failed,
                           f"expected {expect.preferred}; actual {result.preferred or NO_PREFERRED}"))
    for column, wanted, actual, must in _set_expectations(expect, result):
        if wanted:
            detail = f"{'must include' if must else 'must exclude'} {';'.join(wanted)}; actual {';'.join(actual) or '(none)'}"
            if column in failed:
                detail += f" -> {failed[column].problem}"
            lines.append(_mark(column, failed, detail))
    return lines


def _mark(column: str, failed: dict[str, Mismatch], detail: str) -> str:
    return f"{'MISMATCH' if column in failed else 'ok      '} {column}: {detail}"


def rule_coverage(checks: Iterable[Check], rulebook: Rulebook) -> dict[str, tuple[str, ...]]:
    """Rule id (rule-file order) -> ids of the scenarios whose evaluation fired it."""
    fired_by: dict[str, list[str]] = {r.id: [] for r in sorted(rulebook.rules, key=lambda r: r.position)}
    for check in checks:
        for rule_id in dict.fromkeys(check.result.fired_rules):
            fired_by.setdefault(rule_id, []).append(check.scenario.id)
    return {rule_id: tuple(ids) for rule_id, ids in fired_by.items()}


def check_suite(path: str | Path, rulebook: Rulebook | None = None) -> SuiteReport:
    """Load a scenario file or folder, check every row, and count which rules each scenario fired.

    ``rulebook`` defaults to the shipped one; pass an edited rulebook to see
    what a change breaks. Raises :class:`SuiteFormatError` for malformed files.
    """
    book = rulebook if rulebook is not None else default_rulebook()
    checks = tuple(check_scenario(s, book) for s in load_suite(path, rulebook))
    return SuiteReport(str(path), checks, rule_coverage(checks, book), book.version)


# -- text ------------------------------------------------------------------------------

def _summary_line(report: SuiteReport) -> str:
    total, failed = len(report.checks), len(report.failures)
    return (f"Scenario suite {report.source} (rulebook {report.rulebook_version}): {total} scenarios, "
            f"{total - failed} passed, {failed} failed")


def _table(checks: Sequence[Check], failures_only: bool) -> list[str]:
    shown = [c for c in checks if not (failures_only and c.passed)]
    if not shown:
        return ["(no failing scenarios)" if failures_only else "(no scenarios)"]
    id_width = max(len(ID_COLUMN), *(len(c.scenario.id) for c in shown))
    file_width = max(4, *(len(Path(c.scenario.file).name) for c in shown))
    lines = [f"{'result':<6}  {ID_COLUMN:<{id_width}}  {'file':<{file_width}}  {DESCRIPTION_COLUMN}"]
    for c in shown:
        description = c.scenario.description if len(c.scenario.description) <= 70 else c.scenario.description[:67] + "..."
        lines.append(f"{'PASS' if c.passed else 'FAIL':<6}  {c.scenario.id:<{id_width}}  "
                     f"{Path(c.scenario.file).name:<{file_width}}  {description}")
    return lines


def _coverage_lines(coverage: dict[str, tuple[str, ...]]) -> list[str]:
    covered = sum(1 for ids in coverage.values() if ids)
    lines = [f"Rule coverage: {covered}/{len(coverage)} rules fired by at least one scenario"]
    width = max((len(r) for r in coverage), default=7)
    lines.append(f"  {'rule_id':<{width}}  scenarios")
    lines += [f"  {rule_id:<{width}}  {len(ids):>9}" for rule_id, ids in coverage.items()]
    missing = [rule_id for rule_id, ids in coverage.items() if not ids]
    lines.append("Rules fired by no scenario: " + (", ".join(missing) if missing else "none"))
    return lines


def _show(value: Any) -> str:
    if value is None:
        return "unknown"
    return f"{value:g}" if isinstance(value, float) else str(value)
