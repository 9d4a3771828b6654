"""Rule edits saved back to YAML (authoring/editing.py, authoring/saving.py), as an author does them:
edit -> diff -> save -> reload -> lint -> suite, on a copy of the shipped rule folder."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lupus_rules.authoring import lint
from lupus_rules.authoring.editing import add_rule, drop_rule, edit_rule, rule_data
from lupus_rules.authoring.saving import plan_save, save_plan, save_rulebook
from lupus_rules.errors import RulebookError
from lupus_rules.rulebook import DEFAULT_RULES_DIR, load_rulebook
from lupus_rules.suite import check_suite

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, target, ignore=shutil.ignore_patterns("variants"))
    return target


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _changed_lines(diff: str) -> list[str]:
    return [line for line in diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def _threshold_line(folder: Path, rule_id: str) -> str:
    """The line of the rule file holding the rule's first condition (found in the text, not assumed)."""
    rule = load_rulebook(folder).rule(rule_id)
    lines = (folder / rule.file).read_text().splitlines()
    start = lines.index(f"  - id: {rule_id}")
    return next(line for line in lines[start:] if line.strip().startswith("- {fact:"))


def test_threshold_edit_diff_save_reload_lint_suite(folder: Path):
    book = load_rulebook(folder)
    before_files = _snapshot(folder)
    old_line = _threshold_line(folder, "R-KID-01")
    edited = edit_rule(book, "R-KID-01", when=[{"fact": "egfr", "op": ">=", "value": 45}])

    plan = plan_save(folder, edited)
    assert plan.files == (book.rule("R-KID-01").file,)
    assert plan.changed_rules == ("R-KID-01",)
    assert _changed_lines(plan.diff()) == ["-" + old_line, "+" + old_line.replace("60", "45")]
    assert _snapshot(folder) == before_files  # planning writes nothing

    save_plan(plan)
    after_files = _snapshot(folder)
    assert {n for n in after_files if after_files[n] != before_files[n]} == set(plan.files)
    saved = load_rulebook(folder)
    assert saved.version == edited.version != book.version
    assert [c.describe() for c in saved.rule("R-KID-01").when] == ["egfr >= 45"]
    assert lint(saved).passed
    in_memory, on_disk = check_suite(SCENARIOS, edited), check_suite(SCENARIOS, saved)
    assert [(c.scenario.id, c.passed) for c in on_disk.checks] == [(c.scenario.id, c.passed) for c in in_memory.checks]
    assert on_disk.rulebook_version == saved.version


def test_comments_inside_and_around_an_edited_rule_stay(folder: Path):
    book = load_rulebook(folder)
    path = folder / book.rule("R-KID-01").file
    text = path.read_text()
    marked = text.replace("  - id: R-KID-01\n", "  # reviewed by the committee\n  - id: R-KID-01\n", 1)
    marked = marked.replace("    when:\n      - {fact: egfr", "    when:  # KDIGO G1-G2\n      - {fact: egfr", 1)
    assert marked.count("#") == text.count("#") + 2
    path.write_text(marked)
    book = load_rulebook(folder)
    save_rulebook(folder, edit_rule(book, "R-KID-01", when=[{"fact": "egfr", "op": ">=", "value": 45}],
                                    title="Preserved kidney function (eGFR 45)"))
    saved = path.read_text()
    assert "  # reviewed by the committee\n  - id: R-KID-01\n" in saved
    assert "    when:  # KDIGO G1-G2\n" in saved
    comments = lambda t: [line for line in t.splitlines() if line.lstrip().startswith("#") or "  # " in line]
    assert comments(saved) == comments(marked)


