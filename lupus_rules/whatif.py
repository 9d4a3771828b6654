"""What-if: two outcomes side by side, with what differs between them.

Not for clinical use: a teaching comparison of two model patients.

:func:`compare_outcomes` compares a pinned result with the current one: the
facts that differ, the preferred agent, and for each outcome list
(recommendations, flags, avoided agents, fired rules, and ``continue`` /
``cautions`` when the Result has them) the items added and removed.
"""
from __future__ import annotations

from dataclasses import dataclass

from .result import Result
from .words import value_words

__all__ = ["OUTCOME_LISTS", "ALIASES", "outcome_list", "ListDiff", "OutcomeDiff", "compare_outcomes"]

#: The outcome lists a Result may carry, in the order they are shown. ``continue`` and
#: ``cautions`` are read only when the Result has them (getattr), so they appear once added.
OUTCOME_LISTS: tuple[str, ...] = ("recommendations", "continue", "cautions", "flags", "avoided", "fired_rules")


#: Attribute names an outcome list may have on a Result (``continue`` is a Python keyword, so a
#: dataclass field for it is likely spelled ``continue_``).
ALIASES: dict[str, tuple[str, ...]] = {"continue": ("continue", "continue_", "continued")}


def outcome_list(result: Result, name: str) -> tuple[str, ...] | None:
    """One outcome list of a result as text items, or None when this Result has no such field."""
    value = next((getattr(result, a) for a in ALIASES.get(name, (name,)) if getattr(result, a, None) is not None),
                 None)
    if value is None:
        return None
    if isinstance(value, dict):
        return tuple(str(k) for k in value)
    if isinstance(value, str):
        return (value,)
    return tuple(str(getattr(item, "agent", item)) for item in value)


@dataclass(frozen=True)
class ListDiff:
    """One outcome list in both results, and what the second adds and removes."""

    name: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def added(self) -> tuple[str, ...]:
        """Items only in the second (current) result."""
        return tuple(x for x in self.after if x not in self.before)

    @property
    def removed(self) -> tuple[str, ...]:
        """Items only in the first (pinned) result."""
        return tuple(x for x in self.before if x not in self.after)

    @property
    def same(self) -> bool:
        """Whether both results list the same items (order ignored)."""
        return not self.added and not self.removed


@dataclass(frozen=True)
class OutcomeDiff:
    """How the current result differs from the pinned one."""

    facts: tuple[tuple[str, str, str], ...]
    preferred: tuple[str | None, str | None]
    lists: tuple[ListDiff, ...]

    @property
    def preferred_changed(self) -> bool:
        """Whether the preferred agent differs."""
        return self.preferred[0] != self.preferred[1]

    @property
    def same(self) -> bool:
        """Whether the two outcomes are identical."""
        return not self.preferred_changed and all(d.same for d in self.lists)


def compare_outcomes(pinned: Result, current: Result) -> OutcomeDiff:
    """The differences between a pinned result and the current one (facts, preferred agent, every list)."""
    facts = tuple((name, value_words(pinned.patient[name]), value_words(current.patient[name]))
                  for name in pinned.patient.facts() if pinned.patient[name] != current.patient[name])
    lists = []
    for name in OUTCOME_LISTS:
        before, after = outcome_list(pinned, name), outcome_list(current, name)
        if before is not None or after is not None:
            lists.append(ListDiff(name, before or (), after or ()))
    return OutcomeDiff(facts, (pinned.preferred, current.preferred), tuple(lists))
