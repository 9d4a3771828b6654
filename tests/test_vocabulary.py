"""The fact vocabulary is data: declared in rulebook.yaml, checked by the loader (issue 8, slice 1)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from lupus_rules import default_rulebook
from lupus_rules.errors import RulebookError
from lupus_rules.facts import FACTS, MEASURE_INPUTS, MEASURES, STATUSES, compute_measures
from lupus_rules.rulebook import DEFAULT_RULES_DIR, load_rulebook
from lupus_rules.vocabulary import KINDS, parse_vocabulary, shipped_vocabulary


META = yaml.safe_load((DEFAULT_RULES_DIR / "rulebook.yaml").read_text(encoding="utf-8"))["rulebook"]


def test_the_shipped_facts_are_the_declared_ones():
    vocabulary = shipped_vocabulary()
    assert FACTS is vocabulary.facts and MEASURES is vocabulary.measures
    assert list(FACTS) == list(META["facts"]) and STATUSES == tuple(META["statuses"])
    assert default_rulebook().facts == FACTS


def test_every_declared_fact_has_a_kind_a_meaning_and_a_group():
    for spec in FACTS.values():
        assert spec.kind in KINDS and spec.description.strip() and spec.group, spec.name


def test_every_fact_a_rule_tests_is_declared():
    tested = {c.fact for r in default_rulebook().rules for c in r.when if c.kind == "fact"}
    assert tested <= set(FACTS) | set(MEASURES)


def test_kind_defaults():
    defaults = {spec.kind: spec.default for spec in FACTS.values()}
    assert defaults == {"set": frozenset(), "status": "not_tried", "bool": False, "number": None}


def test_measures_follow_their_declared_formula():
    values = {name: np.array([np.nan]) for name in FACTS}
    values.update(upcr=np.array([1.0]), upcr_baseline=np.array([4.0]), egfr=np.array([45.0]),
                  egfr_baseline=np.array([60.0]))
    measures = compute_measures(values)
    assert measures["upcr_reduction_pct"][0] == 75.0  # (4 - 1) / 4: a reduction is positive
    assert measures["egfr_change_pct"][0] == -25.0  # (45 - 60) / 60: a fall is negative
    assert MEASURE_INPUTS == {name: (decl["current"], decl["baseline"]) for name, decl in META["measures"].items()}
    assert MEASURES["upcr_reduction_pct"].minimum == -math.inf and MEASURES["egfr_change_pct"].maximum == math.inf


def _with(section: str, name: str, declaration: object) -> dict:
    meta = {key: META[key] for key in ("statuses", "facts", "measures")}
    meta = {**meta, section: {**meta[section], name: declaration}}
    return meta


BAD = [
    ("facts", "x", {"kind": "colour", "meaning": "m", "group": "g"}, "facts.x.kind", "allowed: one of number"),
    ("facts", "x", {"kind": "number", "meaning": "m", "group": "g"}, "facts.x.range", "[low, high]"),
    ("facts", "x", {"kind": "number", "range": [5, 1], "meaning": "m", "group": "g"}, "facts.x.range", "low < high"),
    ("facts", "x", {"kind": "number", "range": [0, float("inf")], "meaning": "m", "group": "g"}, "facts.x.range",
     "two finite numbers"),
    ("facts", "x", {"kind": "status", "range": [0, 1], "meaning": "m", "group": "g"}, "facts.x.range",
     "not used by a status fact"),
    ("facts", "x", {"kind": "set", "members": [], "meaning": "m", "group": "g"}, "facts.x.members", "distinct"),
    ("facts", "x", {"kind": "bool", "meaning": "m"}, "facts.x.group", "missing"),
    ("facts", "x", {"kind": "bool", "meaning": "", "group": "g"}, "facts.x.meaning", "allowed: text"),
    ("facts", "x", {"kind": "bool", "meaning": "m", "group": "g", "colour": 1}, "facts.x.colour", "unknown key"),
    ("facts", "x", {"kind": "status", "meaning": "m", "group": "g", "default": "maybe"}, "facts.x.default",
     "one of not_tried"),
    ("facts", "X-1", {"kind": "bool", "meaning": "m", "group": "g"}, "facts.X-1", "lower-case"),
    ("facts", "x", "bool", "facts.x", "a mapping"),
    ("facts", "error", {"kind": "bool", "meaning": "m", "group": "g"}, "facts.error", "choose another name"),
    ("facts", "expect_x", {"kind": "bool", "meaning": "m", "group": "g"}, "facts.expect_x", "expect_*"),
    ("facts", "sid", {"kind": "bool", "meaning": "m", "group": "g"}, "facts.sid", "choose another name"),
    ("facts", "manifestations__joint", {"kind": "bool", "meaning": "m", "group": "g"},
     "facts.manifestations__joint", "member columns"),
    ("measures", "m", {"formula": "ratio", "current": "egfr", "baseline": "egfr_baseline", "range": [None, 1],
                       "meaning": "m"}, "measures.m.formula", "reduction_pct"),
    ("measures", "m", {"formula": "change_pct", "current": "bullous", "baseline": "egfr_baseline",
                       "range": [None, 1], "meaning": "m"}, "measures.m.current", "a number fact"),
    ("measures", "egfr", {"formula": "change_pct", "current": "egfr", "baseline": "egfr_baseline",
                          "range": [None, 1], "meaning": "m"}, "measures.egfr", "already declared as a fact"),
]


@pytest.mark.parametrize("section, name, declaration, field, fragment", BAD, ids=[b[3] + ":" + b[4] for b in BAD])
def test_bad_declarations_are_named(section, name, declaration, field, fragment):
    with pytest.raises(RulebookError) as info:
        parse_vocabulary(_with(section, name, declaration), "rulebook.yaml")
    found = [p for p in info.value.problems if p.field == field]
    assert found and fragment in found[0].message, info.value.problems
    assert all(p.file == "rulebook.yaml" for p in info.value.problems)


def test_reserved_names_cover_every_other_file_column():
    from lupus_rules.batch import OUTCOME_COLUMNS, PASSTHROUGH_COLUMNS, PASSTHROUGH_PREFIX
    from lupus_rules.vocabulary import RESERVED_NAMES, RESERVED_PREFIX

    assert set(OUTCOME_COLUMNS) | set(PASSTHROUGH_COLUMNS) <= RESERVED_NAMES
    assert RESERVED_PREFIX == PASSTHROUGH_PREFIX and not RESERVED_NAMES & (set(FACTS) | set(MEASURES))


def test_statuses_must_be_distinct_names():
    with pytest.raises(RulebookError) as info:
        parse_vocabulary({**META, "statuses": ["a", "a"]}, "rulebook.yaml")
    assert [p.field for p in info.value.problems][:1] == ["statuses"]


def _folder(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for path in DEFAULT_RULES_DIR.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        (folder / path.name).write_text(edit(path.name, text), encoding="utf-8")
    return folder


def test_a_rulebook_without_declarations_uses_the_shipped_facts(tmp_path):
    data = yaml.safe_load((DEFAULT_RULES_DIR / "rulebook.yaml").read_text(encoding="utf-8"))
    for key in ("statuses", "facts", "measures"):
        del data["rulebook"][key]
    folder = _folder(tmp_path, lambda name, text: yaml.safe_dump(data) if name == "rulebook.yaml" else text)
    book = load_rulebook(folder)
    assert book.facts == FACTS and book.rule_ids == default_rulebook().rule_ids


def test_a_rule_on_an_undeclared_fact_is_refused_by_name(tmp_path):
    folder = _folder(tmp_path, lambda name, text: text.replace("{fact: egfr, op: \">=\", value: 60}",
                                                              "{fact: egfr_now, op: \">=\", value: 60}"))
    with pytest.raises(RulebookError) as info:
        load_rulebook(folder)
    problem = info.value.problems[0]
    assert (problem.rule_id, problem.field) == ("R-KID-01", "when[0].fact") and "egfr_now" in problem.message


# --- An author adds a fact in YAML alone (issue 8, slice 1) ------------------------------------

NEW_FACT = "antiphospholipid_positive"
NEW_RULE = "R-APS-01"
NEW_CAUTION = "aps_before_pregnancy"


def _authored_folder(tmp_path: Path) -> Path:
    """A copy of the shipped rules where the author declared a fact, a caution and a rule testing it."""
    import shutil

    folder = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, folder)
    data = yaml.safe_load((folder / "rulebook.yaml").read_text(encoding="utf-8"))
    meta = data["rulebook"]
    meta["facts"][NEW_FACT] = {"kind": "bool", "group": "safety", "default": False,
                               "meaning": "Antiphospholipid antibodies present (lupus anticoagulant, "
                                          "anticardiolipin or anti-beta2-glycoprotein I)."}
    meta["cautions"][NEW_CAUTION] = "Antiphospholipid antibodies - discuss thromboprophylaxis with a specialist."
    (folder / "rulebook.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                                          encoding="utf-8")
    rule = {"id": NEW_RULE, "title": "Antiphospholipid antibodies need a thrombosis plan",
            "section": "Safety (authored)", "citation": [1],
            "when": [{"fact": NEW_FACT, "op": "==", "value": True}],
            "then": {"caution": [NEW_CAUTION]},
            "rationale": "An author's test rule: written in YAML only, to show the vocabulary is data."}
    (folder / "76_authored.yaml").write_text(yaml.safe_dump({"rules": [rule]}, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def authored(tmp_path_factory):
    return load_rulebook(_authored_folder(tmp_path_factory.mktemp("authored")))


def test_the_loader_accepts_a_declared_fact(authored):
    spec = authored.facts[NEW_FACT]
    assert (spec.kind, spec.group, spec.default) == ("bool", "safety", False)
    assert NEW_FACT not in FACTS  # the shipped vocabulary is untouched
    assert authored.rule(NEW_RULE).when[0].fact == NEW_FACT
    assert list(authored.facts)[:-1] == list(FACTS) and authored.version != default_rulebook().version


def test_the_loader_still_refuses_an_undeclared_fact_by_file_key_and_field(tmp_path):
    folder = _authored_folder(tmp_path)
    path = folder / "76_authored.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(f"fact: {NEW_FACT}", "fact: antiphospholipid"),
                    encoding="utf-8")
    with pytest.raises(RulebookError) as info:
        load_rulebook(folder)
    problem = info.value.problems[0]
    assert (problem.file, problem.rule_id, problem.field) == ("76_authored.yaml", NEW_RULE, "when[0].fact")
    assert "antiphospholipid" in problem.message and NEW_FACT in problem.message  # the allowed names list it


def test_validation_reads_the_new_fact_for_that_rulebook(authored):
    import pandas as pd

    from lupus_rules.errors import PatientValidationError
    from lupus_rules.facts import read_cell, validate_frame, validate_patient

    vocabulary = authored.vocabulary
    assert validate_patient({NEW_FACT: "true"}, vocabulary)[NEW_FACT] is True
    assert validate_patient({NEW_FACT: "false"}, vocabulary)[NEW_FACT] is False
    assert validate_patient({}, vocabulary)[NEW_FACT] is False  # the declared default
    assert read_cell(NEW_FACT, "TRUE", vocabulary) is True
    with pytest.raises(PatientValidationError) as info:
        validate_patient({NEW_FACT: "maybe"}, vocabulary)
    (error,) = info.value.errors
    assert (error.field, error.value) == (NEW_FACT, "maybe") and "true or false" in error.allowed
    with pytest.raises(PatientValidationError):  # the shipped vocabulary does not know the fact
        validate_patient({NEW_FACT: "true"})
    typed, errors = validate_frame(pd.DataFrame({NEW_FACT: ["true", "false", "maybe", ""]}), vocabulary)
    assert typed[NEW_FACT].tolist() == [True, False, False, False]
    assert errors.tolist()[:2] == ["", ""] and errors.tolist()[3] == ""
    assert NEW_FACT in errors.tolist()[2] and "'maybe'" in errors.tolist()[2] and "true or false" in errors.tolist()[2]


def test_both_engines_fire_the_new_rule(authored):
    import pandas as pd

    from lupus_rules import evaluate, run_batch

    yes, no = evaluate({NEW_FACT: "true"}, authored), evaluate({NEW_FACT: "false"}, authored)
    assert NEW_RULE in yes.fired_rules and NEW_CAUTION in yes.cautions
    assert NEW_RULE not in no.fired_rules and NEW_CAUTION not in no.cautions
    rows = pd.DataFrame({NEW_FACT: ["true", "false", "maybe"], "egfr": ["70", "70", "70"]})
    outputs = {}
    for engine in ("vectorized", "durable"):
        out = run_batch(rows, engine=engine, rulebook=authored)
        assert [NEW_RULE in cell.split(";") for cell in out["fired_rules"]] == [True, False, False], engine
        assert [NEW_CAUTION in cell.split(";") for cell in out["cautions"]] == [True, False, False], engine
        assert out["error"].iloc[0] == "" and NEW_FACT in out["error"].iloc[2], engine
        outputs[engine] = out.drop(columns=["engine"])
    pd.testing.assert_frame_equal(outputs["vectorized"], outputs["durable"])


def test_generate_varies_the_new_fact(authored):
    from lupus_rules.generate import band_columns, cartesian, value_bands

    bands = value_bands(authored)
    assert bands[NEW_FACT] == [False, True] and band_columns(NEW_FACT, authored.vocabulary) == (NEW_FACT,)
    rows = cartesian(bands, [NEW_FACT])
    assert sorted(rows[NEW_FACT]) == ["false", "true"] and list(rows.columns)[1:] == list(authored.facts)
    assert NEW_FACT not in value_bands(default_rulebook())


def test_lint_and_coverage_see_the_new_rule(authored):
    import pandas as pd

    from lupus_rules.authoring import coverage, lint
    from lupus_rules.authoring.space import FactSpace

    assert FactSpace(authored).bands[NEW_FACT] == [False, True]
    report = lint(authored, max_rows=20_000)
    never = report.findings[report.findings["check"] == "never_fires"]
    assert not any(NEW_RULE in rules for rules in never["rules"]), never
    suite = pd.DataFrame({"scenario_id": ["A", "B"], NEW_FACT: ["true", "false"]})
    cover = coverage(suite, authored, propose=False)
    fired = cover.rules.set_index("rule_id")["scenarios"]
    assert fired[NEW_RULE] == 1
    condition = cover.conditions[cover.conditions["rule_id"] == NEW_RULE].iloc[0]
    assert (condition["true"], condition["false"], bool(condition["both"])) == (1, 1, True)


def test_an_uncovered_new_rule_gets_a_proposed_row(authored):
    from lupus_rules.authoring.coverage import propose_rows

    rows, unreachable = propose_rows(authored, [NEW_RULE])
    assert unreachable == () and rows.iloc[0][NEW_FACT] == "true" and rows.iloc[0]["expect_fired"] == NEW_RULE


def test_the_explorer_builds_a_control_for_the_new_fact(authored):
    pytest.importorskip("ipywidgets")
    from lupus_rules.widgets.controls import BoolControl
    from lupus_rules.widgets.explorer import ScenarioExplorer

    explorer = ScenarioExplorer(authored, presets={})
    assert isinstance(explorer.controls[NEW_FACT], BoolControl)
    assert NEW_FACT in explorer.panel.groups["safety"]
    explorer.set_facts({NEW_FACT: True})
    assert NEW_RULE in explorer.result.fired_rules and NEW_CAUTION in explorer.result.cautions


def test_the_data_dictionary_lists_the_new_fact(authored):
    import importlib.util

    spec = importlib.util.spec_from_file_location("render_docs", Path(__file__).parent.parent / "tools" /
                                                  "render_docs.py")
    render_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_docs)
    rows = [line for line in render_docs.data_dictionary(authored).splitlines() if f"`{NEW_FACT}`" in line]
    assert len(rows) == 1 and "| bool |" in rows[0] and "Antiphospholipid antibodies present" in rows[0]
    assert render_docs.data_dictionary() == render_docs.data_dictionary(default_rulebook())
    assert f"`{NEW_FACT}`" not in render_docs.data_dictionary()


def test_durable_worker_processes_rebuild_the_new_fact(authored):
    import pandas as pd

    from lupus_rules import run_batch
    from lupus_rules.batch import POOL_MIN_ROWS

    rows = pd.DataFrame({NEW_FACT: ["true", "false"] * (POOL_MIN_ROWS // 2 + 1)})
    out = run_batch(rows, engine="durable", rulebook=authored, processes=2)
    fired = out["fired_rules"].str.split(";").apply(lambda ids: NEW_RULE in ids)
    assert fired.tolist() == (rows[NEW_FACT] == "true").tolist() and (out["error"] == "").all()


def test_vocabularies_hash_by_content_and_survive_pickling(authored):
    import pickle

    from lupus_rules.facts import validate_patient

    again = load_rulebook(Path(authored.source))
    assert again.vocabulary is not authored.vocabulary
    assert again.vocabulary == authored.vocabulary and hash(again.vocabulary) == hash(authored.vocabulary)
    assert authored.vocabulary != shipped_vocabulary() and "_hash" not in pickle.loads(
        pickle.dumps(authored.vocabulary)).__dict__
    assert pickle.loads(pickle.dumps(authored.vocabulary)) == authored.vocabulary
    patient = validate_patient({NEW_FACT: True}, authored.vocabulary)
    assert validate_patient(patient, again.vocabulary) is patient  # an equal vocabulary: no second check
    assert default_rulebook().vocabulary is shipped_vocabulary()  # the shipped facts: one shared instance


def test_a_changed_group_is_a_different_vocabulary(tmp_path):
    def regroup(name: str, text: str) -> str:
        if name != "rulebook.yaml":
            return text
        return text.replace("      group: safety\n", "      group: cautions\n", 1)
    book = load_rulebook(_folder(tmp_path, regroup))
    assert book.vocabulary != shipped_vocabulary() and "cautions" in book.vocabulary.groups()
    assert book.facts == FACTS  # same facts otherwise: the shipped patients and rows still fit


def _every_kind_folder(tmp_path: Path) -> Path:
    """An author's copy declaring a fact of every kind, a measure, and a rule testing each."""
    folder = _authored_folder(tmp_path)
    data = yaml.safe_load((folder / "rulebook.yaml").read_text(encoding="utf-8"))
    meta = data["rulebook"]
    meta["facts"].update({
        "anti_dsdna": {"kind": "number", "range": [0, 1000], "unit": "IU/mL", "group": "serology",
                       "meaning": "Current anti-dsDNA antibody level."},
        "anti_dsdna_baseline": {"kind": "number", "range": [0, 1000], "unit": "IU/mL", "group": "serology",
                                "meaning": "Anti-dsDNA level at the start of the regimen."},
        "antibodies": {"kind": "set", "members": ["lupus_anticoagulant", "anticardiolipin", "anti_b2gp1"],
                       "group": "serology", "meaning": "Antiphospholipid antibodies found."},
        "warfarin": {"kind": "status", "group": "serology", "meaning": "History with warfarin."},
    })
    meta["measures"]["anti_dsdna_change_pct"] = {"formula": "change_pct", "current": "anti_dsdna",
                                                 "baseline": "anti_dsdna_baseline", "range": [-100, None],
                                                 "unit": "%", "meaning": "Change of anti-dsDNA from baseline."}
    meta["cautions"].update({"new_number": "n", "new_set": "s", "new_status": "t", "new_measure": "m"})
    (folder / "rulebook.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                                          encoding="utf-8")

    def rule(rule_id: str, condition: dict, caution: str) -> dict:
        return {"id": rule_id, "title": rule_id, "section": "Authored", "citation": [1], "when": [condition],
                "then": {"caution": [caution]}, "rationale": "A test rule on an authored fact."}
    rules = [rule("R-NEW-NUM", {"fact": "anti_dsdna", "op": ">=", "value": 200}, "new_number"),
             rule("R-NEW-SET", {"fact": "antibodies", "op": "has", "value": "anticardiolipin"}, "new_set"),
             rule("R-NEW-STATUS", {"fact": "warfarin", "op": "in", "value": ["current", "effective"]}, "new_status"),
             rule("R-NEW-MEAS", {"fact": "anti_dsdna_change_pct", "op": "<=", "value": -50}, "new_measure")]
    (folder / "77_every_kind.yaml").write_text(yaml.safe_dump({"rules": rules}, sort_keys=False), encoding="utf-8")
    return folder


def test_authored_facts_of_every_kind_run_the_same_on_both_engines(tmp_path):
    import pandas as pd

    from lupus_rules import evaluate, run_batch
    from lupus_rules.explain import why_not
    from lupus_rules.generate import cartesian, count, value_bands

    book = load_rulebook(_every_kind_folder(tmp_path))
    bands = value_bands(book)
    assert bands["warfarin"] == list(STATUSES) and len(bands["antibodies"]) == 8
    assert any(c == 200 for c, _ in bands["anti_dsdna"])  # the pair band probes the threshold ...
    assert any(c > 0 and b > 0 and c <= b / 2 for c, b in bands["anti_dsdna"])  # ... and the measure's
    keys = ["antibodies", "warfarin", "anti_dsdna"]
    rows = cartesian(bands, keys)
    assert len(rows) == count(bands, keys) and {"anti_dsdna", "anti_dsdna_baseline"} <= set(rows.columns)
    rows = rows.astype({c: "str" for c in rows.columns}).replace("nan", "")
    fast = run_batch(rows, engine="vectorized", rulebook=book)
    slow = run_batch(rows, engine="durable", rulebook=book, processes=1)
    pd.testing.assert_frame_equal(fast.drop(columns=["engine"]), slow.drop(columns=["engine"]))
    fired = fast["fired_rules"].str.split(";")
    for rule_id in ("R-NEW-NUM", "R-NEW-SET", "R-NEW-STATUS", "R-NEW-MEAS"):
        hits = fired.apply(lambda ids: rule_id in ids)
        assert hits.any() and not hits.all(), rule_id
    result = evaluate({"anti_dsdna": "150", "anti_dsdna_baseline": "100", "antibodies": "anti_b2gp1"}, book)
    assert result.patient["anti_dsdna_change_pct"] == 50.0
    fixes = {item.rule_id: item.fix for item in why_not(result, book)}
    assert fixes["R-NEW-NUM"].fact == "anti_dsdna" and fixes["R-NEW-NUM"].new >= 200
    assert "anticardiolipin" in fixes["R-NEW-SET"].describe()


def test_the_explorer_groups_authored_facts_of_every_kind(tmp_path):
    pytest.importorskip("ipywidgets")
    from lupus_rules.widgets.controls import ControlPanel, NumberControl, SetControl, StatusControl

    book = load_rulebook(_every_kind_folder(tmp_path))
    panel = ControlPanel(book)
    assert panel.groups["serology"] == ("anti_dsdna", "anti_dsdna_baseline", "antibodies", "warfarin")
    kinds = {name: type(panel.controls[name]) for name in panel.groups["serology"]}
    assert kinds == {"anti_dsdna": NumberControl, "anti_dsdna_baseline": NumberControl,
                     "antibodies": SetControl, "warfarin": StatusControl}
    panel.controls["anti_dsdna"].type("2000")  # outside the declared range: refused with field and range
    assert any("anti_dsdna" in e and "0 to 1000" in e for e in panel.errors())