def test_every_field_added_and_dropped_rules_round_trip(folder: Path):
    book = load_rulebook(folder)
    new_rule = {**rule_data(book, "R-FL-03"), "id": "R-FL-90", "title": "Azathioprine, second copy"}
    edited = edit_rule(
        book, "R-FL-01", title="MMF first", citation=[1, 2], rationale="Edited rationale.", note="edited note",
        recommend=[{"agent": "mycophenolate", "rank": 30, "note": "new dose"}, {"agent": "azathioprine", "rank": 45}],
        avoid=["cyclophosphamide"], flag=["monitoring_2_4_weeks"], derive=["treatment_change"])
    edited = edit_rule(edited, "R-FL-02", note=None)
    edited = add_rule(edited, new_rule, after="R-FL-01")
    edited = add_rule(edited, {**rule_data(book, "R-FL-03"), "id": "R-NEW-01"}, file="95_new.yaml")
    edited = drop_rule(edited, "R-SW-03")

    plan = save_rulebook(folder, edited)
    assert plan.before["95_new.yaml"] is None and "/dev/null" in plan.diff()
    saved = load_rulebook(folder)
    assert saved.version == edited.version
    for rule_id in ("R-FL-01", "R-FL-02", "R-FL-90", "R-NEW-01"):
        assert rule_data(saved, rule_id) == rule_data(edited, rule_id)
    assert "R-SW-03" not in saved.rule_ids
    order = [r.id for r in sorted(saved.rules, key=lambda r: r.position)]
    assert order.index("R-FL-90") == order.index("R-FL-01") + 1
    assert "note" not in rule_data(saved, "R-FL-02")


def test_continue_and_caution_edits_diff_save_reload(folder: Path):
    """``continue`` (Rule.keep) and ``caution`` are edited, planned, saved and reloaded like any field."""
    book = load_rulebook(folder)
    assert book.rule("R-FL-02").keep == ("mycophenolate",) and not book.rule("R-FL-02").caution
    assert book.rule("R-SAFE-LEF-UNKNOWN").caution == ("egfr_before_leflunomide",)
    before = _snapshot(folder)
    edited = edit_rule(book, "R-FL-02", keep=["mycophenolate", "hydroxychloroquine"], caution=["mmf_dose_kidney"])
    edited = edit_rule(edited, "R-SAFE-LEF-UNKNOWN", caution=["egfr_before_leflunomide", "egfr_before_cni"])
    assert edited.rule("R-FL-02").keep == ("mycophenolate", "hydroxychloroquine")
    assert edited.rule("R-FL-02").caution == ("mmf_dose_kidney",)
    assert rule_data(edited, "R-FL-02")["then"]["continue"] == ["mycophenolate", "hydroxychloroquine"]

    plan = plan_save(folder, edited)
    assert sorted(plan.files) == [book.rule("R-FL-02").file, book.rule("R-SAFE-LEF-UNKNOWN").file]
    assert sorted(plan.changed_rules) == ["R-FL-02", "R-SAFE-LEF-UNKNOWN"]
    assert sorted(_changed_lines(plan.diff())) == sorted([
        "-      continue: [mycophenolate]",
        "+      continue: [mycophenolate, hydroxychloroquine]",
        "+      caution: [mmf_dose_kidney]",
        "-      caution: [egfr_before_leflunomide]",
        "+      caution: [egfr_before_leflunomide, egfr_before_cni]",
    ])
    assert _snapshot(folder) == before, "planning writes nothing"
    save_plan(plan)
    after = _snapshot(folder)
    assert sorted(n for n in before if before[n] != after[n]) == sorted(plan.files)
    saved = load_rulebook(folder)
    assert saved.version == edited.version
    assert [r.to_data() for r in saved.rules] == [r.to_data() for r in edited.rules]
    text = (folder / book.rule("R-FL-02").file).read_text()
    placed = "      continue: [mycophenolate, hydroxychloroquine]\n      derive: [immunosuppression]\n" \
             "      caution: [mmf_dose_kidney]\n    rationale:"
    assert placed in text, "a new conclusion goes where the shipped files put it"

    emptied = edit_rule(saved, "R-FL-02", keep=[], caution=None)  # removed conclusions drop their lines
    plan = save_rulebook(folder, emptied)
    assert sorted(_changed_lines(plan.diff())) == sorted([
        "-      continue: [mycophenolate, hydroxychloroquine]", "-      caution: [mmf_dose_kidney]"])
    assert load_rulebook(folder).rule("R-FL-02").keep == () and load_rulebook(folder).rule("R-FL-02").caution == ()


