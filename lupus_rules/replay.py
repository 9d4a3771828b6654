"""Forward chaining, one firing at a time: the step model the explorer's step/play control replays.

Not for clinical use: a teaching view of how a forward-chaining engine reached a result.

:func:`replay` turns a :class:`~lupus_rules.result.Result` (its trace, in the
engine's firing order) into ``len(trace) + 1`` :class:`Step` states: step 0 is
"patient facts asserted, nothing fired"; step *k* is the state after *k*
firings. Each step tells which stratum is running, which rules are activated
(on the agenda: every condition holds with the facts so far and they have not
fired yet), which facts exist so far, which rule fires next and why (its
conditions in words). The agenda is recomputed from the rule data with
:func:`lupus_rules.explain.condition_holds` and checked against the engine's
trace: a rule the engine fired that the replay does not find activated is an
error, not a silent mismatch.
"""
from __future__ import annotations

from dataclasses import dataclass

from .evaluate import default_rulebook
from .explain import condition_holds
from .result import Result, summarize
from .rulebook import Rule, Rulebook
from .words import condition_words, value_words

__all__ = ["Step", "replay", "conclusions_words"]


@dataclass(frozen=True)
class Step:
    """The engine's state after ``number`` firings (0 = facts asserted, nothing fired yet).

    ``just_fired`` is the rule fired by this step (None at step 0) and
    ``concluded`` what it added; ``next_rule``/``next_because`` the rule that
    fires next and its conditions in words (None/() after the last firing);
    ``stratum`` is the stratum running (that of the next rule, else of the last);
    ``facts`` the patient's facts that differ from their defaults; ``activated`` the rules on the agenda in firing order, ``derived`` the derived
    facts so far, ``recommended`` (new starts), ``flags``, ``avoided`` and
    ``continued`` the outcome of the rules fired so far (as :func:`summarize` reads them).
    """

    number: int
    total: int
    stratum: int | None
    just_fired: str | None
    concluded: tuple[str, ...]
    next_rule: str | None
    next_because: tuple[str, ...]
    facts: tuple[str, ...]
    activated: tuple[str, ...]
    derived: tuple[str, ...]
    recommended: tuple[str, ...]
    flags: tuple[str, ...]
    avoided: tuple[str, ...]
    continued: tuple[str, ...] = ()

    def headline(self) -> str:
        """One line: step number, what just happened, and what comes next."""
        if self.number == 0:
            now = "patient facts asserted, nothing fired yet"
        else:
            now = f"{self.just_fired} fired"
        later = f"; next: {self.next_rule}" if self.next_rule else "; no rule left to fire: evaluation finished"
        where = f"stratum {self.stratum} running" if self.next_rule is not None else "all strata done"
        return f"Step {self.number} of {self.total} ({where}): {now}{later}"


def conclusions_words(rule: Rule) -> tuple[str, ...]:
    """What a rule concludes, one phrase per conclusion (derive, recommend with rank, avoid, flag)."""
    out = [f"derive {d}" for d in rule.derive]
    out += [f"recommend {r.agent} (rank {r.rank})" for r in rule.recommend]
    out += [f"avoid {a}" for a in rule.avoid]
    out += [f"flag {f}" for f in rule.flag]
    return tuple(out)


def replay(result: Result, rulebook: Rulebook | None = None) -> list[Step]:
    """The evaluation of ``result`` as ``len(result.trace) + 1`` steps (see the module docstring).

    ``rulebook`` must be the one that produced ``result`` (default: the shipped one);
    a different version raises ``ValueError``.
    """
    book = rulebook if rulebook is not None else default_rulebook()
    if result.rulebook_version != book.version:
        raise ValueError(f"result: comes from rulebook {result.rulebook_version}, but rulebook {book.version} "
                         "was given; pass the rulebook that produced the result")
    fired = [book.rule(r) for r in result.fired_rules]
    steps = []
    for k in range(len(fired) + 1):
        steps.append(_state(book, result, fired, k))
    return steps


def _state(book: Rulebook, result: Result, fired: list[Rule], k: int) -> Step:
    done, patient = fired[:k], result.patient
    derived = _ordered(book.derived_facts, (d for r in done for d in r.derive))
    nxt = fired[k] if k < len(fired) else None
    stratum = nxt.stratum if nxt is not None else (done[-1].stratum if done else None)
    activated: tuple[str, ...] = ()
    because: tuple[str, ...] = ()
    if nxt is not None:
        done_ids = {r.id for r in done}
        activated = tuple(r.id for r in book.rules if r.stratum == nxt.stratum and r.id not in done_ids
                          and all(condition_holds(c, patient, derived) for c in r.when))
        if nxt.id not in activated:
            raise RuntimeError(f"replay: the engine fired {nxt.id} at step {k + 1}, but its conditions do not "
                               "all hold with the facts derived before it")
        derivers = {d: [r.id for r in done if d in r.derive] for d in derived}
        because = tuple(condition_words(c, patient, book, derived, derivers) for c in nxt.when) or (
            "no conditions: it applies to every patient",)
    so_far = summarize(book, [r.id for r in done])  # new starts exclude kept and avoided agents
    return Step(
        number=k, total=len(fired), stratum=stratum,
        just_fired=done[-1].id if done else None,
        concluded=conclusions_words(done[-1]) if done else (),
        next_rule=nxt.id if nxt is not None else None, next_because=because,
        facts=tuple(f"{name} = {value_words(patient[name], book.vocabulary.spec(name))}" for name in book.facts
                    if patient[name] != _default(book, name)),
        activated=activated,
        derived=derived,
        recommended=so_far.recommendations,
        flags=so_far.flags,
        avoided=tuple(so_far.avoided),
        continued=so_far.continue_)


def _default(book: Rulebook, name: str) -> object:
    spec = book.vocabulary.spec(name)
    return spec.default if spec is not None else None


def _ordered(vocabulary: dict[str, str], codes) -> tuple[str, ...]:
    present = set(codes)
    return tuple(code for code in vocabulary if code in present)
