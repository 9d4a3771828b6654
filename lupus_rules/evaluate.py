"""Evaluate one patient: the entry point notebooks, tests and the CLI share.

Validates the facts, lets the durable-rules engine (or the pure-Python one)
fire the rules, and builds the :class:`~lupus_rules.result.Result` with its trace.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .errors import OptionError
from .facts import Patient, validate_patient
from .result import FiredRule, Result, matched_facts, summarize
from .rulebook import DEFAULT_RULES_DIR, Rulebook, load_rulebook

__all__ = ["evaluate", "default_rulebook", "result_from_fired", "PATIENT_ENGINES"]

_DEFAULT: tuple[tuple, Rulebook] | None = None


def default_rulebook() -> Rulebook:
    """The shipped rulebook, loaded once and reloaded when its files change on disk."""
    global _DEFAULT
    signature = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                      for p in sorted(Path(DEFAULT_RULES_DIR).glob("*.yaml")))
    if _DEFAULT is None or _DEFAULT[0] != signature:
        _DEFAULT = (signature, load_rulebook(DEFAULT_RULES_DIR))
    return _DEFAULT[1]


#: Engines :func:`evaluate` runs (one patient at a time).
PATIENT_ENGINES = ("durable", "python")


def evaluate(patient: Mapping[str, object] | Patient, rulebook: Rulebook | str | Path | None = None,
             engine: str = "durable") -> Result:
    """Evaluate one patient with forward chaining on durable-rules (or ``engine="python"``).

    ``patient`` is a mapping of facts (Python values or CSV strings) or a
    validated :class:`~lupus_rules.facts.Patient`, checked against the
    rulebook's own facts (``rulebook.vocabulary``); bad facts raise
    :class:`~lupus_rules.errors.PatientValidationError` naming each field.
    ``rulebook``: a :class:`~lupus_rules.rulebook.Rulebook`, a folder of rule
    files (``RulebookError`` if unusable), or ``None`` for the shipped one;
    anything else raises :class:`~lupus_rules.errors.OptionError`. Nothing
    is left in the engine afterwards, so evaluations never influence each other.
    ``engine``: ``"durable"`` (default) or ``"python"`` (the rules read
    directly in firing order, :mod:`lupus_rules.engines.python`; no
    durable-rules import); both give the same result.
    """
    if engine not in PATIENT_ENGINES:
        raise OptionError(f"engine: got {engine!r}; allowed: {', '.join(PATIENT_ENGINES)}")
    book = _rulebook(rulebook)
    checked = validate_patient(patient, book.vocabulary)
    if engine == "python":
        from .engines import python

        fired = python.fire(checked, book)
    else:
        from .engines import durable  # imported here so that importing lupus_rules stays light

        fired = durable.shared().fire(checked, book)
    return result_from_fired(book, checked, fired, engine=engine)


def _rulebook(rulebook: Rulebook | str | Path | None) -> Rulebook:
    if rulebook is None:
        return default_rulebook()
    if isinstance(rulebook, Rulebook):
        return rulebook
    if isinstance(rulebook, (str, Path)):
        return load_rulebook(rulebook)
    raise OptionError(f"rulebook: got {rulebook!r}; allowed: a Rulebook, a folder of rule files, or None")


def result_from_fired(rulebook: Rulebook, patient: Patient, fired: list[str], engine: str) -> Result:
    """Build a full :class:`Result` (with trace) from the ids of fired rules, in firing order."""
    summary = summarize(rulebook, fired)
    trace = []
    for rule_id in fired:
        rule = rulebook.rule(rule_id)
        trace.append(FiredRule(rule.id, rule.title, rule.section, rule.citation, rule.stratum,
                               matched_facts(rule, patient)))
    return Result(
        patient=patient,
        preferred=summary.preferred,
        recommendations=summary.recommendations,
        recommendation_details=summary.recommendation_details,
        flags=summary.flags,
        derived=summary.derived,
        avoided=summary.avoided,
        trace=tuple(trace),
        rulebook_version=rulebook.version,
        engine=engine,
        continue_=summary.continue_,
        cautions=summary.cautions,
    )
