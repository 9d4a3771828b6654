"""Where each fact came from: resource ids and elements, or ``unknown`` with a reason."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Source", "FactProvenance", "UNKNOWN_REASONS", "known", "unknown"]

#: Why a fact is unknown: nothing in the record says it (absent), the record disagrees with
#: itself or cannot be read (ambiguous), or the newest evidence is too old (stale).
UNKNOWN_REASONS: tuple[str, ...] = ("absent", "ambiguous", "stale")


@dataclass(frozen=True)
class Source:
    """One resource (``Type/id``) and the elements of it that were read."""

    resource: str
    elements: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """``{"resource": ..., "elements": [...]}``."""
        return {"resource": self.resource, "elements": list(self.elements)}


@dataclass(frozen=True)
class FactProvenance:
    """A fact's value and its sources, or ``unknown`` (one of :data:`UNKNOWN_REASONS`) with a note."""

    value: object = None
    sources: tuple[Source, ...] = ()
    unknown: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form: ``{"value", "sources"}`` or ``{"unknown", "note", "sources"}``."""
        out: dict[str, Any] = {"unknown": self.unknown} if self.unknown else {"value": _plain(self.value)}
        if self.note:
            out["note"] = self.note
        out["sources"] = [s.to_json() for s in self.sources]
        return out


def known(value: object, *sources: Source, note: str = "") -> FactProvenance:
    """A known fact value with its sources."""
    return FactProvenance(value, tuple(dict.fromkeys(sources)), None, note)


def unknown(reason: str, note: str, *sources: Source) -> FactProvenance:
    """An unknown fact: ``reason`` one of :data:`UNKNOWN_REASONS`."""
    if reason not in UNKNOWN_REASONS:
        raise ValueError(f"unknown reason {reason!r}; allowed: {', '.join(UNKNOWN_REASONS)}")
    return FactProvenance(None, tuple(dict.fromkeys(sources)), reason, note)


def _plain(value: object) -> object:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return value
