"""Rulebook variants: a small YAML overlay on a base rulebook that loads as a complete, checked rulebook.

A variant says only what differs from its base, e.g. a guideline update that
changes one threshold. Its file (shipped ones under ``lupus_rules/rules/variants/``)::

    variant:
      name: gc-target-5mg            # how it is asked for: load_variant("gc-target-5mg")
      title: One line for reports
      base: shipped                  # or a rule folder/file, relative to this file
      rationale: Why, with the source.
    rulebook:                        # optional: vocabulary entries merged over the base
      definitions: {maintenance glucocorticoid target: "<= 5 mg/day ..."}
      references: {6: "..."}
    change:                          # optional: fields of base rules, as in a rule file
      R-GC-01: {when: [{fact: prednisone_mg, op: ">", value: 5}], citation: [6]}
    replace: [ {id: R-XX-01, ...whole rule...} ]
    add: [ {id: R-NEW-01, ...} ]      # new rules (they appear in the variant's file)
    drop: [R-SW-03]

Applied in the order rulebook, drop, replace, change, add. The result goes
through the rulebook loader like any rule folder, so it is checked in full and
gets its own ``version`` (a content hash; a variant that changes nothing is
refused). Problems name the variant file and the key (``change.R-GC-01.when[0].value``);
the file is parsed with YAML's safe loader (:func:`~lupus_rules.rulebook.parse_rule_text`).
Not for clinical use.
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

from ..errors import RuleProblem, RulebookError
from ..rulebook import DEFAULT_RULES_DIR, Rulebook, load_rulebook, parse_rule_text, rulebook_from_documents
from .editing import RULE_FIELDS, apply_fields

__all__ = ["VARIANTS_DIR", "VARIANT_PREFIX", "Variant", "variant_names", "read_variant", "load_variant",
           "apply_variant"]

#: The folder holding the shipped variants (one ``NAME.yaml`` each).
VARIANTS_DIR = DEFAULT_RULES_DIR / "variants"
#: Prefix that names a variant wherever a rulebook is asked for (``lupus-rules lint --rules variant:NAME``).
VARIANT_PREFIX = "variant:"

_TOP_KEYS = ("variant", "rulebook", "drop", "replace", "change", "add")
_INFO_KEYS = ("name", "title", "base", "rationale")
_SUFFIXES = (".yaml", ".yml")


class Variant(dict):
    """A parsed variant file (its mapping), with ``file`` (name used in messages) and ``folder``."""

    file: str = ""
    folder: Path = Path(".")

    @property
    def name(self) -> str:
        """The variant's name (``variant.name``, else the file's stem)."""
        info = self.get("variant") or {}
        return str(info.get("name") or Path(self.file).stem)


def variant_names() -> tuple[str, ...]:
    """Names of the shipped variants, sorted."""
    if not VARIANTS_DIR.is_dir():
        return ()
    return tuple(sorted(p.stem for p in VARIANTS_DIR.iterdir() if p.suffix in _SUFFIXES))


def read_variant(name_or_path: str | Path) -> Variant:
    """Parse a variant by shipped name, ``variant:NAME`` or path; RulebookError names the file and key."""
    text = str(name_or_path).removeprefix(VARIANT_PREFIX)
    path = Path(text)
    if not (path.suffix in _SUFFIXES and path.is_file()):
        path = VARIANTS_DIR / f"{text}.yaml"
    if not path.is_file():
        known = ", ".join(variant_names()) or "none"
        raise RulebookError([RuleProblem(str(name_or_path), None, None, "no such variant (a file NAME.yaml, or "
                                         f"a shipped variant); shipped: {known}")])
    try:
        text_data = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulebookError([RuleProblem(path.name, None, None, f"cannot be read: {exc}")]) from None
    data = parse_rule_text(path.name, text_data)
    variant = Variant(data if isinstance(data, dict) else {})
    variant.file, variant.folder = path.name, path.parent
    _check_shape(variant, data)
    return variant


def load_variant(name_or_path: str | Path, base: Rulebook | None = None) -> Rulebook:
    """The complete, checked rulebook a variant describes (over ``base``, default its ``variant.base``)."""
    variant = read_variant(name_or_path)
    return apply_variant(variant, base if base is not None else _base(variant))


def apply_variant(variant: Variant, base: Rulebook) -> Rulebook:
    """``base`` with the variant's overlay applied and checked by the rulebook loader."""
    docs = [(name, copy.deepcopy(data)) for name, data in base.to_documents()]
    problems: list[RuleProblem] = []
    touched: set[str] = set()
    _merge_meta(variant, docs, problems)
    for key, step in (("drop", _drop), ("replace", _replace), ("change", _change), ("add", _add)):
        if variant.get(key):
            step(variant, docs, problems, touched)
    if problems:
        raise RulebookError(problems)
    try:
        book = rulebook_from_documents(docs, source=f"{VARIANT_PREFIX}{variant.name} (over {base.source})")
    except RulebookError as exc:
        raise RulebookError([_blame(variant, p, touched) for p in exc.problems]) from None
    if book.version == base.version:
        raise RulebookError([RuleProblem(variant.file, None, None, "changes nothing in its base rulebook; "
                                         "a variant needs at least one change")])
    return book


