"""Rule-level diff: which rules were added, removed or changed, field by field, in words.

``rule_diff(a, b)`` answers "what did this edit do to the rules?" as a table an
author reads: one row per change, e.g. ``R-KID-01  when  egfr >= 60 -> egfr >= 45
(threshold 60 -> 45)``. The vocabulary (agents, flags, derived facts, accepted
gaps, definitions) is compared too, under the pseudo rule id ``rulebook``.
"""
from __future__ import annotations

import re
from typing import Any

import pandas as pd

from ..rulebook import Condition, Rule, Rulebook

__all__ = ["rule_diff", "changed_rule_ids", "stale_texts", "item_changes", "RULE_DIFF_COLUMNS", "STALE_TEXT_COLUMNS"]

#: Columns of the table :func:`rule_diff` returns.
RULE_DIFF_COLUMNS = ["rule_id", "change", "field", "before", "after", "description"]

#: Columns of the table :func:`stale_texts` returns.
STALE_TEXT_COLUMNS = ["rule_id", "field", "old", "new", "text", "description"]

_TEXT_FIELDS = ("title", "section", "rationale", "note", "file")
_VOCABULARY = ("agents", "flags", "derived_facts", "references", "definitions", "accepted_gaps", "conflicts",
               "facts", "measures")
#: Vocabulary entries compared as a whole (one text each).
_META_TEXTS = ("name", "guideline", "disclaimer", "rank_scale", "statuses")


def rule_diff(a: Rulebook, b: Rulebook) -> pd.DataFrame:
    """Every difference between two rulebooks, one row per change (empty when they agree).

    ``change`` is ``added``, ``removed`` or ``changed``; ``field`` names what
    changed (``when``, ``recommend``, ``citation``, ...); ``description`` is
    the sentence to read, prefixed by the rule id.
    """
    rows: list[dict[str, Any]] = []
    old = {r.id: r for r in a.rules}
    new = {r.id: r for r in b.rules}
    for rule in _in_file_order(a):
        if rule.id not in new:
            rows.append(_row(rule.id, "removed", "rule", _summary(rule), "", f"rule removed ({rule.title})"))
    for rule in _in_file_order(b):
        if rule.id not in old:
            rows.append(_row(rule.id, "added", "rule", "", _summary(rule), f"rule added ({rule.title})"))
        else:
            rows.extend(_rule_changes(old[rule.id], rule))
    rows.extend(_vocabulary_changes(a, b))
    return pd.DataFrame(rows, columns=RULE_DIFF_COLUMNS)


def item_changes(before: str, after: str) -> tuple[list[str], list[str]]:
    """Items of a ``;``-joined outcome list (recommendations, flags, fired rules) removed and added, in order."""
    old = [item for item in before.split(";") if item]
    new = [item for item in after.split(";") if item]
    return [item for item in old if item not in new], [item for item in new if item not in old]


def stale_texts(a: Rulebook, b: Rulebook) -> pd.DataFrame:
    """Texts of a rule in ``b`` (title, rationale, note) that still name a number its edit replaced.

    E.g. after ``egfr >= 60 -> egfr >= 45`` a note saying "eGFR >= 60" is listed:
    one row per rule, field and old number, with the text and a sentence to read.
    """
    old = {r.id: r for r in a.rules}
    rows = []
    for rule in _in_file_order(b):
        if rule.id not in old:
            continue
        for before, after in _number_changes(old[rule.id].when, rule.when):
            pattern = re.compile(rf"(?<![\d.]){re.escape(before)}(?![\d]|\.\d)")
            for field in ("title", "rationale", "note"):
                text = getattr(rule, field)
                if pattern.search(text):
                    rows.append({"rule_id": rule.id, "field": field, "old": before, "new": after, "text": text,
                                 "description": f"{rule.id}: {field} still says {before} (the condition now "
                                                f"says {after}): {text!r}"})
    return pd.DataFrame(rows, columns=STALE_TEXT_COLUMNS)


def _number_changes(old: tuple[Condition, ...], new: tuple[Condition, ...]) -> list[tuple[str, str]]:
    removed = [c for c in old if c not in new]
    added = [c for c in new if c not in old]
    out = []
    for before, after in _paired(removed, added):
        numeric = all(isinstance(c.value, (int, float)) and not isinstance(c.value, bool) for c in (before, after))
        if numeric and before.value != after.value:
            out.append((_show(before.value), _show(after.value)))
    return list(dict.fromkeys(out))


