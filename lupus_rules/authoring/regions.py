"""Describe a set of classes of an enumerated space as a few boxes ("regions") an author can read.

A lint check that finds thousands of gap classes is only useful if it says
*where* they are. :func:`cover` covers the marked cells of a dense boolean
grid (one axis per relevant fact, one position per class) with boxes: each
box fixes, per fact, a set of classes, and contains only allowed cells. It is
greedy (the first uncovered cell, lowest class numbers first, is widened one
fact at a time), so boxes may overlap and are not guaranteed minimal, but
every marked cell is in some box and no box holds a cell that is not allowed.
:func:`describe_classes` puts one axis of a box into words ("egfr >= 60",
"manifestations has nephritis", "mycophenolate in {not_tried, effective}").
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..rulebook import Condition
from ..facts import csv_cell
from .space import FactSpace, Plan

__all__ = ["cover", "simplest_cell", "describe_classes", "Box"]

#: One box: per grid axis, the sorted class indices it spans.
Box = tuple[tuple[int, ...], ...]


def cover(marked: np.ndarray, allowed: np.ndarray | None = None, limit: int = 100) -> tuple[list[Box], int]:
    """Boxes covering every marked cell, each inside ``allowed`` (default: ``marked``).

    Returns the boxes (at most ``limit``) and how many marked cells the
    returned boxes leave uncovered (0 unless the limit was reached).
    """
    allowed = marked if allowed is None else allowed | marked
    remaining = marked.copy()
    boxes: list[Box] = []
    while remaining.any() and len(boxes) < limit:
        seed = np.unravel_index(int(np.argmax(remaining)), marked.shape)
        box = _widen(allowed, [[int(i)] for i in seed])
        boxes.append(box)
        remaining[np.ix_(*box)] = False
    return boxes, int(remaining.sum())


def _widen(allowed: np.ndarray, sets: list[list[int]]) -> Box:
    """Grow the box one axis at a time by every class whose new slab is entirely allowed."""
    for axis, size in enumerate(allowed.shape):
        for value in range(size):
            if value in sets[axis]:
                continue
            slab = sets[:axis] + [[value]] + sets[axis + 1:]
            if allowed[np.ix_(*slab)].all():
                sets[axis].append(value)
    return tuple(tuple(sorted(s)) for s in sets)


def simplest_cell(marked: np.ndarray, box: Box) -> tuple[int, ...]:
    """The marked cell of the box with the fewest non-default (non-zero) classes."""
    sub = marked[np.ix_(*box)]
    local = np.argwhere(sub)
    cells = np.stack([np.asarray(axis)[local[:, k]] for k, axis in enumerate(box)], axis=1) if box else local
    best = int(np.argmin((cells != 0).sum(axis=1))) if len(cells) else 0
    return tuple(int(c) for c in cells[best])


def describe_classes(space: FactSpace, plan: Plan, key: str, classes: Iterable[int]) -> str | None:
    """Some classes of one band in words (``None`` when they are all of them: any value)."""
    chosen = sorted({int(c) for c in classes})
    if len(chosen) == len(plan.reps[key]):
        return None
    group = space.groups[key]
    members = [i for i, c in enumerate(plan.class_of[key]) if c in chosen]
    vocabulary = space.vocabulary
    kind = vocabulary.facts[key].kind if len(group.columns) == 1 else "pair"
    if kind == "set":
        return _describe_subsets(key, vocabulary.facts[key].allowed, [group.values[i] for i in members],
                                 [group.values[i] for i, c in enumerate(plan.class_of[key]) if c not in chosen])
    if kind in ("status", "bool"):
        shown = [str(csv_cell(key, group.values[i], vocabulary)) for i in members]
        return f"{key} = {shown[0]}" if len(shown) == 1 else f"{key} in {{{', '.join(shown)}}}"
    return _describe_by_atoms(plan, key, chosen)


def _describe_subsets(key: str, members: tuple[str, ...], inside: list[frozenset], outside: list[frozenset]) -> str:
    """Values of a set fact as 'has X and lacks Y' when that is exact, else as a list of the sets."""
    has = [m for m in members if all(m in v for v in inside)]
    lacks = [m for m in members if all(m not in v for v in inside)]
    if (has or lacks) and not any(all(m in v for m in has) and not any(m in v for m in lacks) for v in outside):
        return " and ".join([f"{key} has {m}" for m in has] + [f"{key} lacks {m}" for m in lacks])
    shown = [";".join(m for m in members if m in v) or "none" for v in inside]
    return f"{key} = {shown[0]}" if len(shown) == 1 else f"{key} in {{{', '.join(shown)}}}"


def _describe_by_atoms(plan: Plan, key: str, chosen: list[int]) -> str:
    """Number classes in words: the atoms every chosen class agrees on (or each class's signature)."""
    atoms, signature = plan.atoms[key], plan.signatures[key]
    agreed = [(j, bool(signature[chosen[0], j])) for j in range(len(atoms))
              if len(set(signature[chosen, j].tolist())) == 1]
    matching = [c for c in range(len(plan.reps[key])) if all(bool(signature[c, j]) == v for j, v in agreed)]
    if matching == chosen:
        return " and ".join(_atom_words(atoms[j], v) for j, v in agreed)
    per_class = [" and ".join(_atom_words(a, bool(signature[c, j])) for j, a in enumerate(atoms)) for c in chosen]
    return " or ".join(f"({text})" for text in per_class)


_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _atom_words(atom: Condition, value: bool) -> str:
    """A condition, or its negation, in words (a failed comparison includes 'or unknown')."""
    if value:
        return atom.describe()
    if atom.op in _NEGATED:
        return f"({atom.fact} {_NEGATED[atom.op]} {atom.value:g} or unknown)"
    if atom.op in ("known", "unknown"):
        return f"{atom.fact} is {'unknown' if atom.op == 'known' else 'known'}"
    return f"not ({atom.describe()})"