# -- reading ----------------------------------------------------------------------------

def _problem(variant: Variant, key: str, message: str, rule_id: str | None = None) -> RuleProblem:
    return RuleProblem(variant.file, rule_id, key, message)


def _check_shape(variant: Variant, data: Any) -> None:
    problems = []
    if not isinstance(data, dict):
        raise RulebookError([_problem(variant, "", "a variant file must be a mapping with a 'variant' section")])
    for key in sorted(set(data) - set(_TOP_KEYS)):
        problems.append(_problem(variant, key, f"unknown key; allowed: {', '.join(_TOP_KEYS)}"))
    info = data.get("variant")
    if not isinstance(info, dict):
        problems.append(_problem(variant, "variant", "missing: a mapping with name, title, base and rationale"))
    else:
        for key in sorted(set(info) - set(_INFO_KEYS)):
            problems.append(_problem(variant, f"variant.{key}", f"unknown key; allowed: {', '.join(_INFO_KEYS)}"))
        for key in ("title", "rationale"):
            if not isinstance(info.get(key), str) or not info[key].strip():
                problems.append(_problem(variant, f"variant.{key}", "missing (a non-empty text is required)"))
    for key, kind in (("rulebook", dict), ("change", dict), ("replace", list), ("add", list), ("drop", list)):
        if key in data and not isinstance(data[key], kind):
            problems.append(_problem(variant, key, f"must be a {'mapping' if kind is dict else 'list'}"))
    if problems:
        raise RulebookError(problems)


def _base(variant: Variant) -> Rulebook:
    base = (variant.get("variant") or {}).get("base", "shipped")
    if base in (None, "shipped"):
        return load_rulebook(DEFAULT_RULES_DIR)
    if not isinstance(base, str):
        raise RulebookError([_problem(variant, "variant.base", f"got {base!r}; allowed: shipped or a rule "
                                      "folder/file path (relative to the variant file)")])
    path = (variant.folder / base)
    if not path.exists():
        raise RulebookError([_problem(variant, "variant.base", f"{base}: no such rule folder or file "
                                      f"(looked in {variant.folder})")])
    return load_rulebook(path)


# -- applying ---------------------------------------------------------------------------

_MERGED_META = ("references", "agents", "flags", "derived_facts", "definitions")


def _merge_meta(variant: Variant, docs: list[tuple[str, Any]], problems: list[RuleProblem]) -> None:
    overlay = variant.get("rulebook") or {}
    meta = next(data["rulebook"] for _, data in docs if "rulebook" in data)
    for key, value in overlay.items():
        if key in ("facts", "statuses", "measures"):
            problems.append(_problem(variant, f"rulebook.{key}", "a variant cannot change the facts; allowed: "
                                     + ", ".join(_MERGED_META) + " (merged entry by entry) or other texts"))
        elif key in _MERGED_META and isinstance(value, dict) and isinstance(meta.get(key), dict):
            meta[key] = {**meta[key], **copy.deepcopy(value)}
        else:
            meta[key] = copy.deepcopy(value)


