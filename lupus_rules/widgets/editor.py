"""The rule editor: edit any rule, add or drop rules, see the impact on the suite at once, then save to YAML.

``RuleEditor(rulebook="my_rules/", scenarios_dir="scenarios/")``:

* pick a rule (by file, then rule), edit it in a :class:`~lupus_rules.widgets.rule_form.RuleForm`
  (every keystroke re-checked by the rule loader through :mod:`lupus_rules.authoring.editing`),
  add a new rule after it or drop it; edits to several rules add up in :attr:`RuleEditor.edited`;
  a rule whose id is edited is shown renamed (picker, form heading, "Edits so far": ``was OLD``);
* the impact (:mod:`lupus_rules.authoring.impact`, shown by
  :class:`~lupus_rules.widgets.impact_view.ImpactView`) is recomputed after every accepted edit:
  changed scenarios before/after, pass → FAIL marked, "outcome changes only" on by default;
  texts that still name a replaced number are listed;
* "Show diff" plans the save (:func:`lupus_rules.authoring.saving.plan_save`: only the rules
  that changed are rewritten, everything else kept byte for byte) and shows the unified diff;
  "Save" writes it (:func:`~lupus_rules.authoring.saving.save_plan`) into the rule folder,
  reloads the folder and starts again from what is now on disk.

Not for clinical use.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..authoring.editing import add_rule, drop_rule, edit_rule, rule_data
from ..authoring.impact import Impact, impact, load_impact_suite, suite_outcomes
from ..authoring.ruldiff import stale_texts
from ..authoring.saving import SavePlan, plan_save, save_plan
from ..errors import LupusRulesError, RulebookError
from ..presets import default_scenarios_dir
from ..result import DISCLAIMER
from ..rulebook import DEFAULT_RULES_DIR, Rulebook, load_rulebook
from ._html import esc as _e
from .impact_view import ImpactView
from .rule_form import FORM_STYLE, RuleForm, close_tree

__all__ = ["RuleEditor", "diff_html"]

_ALL = "(every file)"


def diff_html(diff: str) -> str:
    """A unified diff as a ``<pre>`` block: added lines green, removed lines red, hunk headers grey."""
    if not diff:
        return "<div class='lr-diff'><i>No change to save: the folder already holds these rules.</i></div>"
    lines = []
    for line in diff.splitlines():
        color = ("#166534;background:#f0fdf4" if line.startswith("+") and not line.startswith("+++") else
                 "#991b1b;background:#fef2f2" if line.startswith("-") and not line.startswith("---") else
                 "#6b7280" if line.startswith(("@@", "+++", "---")) else "#111827")
        lines.append(f"<span style='color:{color}'>{_e(line) or ' '}</span>")
    return ("<pre class='lr-diff' style='font-family:monospace;font-size:14px;line-height:1.35;max-height:360px;overflow:auto;"
            "border:1px solid #e5e7eb;padding:6px;margin:0;white-space:pre-wrap'>" + "\n".join(lines) + "</pre>")


class RuleEditor:
    """Edit, add and drop rules of a rule folder, see the suite impact at once, review the diff and save.

    ``rulebook``: a rule folder (or a :class:`Rulebook` loaded from one); ``None`` is the shipped
    folder. ``scenarios_dir``: the suite (default: the shipped ``scenarios/``). State, for notebooks
    and tests: :attr:`base` (what the folder holds), :attr:`edited` (every accepted edit),
    :attr:`impact`, :attr:`form`, :attr:`plan` (after :meth:`show_diff`), :attr:`error`, :attr:`renamed`
    (rules whose id was edited in the form: new id -> id in the folder).
    """

    def __init__(self, rulebook: Rulebook | str | Path | None = None,
                 scenarios_dir: str | Path | None = None, rule_id: str | None = None):
        self.folder = _folder(rulebook)
        self.base = rulebook if isinstance(rulebook, Rulebook) else load_rulebook(self.folder)
        self.edited = self.base
        self.suite = load_impact_suite(scenarios_dir if scenarios_dir is not None else default_scenarios_dir(),
                                       self.base)
        self._before = suite_outcomes(self.base, self.suite)
        self.impact: Impact = impact(self.base, self.edited, self.suite, before=self._before)
        self.plan: SavePlan | None = None
        self.error = ""
        self.seconds = 0.0
        self.form: RuleForm | None = None
        self.renamed: dict[str, str] = {}  # current id -> its id in the folder, for rules renamed in the form
        self._updating = False
        self.file = w.Dropdown(description="file", style={"description_width": "50px"},
                               layout=w.Layout(width="100%"))
        self.rule = w.Dropdown(description="rule", style={"description_width": "50px"},
                               layout=w.Layout(width="100%"))
        self.new_button = w.Button(description="+ new rule", tooltip="add a rule after the selected one",
                                   layout=w.Layout(width="130px"))
        self.drop_button = w.Button(description="drop this rule", button_style="danger",
                                    layout=w.Layout(width="140px"))
        self.discard_button = w.Button(description="discard all edits", layout=w.Layout(width="160px"))
        self.form_box = w.VBox(layout=w.Layout(width="100%"))
        self.changes_html = w.HTML()
        self.impact_view = ImpactView()
        self.diff_button = w.Button(description="Show diff", button_style="info", layout=w.Layout(width="120px"))
        self.save_button = w.Button(description="Save", button_style="success", disabled=True,
                                    layout=w.Layout(width="120px"))
        self.save_html = w.HTML()
        self.diff_area = w.HTML()
        self.file.observe(self._on_file, names="value")
        self.rule.observe(self._on_rule, names="value")
        self.new_button.on_click(lambda _: self.new_rule())
        self.drop_button.on_click(lambda _: self.drop_rule())
        self.discard_button.on_click(lambda _: self.discard())
        self.diff_button.on_click(lambda _: self.show_diff())
        self.save_button.on_click(lambda _: self._save_clicked())
        self.widget = self._layout()
        self._fill_pickers(rule_id or self._first_rule())
        self.select(self.rule.value)
        self._show_impact()

    # -- layout ---------------------------------------------------------------------------

    def _layout(self) -> w.Box:
        left = w.VBox([self.file, self.rule, w.HBox([self.new_button, self.drop_button, self.discard_button]),
                       self.form_box], layout=w.Layout(width="560px", min_width="560px", padding="0 8px 0 0"))
        right = w.VBox([w.HTML("<div class='lr-form-heading'>Impact on the scenario suite</div>"),
                        self.impact_view.widget, self.changes_html],
                       layout=w.Layout(flex="1 1 0", min_width="0", padding="0 0 0 8px",
                                       border_left="1px solid #e5e7eb"))
        save = w.VBox([w.HTML("<div class='lr-form-heading'>Save into the rule folder</div>"),
                       w.HBox([self.diff_button, self.save_button, self.save_html]), self.diff_area])
        box = w.VBox([w.HTML(FORM_STYLE), w.HTML(f"<div style='color:#b91c1c'><b>{_e(DISCLAIMER)}</b></div>"),
                      w.HBox([left, right], layout=w.Layout(width="100%")), save],
                     layout=w.Layout(width="100%", max_width="1340px"))
        box.add_class("lr-editor")
        return box

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "RuleEditor (interactive widget: needs a running kernel)"
        return bundle

    # -- picking --------------------------------------------------------------------------

    def _first_rule(self) -> str:
        return min(self.edited.rules, key=lambda r: r.position).id

    def _fill_pickers(self, rule_id: str) -> None:
        """The file and rule dropdowns for the edited rulebook, ``rule_id`` selected, edited rules marked."""
        files: dict[str, list[str]] = {}
        for r in sorted(self.edited.rules, key=lambda r: r.position):
            sections = files.setdefault(r.file, [])
            if r.section not in sections:
                sections.append(r.section)
        every = self.file.value == _ALL
        self._updating = True
        try:
            self.file.options = [(_ALL, _ALL)] + [(f"{name} — {', '.join(secs)}"[:90], name)
                                                  for name, secs in files.items()]
            self.file.value = _ALL if every else self.edited.rule(rule_id).file
            self._fill_rules(rule_id)
        finally:
            self._updating = False

    def _rule_options(self) -> list[tuple[str, str]]:
        rules = [r for r in sorted(self.edited.rules, key=lambda r: r.position)
                 if self.file.value in (_ALL, r.file)]
        base = {r.id: r.to_data() for r in self.base.rules}
        renamed = self._renames()
        marks = {r.id: "✎ " if r.id in renamed else "+ " if r.id not in base else "✎ " if base[r.id] != r.to_data()
                 else "" for r in rules}
        was = {r.id: f" (was {renamed[r.id]})" if r.id in renamed else "" for r in rules}
        return [(f"{marks[r.id]}{r.id}{was[r.id]} · {r.title}"[:95], r.id) for r in rules]

    def _renames(self) -> dict[str, str]:
        """Rules renamed in the form and still so: current id -> id in the folder."""
        ids, base = set(self.edited.rule_ids), set(self.base.rule_ids)
        return {new: old for new, old in self.renamed.items() if new in ids and old in base and old not in ids}

    def _heading(self, rule_id: str) -> str:
        was = self._renames().get(rule_id)
        return f"Editing {rule_id}{f' (was {was})' if was else ''} ({self.edited.rule(rule_id).file})"

    def _fill_rules(self, rule_id: str | None) -> None:
        options = self._rule_options()
        ids = [value for _, value in options]
        self.rule.options = options
        self.rule.value = rule_id if rule_id in ids else (ids[0] if ids else None)

    def _refresh_labels(self) -> None:
        """Re-mark edited and added rules in the rule dropdown, without reopening the form."""
        options = self._rule_options()
        if options == list(self.rule.options):
            return
        ids = [value for _, value in options]
        typed = self.form.id.value.strip() if self.form is not None else None
        self._updating = True
        try:
            self.rule.options = options
            self.rule.value = next((i for i in (typed, self.rule.value) if i in ids), ids[0] if ids else None)
        finally:
            self._updating = False

    def _on_file(self, change: dict[str, Any]) -> None:
        if self._updating or change["new"] is None:
            return
        self._updating = True
        try:
            current = self.rule.value
            self._fill_rules(current)
        finally:
            self._updating = False
        if self.rule.value != (self.form.id.value if self.form else None):
            self.select(self.rule.value)

    def _on_rule(self, change: dict[str, Any]) -> None:
        if not self._updating and change["new"] is not None:
            self.select(change["new"])

    # -- editing --------------------------------------------------------------------------

    def select(self, rule_id: str) -> RuleForm:
        """Open one rule of the edited rulebook in the form (edits of other rules are kept)."""
        rule = self.edited.rule(rule_id)
        if self.rule.value != rule_id:
            self._fill_pickers(rule_id)
        book = self.edited
        self.error = ""
        self._close_form()
        origin = self._renames().get(rule_id, rule_id)
        self.form = RuleForm(book, rule_data(book, rule_id), lambda fields: edit_rule(book, rule_id, **fields),
                             lambda edited: self._accept_edit(edited, origin), heading=self._heading(rule.id),
                             on_invalid=self._refused)
        self.form_box.children = (self.form.widget,)
        return self.form

    def _accept_edit(self, book: Rulebook, origin: str) -> None:
        """An accepted edit of the open rule, first known as ``origin``: its id may be a new one (a rename)."""
        typed = self.form.id.value.strip() if self.form is not None else origin
        self.renamed = {new: old for new, old in self.renamed.items() if old != origin}
        if typed != origin and origin in self.base.rule_ids:
            self.renamed[typed] = origin
        self._accept(book)
        if self.form is not None and typed in book.rule_ids:
            self.form.set_heading(self._heading(typed))

    def new_rule(self, after: str | None = None) -> RuleForm:
        """Open a form for a new rule placed after ``after`` (default: the selected rule), in its file.

        The new rule joins the edited rulebook as soon as the loader accepts it (it needs a title,
        a rationale and a conclusion at least); until then the loader's message is shown.
        """
        after = after or self.rule.value
        anchor = self.edited.rule(after)
        book = self.edited
        taken = set(book.rule_ids)
        new_id = next(f"R-NEW-{n:02d}" for n in range(1, len(taken) + 2) if f"R-NEW-{n:02d}" not in taken)
        template = {"id": new_id, "title": "", "section": anchor.section, "citation": list(anchor.citation),
                    "when": [], "then": {}, "rationale": ""}
        self._close_form()
        self.form = RuleForm(book, template, lambda fields: add_rule(book, fields, after=after), self._accept,
                             heading=f"New rule after {after} in {anchor.file} (joins the rulebook once the "
                                     "loader accepts it)", on_invalid=self._refused)
        self.form_box.children = (self.form.widget,)
        return self.form

    def _close_form(self) -> None:
        if self.form is not None:
            self.form_box.children = ()
            self.form.close()
        self.form = None

    def close(self) -> None:
        """Close every widget of the editor (a notebook that is done with it frees them)."""
        self._close_form()
        close_tree(self.widget)

    def drop_rule(self, rule_id: str | None = None) -> bool:
        """Drop a rule (default: the selected one); False, with the loader's message in :attr:`error`, if refused."""
        rule_id = rule_id or self.rule.value
        try:
            book = drop_rule(self.edited, rule_id)
        except RulebookError as exc:
            self.error = str(exc)
            message = "".join(f"<div>{_e(line)}</div>" for line in self.error.splitlines())
            self.form.message.value = (f"<div class='lr-form-error'><b>Cannot drop {_e(rule_id)}</b>: "
                                       f"{message}</div>") if self.form else ""
            return False
        rules = sorted(self.edited.rules, key=lambda r: r.position)
        at = [r.id for r in rules].index(rule_id)
        neighbour = (rules[at + 1] if at + 1 < len(rules) else rules[at - 1]).id
        self._accept(book)
        self._fill_pickers(neighbour)
        self.select(neighbour)
        return True

    def discard(self) -> None:
        """Forget every edit: back to what the folder holds."""
        self.renamed = {}
        self._accept(self.base)
        self._fill_pickers(self.rule.value if self.rule.value in self.base.rule_ids else self._first_rule())
        self.select(self.rule.value)

    def _accept(self, book: Rulebook) -> None:
        """An edit the loader accepted: it becomes :attr:`edited` and the impact is recomputed."""
        self.edited = book
        self.error = ""
        started = time.perf_counter()
        self.impact = impact(self.base, self.edited, self.suite, before=self._before)
        self.seconds = time.perf_counter() - started
        self._show_impact()
        self._refresh_labels()
        if self.plan is not None and self.plan.rulebook.version != book.version:
            self.plan = None
            self.save_button.disabled = True
            self.save_html.value = "<i>edited since the diff: press Show diff again</i>"

    def _refused(self, message: str) -> None:
        """The loader refused the form's last change: the impact stays, marked as not updated."""
        self.impact_view.hold("not updated: the last change is refused by the rule loader (see under the form)")

    def _show_impact(self) -> None:
        self.impact_view.show(self.impact)
        changed = _changed(self.base, self.edited, self._renames())
        lines = [f"<b>{_e(kind)}</b>: {_e(', '.join(ids))}" for kind, ids in changed.items() if ids]
        stale = stale_texts(self.base, self.edited)
        lines += [f"<span class='lr-stale' style='color:#92400e'>⚠ {_e(text)}</span>"
                  for text in stale["description"]]
        self.changes_html.value = ("<div class='lr-edits'><div class='lr-form-heading'>Edits so far</div>"
                                   + ("<br>".join(lines) or "<i>none yet</i>")
                                   + f"<div style='color:#6b7280'>rulebook {_e(self.base.version)} → "
                                     f"{_e(self.edited.version)}</div></div>")

    # -- saving ---------------------------------------------------------------------------

    def show_diff(self) -> SavePlan | None:
        """Plan the save and show its unified diff (only the changed rules); enables Save."""
        try:
            self.plan = plan_save(self.folder, self.edited)
        except LupusRulesError as exc:
            self.plan, self.error = None, str(exc)
            self.diff_area.value = f"<div class='lr-form-error'>{_e(exc)}</div>"
            self.save_button.disabled = True
            return None
        self.diff_area.value = diff_html(self.plan.diff())
        self.save_button.disabled = not self.plan.files
        self.save_html.value = (f"will write {_e(', '.join(self.plan.files))} in {_e(self.folder)}"
                                if self.plan.files else "")
        return self.plan

    def save(self) -> list[Path]:
        """Write the planned diff (planning it first if needed), reload the folder and start from it."""
        plan = self.plan if self.plan is not None and self.plan.rulebook.version == self.edited.version \
            else self.show_diff()
        if plan is None:
            raise LupusRulesError(self.error)
        written = save_plan(plan)
        reloaded = load_rulebook(self.folder)
        ids = ", ".join(plan.changed_rules) or "no rule"
        self.save_html.value = (f"<span class='lr-saved' style='color:#166534'>Wrote "
                                f"{_e(', '.join(p.name for p in written) or 'nothing')} ({_e(ids)}); the folder "
                                f"reloads as rulebook {_e(reloaded.version)}</span>")
        self.base = self.edited = reloaded
        self.renamed = {}
        self._before = suite_outcomes(self.base, self.suite)
        self.plan = None
        self.save_button.disabled = True
        self.diff_area.value = ""
        current = self.rule.value if self.rule.value in reloaded.rule_ids else self._first_rule()
        self._accept(reloaded)
        self._fill_pickers(current)
        self.select(current)
        return written

    def _save_clicked(self) -> None:
        try:
            self.save()
        except LupusRulesError as exc:
            self.error = str(exc)
            self.save_html.value = f"<span class='lr-form-error'>{_e(exc)}</span>"


def _folder(rulebook: Rulebook | str | Path | None) -> Path:
    if rulebook is None:
        return DEFAULT_RULES_DIR
    if isinstance(rulebook, Rulebook):
        source = Path(rulebook.source.removesuffix(" (edited)")) if rulebook.source else None
        if source is None or not source.is_dir():
            raise LupusRulesError(
                f"rulebook: loaded from {rulebook.source or 'documents'!r}, not a rule folder; allowed: a "
                "rule folder (or a rulebook loaded from one), so that edits can be saved back into it")
        return source
    return Path(rulebook)


def _changed(base: Rulebook, edited: Rulebook, renamed: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Ids of the rules changed, renamed (``OLD → NEW``), added and dropped by the edits."""
    renamed = renamed or {}
    old = {r.id: r.to_data() for r in base.rules}
    new = {r.id: r.to_data() for r in sorted(edited.rules, key=lambda r: r.position)}
    return {"changed": [i for i in new if i in old and old[i] != new[i]],
            "renamed": [f"{renamed[i]} → {i}" for i in new if i in renamed],
            "added": [i for i in new if i not in old and i not in renamed],
            "dropped": [i for i in old if i not in new and i not in renamed.values()]}
