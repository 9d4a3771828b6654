"""Rule edits as an author makes them: change any field of a rule, add a rule, drop a rule.

Every edit takes and returns a :class:`~lupus_rules.rulebook.Rulebook` and is
checked by the rulebook loader itself (:func:`~lupus_rules.rulebook.rulebook_from_documents`),
so a refused edit raises :class:`~lupus_rules.errors.RulebookError` with the
loader's own message naming file, rule id and field, e.g.
``60_nephritis.yaml [R-KID-01] when[0].value: got -5; allowed: a number from 0 to 200
(the range of egfr)``. There is no second validator here.

Fields are given as they are written in a rule file::

    edit_rule(book, "R-KID-01", when=[{"fact": "egfr", "op": ">=", "value": 45}])
    edit_rule(book, "R-FL-01", recommend=[{"agent": "mycophenolate", "rank": 30}], note="")
    edit_rule(book, "R-FL-02", **{"continue": ["mycophenolate"]}, caution=["mmf_dose_kidney"])
    edit_rule(book, "R-FL-02", keep=["mycophenolate"])  # ``keep``: the Python name of ``continue``
    add_rule(book, {"id": "R-NEW-01", ...}, after="R-FL-01")
    drop_rule(book, "R-SW-03")

The edited rulebook is what :func:`lupus_rules.authoring.saving.plan_save` writes back to YAML.
Not for clinical use.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..errors import RuleProblem, RulebookError
from ..rulebook import Rulebook, rulebook_from_documents

__all__ = ["RULE_FIELDS", "CONCLUSION_FIELDS", "FIELD_ALIASES", "apply_fields", "edit_rule", "add_rule", "drop_rule",
           "rule_data"]

#: Fields of a rule an edit may set (conclusions are set by name, without ``then.``).
RULE_FIELDS: tuple[str, ...] = ("id", "title", "section", "citation", "when", "recommend", "avoid", "flag",
                                "derive", "continue", "caution", "rationale", "note")
#: The fields that live under a rule's ``then``.
CONCLUSION_FIELDS: tuple[str, ...] = ("derive", "recommend", "avoid", "flag", "continue", "caution")
#: Other names an edit may use for a field: ``keep`` is :attr:`Rule.keep`, written ``continue:`` in a
#: rule file (``continue`` is a Python keyword, so ``keep=[...]`` is the easier keyword argument).
FIELD_ALIASES: dict[str, str] = {"keep": "continue"}


def rule_data(book: Rulebook, rule_id: str) -> dict[str, Any]:
    """One rule as it is written in a rule file (a fresh copy an editor may change)."""
    return _find(book, rule_id).to_data()


def edit_rule(book: Rulebook, rule_id: str, **fields: Any) -> Rulebook:
    """``book`` with some fields of one rule replaced, re-checked by the loader.

    A conclusion or the note set to ``None``, ``""`` or ``[]`` is removed. An
    unknown field name or rule id raises :class:`RulebookError` naming it.
    """
    rule = _find(book, rule_id)
    fields = _canonical(fields)
    unknown = sorted(set(fields) - set(RULE_FIELDS))
    if unknown:
        raise RulebookError([RuleProblem(rule.file, rule_id, name, "not a rule field; allowed: "
                                         + ", ".join(RULE_FIELDS)) for name in unknown])
    data = apply_fields(rule.to_data(), fields)
    return _rebuild(book, lambda entries: [data if e["id"] == rule_id else e for e in entries], rule.file)


def add_rule(book: Rulebook, data: Mapping[str, Any], *, file: str | None = None,
             after: str | None = None) -> Rulebook:
    """``book`` with a new rule (written as in a rule file, conclusions under ``then`` or by name).

    It goes into ``file`` (default: the file of ``after``, else the last rule
    file), after the rule ``after`` or at the end of that file. A duplicate id
    is refused by the loader ("duplicate rule id").
    """
    entry = apply_fields({}, {k: v for k, v in data.items() if k != "then"})
    entry.setdefault("then", {}).update(copy.deepcopy(dict(data.get("then") or {})))
    if after is not None:
        file = file or _find(book, after).file
    if file is None:
        file = max(book.rules, key=lambda r: r.position).file if book.rules else "rules.yaml"

    def insert(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        at = next((i + 1 for i, e in enumerate(entries) if e["id"] == after), len(entries))
        return [*entries[:at], entry, *entries[at:]]

    return _rebuild(book, insert, file)


def drop_rule(book: Rulebook, rule_id: str) -> Rulebook:
    """``book`` without one rule, re-checked (e.g. a derived fact nobody derives any more is reported)."""
    rule = _find(book, rule_id)
    return _rebuild(book, lambda entries: [e for e in entries if e["id"] != rule_id], rule.file)


def _find(book: Rulebook, rule_id: str):
    try:
        return book.rule(rule_id)
    except KeyError:
        raise RulebookError([RuleProblem(book.source or "rulebook", rule_id, "id", "no rule with this id; "
                                         "known: " + ", ".join(sorted(book.rule_ids)))]) from None


def apply_fields(data: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of one rule's file data with ``fields`` set (conclusions by name); empty conclusions and notes removed."""
    data = copy.deepcopy(data)
    then = data.setdefault("then", {})
    for name, value in _canonical(fields).items():
        target = then if name in CONCLUSION_FIELDS else data
        if value is None or (name in CONCLUSION_FIELDS + ("note",) and value in ("", [], ())):
            target.pop(name, None)
        else:
            target[name] = copy.deepcopy(list(value) if isinstance(value, tuple) else value)
    return data


def _canonical(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with aliases (:data:`FIELD_ALIASES`) replaced by the names a rule file uses."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        name = FIELD_ALIASES.get(name, name)
        if name in out:
            raise RulebookError([RuleProblem("rulebook", None, name, "given twice (once by its alias "
                                             + ", ".join(a for a, n in FIELD_ALIASES.items() if n == name) + ")")])
        out[name] = value
    return out


def _rebuild(book: Rulebook, change, file: str) -> Rulebook:
    """The rulebook with one file's rule entries changed by ``change``, checked by the loader."""
    docs = book.to_documents()
    names = [name for name, _ in docs]
    if file not in names:  # a new file takes its place in name order, as a rule folder is loaded
        at = next((i for i, (name, data) in enumerate(docs) if data.get("rules") and name > file), len(docs))
        docs.insert(at, (file, {"rules": []}))
    out = []
    for name, data in docs:
        if name == file:
            data = {**data, "rules": change(list(data.get("rules") or []))}
            if not data["rules"] and "rulebook" in data:
                del data["rules"]
        out.append((name, data))
    source = book.source if book.source.endswith("(edited)") else f"{book.source} (edited)"
    return rulebook_from_documents(out, source=source)
