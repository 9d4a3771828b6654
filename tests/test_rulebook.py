"""Rule files are data: the loader checks them and names file, rule id and field for every defect."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from lupus_rules.errors import RulebookError
from lupus_rules.rulebook import DEFAULT_RULES_DIR, load_rulebook, rulebook_from_documents


def shipped_documents() -> list[tuple[str, dict]]:
    return [(p.name, yaml.safe_load(p.read_text())) for p in sorted(DEFAULT_RULES_DIR.glob("*.yaml"))]


def edit_rule(docs, rule_id, change):
    """Apply ``change(rule_dict)`` to the rule with this id; return the file it lives in."""
    for name, data in docs:
        for rule in data.get("rules") or []:
            if rule["id"] == rule_id:
                change(rule)
                return name
    raise KeyError(rule_id)


def problems_of(docs) -> list:
    with pytest.raises(RulebookError) as info:
        rulebook_from_documents(docs)
    return info.value.problems


def test_shipped_rulebook_loads_and_is_cited():
    book = load_rulebook()
    assert len(book.rules) >= 60
    assert all(rule.citation and set(rule.citation) <= {1, 2, 3, 4, 5} for rule in book.rules)
    assert all(rule.section and rule.rationale for rule in book.rules)
    assert len(set(book.rule_ids)) == len(book.rule_ids)


def test_rules_are_ordered_by_stratum_then_definition():
    book = load_rulebook()
    keys = [(r.stratum, r.position) for r in book.rules]
    assert keys == sorted(keys)
    by_id = {r.id: r for r in book.rules}
    # a rule testing a derived fact sits above every rule deriving it
    for rule in book.rules:
        for name in rule.consumes():
            for producer in (r for r in book.rules if name in r.derive):
                assert producer.stratum < rule.stratum, (producer.id, rule.id)
    assert by_id["R-MON-01"].stratum > by_id["R-FL-01"].stratum > by_id["R-SCOPE-01"].stratum


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        (lambda r: r["when"].append({"fact": "egfrr", "op": ">=", "value": 1}), "when[", "unknown fact 'egfrr'"),
        (lambda r: r["when"].append({"fact": "egfr", "op": "~=", "value": 1}), ".op", "unknown operator '~='"),
        (lambda r: r["when"].append({"fact": "bullous", "op": ">", "value": True}), ".op", "allowed: =="),
        (lambda r: r["when"].append({"fact": "azathioprine", "op": "==", "value": "stopped"}), ".value",
         "got 'stopped'"),
        (lambda r: r["when"].append({"fact": "egfr", "op": ">=", "value": "sixty"}), ".value", "a number"),
        (lambda r: r.pop("citation"), "citation", "missing"),
        (lambda r: r.update(citation=[7]), "citation", "unknown reference 7"),
        (lambda r: r.pop("title"), "title", "missing"),
        (lambda r: r.update(colour="red"), "colour", "unknown field"),
        (lambda r: r["then"].update(recommend=[{"agent": "aspirin", "rank": 1}]), "agent", "unknown agent 'aspirin'"),
        (lambda r: r["then"].update(recommend=[{"agent": "rituximab", "rank": 0}]), "rank", "whole number"),
        (lambda r: r["then"].update(flag=["panic"]), "then.flag", "unknown flag 'panic'"),
        (lambda r: r["when"].append({"derived": "sunny_day"}), "derived", "unknown derived fact 'sunny_day'"),
        (lambda r: r.update(then={}), "then", "at least one conclusion"),
    ],
)
def test_each_defect_is_named_with_file_rule_and_field(change, field, fragment):
    docs = shipped_documents()
    file = edit_rule(docs, "R-LN-01", change)
    problems = problems_of(docs)
    match = [p for p in problems if p.rule_id == "R-LN-01" and p.file == file]
    assert match, problems
    assert any(field in (p.field or "") and fragment in p.message for p in match), match


def test_duplicate_ids_are_rejected():
    docs = shipped_documents()
    name, data = docs[1]
    data["rules"].append(copy.deepcopy(data["rules"][0]))
    problems = problems_of(docs)
    assert any(p.rule_id == data["rules"][0]["id"] and "duplicate" in p.message for p in problems)


def test_derived_fact_no_rule_uses_is_rejected():
    docs = shipped_documents()
    meta = next(data["rulebook"] for _, data in docs if "rulebook" in data)
    meta["derived_facts"]["orphan"] = "nobody tests this"
    edit_rule(docs, "R-SCOPE-01", lambda r: r["then"]["derive"].append("orphan"))
    problems = problems_of(docs)
    assert any(p.rule_id == "R-SCOPE-01" and "'orphan' is not used by any rule" in p.message for p in problems)


def test_derived_fact_no_rule_derives_is_rejected():
    docs = shipped_documents()
    edit_rule(docs, "R-HIST-03", lambda r: r["then"].update(derive=[], flag=["switch_therapy"]))
    edit_rule(docs, "R-HIST-04", lambda r: r["then"].update(derive=[], flag=["switch_therapy"]))
    for switch in ("R-SW-MMF", "R-SW-AZA"):  # a failed current regimen also makes standard therapy inadequate
        edit_rule(docs, switch, lambda r: r["then"].update(
            derive=[d for d in r["then"]["derive"] if d != "standard_therapy_inadequate"]))
    problems = problems_of(docs)
    assert any(p.rule_id == "R-BIO-02" and "never hold" in p.message for p in problems)


def test_dependency_cycles_are_rejected():
    docs = shipped_documents()
    edit_rule(docs, "R-SCOPE-01", lambda r: r["when"].append({"not_derived": "treatment_change"}))
    problems = problems_of(docs)
    assert any("cycle" in p.message for p in problems)


def test_all_problems_are_reported_together():
    docs = shipped_documents()
    edit_rule(docs, "R-LN-01", lambda r: r.update(citation=[9]))
    edit_rule(docs, "R-JNT-01", lambda r: r["when"].append({"fact": "nope", "op": "==", "value": 1}))
    problems = problems_of(docs)
    assert {"R-LN-01", "R-JNT-01"} <= {p.rule_id for p in problems}


def test_loading_never_executes_code(tmp_path: Path):
    marker = tmp_path / "pwned"
    (tmp_path / "rulebook.yaml").write_text((DEFAULT_RULES_DIR / "rulebook.yaml").read_text())
    (tmp_path / "evil.yaml").write_text(
        f"rules: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(RulebookError) as info:
        load_rulebook(tmp_path)
    assert "evil.yaml" in str(info.value) and "not valid YAML" in str(info.value)
    assert not marker.exists()


def test_version_is_a_content_hash(tmp_path: Path):
    book = load_rulebook()
    for p in DEFAULT_RULES_DIR.glob("*.yaml"):
        (tmp_path / p.name).write_text(p.read_text() + "\n# a comment changes nothing\n")
    assert load_rulebook(tmp_path).version == book.version
    text = (tmp_path / "20_second_line.yaml").read_text().replace("value: 60}", "value: 45}")
    (tmp_path / "20_second_line.yaml").write_text(text)
    assert load_rulebook(tmp_path).version != book.version


def test_single_file_rulebook(tmp_path: Path):
    merged = {"rulebook": None, "rules": []}
    for name, data in shipped_documents():
        merged["rulebook"] = data.get("rulebook", merged["rulebook"])
        merged["rules"] += data.get("rules") or []
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    assert load_rulebook(path).rule_ids == load_rulebook().rule_ids


def test_missing_path_is_a_clear_error(tmp_path: Path):
    with pytest.raises(RulebookError, match="no such file or folder"):
        load_rulebook(tmp_path / "nowhere")


def test_documents_round_trip_and_edits():
    book = load_rulebook()
    again = rulebook_from_documents(book.to_documents())
    assert again.version == book.version and again.rule_ids == book.rule_ids
    from lupus_rules.rulebook import Condition

    edited = book.replace_rule("R-KID-01", when=(Condition("fact", "egfr", ">=", 45.0),))
    assert edited.rule("R-KID-01").when[0].value == 45.0
    assert edited.version != book.version
    assert book.rule("R-KID-01").when[0].value == 60.0  # the original is untouched
    dropped = book.without_rule("R-CUT-06")
    assert "R-CUT-06" not in dropped.rule_ids and len(dropped.rules) == len(book.rules) - 1


@pytest.mark.parametrize("entry, field, fragment", [
    ({"start": "no_such_agent", "flag": "glucocorticoid_withdraw", "why": "x"}, "conflicts[0].start", "no_such_agent"),
    ({"start": "low_dose_glucocorticoid", "flag": "no_such_flag", "why": "x"}, "conflicts[0].flag", "no_such_flag"),
    ({"start": "low_dose_glucocorticoid", "flag": "glucocorticoid_withdraw"}, "conflicts[0]", "why: text"),
])
def test_a_bad_conflict_declaration_is_named(entry, field, fragment):
    docs = shipped_documents()
    meta = next(data["rulebook"] for _, data in docs if "rulebook" in data)
    meta["conflicts"] = [entry]
    (problem,) = problems_of(docs)
    assert problem.file == "rulebook.yaml" and problem.field == field and fragment in problem.message


def test_the_shipped_conflicts_are_loaded():
    book = rulebook_from_documents(shipped_documents())
    assert ("low_dose_glucocorticoid", "glucocorticoid_withdraw") in {(c.start, c.flag) for c in book.conflicts}


def test_a_rule_id_the_engines_reserve_is_refused():
    """Found by fuzzing: a rule named like durable's catch-all (``__patient_seen``) fired as an extra rule."""
    docs = shipped_documents()
    edit_rule(docs, "R-SCOPE-02", lambda rule: rule.update(id="__patient_seen"))
    (problem,) = [p for p in problems_of(docs) if p.field == "id"]
    assert problem.rule_id == "__patient_seen" and "reserved" in problem.message
