"""Static checks of a rulebook over the whole discretized patient space.

``lint(rulebook)`` looks for, and names the rules and one (simplest) example
patient of, each of:

* ``contradiction`` (error): two different *preferred* agents, i.e. two
  non-foundation agents tied at the best rank (the tie is then broken by
  vocabulary order alone). An agent a fired rule keeps or avoids is no new
  start (:func:`~lupus_rules.result.summarize`), so a recommendation that a
  safety or history rule overrides is no contradiction. Gaps and ties are
  judged on the recommendations before that exclusion (the cautious reading:
  a tie that an exclusion happens to break is still reported), which keeps
  their enumeration free of every agent's status.
* ``history`` (error): an agent offered as a new start although the patient's
  status for it (a status fact named like the agent) says it is taken now,
  worked, failed or is contraindicated: no rule keeps or avoids it there.
* ``conflict`` (error): advice that must never come together (``conflicts`` in
  ``rulebook.yaml``): an agent offered as a new start while a flag that says to
  stop it is raised, e.g. "start a glucocorticoid" beside "withdraw the
  glucocorticoid".
* ``never_fires`` (error): a rule no patient of the space fires.
* ``gap`` (warning): patients who get no *disease-modifying* recommendation
  and continue none, i.e. no recommended or continued agent other than a
  foundation agent
  (``rulebook.agents[code].foundation``: hydroxychloroquine). Gaps are
  reported as regions (fact values in words) with the rules that came closest.
  Gap patients matching an accepted gap's conditions (``accepted_gaps`` in
  ``rulebook.yaml``) are reported once per gap with severity ``accepted``.
* ``shadowed`` (warning): a rule that changes nothing: wherever it fires, other
  fired rules already derive the same facts, recommend the same agents at the
  same or a stronger rank, avoid the same agents and raise the same flags.

Every check runs over an exact reduction of the discretized space (see
:mod:`lupus_rules.authoring.space`) and :attr:`LintReport.coverage` says, per
enumeration, whether it was exhaustive. Not for clinical use.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..engines.vectorized import fire_matrix
from ..errors import OptionError
from ..evaluate import default_rulebook
from ..facts import validate_frame
from ..vocabulary import Vocabulary
from ..result import DISCLAIMER
from ..rulebook import Condition, Conflict, Rule, Rulebook
from .regions import cover, describe_classes, simplest_cell
from ..engines.vectorized import condition_mask
from .space import DEFAULT_MAX_ROWS, Chunk, FactSpace, Plan, schedule

__all__ = ["lint", "LintReport", "FINDING_COLUMNS", "disease_modifying_agents"]

#: Columns of :attr:`LintReport.findings` (``patient``: the example's facts, every one, as CSV cells).
FINDING_COLUMNS = ["check", "severity", "rules", "classes", "message", "example", "patient"]

_NO_RANK = np.iinfo(np.int32).max
_SEVERITY_ORDER = {"error": 0, "warning": 1, "accepted": 2}


def disease_modifying_agents(rulebook: Rulebook) -> tuple[str, ...]:
    """Agents that count as a disease-modifying recommendation: every agent not marked ``foundation``."""
    return tuple(code for code, agent in rulebook.agents.items() if not agent.foundation)


@dataclass
class LintReport:
    """What :func:`lint` found: one row per finding, and how much of the space each enumeration covered."""

    findings: pd.DataFrame
    coverage: pd.DataFrame
    rulebook_version: str

    @property
    def errors(self) -> pd.DataFrame:
        """Findings of severity ``error`` (contradictions, rules that never fire)."""
        return self.findings[self.findings["severity"] == "error"]

    @property
    def passed(self) -> bool:
        """True when there is no error finding (warnings and accepted gaps do not fail lint)."""
        return self.errors.empty

    @property
    def exhaustive(self) -> bool:
        """True when every enumeration covered its whole space (nothing was sampled)."""
        return bool(self.coverage["exhaustive"].all()) if len(self.coverage) else True

    def counts(self) -> dict[str, int]:
        """Findings per check and severity, e.g. ``{'gap/warning': 3}``."""
        keys = self.findings["check"] + "/" + self.findings["severity"]
        return {str(k): int(v) for k, v in keys.value_counts().sort_index().items()}

    def __str__(self) -> str:
        return self.to_text()

    def to_text(self) -> str:
        """The report as the CLI prints it."""
        lines = [DISCLAIMER, f"Lint of rulebook {self.rulebook_version}"]
        for _, row in self.findings.iterrows():
            lines.append(f"[{row['severity']}] {row['check']}: {', '.join(row['rules']) or '-'}")
            lines.append(f"    {row['message']}")
            lines.append(f"    example: {row['example'] or '(every fact at its default)'}")
        lines.append("Coverage:")
        lines += [f"  {row['checks']}: {row['description']}" for _, row in self.coverage.iterrows()]
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items()) or "no findings"
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.errors)} errors)"
        lines.append(f"{verdict}: {counts}")
        return "\n".join(lines)


def lint(rulebook: Rulebook | None = None, *, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0,
         max_regions: int = 100) -> LintReport:
    """Check the rulebook over the discretized patient space; see the module docstring for the checks.

    ``max_rows`` bounds each enumeration: a check needing more classes runs on
    a seeded sample and its coverage row says ``exhaustive=False``.
    ``max_regions`` bounds how many gap regions are described. A ``max_rows``
    below 1 or a negative ``max_regions`` raises :class:`OptionError`.
    """
    _check_count("max_rows", max_rows, 1)
    _check_count("max_regions", max_regions, 0)
    _check_count("seed", seed, 0)
    book = rulebook if rulebook is not None else default_rulebook()
    space = FactSpace(book)
    checks = _checks(book, space, max_regions)
    ridden: list[tuple[list[_Check], list[Plan]]] = []  # the cases of one request come one after another
    for plan, assigned in schedule(space, ((c.rule_ids, c.conditions, c, c.optional) for c in checks),
                                   max_rows, seed):
        for check in assigned:
            check.start(plan)
        for chunk in space.chunks(plan, rule_ids=_needed(space, assigned)):
            for check in assigned:
                check.update(chunk)
        if plan.fixed and ridden and ridden[-1][0] is assigned:
            ridden[-1][1].append(plan)
        else:
            ridden.append((assigned, [plan]))
    coverage = [_coverage_row(assigned, plans) for assigned, plans in ridden]
    explainer = _Explainer(book)
    explainer.preload(p for check in checks for p in check.examples())
    findings = [_with_example(f, book.vocabulary) for check in checks for f in check.findings(explainer)]
    findings.sort(key=lambda f: (_SEVERITY_ORDER[f["severity"]], f["check"], -f["classes"]))
    return LintReport(pd.DataFrame(findings, columns=FINDING_COLUMNS), pd.DataFrame(coverage), book.version)


def _coverage_row(checks: list[_Check], plans: list[Plan]) -> dict:
    """One row of :attr:`LintReport.coverage`: the checks, and the enumeration (or its cases) they rode on."""
    if len(plans) == 1 and not plans[0].fixed:
        plan = plans[0]
        return {"checks": _names(checks), "relevant_facts": ", ".join(plan.keys), "classes": plan.classes,
                "rows": plan.rows, "exhaustive": plan.exhaustive, "description": plan.describe()}
    keys = [k for k in dict.fromkeys(k for p in plans for k in (*(f for f, _ in p.fixed), *p.keys))]
    split = sorted({f for p in plans for f, _ in p.fixed})
    classes, rows = sum(p.classes for p in plans), sum(p.rows for p in plans)
    exhaustive = all(p.exhaustive for p in plans)
    verdict = "exhaustive" if exhaustive else "SAMPLED in part"
    return {"checks": _names(checks), "relevant_facts": ", ".join(keys), "classes": classes, "rows": rows,
            "exhaustive": exhaustive,
            "description": f"{verdict}: {classes:,} classes in {len(plans)} cases (split on {', '.join(split)}; "
                           f"in each case only the rules that can fire there shape the classes) stand for all "
                           f"{plans[0].space_size:.3g} points of the discretized space"}


def _needed(space: FactSpace, checks: list[_Check]) -> frozenset[str]:
    """The rules the checks riding on one enumeration read, and every rule deriving what those test."""
    rule_ids = frozenset().union(*(c.rule_ids | c.optional for c in checks))
    return space.closure(rule_ids, frozenset().union(*(c.conditions for c in checks)))


def _check_count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise OptionError(f"{name}: got {value!r}; allowed: a whole number >= {minimum}")


def _names(checks: list[_Check]) -> str:
    fires = [c.name for c in checks if isinstance(c, _FiresCheck)]
    shadow = [c.name for c in checks if isinstance(c, _ShadowCheck)]
    other = [c.name for c in checks if not isinstance(c, (_FiresCheck, _ShadowCheck))]
    parts = other + ([f"fires for {len(fires)} rules"] if fires else [])
    return ", ".join(parts + ([f"shadowing of {len(shadow)} rules"] if shadow else []))


# -- tallies and findings ---------------------------------------------------------------------


@dataclass
class _Tally:
    """Per key: how many classes, and the simplest example (fewest non-default facts) seen so far."""

    counts: dict[tuple, int] = field(default_factory=dict)
    examples: dict[tuple, tuple[int, dict]] = field(default_factory=dict)

    def add(self, key: tuple, mask: np.ndarray, chunk: Chunk) -> None:
        """Count the rows of ``mask`` under ``key`` and keep the simplest example."""
        hits = np.flatnonzero(mask)
        if not len(hits):
            return
        self.counts[key] = self.counts.get(key, 0) + len(hits)
        simplicity = chunk.nondefault_count()[hits]
        best = int(np.argmin(simplicity))
        self._offer(key, int(simplicity[best]), chunk, int(hits[best]))

    def add_grouped(self, codes: np.ndarray, labels: list[tuple], mask: np.ndarray, chunk: Chunk) -> None:
        """Like :meth:`add` for many keys at once: row ``mask[i]`` belongs to ``labels[codes[i]]``."""
        hits = np.flatnonzero(mask)
        simplicity = chunk.nondefault_count()[hits]
        order = np.lexsort((simplicity, codes))
        ordered = codes[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(order) else []
        for start, stop in zip(starts, list(starts[1:]) + [len(order)]):
            label = labels[ordered[start]]
            self.counts[label] = self.counts.get(label, 0) + int(stop - start)
            self._offer(label, int(simplicity[order[start]]), chunk, int(hits[order[start]]))

    def _offer(self, key: tuple, simplicity: int, chunk: Chunk, row: int) -> None:
        held = self.examples.get(key)
        if held is None or simplicity < held[0]:
            self.examples[key] = (simplicity, chunk.patient(row, full=True))

    def items(self) -> Iterable[tuple[tuple, int, dict]]:
        """(key, classes, full example patient) for every key seen."""
        return ((key, count, self.examples[key][1]) for key, count in self.counts.items())


def _group_patterns(bits: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Group the rows of ``mask`` by their pattern of ``bits`` (k × rows): (code per row, set bits per code)."""
    rows = bits[:, mask]
    if rows.shape[1] == 0:
        return np.empty(0, dtype=np.intp), []
    active = np.flatnonzero(rows.any(axis=1))  # bits never set change neither the patterns nor their order
    uniques, inverse = _unique_rows(np.packbits(rows[active], axis=0).T)
    unpacked = np.unpackbits(uniques, axis=1, count=len(active))
    return inverse, [tuple(int(active[i]) for i in np.flatnonzero(u)) for u in unpacked]


