"""Save an edited rulebook back into its YAML rule folder, changing only what changed.

:func:`plan_save` compares the rules of the folder on disk with an edited
:class:`~lupus_rules.rulebook.Rulebook` (from :mod:`lupus_rules.authoring.editing`,
``Rulebook.replace_rule`` or the lab) and returns a :class:`SavePlan`: the new text
of every file that changes and a unified diff to show first. :func:`save_plan`
writes it.

Only the rules that differ are rewritten. Every other byte of a file (the
comments, blank lines, key order, quoting and layout of untouched rules and of the
vocabulary) is copied from the original text; a changed rule is re-emitted by
ruamel.yaml in round-trip mode from its own parsed node, so its comments, flow
``{...}`` conditions and quoting stay, and inside it only the fields that changed
are replaced. ruamel is used only to write: the planned texts are parsed again
with the loader's safe YAML loader and checked by the loader
(:func:`~lupus_rules.rulebook.rulebook_from_documents`) before anything is
written, and must load as the edited rulebook (same version). Each file is
written atomically (:func:`lupus_rules.output.atomic_output`); a file changed on
disk since the plan was made is refused. Vocabulary edits are not saved here.
Not for clinical use.
"""
from __future__ import annotations

import difflib
import io
import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import (DoubleQuotedScalarString, FoldedScalarString, LiteralScalarString,
                                      SingleQuotedScalarString)

from ..errors import RuleProblem, RulebookError
from ..output import atomic_output
from ..rulebook import Condition, Rule, Rulebook, load_rulebook, parse_rule_text, rulebook_from_documents

__all__ = ["SavePlan", "plan_save", "save_plan", "save_rulebook"]

_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.ya?ml")
_STYLED = (DoubleQuotedScalarString, SingleQuotedScalarString, FoldedScalarString, LiteralScalarString)
_BLOCK = (FoldedScalarString, LiteralScalarString)
_TEXT_FIELDS = ("id", "title", "section", "rationale", "note")


@dataclass(frozen=True)
class SavePlan:
    """What saving an edited rulebook would write: per changed file, the text before and after.

    ``before`` holds ``None`` for a file that does not exist yet. ``rulebook``
    is the rulebook the folder loads as once saved (already checked).
    """

    folder: Path
    before: dict[str, str | None]
    after: dict[str, str]
    rulebook: Rulebook
    changed_rules: tuple[str, ...] = field(default=())

    @property
    def files(self) -> tuple[str, ...]:
        """Names of the files the plan writes."""
        return tuple(self.after)

    def diff(self, context: int = 3) -> str:
        """A unified diff of every file the plan writes (``a/NAME`` before, ``b/NAME`` after)."""
        parts = []
        for name, new in self.after.items():
            old = self.before.get(name)
            parts += difflib.unified_diff((old or "").splitlines(keepends=True), new.splitlines(keepends=True),
                                          "/dev/null" if old is None else f"a/{name}", f"b/{name}", n=context)
        return "".join(p if p.endswith("\n") else p + "\n\\ No newline at end of file\n" for p in parts)


def plan_save(folder: str | Path, edited: Rulebook) -> SavePlan:
    """The files to rewrite so that ``folder`` loads as ``edited``; raises RulebookError if it would not."""
    folder = Path(folder)
    original = load_rulebook(folder)
    if _vocabulary(original) != _vocabulary(edited):
        raise RulebookError([RuleProblem(folder.name, None, "rulebook", "the edit changes the vocabulary "
                                         "(agents, flags, facts, definitions ...); only rule edits are saved, "
                                         "edit rulebook.yaml by hand or use a variant")])
    old_by_file, new_by_file = _by_file(original), _by_file(edited)
    before: dict[str, str | None] = {}
    after: dict[str, str] = {}
    for name in sorted(set(old_by_file) | set(new_by_file)):
        old_rules, new_rules = old_by_file.get(name, []), new_by_file.get(name, [])
        if [r.to_data() for r in old_rules] == [r.to_data() for r in new_rules]:
            continue
        path = folder / _checked_name(name)
        text = _read(path) if path.exists() else None
        before[name], after[name] = text, _new_text(name, text, old_rules, new_rules)
    rulebook = _check(folder, after, edited)
    changed = sorted(_changed_ids(original, edited))
    return SavePlan(folder, before, after, rulebook, tuple(changed))


def save_plan(plan: SavePlan) -> list[Path]:
    """Write a plan's files atomically; refuse (RulebookError) if one changed on disk since the plan."""
    for name, text in plan.before.items():
        path = plan.folder / name
        now = _read(path) if path.exists() else None
        if now != text:
            raise RulebookError([RuleProblem(name, None, None, "changed on disk since the save was planned; "
                                             "plan the save again")])
    written = []
    with ExitStack() as stack:  # every partial file is written before any is renamed into place
        for name, text in plan.after.items():
            partial = stack.enter_context(atomic_output(plan.folder / name, suffixes=(".yaml", ".yml")))
            partial.write_bytes(text.encode("utf-8"))
            written.append(plan.folder / name)
    return written


