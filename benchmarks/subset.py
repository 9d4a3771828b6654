"""The rule subset that experta and plain Python run, and the plain-Python if/else version of it.

The subset (scope, drug history, first-line alternatives, calcineurin
inhibitors, leflunomide, biologics, safety, glucocorticoid and monitoring
flags: 29 rules over three strata, with negation) is cut from the shipped
rulebook by :func:`subset_rulebook`, so the durable and vectorized engines can
run exactly the same rules. :func:`fire_plain` is the same logic written by
hand as if/else, as a programmer would without a rules engine; the benchmark
checks it against the vectorized engine before timing anything, and names the
rules that differ if the rulebook has moved on.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping

from lupus_rules.rulebook import Rulebook, rulebook_from_documents

__all__ = ["SUBSET", "subset_rulebook", "fire_plain"]

#: Rule ids in the subset.
SUBSET = (
    "R-SCOPE-01", "R-SCOPE-02", "R-SCOPE-03", "R-SCOPE-04",
    "R-HIST-01", "R-HIST-02", "R-HIST-03", "R-HIST-04",
    "R-FL-01", "R-FL-02", "R-FL-03", "R-FL-04", "R-FL-05", "R-FL-06", "R-FL-07",
    "R-KID-01", "R-KID-02", "R-SL-01", "R-SL-02", "R-SL-03",
    "R-BIO-01", "R-BIO-02", "R-BIO-03",
    "R-SAFE-01", "R-SAFE-02", "R-MON-01", "R-MON-02", "R-GC-01", "R-GC-02",
)


def subset_rulebook(book: Rulebook, ids: tuple[str, ...] = SUBSET) -> Rulebook:
    """The rules ``ids`` as a rulebook of their own.

    Derived facts no rule in the subset reads are dropped from the rules'
    ``derive`` (and from the vocabulary): they change nothing the benchmark
    compares (preferred, recommendations, flags, fired rules).
    """
    documents = book.to_documents()
    rules = [rule for _, data in documents for rule in data.get("rules", []) if rule["id"] in ids]
    read = {c["derived" if "derived" in c else "not_derived"] for r in rules for c in r["when"]
            if "derived" in c or "not_derived" in c}
    for rule in rules:
        derive = [name for name in rule["then"].get("derive", []) if name in read]
        rule["then"].pop("derive", None)
        if derive:
            rule["then"]["derive"] = derive
    meta = copy.deepcopy(dict(documents)["rulebook.yaml"]["rulebook"])
    meta["derived_facts"] = {k: v for k, v in meta.get("derived_facts", {}).items() if k in read}
    meta["accepted_gaps"] = []
    return rulebook_from_documents([("rulebook.yaml", {"rulebook": meta}), ("subset.yaml", {"rules": rules})],
                                   source="benchmark subset")


_FAILED = ("intolerant", "nonresponse")


def fire_plain(p: Mapping[str, object]) -> list[str]:
    """The subset as hand-written if/else: ids of the rules that fire, in firing order."""
    fired: list[str] = []
    mtx, ldn, mmf, aza = p["methotrexate"], p["ldn"], p["mycophenolate"], p["azathioprine"]
    nephritis = "nephritis" in p["manifestations"]  # type: ignore[operator]
    egfr, upcr, prednisone = p["egfr"], p["upcr"], p["prednisone_mg"]
    pregnancy = p["planning_pregnancy"]
    needs_alternative = other_failed = inadequate = preserved = nephrotic = False
    teratogens_excluded = voclosporin_excluded = change = immunosuppression = False
    # stratum 0: facts only
    if mtx in _FAILED:
        fired.append("R-SCOPE-01")
        needs_alternative = True
    if ldn in _FAILED and mtx != "effective":
        fired.append("R-SCOPE-02")
        needs_alternative = True
    if nephritis:
        fired.append("R-SCOPE-03")
        needs_alternative = True
    if mmf in _FAILED:
        fired.append("R-HIST-01")
        other_failed = True
    if aza in _FAILED:
        fired.append("R-HIST-02")
        other_failed = True
    if mmf == "nonresponse":
        fired.append("R-HIST-03")
        inadequate = True
    if aza == "nonresponse":
        fired.append("R-HIST-04")
        inadequate = True
    fired.append("R-FL-07")
    if egfr is not None and egfr >= 60:  # type: ignore[operator]
        fired.append("R-KID-01")
        preserved = True
    if upcr is not None and upcr >= 3:  # type: ignore[operator]
        fired.append("R-KID-02")
        nephrotic = True
    if prednisone is not None and prednisone >= 7.5:  # type: ignore[operator]
        fired.append("R-GC-01")
    if prednisone is not None and 0 < prednisone < 7.5:  # type: ignore[operator]
        fired.append("R-GC-02")
    if pregnancy:
        fired.append("R-SAFE-01")
        teratogens_excluded = voclosporin_excluded = True
    if egfr is not None and egfr < 45:  # type: ignore[operator]
        fired.append("R-SAFE-02")
        voclosporin_excluded = True
    # stratum 1: derived facts of stratum 0
    if not needs_alternative:
        fired.append("R-SCOPE-04")
    if needs_alternative and mmf == "not_tried" and aza != "effective" and not teratogens_excluded:
        fired.append("R-FL-01")
        change = immunosuppression = True
    if needs_alternative and mmf == "effective" and not nephritis and not teratogens_excluded:
        fired.append("R-FL-02")
        immunosuppression = True
    if needs_alternative and aza == "not_tried" and mmf != "effective":
        fired.append("R-FL-03")
        change = immunosuppression = True
    if needs_alternative and pregnancy and aza == "not_tried":
        fired.append("R-FL-04")
        change = immunosuppression = True
    if needs_alternative and mmf == "intolerant" and aza == "not_tried":
        fired.append("R-FL-05")
        change = immunosuppression = True
    if needs_alternative and aza == "effective":
        fired.append("R-FL-06")
        immunosuppression = True
    if nephritis and preserved and nephrotic and mmf != "effective":
        fired.append("R-SL-02" if voclosporin_excluded else "R-SL-01")
        change = immunosuppression = True
    if needs_alternative and other_failed and not teratogens_excluded:
        fired.append("R-SL-03")
        change = immunosuppression = True
    if needs_alternative and p["persistent_activity"]:
        fired.append("R-BIO-01")
        change = immunosuppression = True
    if needs_alternative and inadequate:
        fired += ["R-BIO-02", "R-BIO-03"]
        change = immunosuppression = True
    # stratum 2
    if change:
        fired.append("R-MON-01")
    if immunosuppression:
        fired.append("R-MON-02")
    return fired