def changed_rule_ids(a: Rulebook, b: Rulebook) -> set[str]:
    """Ids of rules added, removed, or whose conditions or conclusions differ (text edits excluded)."""
    old = {r.id: r for r in a.rules}
    new = {r.id: r for r in b.rules}
    changed = set(old) ^ set(new)
    for rule_id in set(old) & set(new):
        if _logic(old[rule_id]) != _logic(new[rule_id]):
            changed.add(rule_id)
    return changed


def _logic(rule: Rule) -> tuple:
    """What a rule does (conditions and conclusions), without its prose."""
    return (frozenset(rule.when), tuple(sorted(rule.derive)), tuple(sorted(rule.avoid)),
            tuple(sorted(rule.flag)), tuple(sorted((r.agent, r.rank) for r in rule.recommend)))


def _in_file_order(book: Rulebook) -> list[Rule]:
    return sorted(book.rules, key=lambda r: r.position)


def _row(rule_id: str, change: str, field: str, before: str, after: str, text: str) -> dict[str, Any]:
    return {"rule_id": rule_id, "change": change, "field": field, "before": before, "after": after,
            "description": f"{rule_id}: {text}"}


def _summary(rule: Rule) -> str:
    return f"when {_conditions(rule.when)} then {_conclusions(rule)}"


def _conditions(conditions: tuple[Condition, ...]) -> str:
    return " and ".join(c.describe() for c in conditions) or "always"


def _conclusions(rule: Rule) -> str:
    parts = [f"recommend {r.agent} (rank {r.rank})" for r in rule.recommend]
    parts += [f"derive {d}" for d in rule.derive]
    parts += [f"avoid {a}" for a in rule.avoid]
    parts += [f"flag {f}" for f in rule.flag]
    return ", ".join(parts)


def _rule_changes(old: Rule, new: Rule) -> list[dict[str, Any]]:
    rows = _condition_changes(old.id, old.when, new.when)
    rows += _recommend_changes(old, new)
    for field in ("derive", "avoid", "flag"):
        rows += _list_changes(old.id, field, getattr(old, field), getattr(new, field))
    if old.citation != new.citation:
        before, after = _refs(old.citation), _refs(new.citation)
        rows.append(_row(old.id, "changed", "citation", before, after, f"citation {before} → {after}"))
    for field in _TEXT_FIELDS:
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            rows.append(_row(old.id, "changed", field, before, after, f"{field} reworded: {before!r} → {after!r}"))
    return rows


def _refs(citation: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, citation)) + "]"


def _condition_key(condition: Condition) -> tuple[str, str, str]:
    return (condition.kind, condition.fact, condition.op)


def _condition_changes(rule_id: str, old: tuple[Condition, ...], new: tuple[Condition, ...]) -> list[dict]:
    """Conditions paired by (fact, operator): a value change reads as 'threshold 60 → 45'."""
    removed = [c for c in old if c not in new]
    added = [c for c in new if c not in old]
    rows = []
    for before, after in _paired(removed, added):
        removed.remove(before)
        added.remove(after)
        if before.op == after.op:
            text = f"{before.fact} {_value_word(before)} {_show(before.value)} → {_show(after.value)} "
        else:
            text = f"{before.fact} condition {before.op} {_show(before.value)} → {after.op} {_show(after.value)} "
        rows.append(_row(rule_id, "changed", "when", before.describe(), after.describe(),
                         text + f"({before.describe()} → {after.describe()})"))
    for before in removed:
        rows.append(_row(rule_id, "changed", "when", before.describe(), "", f"condition removed: {before.describe()}"))
    for after in added:
        rows.append(_row(rule_id, "changed", "when", "", after.describe(), f"condition added: {after.describe()}"))
    return rows


def _paired(removed: list[Condition], added: list[Condition]) -> list[tuple[Condition, Condition]]:
    """Removed and added conditions read as one change: same fact and operator first, then same fact
    when it is the only removed and the only added condition on that fact (e.g. ``>= 7.5`` → ``> 5``)."""
    pairs = []
    free = list(added)
    for before in removed:
        after = next((c for c in free if _condition_key(c) == _condition_key(before)), None)
        if after is not None:
            pairs.append((before, after))
            free.remove(after)
    left = [c for c in removed if all(c is not b for b, _ in pairs)]
    for before in left:
        same = [c for c in free if c.kind == before.kind == "fact" and c.fact == before.fact]
        if len(same) == 1 and sum(c.fact == before.fact for c in left) == 1:
            pairs.append((before, same[0]))
            free.remove(same[0])
    return pairs