def _rules(docs: list[tuple[str, Any]]) -> dict[str, tuple[list, int]]:
    """Rule id -> (the file's rule list, index) in the documents."""
    out = {}
    for _, data in docs:
        for i, entry in enumerate(data.get("rules") or []):
            out[entry["id"]] = (data["rules"], i)
    return out


def _unknown(variant: Variant, key: str, rule_id: Any, docs) -> RuleProblem:
    known = sorted(_rules(docs))
    close = difflib.get_close_matches(str(rule_id), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return _problem(variant, key, f"no rule {rule_id!r} in the base rulebook{hint}; known: " + ", ".join(known),
                    rule_id if isinstance(rule_id, str) else None)


def _drop(variant, docs, problems, touched) -> None:
    for i, rule_id in enumerate(variant["drop"]):
        found = _rules(docs).get(rule_id) if isinstance(rule_id, str) else None
        if found is None:
            problems.append(_unknown(variant, f"drop[{i}]", rule_id, docs))
            continue
        entries, index = found
        del entries[index]
        touched.add(rule_id)


def _replace(variant, docs, problems, touched) -> None:
    for i, entry in enumerate(variant["replace"]):
        rule_id = entry.get("id") if isinstance(entry, dict) else None
        found = _rules(docs).get(rule_id) if isinstance(rule_id, str) else None
        if found is None:
            problems.append(_unknown(variant, f"replace[{i}].id", rule_id, docs))
            continue
        entries, index = found
        entries[index] = copy.deepcopy(entry)
        touched.add(rule_id)


def _change(variant, docs, problems, touched) -> None:
    for rule_id, fields in variant["change"].items():
        found = _rules(docs).get(rule_id)
        if found is None:
            problems.append(_unknown(variant, f"change.{rule_id}", rule_id, docs))
            continue
        if not isinstance(fields, dict) or not fields or set(fields) - set(RULE_FIELDS) - {"id"}:
            bad = sorted(set(fields) - set(RULE_FIELDS)) if isinstance(fields, dict) else fields
            problems.append(_problem(variant, f"change.{rule_id}", f"got {bad!r}; allowed: a mapping of rule "
                                     "fields " + ", ".join(f for f in RULE_FIELDS if f != "id"), rule_id))
            continue
        entries, index = found
        entries[index] = apply_fields(entries[index], fields)
        touched.add(rule_id)


def _add(variant, docs, problems, touched) -> None:
    own = [data for name, data in docs if name == variant.file]
    if not own:
        docs.append((variant.file, {"rules": []}))
        own = [docs[-1][1]]
    for i, entry in enumerate(variant["add"]):
        if not isinstance(entry, dict):
            problems.append(_problem(variant, f"add[{i}]", "a rule must be a mapping"))
            continue
        own[0]["rules"].append(copy.deepcopy(entry))
        if isinstance(entry.get("id"), str):
            touched.add(entry["id"])


def _blame(variant: Variant, problem: RuleProblem, touched: set[str]) -> RuleProblem:
    """A loader problem on a rule or vocabulary entry the variant wrote, re-addressed to the variant file."""
    mine = problem.rule_id in touched or (
        problem.rule_id is None and problem.field is not None
        and problem.field.split(".")[0] in set(variant.get("rulebook") or {}))
    if not mine:
        return problem
    section = "add" if any(isinstance(e, dict) and e.get("id") == problem.rule_id for e in variant.get("add") or []) \
        else "change" if problem.rule_id in (variant.get("change") or {}) else "replace"
    where = f"{section}.{problem.rule_id}.{problem.field}" if problem.rule_id else f"rulebook.{problem.field}"
    return RuleProblem(variant.file, problem.rule_id, where.rstrip("."), f"{problem.message} (base file "
                       f"{problem.file})")
