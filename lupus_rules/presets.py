"""Preset patients for the explorer: the scenario suite, grouped by suite file, with short labels.

Not for clinical use: the presets are the test scenarios of a teaching model.

:func:`load_presets` reads the suite (:func:`lupus_rules.suite.load_suite`)
into :class:`Preset` objects grouped by file (``"06 nephritis"`` for
``06_nephritis.csv``); :func:`short_label` keeps a label to one line;
:func:`patient_label` says which patient is shown: the preset's label, or
``custom (from <id>)`` once a fact was edited.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Preset", "LABEL_CHARS", "default_scenarios_dir", "load_presets", "short_label", "group_label", "patient_label"]

#: Longest preset label shown in the explorer's list (characters).
LABEL_CHARS = 46


@dataclass(frozen=True)
class Preset:
    """One suite scenario as a preset: id, file group, short label, full description and fact cells."""

    id: str
    group: str
    label: str
    description: str
    facts: dict[str, str]


def default_scenarios_dir() -> Path:
    """The repository's ``scenarios/`` folder (next to the package in a source checkout)."""
    return Path(__file__).resolve().parent.parent / "scenarios"


def group_label(file: str) -> str:
    """A suite file as a group name: ``06_nephritis.csv`` -> ``06 nephritis``."""
    return Path(file).stem.replace("_", " ")


def short_label(ident: str, description: str, limit: int = LABEL_CHARS) -> str:
    """``"<id>: <description>"`` cut to ``limit`` characters at a word boundary, with an ellipsis."""
    text = f"{ident}: {description}" if description else ident
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0] if " " in text[len(ident) + 2:limit] else text[:limit - 1]
    return cut.rstrip(" ,;:-") + "…"


def load_presets(folder: str | Path | None = None) -> dict[str, list[Preset]]:
    """Presets by group (file order, then row order). A missing folder gives none; a malformed
    suite raises :class:`~lupus_rules.suite.SuiteFormatError` naming file, row and column."""
    from .suite import load_suite

    folder = Path(folder) if folder is not None else default_scenarios_dir()
    if not folder.is_dir() or not any(folder.glob("*.csv")):
        return {}
    groups: dict[str, list[Preset]] = {}
    for s in load_suite(folder):
        group = group_label(s.file)
        groups.setdefault(group, []).append(
            Preset(s.id, group, short_label(s.id, s.description), s.description, dict(s.facts)))
    return groups


def patient_label(preset: Preset | None, edited: bool) -> str:
    """Which patient the explorer shows: the preset's label, ``custom (from <id>)``, or ``custom``."""
    if preset is None:
        return "custom"
    return f"custom (from {preset.id})" if edited else preset.label