def _value_word(condition: Condition) -> str:
    if condition.op in ("<", "<=", ">", ">="):
        return "threshold"
    if condition.op in ("in", "not_in"):
        return f"{condition.op.replace('_', ' ')} values"
    return f"{condition.op} value"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _recommend_changes(old: Rule, new: Rule) -> list[dict[str, Any]]:
    before = {r.agent: r for r in old.recommend}
    after = {r.agent: r for r in new.recommend}
    rows = []
    for agent, spec in before.items():
        if agent not in after:
            rows.append(_row(old.id, "changed", "recommend", f"{agent} (rank {spec.rank})", "",
                             f"no longer recommends {agent} (was rank {spec.rank})"))
            continue
        other = after[agent]
        if spec.rank != other.rank:
            rows.append(_row(old.id, "changed", "recommend", f"{agent} rank {spec.rank}",
                             f"{agent} rank {other.rank}", f"{agent} rank {spec.rank} → {other.rank}"))
        if spec.note != other.note:
            rows.append(_row(old.id, "changed", "recommend", spec.note, other.note,
                             f"{agent} note {spec.note!r} → {other.note!r}"))
    for agent, spec in after.items():
        if agent not in before:
            rows.append(_row(old.id, "changed", "recommend", "", f"{agent} (rank {spec.rank})",
                             f"now recommends {agent} (rank {spec.rank})"))
    return rows


def _list_changes(rule_id: str, field: str, old: tuple[str, ...], new: tuple[str, ...]) -> list[dict]:
    rows = [_row(rule_id, "changed", field, item, "", f"no longer {_verb(field)} {item}")
            for item in old if item not in new]
    rows += [_row(rule_id, "changed", field, "", item, f"now {_verb(field)} {item}")
             for item in new if item not in old]
    return rows


def _verb(field: str) -> str:
    return {"derive": "derives", "avoid": "avoids", "flag": "flags"}[field]


def _vocabulary_changes(a: Rulebook, b: Rulebook) -> list[dict[str, Any]]:
    rows = []
    for key in _META_TEXTS:
        before, after = _meta_text(a, key), _meta_text(b, key)
        if before != after:
            rows.append(_row("rulebook", "changed", key, before, after, f"{key}: {before!r} → {after!r}"))
    for key in _VOCABULARY:
        before, after = _vocabulary(a, key), _vocabulary(b, key)
        for name in before.keys() - after.keys():
            rows.append(_row("rulebook", "removed", f"{key}.{name}", before[name], "", f"{key} entry {name} removed"))
        for name in sorted(after.keys() - before.keys()):
            rows.append(_row("rulebook", "added", f"{key}.{name}", "", after[name], f"{key} entry {name} added"))
        for name in sorted(before.keys() & after.keys()):
            if before[name] != after[name]:
                rows.append(_row("rulebook", "changed", f"{key}.{name}", before[name], after[name],
                                 f"{key} entry {name}: {before[name]!r} → {after[name]!r}"))
    return rows


def _meta_text(book: Rulebook, key: str) -> str:
    value = book.meta.get(key)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return " ".join(str(value).split())


def _entry_text(value: Any) -> str:
    """One vocabulary entry (text, or a mapping such as a fact's kind/range/unit) as one line."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_entry_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join("~" if v is None else _entry_text(v) for v in value) + "]"
    return " ".join(str(value).split())


def _vocabulary(book: Rulebook, key: str) -> dict[str, str]:
    """One vocabulary section as name → text, comparable between two rulebooks."""
    if key == "agents":
        return {code: f"{a.name}{' (foundation)' if a.foundation else ''}" for code, a in book.agents.items()}
    if key == "flags":
        return dict(book.flags)
    if key == "derived_facts":
        return dict(book.derived_facts)
    if key == "references":
        return {str(k): v for k, v in book.references.items()}
    if key == "accepted_gaps":
        return {g.id: f"when {_conditions(g.when)}: {g.description}" for g in book.accepted_gaps}
    if key == "conflicts":
        return {f"{c.start} / {c.flag}": c.why for c in book.conflicts}
    return {str(k): _entry_text(v) for k, v in (book.meta.get(key) or {}).items()}