def save_rulebook(folder: str | Path, edited: Rulebook) -> SavePlan:
    """:func:`plan_save` then :func:`save_plan`; returns the plan (its diff says what was written)."""
    plan = plan_save(folder, edited)
    save_plan(plan)
    return plan


# -- planning ----------------------------------------------------------------------------

def _vocabulary(book: Rulebook) -> tuple:
    return (book.meta, book.references)


def _by_file(book: Rulebook) -> dict[str, list[Rule]]:
    out: dict[str, list[Rule]] = {}
    for rule in sorted(book.rules, key=lambda r: r.position):
        out.setdefault(rule.file or "rules.yaml", []).append(rule)
    return out


def _changed_ids(a: Rulebook, b: Rulebook) -> set[str]:
    old = {r.id: r.to_data() for r in a.rules}
    new = {r.id: r.to_data() for r in b.rules}
    return {i for i in old.keys() | new.keys() if old.get(i) != new.get(i)}


def _read(path: Path) -> str:
    """A rule file's text exactly as stored (line endings kept: a CRLF file stays CRLF)."""
    return path.read_bytes().decode("utf-8")


def _checked_name(name: str) -> str:
    if not _FILE_NAME.fullmatch(name):
        raise RulebookError([RuleProblem(name, None, None, "not a usable rule file name; allowed: letters, "
                                         "digits, '_', '-', '.' ending in .yaml or .yml, no folder")])
    return name


