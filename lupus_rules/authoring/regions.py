"""Describe a set of classes of an enumerated space as a few boxes ("regions") an author can read.

A lint check that finds thousands of gap classes is only useful if it says
*where* they are. :func:`cover` covers the marked cells of a dense boolean
grid (one axis per relevant fact, one position per class) with boxes: each
box fixes, per fact, a set of classes, and contains only allowed cells. It is
greedy (the first uncovered cell, lowest class numbers first, is widened one
fact at a time), so boxes may overlap and are not guaranteed minimal, but
every marked cell is in some box and no box holds a cell that is not allowed.
"""
from __future__ import annotations

import numpy as np

__all__ = ["cover", "simplest_cell", "Box"]

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

