"""A form for one rule: every field, a row per condition and per recommendation, checked on every keystroke.

The form only collects what the author types; checking is the loader's job. After
each change it builds the rule's fields as they are written in a rule file and hands
them to a ``validate`` function (:func:`lupus_rules.authoring.editing.edit_rule` or
:func:`~lupus_rules.authoring.editing.add_rule` bound to the rulebook being edited).
The rulebook it returns goes to ``on_valid``; a :class:`~lupus_rules.errors.RulebookError`
is shown under the form with the loader's own message (file, rule, field, the value
given, what is allowed) and nothing else happens, so an invalid edit never reaches
the impact. Not for clinical use.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w

from ..errors import RulebookError
from ..rulebook import OPERATORS, Rulebook
from ._html import esc as _e

__all__ = ["RuleForm", "ConditionRow", "RecommendRow", "value_text", "parse_value", "close_tree", "FORM_STYLE"]

_DERIVED_OPS = {"holds": "derived", "does not hold": "not_derived"}
_LABEL = {"description_width": "92px"}
_NO_VALUE_OPS = ("known", "unknown")

#: Style of the form (text at least 14 px, for projection).
FORM_STYLE = """
<style>
.lr-editor { --jp-widgets-font-size: 14px; --jp-widgets-inline-height: 30px; font-size: 14px; }
.lr-editor input, .lr-editor select, .lr-editor textarea, .lr-editor button,
.lr-editor .widget-label, .lr-editor .widget-label-basic, .lr-editor label,
.lr-editor .widget-html-content, .lr-editor .jupyter-widget-tag { font-size: 14px !important; }
.lr-editor .widget-html-content { line-height: 1.35; }
.lr-form-error { color: #991b1b; background: #fef2f2; border: 1px solid #fecaca; padding: 4px 6px; }
.lr-form-ok { color: #166534; }
.lr-form-heading { font-weight: bold; color: #374151; border-bottom: 1px solid #e5e7eb; margin-top: 4px; }
.lr-editor .widget-tagsinput { max-width: 100%; }
</style>
"""


def value_text(value: Any) -> str:
    """A condition value as the author types it: ``60``, ``59.99``, ``true``, ``intolerant, nonresponse``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def parse_value(kind: str, op: str, text: str) -> Any:
    """The typed text as the value a rule file would hold for a fact of ``kind`` (anything else is left as text).

    Numbers become numbers, ``true``/``false`` booleans, ``in``/``not_in`` a list
    (comma- or ``;``-separated); text that is none of these stays text, for the
    loader to refuse with its own message.
    """
    text = text.strip()
    if kind == "number":
        if re.fullmatch(r"[+-]?\d{1,15}", text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return text or None
        return number if math.isfinite(number) else text
    if kind == "bool":
        return {"true": True, "yes": True, "false": False, "no": False}.get(text.lower(), text or None)
    if op in ("in", "not_in"):
        return [part.strip() for part in re.split(r"[,;]", text) if part.strip()]
    return text


def close_tree(widget: w.Widget) -> None:
    """Close a widget and every widget inside it (their views and kernel-side models go away)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    layout = getattr(widget, "layout", None)
    widget.close()
    if layout is not None:
        layout.close()


class ConditionRow:
    """One condition: what it tests (fact, measure or derived fact), the operator, the value, a remove button."""

    def __init__(self, rulebook: Rulebook, data: Mapping[str, Any], on_change: Callable[[], None],
                 on_remove: Callable[[ConditionRow], None]):
        self.rulebook = rulebook
        vocabulary = rulebook.vocabulary
        options = [(f"{name} ({vocabulary.spec(name).kind})", f"fact:{name}") for name in vocabulary.names()]
        options += [(f"derived: {name}", f"derived:{name}") for name in rulebook.derived_facts]
        subject, op, value = self._split(data)
        if subject not in {v for _, v in options}:  # unknown in the vocabulary: keep it, the loader names it
            options.append((subject.split(":", 1)[1] + " (unknown)", subject))
        self.subject = w.Dropdown(options=options, value=subject, layout=w.Layout(width="235px"))
        self.op = w.Dropdown(options=self._ops(subject), layout=w.Layout(width="122px"))
        self.op.value = op if op in self.op.options else self.op.options[0]
        self.value = w.Text(value=value, placeholder="value", layout=w.Layout(width="150px"))
        self.remove = w.Button(description="✕", tooltip="remove this condition", layout=w.Layout(width="38px"))
        self.widget = w.HBox([self.subject, self.op, self.value, self.remove])
        self.widget.add_class("lr-condition")
        self._sync_value()
        self.subject.observe(self._on_subject, names="value")
        self._quiet = False
        self.op.observe(self._on_op, names="value")
        self.value.observe(lambda _: on_change(), names="value")
        self.remove.on_click(lambda _: on_remove(self))
        self._on_change = on_change

    @staticmethod
    def _split(data: Mapping[str, Any]) -> tuple[str, str, str]:
        for kind, op in (("derived", "holds"), ("not_derived", "does not hold")):
            if kind in data:
                return f"derived:{data[kind]}", op, ""
        return f"fact:{data.get('fact', '')}", str(data.get("op", "")), value_text(data.get("value"))

    def _kind(self, subject: str | None = None) -> str:
        subject = subject or self.subject.value
        if subject.startswith("derived:"):
            return "derived"
        spec = self.rulebook.vocabulary.spec(subject.split(":", 1)[1])
        return spec.kind if spec is not None else "unknown"

    def _ops(self, subject: str) -> tuple[str, ...]:
        kind = self._kind(subject)
        if kind == "derived":
            return tuple(_DERIVED_OPS)
        return OPERATORS.get(kind, tuple(op for ops in OPERATORS.values() for op in ops))

    def _sync_value(self) -> None:
        kind = self._kind()
        self.value.disabled = kind == "derived" or self.op.value in _NO_VALUE_OPS
        spec = None if kind == "derived" else self.rulebook.vocabulary.spec(self.subject.value.split(":", 1)[1])
        if spec is None:
            self.value.placeholder = ""
        elif kind == "number":
            self.value.placeholder = f"{spec.minimum:g} to {spec.maximum:g}"
        elif kind == "bool":
            self.value.placeholder = "true or false"
        else:
            self.value.placeholder = ", ".join(spec.allowed)[:60]

    def _on_op(self, _: Any) -> None:
        if not self._quiet:
            self._sync_value()
            self._on_change()

    def _on_subject(self, _: Any) -> None:
        ops = self._ops(self.subject.value)
        keep = self.op.value if self.op.value in ops else ops[0]
        self._quiet = True  # one check for the whole switch, not one per intermediate state
        try:
            self.op.options = ops
            self.op.value = keep
        finally:
            self._quiet = False
        self._sync_value()
        self._on_change()

    def data(self) -> dict[str, Any]:
        """The condition as it is written in a rule file."""
        kind, name = self.subject.value.split(":", 1)
        if kind == "derived":
            return {_DERIVED_OPS[self.op.value]: name}
        if self.op.value in _NO_VALUE_OPS:
            return {"fact": name, "op": self.op.value}
        return {"fact": name, "op": self.op.value, "value": parse_value(self._kind(), self.op.value, self.value.value)}


class RecommendRow:
    """One recommendation: agent, rank (lower = stronger), optional note, a remove button."""

    def __init__(self, rulebook: Rulebook, data: Mapping[str, Any], on_change: Callable[[], None],
                 on_remove: Callable[[RecommendRow], None]):
        agents = list(rulebook.agents)
        agent = str(data.get("agent", agents[0]))
        self.agent = w.Dropdown(options=agents if agent in agents else [*agents, agent], value=agent,
                                layout=w.Layout(width="210px"))
        self.rank = w.Text(value=str(data.get("rank", "")), placeholder="rank", layout=w.Layout(width="70px"),
                           tooltip="rank: a whole number, lower = stronger")
        self.note = w.Text(value=str(data.get("note", "") or ""), placeholder="note (optional)",
                           layout=w.Layout(width="227px"))
        self.remove = w.Button(description="✕", tooltip="remove this recommendation", layout=w.Layout(width="38px"))
        self.widget = w.HBox([self.agent, self.rank, self.note, self.remove])
        self.widget.add_class("lr-recommend")
        for control in (self.agent, self.rank, self.note):
            control.observe(lambda _: on_change(), names="value")
        self.remove.on_click(lambda _: on_remove(self))

    def data(self) -> dict[str, Any]:
        """The recommendation as it is written in a rule file (a rank that is not a whole number stays text)."""
        text = self.rank.value.strip()
        rank: Any = int(text) if re.fullmatch(r"[+-]?\d{1,18}", text) else (text or None)
        out = {"agent": self.agent.value, "rank": rank}
        if self.note.value.strip():
            out["note"] = self.note.value.strip()
        return out


class RuleForm:
    """Edit one rule (see the module docstring). ``rulebook`` supplies the vocabulary for the dropdowns.

    ``data`` is the rule as written in a rule file (:func:`~lupus_rules.authoring.editing.rule_data`);
    ``validate(fields)`` returns the edited rulebook or raises RulebookError, whose message also
    goes to ``on_invalid``. After each change
    ``rulebook`` (the last accepted result, or None) and ``error`` (the loader's message, or "")
    say where the form stands.
    """

    def __init__(self, rulebook: Rulebook, data: Mapping[str, Any], validate: Callable[[dict[str, Any]], Rulebook],
                 on_valid: Callable[[Rulebook], None] | None = None, heading: str = "",
                 on_invalid: Callable[[str], None] | None = None):
        self.vocabulary_book = rulebook
        self.validate = validate
        self.on_valid = on_valid
        self.on_invalid = on_invalid
        self.rulebook: Rulebook | None = None
        self.error = ""
        self._loading = True
        then = dict(data.get("then") or {})
        sections = sorted({r.section for r in rulebook.rules})
        self.id = w.Text(value=str(data.get("id", "")), description="id", style=_LABEL,
                         layout=w.Layout(width="330px"))
        self.title = w.Text(value=str(data.get("title", "")), description="title", style=_LABEL,
                            layout=w.Layout(width="98%"))
        self.section = w.Combobox(value=str(data.get("section", "")), options=sections, ensure_option=False,
                                  description="section", style=_LABEL, layout=w.Layout(width="98%"))
        self.citation = w.Text(value=", ".join(map(str, data.get("citation") or [])), description="citation",
                               placeholder=f"reference numbers: {', '.join(map(str, sorted(rulebook.references)))}",
                               style=_LABEL, layout=w.Layout(width="330px"))
        self.rationale = w.Textarea(value=str(data.get("rationale", "")), description="rationale", style=_LABEL,
                                    rows=2, layout=w.Layout(width="98%"))
        self.note = w.Textarea(value=str(data.get("note", "") or ""), description="note", style=_LABEL, rows=2,
                               layout=w.Layout(width="98%"))
        self.conditions: list[ConditionRow] = []
        self.condition_box = w.VBox()
        self.add_condition_button = w.Button(description="+ condition", layout=w.Layout(width="130px"))
        self.recommend: list[RecommendRow] = []
        self.recommend_box = w.VBox()
        self.add_recommend_button = w.Button(description="+ recommend", layout=w.Layout(width="130px"))
        self.avoid = self._tags(then.get("avoid"), list(rulebook.agents), "an agent")
        self.flag = self._tags(then.get("flag"), list(rulebook.flags), "a flag")
        self.derive = self._tags(then.get("derive"), list(rulebook.derived_facts), "a derived fact")
        self.keep = self._tags(then.get("continue"), list(rulebook.agents), "an agent taken now")
        self.caution = self._tags(then.get("caution"), list(rulebook.cautions), "a caution")
        self.message = w.HTML()
        self.preview = w.HTML()
        for item in data.get("when") or []:
            self._add_condition(item)
        for item in then.get("recommend") or []:
            self._add_recommend(item)
        self.add_condition_button.on_click(lambda _: self._add_condition(self._blank_condition(), check=True))
        self.add_recommend_button.on_click(
            lambda _: self._add_recommend({"agent": next(iter(rulebook.agents)), "rank": 50}, check=True))
        for control in (self.id, self.title, self.section, self.citation, self.rationale, self.note, self.avoid,
                        self.flag, self.derive, self.keep, self.caution):
            control.observe(lambda _: self.check(), names="value")
        self.heading = w.HTML()
        self.set_heading(heading)
        self.widget = w.VBox([
            self.heading,
            self.id, self.title, self.section, self.citation,
            w.HTML("<div class='lr-form-heading'>when (all must hold)</div>"), self.condition_box,
            self.add_condition_button,
            w.HTML("<div class='lr-form-heading'>then</div>"), self.recommend_box, self.add_recommend_button,
            self._labelled("avoid", self.avoid), self._labelled("flag", self.flag),
            self._labelled("derive", self.derive), self._labelled("continue", self.keep),
            self._labelled("caution", self.caution), self.rationale, self.note, self.message, self.preview],
            layout=w.Layout(width="100%"))
        self.widget.add_class("lr-rule-form")
        self._loading = False
        self.check()

    # -- building -------------------------------------------------------------------------

    @staticmethod
    def _tags(values: Any, allowed: list[str], what: str) -> w.TagsInput:
        values = list(values or [])
        return w.TagsInput(value=values, allowed_tags=allowed + [v for v in values if v not in allowed],
                           allow_duplicates=False, placeholder=f"type {what} (e.g. {allowed[0]})" if allowed else "",
                           layout=w.Layout(width="calc(100% - 100px)"))

    @staticmethod
    def _labelled(name: str, control: w.Widget) -> w.HBox:
        return w.HBox([w.Label(name, layout=w.Layout(width="92px")), control], layout=w.Layout(width="98%"))

    def _blank_condition(self) -> dict[str, Any]:
        name = self.vocabulary_book.vocabulary.names()[0]
        spec = self.vocabulary_book.vocabulary.spec(name)
        op = OPERATORS[spec.kind][0]
        return {"fact": name, "op": op, "value": spec.allowed[0] if spec.allowed else None}

    def _add_condition(self, data: Mapping[str, Any], check: bool = False) -> ConditionRow:
        row = ConditionRow(self.vocabulary_book, data, self.check, self._remove_condition)
        self.conditions.append(row)
        self.condition_box.children = tuple(r.widget for r in self.conditions)
        if check:
            self.check()
        return row

    def _remove_condition(self, row: ConditionRow) -> None:
        self.conditions.remove(row)
        self.condition_box.children = tuple(r.widget for r in self.conditions)
        close_tree(row.widget)
        self.check()

    def _add_recommend(self, data: Mapping[str, Any], check: bool = False) -> RecommendRow:
        row = RecommendRow(self.vocabulary_book, data, self.check, self._remove_recommend)
        self.recommend.append(row)
        self.recommend_box.children = tuple(r.widget for r in self.recommend)
        if check:
            self.check()
        return row

    def _remove_recommend(self, row: RecommendRow) -> None:
        self.recommend.remove(row)
        self.recommend_box.children = tuple(r.widget for r in self.recommend)
        close_tree(row.widget)
        self.check()

    def set_heading(self, text: str) -> None:
        """The line above the form (e.g. which rule is edited); empty: none."""
        self.heading.value = f"<div class='lr-form-heading'>{_e(text)}</div>" if text else ""

    def close(self) -> None:
        """Close every widget of the form (when the editor opens another rule)."""
        close_tree(self.widget)

    def add_condition(self, data: Mapping[str, Any] | None = None) -> ConditionRow:
        """Add a condition row (default: a blank one on the first fact) and re-check."""
        return self._add_condition(data or self._blank_condition(), check=True)

    def add_recommendation(self, agent: str, rank: int | str) -> RecommendRow:
        """Add a recommendation row and re-check."""
        return self._add_recommend({"agent": agent, "rank": rank}, check=True)

    # -- checking -------------------------------------------------------------------------

    def fields(self) -> dict[str, Any]:
        """The rule's fields as written in a rule file, conclusions by name (what ``edit_rule`` takes)."""
        return {
            "id": self.id.value.strip(), "title": self.title.value.strip(), "section": self.section.value.strip(),
            "citation": [int(p) if p.isdigit() else p for p in re.split(r"[,;\s]+", self.citation.value) if p],
            "when": [row.data() for row in self.conditions],
            "recommend": [row.data() for row in self.recommend],
            "avoid": list(self.avoid.value), "flag": list(self.flag.value), "derive": list(self.derive.value),
            "continue": list(self.keep.value), "caution": list(self.caution.value),
            "rationale": self.rationale.value.strip(), "note": self.note.value.strip(),
        }

    def check(self) -> Rulebook | None:
        """Validate the form through ``validate`` (the loader); show its message or pass the rulebook on."""
        if self._loading:
            return None
        fields = self.fields()
        try:
            book = self.validate(fields)
        except RulebookError as exc:
            self.rulebook, self.error = None, str(exc)
            lines = "".join(f"<div>{_e(line)}</div>" for line in self.error.splitlines() if line.strip())
            self.message.value = (f"<div class='lr-form-error'><b>Not accepted by the rule loader</b> (the impact "
                                  f"shows the last accepted edit):{lines}</div>")
            if self.on_invalid is not None:
                self.on_invalid(self.error)
            return None
        self.rulebook, self.error = book, ""
        self.message.value = "<div class='lr-form-ok'>✓ accepted by the rule loader</div>"
        self.preview.value = self._preview(book, fields["id"])
        if self.on_valid is not None:
            self.on_valid(book)
        return book

    @staticmethod
    def _preview(book: Rulebook, rule_id: str) -> str:
        rule = book.rule(rule_id)
        then = [f"derive {', '.join(rule.derive)}" if rule.derive else "",
                "recommend " + ", ".join(f"{r.agent} ({r.rank})" for r in rule.recommend) if rule.recommend else "",
                f"avoid {', '.join(rule.avoid)}" if rule.avoid else "", f"flag {', '.join(rule.flag)}" if rule.flag
                else "", f"continue {', '.join(rule.keep)}" if rule.keep else "",
                f"caution {', '.join(rule.caution)}" if rule.caution else ""]
        when = " AND ".join(c.describe() for c in rule.when) or "always"
        return (f"<div class='lr-rule-text' style='color:#374151'><b>{_e(rule.id)}</b> (stratum {rule.stratum}): "
                f"<b>when</b> {_e(when)} <b>then</b> {_e('; '.join(t for t in then if t))}</div>")