def _check(folder: Path, after: dict[str, str], edited: Rulebook) -> Rulebook:
    """Parse every file as the loader will (safe YAML) and check it; it must load as ``edited``."""
    names = sorted({p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml")} | set(after))
    docs = []
    for name in names:
        text = after[name] if name in after else (folder / name).read_text(encoding="utf-8")
        docs.append((name, parse_rule_text(name, text)))
    book = rulebook_from_documents(docs, source=str(folder))
    if book.version != edited.version:
        raise RulebookError([RuleProblem(folder.name, None, None, f"the saved files would load as version "
                                         f"{book.version}, not the edited {edited.version}; nothing written")])
    return book


# -- text splicing -------------------------------------------------------------------------

def _yaml(sequence: int = 4, offset: int = 2, mapping: int = 2) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _new_text(name: str, text: str | None, old: list[Rule], new: list[Rule]) -> str:
    """The file's text with its rules changed from ``old`` to ``new``, everything else kept byte for byte."""
    if text is None:
        return "rules:\n" + "\n".join(_emit(None, None, rule, _Layout()) for rule in new)
    doc = _yaml().load(text)
    seq = doc.get("rules") if isinstance(doc, CommentedMap) else None
    lines = text.splitlines(keepends=True)
    if not isinstance(seq, CommentedSeq) or not seq or seq.fa.flow_style():
        return _append_rules(name, text, doc, new)
    layout = _Layout.of(seq, lines)
    spans = _spans(doc, seq, lines)
    nodes = {str(item.get("id")): (i, item) for i, item in enumerate(seq) if isinstance(item, CommentedMap)}
    olds = {r.id: r for r in old}
    blocks = []
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    for rule in new:
        index, node = nodes.get(rule.id, (None, None))
        if index is not None and olds[rule.id].to_data() == rule.to_data():
            blocks.append(("".join(lines[spans[index][0]:spans[index][1]]), index))
        else:  # emitted by ruamel: in the file's line endings (a CRLF file stays CRLF)
            emitted = _emit(node, olds.get(rule.id), rule, layout).replace("\r\n", "\n")
            blocks.append((emitted.replace("\n", newline), index))
    head = "".join(lines[:spans[0][0]])
    tail = "".join(lines[spans[-1][1]:])
    body = ""
    for k, (block, index) in enumerate(blocks):
        body += _ensure_newline(block, newline)
        if k < len(blocks) - 1:
            has_gap = index is not None and index < len(spans) - 1
            body += "".join(lines[spans[index][1]:spans[index + 1][0]]) if has_gap else newline
    return head + body + tail


def _ensure_newline(text: str, newline: str = "\n") -> str:
    return text if text.endswith("\n") else text + newline


def _append_rules(name: str, text: str, doc: Any, new: list[Rule]) -> str:
    """A file without a block-style rule list: its rules written whole (only when it has none to keep)."""
    if isinstance(doc, CommentedMap) and doc.get("rules"):
        raise RulebookError([RuleProblem(name, None, "rules", "written in flow style ([...]); rewrite the "
                                         "list in block style (one '- ' per rule) to save edits into it")])
    kept = re.sub(r"(?m)^rules:.*\n?", "", text)
    if not new:
        return kept
    return _ensure_newline(kept) + "rules:\n" + "\n".join(_emit(None, None, r, _Layout()) for r in new)


@dataclass(frozen=True)
class _Layout:
    """How a file lays out its rule list: dash column, key column, nested mapping indent, gap between rules."""

    offset: int = 2
    sequence: int = 4
    mapping: int = 2

    @classmethod
    def of(cls, seq: CommentedSeq, lines: list[str]) -> _Layout:
        """The layout of an existing block-style rule list."""
        line_no, key_col = seq.lc.item(0)
        dash = len(lines[line_no]) - len(lines[line_no].lstrip(" "))
        mapping = 2
        first = seq[0]
        then = first.get("then") if isinstance(first, CommentedMap) else None
        if isinstance(then, CommentedMap) and not then.fa.flow_style() and then:
            mapping = max(1, then.lc.col - first.lc.col)
        return cls(offset=dash, sequence=key_col, mapping=mapping)


def _spans(doc: CommentedMap, seq: CommentedSeq, lines: list[str]) -> list[tuple[int, int]]:
    """Per rule item, its lines [start, end): from its dash to its last line of content."""
    starts = [seq.lc.item(i)[0] for i in range(len(seq))]
    keys = list(doc)
    after_rules = keys.index("rules") + 1
    limit = doc.lc.key(keys[after_rules])[0] if after_rules < len(keys) else len(lines)
    ends = starts[1:] + [limit]
    spans = []
    for start, end in zip(starts, ends):
        while end > start + 1 and _is_filler(lines[end - 1]):
            end -= 1
        spans.append((start, end))
    return spans


def _is_filler(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _emit(node: CommentedMap | None, old: Rule | None, new: Rule, layout: _Layout) -> str:
    """One rule item as text (``- id: ...`` and its lines) in the file's layout."""
    if node is not None:
        _detach_trailing(node)
    item = _rule_node(new) if node is None or old is None else _sync_rule(node, old, new)
    out = io.StringIO()
    _yaml(layout.sequence, layout.offset, layout.mapping).dump({"rules": [item]}, out)
    lines = out.getvalue().splitlines(keepends=True)[1:]
    while lines and _is_filler(lines[-1]):
        lines.pop()
    return "".join(lines)


def _detach_trailing(node: Any) -> None:
    """Drop the comment lines ruamel attached after a rule's last value: they belong to the gap after
    the rule, which is copied from the original text (an end-of-line comment on that value stays)."""
    while isinstance(node, (CommentedMap, CommentedSeq)) and len(node):
        key = list(node)[-1] if isinstance(node, CommentedMap) else len(node) - 1
        value = node[key]
        if isinstance(value, (CommentedMap, CommentedSeq)) and len(value) and not value.fa.flow_style():
            node = value
            continue
        entry = node.ca.items.get(key)
        slot = 2 if isinstance(node, CommentedMap) else 0
        token = entry[slot] if entry and len(entry) > slot else None
        if token is not None:
            line = node.lc.key(key)[0] if isinstance(node, CommentedMap) else node.lc.item(key)[0]
            mark = getattr(token, "start_mark", None)
            first, newline, _ = token.value.partition("\n")
            inline = mark is not None and mark.line == line and first.strip() and not isinstance(value, _BLOCK)
            if inline:
                token.value = first + newline
            else:
                entry[slot] = None
        return


# -- rule nodes ------------------------------------------------------------------------------

def _rule_node(rule: Rule) -> CommentedMap:
    """A new rule as ruamel data in the shipped style (conditions and recommendations as flow mappings)."""
    data = rule.to_data()
    node = CommentedMap()
    for key, value in data.items():
        node[key] = _new_value(key, value)
    return node


def _new_value(key: str, value: Any, like: Any = None) -> Any:
    """Plain data as ruamel nodes: lists of mappings as flow items, short lists of names in flow style."""
    if isinstance(value, dict):
        node = CommentedMap()
        flow = key == "item" or (isinstance(like, CommentedMap) and like.fa.flow_style())
        for k, v in value.items():
            node[k] = _new_value(k, v, like.get(k) if isinstance(like, CommentedMap) else None)
            if flow and k == "note" and isinstance(node[k], str) and not isinstance(node[k], _STYLED):
                node[k] = DoubleQuotedScalarString(node[k])  # notes in {...} are quoted in the shipped files
        if flow:
            node.fa.set_flow_style()
        return node
    if isinstance(value, (list, tuple)):
        seq = CommentedSeq(_new_value("item" if key in ("when", "recommend") else key, v) for v in value)
        if key not in ("when", "recommend"):
            seq.fa.set_flow_style()
        return seq
    return _scalar(value, like, key)


def _scalar(value: Any, like: Any, key: str = "") -> Any:
    """A scalar in the style of the one it replaces (quoted stays quoted); whole floats as integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    if isinstance(value, str):
        for style in _STYLED:
            if isinstance(like, style):
                return style(value)
        if key == "op":
            return DoubleQuotedScalarString(value)
    return value


def _sync_rule(node: CommentedMap, old: Rule, new: Rule) -> CommentedMap:
    """The parsed rule node changed in place to ``new``, field by field (untouched fields keep their nodes)."""
    data = new.to_data()
    for key in _TEXT_FIELDS:
        if getattr(old, key) != getattr(new, key):
            if key == "note" and not new.note:
                node.pop("note", None)
            else:
                _set(node, key, _scalar(data[key], node.get(key)))
    if old.citation != new.citation:
        _set(node, "citation", _new_value("citation", data["citation"], node.get("citation")))
    if old.when != new.when:
        _set(node, "when", _sync_list(node.get("when"), old.when, new.when, "when"))
    _sync_then(node, old, new, data.get("then") or {})
    return node


def _sync_then(node: CommentedMap, old: Rule, new: Rule, then_data: dict[str, Any]) -> None:
    then = node.get("then")
    if not isinstance(then, CommentedMap):
        node["then"] = then = CommentedMap()
    for key, attribute in _CONCLUSIONS.items():
        before, after = getattr(old, attribute), getattr(new, attribute)
        if before == after:
            continue
        if not after:
            then.pop(key, None)
        else:
            _set(then, key, _sync_list(then.get(key), before, after, key))


#: The conclusions under ``then``: the key a rule file uses and the :class:`Rule` attribute holding it.
_CONCLUSIONS = {"derive": "derive", "recommend": "recommend", "avoid": "avoid", "flag": "flag",
                "continue": "keep", "caution": "caution"}

_ORDER = ("id", "title", "section", "citation", "when", "then", "rationale", "note",
          "recommend", "continue", "derive", "avoid", "flag", "caution")


def _set(node: CommentedMap, key: str, value: Any) -> None:
    """Set a key: an existing one keeps its place, a new one goes where the shipped files put it."""
    if key in node or key not in _ORDER:
        node[key] = value
        return
    later = [i for i, k in enumerate(node) if k in _ORDER and _ORDER.index(k) > _ORDER.index(key)]
    if later:
        node.insert(later[0], key, value)
    else:
        node[key] = value


def _sync_list(seq: Any, old: tuple, new: tuple, key: str) -> CommentedSeq:
    """``seq`` (the parsed list of ``old`` items) changed to hold ``new``: unchanged items keep their nodes."""
    if not isinstance(seq, CommentedSeq) or len(seq) != len(old):
        return _new_value(key, [_item_data(x) for x in new])
    matcher = difflib.SequenceMatcher(None, list(old), list(new), autojunk=False)
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            for i, j in zip(range(i1, i2), range(j1, j2)):
                seq[i] = _sync_item(seq[i], _item_data(new[j]), key)
            continue
        like = seq[i1] if i1 < len(seq) else (seq[0] if len(seq) else None)
        del seq[i1:i2]
        for offset, item in enumerate(new[j1:j2]):
            seq.insert(i1 + offset, _new_item(_item_data(item), like, key))
    return seq


def _item_data(item: Any) -> Any:
    if isinstance(item, Condition):
        return item.to_data()
    if hasattr(item, "agent"):
        return {"agent": item.agent, "rank": item.rank, **({"note": item.note} if item.note else {})}
    return item


def _new_item(data: Any, like: Any, key: str) -> Any:
    if isinstance(data, dict):
        return _new_value("item", data, like)
    return _scalar(data, like, key)


def _sync_item(node: Any, data: Any, key: str) -> Any:
    """One list item changed to ``data``; a mapping keeps its style and the nodes of unchanged keys."""
    if not isinstance(node, CommentedMap) or not isinstance(data, dict):
        return _new_item(data, node, key)
    if set(node) - set(data) and any(k in node for k in ("derived", "not_derived")) != any(
            k in data for k in ("derived", "not_derived")):
        return _new_item(data, node, key)
    for name in [k for k in node if k not in data]:
        del node[name]
    for name, value in data.items():
        current = node.get(name)
        if name in node and _plain(current) == value:
            continue
        node[name] = _new_value(name, value, current) if isinstance(value, (dict, list)) else \
            _scalar(value, current, name)
    return node


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