def test_untouched_files_and_rules_are_byte_identical(folder: Path):
    book = load_rulebook(folder)
    before = _snapshot(folder)
    edited = edit_rule(drop_rule(book, "R-SW-03"), "R-FL-01", avoid=["cyclophosphamide"])
    plan = save_rulebook(folder, edited)
    after = _snapshot(folder)
    assert sorted(n for n in before if before[n] != after[n]) == sorted(plan.files)
    changed = _changed_lines(plan.diff())
    assert "+      avoid: [cyclophosphamide]" in changed
    assert all(line.startswith("-") for line in changed if line != "+      avoid: [cyclophosphamide]")
    removed = "\n".join(line[1:] for line in changed if line.startswith("-"))
    assert "R-SW-03" in removed and "R-SW-02" not in removed


@pytest.mark.parametrize("edit, field, words", [
    (lambda b: edit_rule(b, "R-KID-01", when=[{"fact": "egfr", "op": ">=", "value": -5}]),
     "[R-KID-01] when[0].value", "allowed: a number from 0 to 200"),
    (lambda b: edit_rule(b, "R-KID-01", when=[{"fact": "egrf", "op": ">=", "value": 45}]),
     "[R-KID-01] when[0].fact", "unknown fact 'egrf'"),
    (lambda b: edit_rule(b, "R-FL-01", recommend=[{"agent": "aspirin", "rank": 40}]),
     "[R-FL-01] then.recommend[0].agent", "unknown agent 'aspirin'"),
    (lambda b: edit_rule(b, "R-FL-01", flag=["no_such_flag"]),
     "[R-FL-01] then.flag", "unknown flag 'no_such_flag'"),
    (lambda b: edit_rule(b, "R-FL-01", recommend=[{"agent": "mycophenolate", "rank": 0}]),
     "[R-FL-01] then.recommend[0].rank", "allowed: a whole number from 1"),
    (lambda b: add_rule(b, rule_data(b, "R-FL-03"), after="R-FL-01"), "[R-FL-03] id", "duplicate rule id"),
    (lambda b: edit_rule(b, "R-SAFE-LEF-UNKNOWN", caution=["no_such_caution"]),
     "[R-SAFE-LEF-UNKNOWN] then.caution", "unknown caution 'no_such_caution'; allowed: egfr_before_cni"),
    (lambda b: edit_rule(b, "R-FL-02", keep=["aspirin"]),
     "[R-FL-02] then.continue", "unknown agent 'aspirin'; allowed: "),
    (lambda b: edit_rule(b, "R-FL-02", keep=["mycophenolate"], **{"continue": ["azathioprine"]}),
     "continue", "given twice (once by its alias keep)"),
    (lambda b: edit_rule(b, "R-FL-01", colour="red"), "[R-FL-01] colour", "not a rule field"),
    (lambda b: edit_rule(b, "R-NOPE", title="x"), "[R-NOPE] id", "no rule with this id"),
])
def test_bad_edits_are_refused_naming_the_field_and_nothing_is_written(folder, edit, field, words):
    before = _snapshot(folder)
    with pytest.raises(RulebookError) as caught:
        edit(load_rulebook(folder))
    assert field in str(caught.value) and words in str(caught.value)
    assert _snapshot(folder) == before