def _unique_rows(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(packed, axis=0, return_inverse=True)`` for uint8 rows, sorting 8-byte words, not bytes."""
    n, width = packed.shape
    padded = np.zeros((n, max(1, -(-width // 8)) * 8), dtype=np.uint8)
    padded[:, :width] = packed
    words = padded.view(">u8")  # big-endian: word order is byte order
    order = np.lexsort(words.T[::-1]) if words.shape[1] > 1 else np.argsort(words[:, 0], kind="stable")
    ordered = words[order]
    new = np.r_[True, (ordered[1:] != ordered[:-1]).any(axis=1)] if n else np.zeros(0, dtype=bool)
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return padded[order[new], :width], inverse


def _nondefault(patient: dict, vocabulary: Vocabulary) -> dict:
    defaults = {"set": "", "bool": "false", "number": ""}
    facts = vocabulary.facts
    return {k: v for k, v in patient.items() if v != defaults.get(facts[k].kind, facts[k].default)}


def _with_example(finding: dict, vocabulary: Vocabulary) -> dict:
    """The finding with its ``example``: the patient's facts away from their defaults, as ``k=v`` text."""
    finding["example"] = ", ".join(f"{k}={v}" for k, v in _nondefault(finding["patient"], vocabulary).items())
    return finding


def _key(patient: dict) -> tuple:
    """A patient (CSV cells) as a hashable key."""
    return tuple(sorted(patient.items()))


def _finding(check: str, severity: str, rules: Iterable[str], classes: int, message: str, patient: dict) -> dict:
    """One finding; :func:`lint` adds its ``example`` text (which needs the rulebook's facts)."""
    return {"check": check, "severity": severity, "rules": tuple(rules), "classes": int(classes),
            "message": message, "example": "", "patient": patient}


class _Explainer:
    """Evaluates example patients one at a time to say which conditions fail (findings only)."""

    def __init__(self, book: Rulebook):
        self.book = book
        self._states: dict[tuple, tuple[pd.DataFrame, dict[str, np.ndarray], set[str]]] = {}

    def preload(self, patients: Iterable[dict]) -> None:
        """Evaluate these patients in one frame (one call per patient made lint quadratic in rules)."""
        todo = {_key(p): p for p in patients if p and _key(p) not in self._states}
        if not todo:
            return
        typed, _ = validate_frame(pd.DataFrame(list(todo.values()), dtype=object), self.book.vocabulary)
        fired = fire_matrix(typed, self.book)
        for i, key in enumerate(todo):
            self._states[key] = self._unpack(typed.iloc[[i]].reset_index(drop=True), fired[i])

    def _unpack(self, typed: pd.DataFrame, fired: np.ndarray) -> tuple[pd.DataFrame, dict[str, np.ndarray], set[str]]:
        ids = {self.book.rules[j].id for j in np.flatnonzero(fired)}
        derived = {name for rule_id in ids for name in self.book.rule(rule_id).derive}
        return typed, {name: np.array([True]) for name in derived}, ids

    def _state(self, patient: dict) -> tuple[pd.DataFrame, dict[str, np.ndarray], set[str]]:
        key = _key(patient)
        state = self._states.get(key)
        if state is None:
            typed, _ = validate_frame(pd.DataFrame([patient], dtype=object), self.book.vocabulary)
            state = self._states[key] = self._unpack(typed, fire_matrix(typed, self.book)[0])
        return state

    def fired(self, patient: dict) -> set[str]:
        """Ids of the rules the patient fires."""
        return self._state(patient)[2]

    def failing(self, rule: Rule, patient: dict) -> list[str]:
        """The rule's conditions that do not hold for the patient, in words."""
        typed, derived, _ = self._state(patient)
        return [c.describe() for c in rule.when
                if not condition_mask(c, typed, derived, self.book.vocabulary)[0]]

    def closest(self, patient: dict, candidates: Iterable[str], limit: int = 3) -> list[tuple[str, list[str]]]:
        """The candidate rules missing the fewest conditions for this patient, with what fails."""
        typed, derived, _ = self._state(patient)
        scored = []
        for rule_id in candidates:
            rule = self.book.rule(rule_id)
            failing = [c.describe() for c in rule.when
                       if not condition_mask(c, typed, derived, self.book.vocabulary)[0]]
            scored.append((len(failing), rule.position, rule_id, failing))
        return [(rule_id, failing) for _, _, rule_id, failing in sorted(scored)[:limit]]


# -- checks ---------------------------------------------------------------------------------


class _Check:
    """One question over the space: the rules it needs, updates per chunk, and its findings."""

    name = ""
    rule_ids: frozenset[str] = frozenset()
    conditions: frozenset[Condition] = frozenset()
    optional: frozenset[str] = frozenset()  # evaluated; shape the classes only within the facts rule_ids vary

    def start(self, plan: Plan) -> None:
        """Called once with the enumeration this check rides on, before its chunks."""

    def update(self, chunk: Chunk) -> None:
        raise NotImplementedError

    def examples(self) -> list[dict]:
        """Example patients :meth:`findings` will explain (evaluated together beforehand)."""
        return []

    def findings(self, explainer: _Explainer) -> list[dict]:
        raise NotImplementedError


def _checks(book: Rulebook, space: FactSpace, max_regions: int) -> list[_Check]:
    checks: list[_Check] = [_OutcomeCheck(book, space, max_regions)]
    checks += [_HistoryCheck(book, agent) for agent in book.agents
               if agent in book.facts and book.facts[agent].kind == "status"]
    checks += [_ConflictCheck(book, conflict) for conflict in book.conflicts]
    checks += [_FiresCheck(rule) for rule in book.rules]
    drawers = _Drawers(book)
    checks += [c for c in (_ShadowCheck.build(drawers, rule) for rule in book.rules) if c is not None]
    return checks


class _Drawers:
    """Which rules draw each conclusion, indexed once (a scan per rule made lint quadratic in rules)."""

    def __init__(self, book: Rulebook):
        self.derive: dict[str, set[str]] = {}
        self.avoid: dict[str, set[str]] = {}
        self.flag: dict[str, set[str]] = {}
        self.recommend: dict[str, list[tuple[int, str]]] = {}
        for rule in book.rules:
            for name in rule.derive:
                self.derive.setdefault(name, set()).add(rule.id)
            for agent in rule.avoid:
                self.avoid.setdefault(agent, set()).add(rule.id)
            for name in rule.flag:
                self.flag.setdefault(name, set()).add(rule.id)
            for spec in rule.recommend:
                self.recommend.setdefault(spec.agent, []).append((spec.rank, rule.id))

    def recommending(self, agent: str, rank: int) -> frozenset[str]:
        """Rules recommending ``agent`` at ``rank`` or stronger."""
        return frozenset(rule_id for held, rule_id in self.recommend.get(agent, ()) if held <= rank)


class _OutcomeCheck(_Check):
    """Gaps (no disease-modifying agent) and ties between two preferred agents, in one pass."""

    name = "gaps and ties"

    def __init__(self, book: Rulebook, space: FactSpace, max_regions: int):
        self.book, self.space, self.max_regions = book, space, max_regions
        modifying = set(disease_modifying_agents(book))
        self.agents = [a for a in book.agents if a in modifying]
        self.entries = [(r.id, s.agent, s.rank) for r in book.rules for s in r.recommend if s.agent in modifying]
        self.continuing = _continuing(book, modifying)
        self.recommenders = frozenset(rule_id for rule_id, _, _ in self.entries)
        self.rule_ids = self.recommenders
        self.optional = frozenset().union(*(keep | avoid for keep, avoid in self.continuing.values()))
        self.conditions = frozenset(c for gap in book.accepted_gaps for c in gap.when)
        self.accepted, self.ties, self.sampled_gaps = _Tally(), _Tally(), _Tally()
        self.plan: Plan | None = None
        self.open_grid = np.zeros(0, dtype=bool)
        self.grids: list[tuple[Plan, np.ndarray]] = []  # per exhaustive plan (or case): its open gap classes

    def start(self, plan: Plan) -> None:
        self.plan = plan
        self.open_grid = np.zeros(plan.classes if plan.exhaustive else 0, dtype=bool)
        if plan.exhaustive:
            self.grids.append((plan, self.open_grid))

    def update(self, chunk: Chunk) -> None:
        at = {a: i for i, a in enumerate(self.agents)}
        ranks = np.full((len(self.agents), len(chunk)), _NO_RANK, dtype=np.int32)
        for rule_id, agent, rank in self.entries:
            row = ranks[at[agent]]
            np.minimum(row, rank, out=row, where=chunk.fires(rule_id))
        best = ranks.min(axis=0) if len(self.agents) else np.full(len(chunk), _NO_RANK)
        gap = best == _NO_RANK
        for keepers, avoiders in self.continuing.values():  # a disease-modifying agent continued: no gap
            kept = np.zeros(len(chunk), dtype=bool)
            for rule_id in keepers:
                kept |= chunk.fires(rule_id)
            for rule_id in avoiders:
                kept &= ~chunk.fires(rule_id)
            gap &= ~kept
        self._gaps(chunk, gap)
        tied = ((ranks == best) & (best != _NO_RANK)).sum(axis=0) >= 2
        if tied.any():
            rows = np.flatnonzero(tied)
            at_best = best[rows]
            entries = np.stack([chunk.fires(r)[rows] & (ranks[at[a]][rows] == k) & (at_best == k)
                                for r, a, k in self.entries])
            codes, labels = _group_patterns(entries, np.ones(len(rows), dtype=bool))
            self.ties.add_grouped(codes, labels, tied, chunk)

    def _gaps(self, chunk: Chunk, gap: np.ndarray) -> None:
        open_gap = gap.copy()
        for accepted in self.book.accepted_gaps:
            matched = open_gap & chunk.all_hold(accepted.when)
            self.accepted.add((accepted.id,), matched, chunk)
            open_gap &= ~matched
        if len(self.open_grid):
            self.open_grid[chunk.start:chunk.start + len(chunk)] = open_gap
        elif open_gap.any():
            order = sorted(self.recommenders, key=chunk.space.rule_column)
            codes, labels = _group_patterns(np.stack([chunk.fires(r) for r in order]), open_gap)
            self.sampled_gaps.add_grouped(codes, [tuple(order[i] for i in lab) for lab in labels], open_gap, chunk)

    def findings(self, explainer: _Explainer) -> list[dict]:
        return self._accepted() + self._open_gaps(explainer) + self._ties()

    def _accepted(self) -> list[dict]:
        out = []
        for (gap_id,), count, patient in self.accepted.items():
            gap = next(g for g in self.book.accepted_gaps if g.id == gap_id)
            out.append(_finding("gap", "accepted", (gap_id,), count,
                                f"accepted gap {gap_id} ({count:,} classes): {gap.description}", patient))
        return out

    def _open_gaps(self, explainer: _Explainer) -> list[dict]:
        out = [self._gap_finding(explainer, count, patient, "sampled classes firing " + (", ".join(key) or "nothing"))
               for key, count, patient in self.sampled_gaps.items()]
        left = 0
        for plan, grid in self.grids:
            found, missed = self._regions(explainer, plan, grid, self.max_regions - len(out))
            out += found
            left += missed
        if left:
            out.append(_finding("gap", "warning", (), left, f"{left:,} further gap classes not described "
                                f"(more than {self.max_regions} regions; raise max_regions)", {}))
        return out

    def _regions(self, explainer: _Explainer, plan: Plan, grid: np.ndarray, limit: int) -> tuple[list[dict], int]:
        """The open gap classes of one enumeration as described regions, and how many were left undescribed."""
        if not grid.any():
            return [], 0
        if limit <= 0:
            return [], int(grid.sum())
        marked = grid.reshape(plan.shape)
        boxes, left = cover(marked, limit=limit)
        out = []
        for box in boxes:
            cell = simplest_cell(marked, box)
            words = [describe_classes(self.space, plan, k, classes) for k, classes in zip(plan.keys, box)]
            region = " and ".join([plan.case] * bool(plan.case) + [w for w in words if w]) or "every patient"
            count = int(marked[np.ix_(*box)].sum())
            patient = self.space.patient({**dict(plan.fixed), **{k: int(plan.reps[k][int(c)])
                                                                  for k, c in zip(plan.keys, cell)}}, full=True)
            out.append(self._gap_finding(explainer, count, patient, region))
        return out, left

    def _gap_finding(self, explainer: _Explainer, count: int, patient: dict, region: str) -> dict:
        closest = explainer.closest(patient, self.recommenders)
        near = "; ".join(f"{rule_id} (fails: {', '.join(failing)})" for rule_id, failing in closest)
        return _finding("gap", "warning", [rule_id for rule_id, _ in closest], count,
                        f"no disease-modifying recommendation when {region} ({count:,} classes); "
                        f"closest rules: {near}", patient)

    def _ties(self) -> list[dict]:
        out = []
        for label, count, patient in self.ties.items():
            rules = sorted({self.entries[i][0] for i in label}, key=lambda r: self.book.rule(r).position)
            agents = sorted({self.entries[i][1] for i in label}, key=list(self.book.agents).index)
            rank = self.entries[label[0]][2]
            out.append(_finding("contradiction", "error", rules, count,
                                f"two preferred agents: {' and '.join(agents)} tie at the best rank {rank} "
                                f"({count:,} classes); only vocabulary order makes {agents[0]} preferred",
                                patient))
        return out


def _continuing(book: Rulebook, modifying: set[str]) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Per disease-modifying agent, the rules keeping it and those avoiding it, for the gap check.

    They ride as *optional* rules (:meth:`FactSpace.plan`): they shape the
    classes only where they test facts the recommendations already vary, so
    the enumeration does not grow by every agent's status; a gap region may
    then include patients who continue an agent whose status it does not vary
    (the example patient, at defaults, is always a real gap).
    """
    out: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for agent in (a for a in book.agents if a in modifying):
        keepers = [r for r in book.rules if agent in r.keep]
        # an avoider that never fires where a keeper does cannot undo "kept" (a status AVOID beside its KEEP)
        avoid = frozenset(r.id for r in book.rules if agent in r.avoid
                          and not all(_exclusive(r, keeper) for keeper in keepers))
        if keepers:
            out[agent] = (frozenset(r.id for r in keepers), avoid)
    return out


def _exclusive(a: Rule, b: Rule) -> bool:
    """True when rules ``a`` and ``b`` test one fact for disjoint sets of values (they never fire together)."""
    def values(condition: Condition) -> frozenset | None:
        if condition.kind != "fact" or condition.op not in ("==", "in"):
            return None
        return frozenset(condition.value if condition.op == "in" else (condition.value,))

    for x in a.when:
        for y in b.when:
            vx, vy = values(x), values(y)
            if vx is not None and vy is not None and x.fact == y.fact and not vx & vy:
                return True
    return False


class _NewStartCheck(_Check):
    """Base of the checks about one agent offered as a new start (recommended, neither kept nor avoided)."""

    def __init__(self, book: Rulebook, agent: str):
        self.agent = agent
        self.recommenders = [r.id for r in book.rules if any(s.agent == agent for s in r.recommend)]
        self.excluders = [r.id for r in book.rules if agent in r.keep + r.avoid]
        self.tally = _Tally()

    def started(self, chunk: Chunk) -> np.ndarray:
        """Rows where the agent is a new start."""
        offered = np.zeros(len(chunk), dtype=bool)
        for rule_id in self.recommenders:
            offered |= chunk.fires(rule_id)
        for rule_id in self.excluders:
            offered &= ~chunk.fires(rule_id)
        return offered

    def count(self, wrong: np.ndarray, chunk: Chunk) -> None:
        """Tally the rows in ``wrong`` by the recommender that offered the agent there."""
        if wrong.any():
            for recommender in self.recommenders:
                self.tally.add((recommender,), wrong & chunk.fires(recommender), chunk)


class _ConflictCheck(_NewStartCheck):
    """An agent offered as a new start where a flag that contradicts it is raised."""

    def __init__(self, book: Rulebook, conflict: Conflict):
        super().__init__(book, conflict.start)
        self.conflict = conflict
        self.name = f"conflict: {conflict.start} / {conflict.flag}"
        self.flaggers = [r.id for r in book.rules if conflict.flag in r.flag]
        self.rule_ids = frozenset(self.recommenders + self.excluders + self.flaggers)

    def update(self, chunk: Chunk) -> None:
        if not self.recommenders or not self.flaggers:
            return
        flagged = np.zeros(len(chunk), dtype=bool)
        for rule_id in self.flaggers:
            flagged |= chunk.fires(rule_id)
        self.count(self.started(chunk) & flagged, chunk)

    def findings(self, explainer: _Explainer) -> list[dict]:
        c = self.conflict
        return [_finding("conflict", "error", key, count,
                         f"{c.start} is offered as a new start by {key[0]} while {c.flag} is raised "
                         f"({count:,} classes): {c.why}", patient) for key, count, patient in self.tally.items()]


class _HistoryCheck(_NewStartCheck):
    """An agent offered as a new start although its status fact says it is not a candidate for one."""

    def __init__(self, book: Rulebook, agent: str):
        super().__init__(book, agent)
        self.name = f"history: {agent}"
        self.statuses = tuple(v for v in book.facts[agent].allowed if v != book.facts[agent].allowed[0])
        self.condition = Condition("fact", agent, "in", self.statuses)
        self.rule_ids = frozenset(self.recommenders + self.excluders)
        self.conditions = frozenset({self.condition})

    def update(self, chunk: Chunk) -> None:
        if self.recommenders:
            self.count(self.started(chunk) & chunk.all_hold([self.condition]), chunk)

    def findings(self, explainer: _Explainer) -> list[dict]:
        return [_finding("history", "error", key, count,
                         f"{self.agent} is offered as a new start by {key[0]} although its status is one of "
                         f"{', '.join(self.statuses)} ({count:,} classes); no rule keeps or avoids it there",
                         patient) for key, count, patient in self.tally.items()]


class _FiresCheck(_Check):
    """A rule that no patient of the space fires; reports the patient that comes closest."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.name = f"fires: {rule.id}"
        self.rule_ids = frozenset({rule.id})
        self.count = 0
        self.closest: tuple[int, dict] | None = None

    def update(self, chunk: Chunk) -> None:
        if self.count:
            return  # it fires: nothing more to learn (the finding only asks whether it ever fired)
        self.count += int(chunk.fires(self.rule.id).sum())
        if self.count:
            return
        holding = np.zeros(len(chunk), dtype=np.int64)
        for condition in self.rule.when:
            holding += chunk.holds(condition)
        row = int(np.argmax(holding))
        if self.closest is None or holding[row] > self.closest[0]:
            self.closest = (int(holding[row]), chunk.patient(row, full=True))

    def examples(self) -> list[dict]:
        return [self.closest[1]] if self.closest and not self.count else []

    def findings(self, explainer: _Explainer) -> list[dict]:
        if self.count:
            return []
        patient = self.closest[1] if self.closest else {}
        failing = explainer.failing(self.rule, patient) if patient else []
        return [_finding("never_fires", "error", (self.rule.id,), 0,
                         f"{self.rule.id} fires for no patient; the closest patient still fails: "
                         f"{', '.join(failing) or 'nothing'}", patient)]


class _ShadowCheck(_Check):
    """A rule whose every conclusion, wherever it fires, other fired rules already draw."""

    def __init__(self, rule: Rule, covers: list[tuple[str, frozenset[str]]]):
        self.rule = rule
        self.covers = covers  # per conclusion: (words, every rule drawing it, this one included)
        self.name = f"shadowed: {rule.id}"
        self.rule_ids = frozenset().union(*(ids for _, ids in covers))
        self.fired = self.uncovered = 0
        self.tally = _Tally()

    @classmethod
    def build(cls, drawers: _Drawers, rule: Rule) -> _ShadowCheck | None:
        """The check for ``rule``, or None when some conclusion has no other rule that could draw it."""
        covers = [(f"derive {d}", frozenset(drawers.derive[d])) for d in rule.derive]
        covers += [(f"recommend {s.agent} (rank {s.rank} or stronger)", drawers.recommending(s.agent, s.rank))
                   for s in rule.recommend]
        covers += [(f"avoid {a}", frozenset(drawers.avoid[a])) for a in rule.avoid]
        covers += [(f"flag {f}", frozenset(drawers.flag[f])) for f in rule.flag]
        if not covers or any(ids == {rule.id} for _, ids in covers):
            return None
        return cls(rule, covers)

    def update(self, chunk: Chunk) -> None:
        if self.uncovered:
            return  # it changes something somewhere: no finding, whatever the other chunks hold
        rows = np.flatnonzero(chunk.fires(self.rule.id))
        self.fired += len(rows)
        covered = np.ones(len(rows), dtype=bool)
        for _, ids in self.covers:
            if not covered.any():
                break
            other = np.zeros(len(rows), dtype=bool)  # some rule other than this one draws it too
            for rule_id in ids - {self.rule.id}:
                other |= chunk.fires(rule_id)[rows]
            covered &= other
        self.uncovered += int((~covered).sum())
        if len(rows) and not self.uncovered:
            mask = np.zeros(len(chunk), dtype=bool)
            mask[rows] = True
            self.tally.add(("all",), mask, chunk)

    def examples(self) -> list[dict]:
        return [self.tally.examples[("all",)][1]] if self.fired and not self.uncovered else []

    def findings(self, explainer: _Explainer) -> list[dict]:
        if not self.fired or self.uncovered:
            return []
        patient = self.tally.examples[("all",)][1]
        fired = explainer.fired(patient)
        by = [f"{words} by {', '.join(sorted(ids & fired - {self.rule.id}))}" for words, ids in self.covers]
        return [_finding("shadowed", "warning", (self.rule.id,), self.fired,
                         f"{self.rule.id} changes nothing: wherever it fires ({self.fired:,} classes) other rules "
                         f"already conclude the same; in the example: {'; '.join(by)}", patient)]