def test_a_file_changed_since_the_plan_is_not_overwritten(folder: Path):
    book = load_rulebook(folder)
    plan = plan_save(folder, edit_rule(book, "R-FL-01", title="Edited"))
    path = folder / plan.files[0]
    path.write_text(path.read_text() + "# someone else's edit\n")
    with pytest.raises(RulebookError, match="changed on disk since the save was planned"):
        save_plan(plan)
    assert path.read_text().endswith("# someone else's edit\n")


def test_vocabulary_edits_are_not_saved(folder: Path):
    book = load_rulebook(folder)
    other = load_rulebook(DEFAULT_RULES_DIR)
    object.__setattr__(other, "meta", {**other.meta, "name": "Another name"})
    with pytest.raises(RulebookError, match="changes the vocabulary"):
        plan_save(folder, other)
    assert plan_save(folder, book).files == ()


def test_loading_never_uses_the_round_trip_library():
    code = "import lupus_rules.rulebook as r, sys; r.load_rulebook(); print('ruamel' in ' '.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


HAND_WRITTEN = """# head comment
rules:
  # first
  - id: R-A
    title: A rule
    section: S
    citation: 1
    when:
      - fact: egfr   # block style
        op: ">="
        value: 60
    then:
      flag: switch_therapy
    rationale: "quoted rationale"  # inline


  - id: R-B
    title: B
    section: S
    citation: [1]
    then: {flag: [side_effect_monitoring]}
    rationale: >-
      folded
      text
# trailing comment"""


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_hand_written_file_keeps_its_style(tmp_path: Path, newline: str):
    """Block-style conditions, scalar citations, folded text, two blank lines, a last line without newline."""
    folder = tmp_path / "rules"
    folder.mkdir()
    shutil.copy(DEFAULT_RULES_DIR / "rulebook.yaml", folder / "rulebook.yaml")
    (folder / "a.yaml").write_bytes(HAND_WRITTEN.replace("\n", newline).encode())
    book = load_rulebook(folder)
    edited = edit_rule(book, "R-A", when=[{"fact": "egfr", "op": ">=", "value": 45}], note="n")
    edited = edit_rule(edited, "R-B", rationale="new folded text", note="a note",
                       when=[{"fact": "upcr", "op": ">", "value": 3}])
    plan = save_rulebook(folder, edited)
    raw = (folder / "a.yaml").read_bytes().decode()
    assert load_rulebook(folder).version == edited.version
    assert raw.count("\r\n") == (raw.count("\n") if newline == "\r\n" else 0)
    text = raw.replace("\r\n", "\n")
    assert "      - fact: egfr   # block style\n        op: \">=\"\n        value: 45\n" in text
    assert "    rationale: \"quoted rationale\"  # inline\n    note: n\n\n\n  - id: R-B\n" in text
    assert "    citation: [1]\n    when:\n      - {fact: upcr, op: \">\", value: 3}\n    then: {flag:" in text
    assert text.endswith("    rationale: >-\n      new folded text\n    note: a note\n# trailing comment")
    assert text.count("# trailing comment") == 1 and text.startswith("# head comment\nrules:\n  # first\n")
    assert len(_changed_lines(plan.diff().replace("\r", ""))) == 9  # 60->45, 2 notes, 2 when lines, folded 2->1


def test_files_without_a_block_rule_list(tmp_path: Path):
    """A file with an empty list gets the rule; a flow-style list is refused naming the file, nothing written."""
    folder = tmp_path / "rules"
    folder.mkdir()
    shutil.copy(DEFAULT_RULES_DIR / "rulebook.yaml", folder / "rulebook.yaml")
    entry = ("{id: R-A, title: A, section: S, citation: [1], rationale: R, "
             "when: [{fact: egfr, op: '<', value: 15}], then: {flag: [switch_therapy]}}")
    (folder / "a.yaml").write_text("# kept\nrules: []\n")
    (folder / "b.yaml").write_text(f"rules: [{entry}]\n")
    book = load_rulebook(folder)
    new = {"id": "R-N", "title": "N", "section": "S", "citation": [1], "rationale": "R",
           "when": [{"fact": "upcr", "op": ">", "value": 3}], "flag": ["side_effect_monitoring"]}
    save_rulebook(folder, add_rule(book, new, file="a.yaml"))
    assert (folder / "a.yaml").read_text().startswith("# kept\nrules:\n  - id: R-N\n")
    assert rule_data(load_rulebook(folder), "R-N") == rule_data(add_rule(book, new, file="a.yaml"), "R-N")
    before = (folder / "b.yaml").read_bytes()
    with pytest.raises(RulebookError, match=r"b\.yaml rules: written in flow style"):
        plan_save(folder, edit_rule(load_rulebook(folder), "R-A", title="B"))
    assert (folder / "b.yaml").read_bytes() == before


def _edits(book):
    """A hypothesis strategy of one edit (a function Rulebook -> Rulebook) and the id of the rule it touches."""
    from hypothesis import strategies as st

    rules = sorted(book.rule_ids)
    numeric = [(r.id, i, c) for r in book.rules for i, c in enumerate(r.when)
               if c.kind == "fact" and book.facts.get(c.fact) is not None and c.op in ("<", "<=", ">", ">=")]
    ranked = [r.id for r in book.rules if r.recommend]

    def threshold(pick):
        rule_id, i, cond = pick
        spec = book.facts[cond.fact]
        return st.integers(int(max(spec.minimum, 0)), int(min(spec.maximum, 500))).map(
            lambda v: (lambda b: edit_rule(b, rule_id, when=[
                {**c.to_data(), "value": v} if k == i else c.to_data() for k, c in enumerate(b.rule(rule_id).when)]),
                rule_id))

    def rank(rule_id):
        return st.integers(1, 99).map(lambda v: (lambda b: edit_rule(b, rule_id, recommend=[
            {**rule_data(b, rule_id)["then"]["recommend"][0], "rank": v},
            *rule_data(b, rule_id)["then"]["recommend"][1:]]), rule_id))

    text = st.text(alphabet="abc xyz-#:'\"", min_size=1, max_size=20).map(str.strip).filter(bool)
    return st.one_of(
        st.sampled_from(numeric).flatmap(threshold),
        st.sampled_from(ranked).flatmap(rank),
        st.tuples(st.sampled_from(rules), text).map(lambda p: (lambda b: edit_rule(b, p[0], note=p[1]), p[0])),
        st.tuples(st.sampled_from(rules), text).map(lambda p: (lambda b: edit_rule(b, p[0], title=p[1]), p[0])),
    )


def _blocks(folder: Path) -> dict[str, str]:
    """Each rule's text (from its '- id:' line to the next rule or the end of the file), by id."""
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        chunks = path.read_text().split("\n  - id: ")
        for chunk in chunks[1:]:
            out[chunk.split("\n", 1)[0]] = chunk
    return out


def test_random_edits_save_to_exactly_the_edited_rulebook():
    """Any mix of threshold, rank, note and title edits saves to files that load as the edit, and every rule
    not edited keeps its text byte for byte (hypothesis, on copies of the shipped folder)."""
    import tempfile

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    base = load_rulebook(DEFAULT_RULES_DIR)
    original = _blocks(DEFAULT_RULES_DIR)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(_edits(base), min_size=1, max_size=3))
    def check(edits):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "rules"
            shutil.copytree(DEFAULT_RULES_DIR, folder, ignore=shutil.ignore_patterns("variants"))
            edited, touched = load_rulebook(folder), set()
            for edit, rule_id in edits:
                edited = edit(edited)
                touched.add(rule_id)
            save_rulebook(folder, edited)
            saved = load_rulebook(folder)
            assert saved.version == edited.version
            blocks = _blocks(folder)
            for rule_id, text in original.items():
                if rule_id not in touched:
                    assert blocks[rule_id] == text, rule_id

    check()
