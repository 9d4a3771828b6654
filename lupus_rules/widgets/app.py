"""The code-free app: the explorer on a page of its own, as ``make app`` serves it with Voila.

Not for clinical use. ``app/explorer.ipynb`` holds one cell calling :func:`app`;
Voila runs it and shows only the widget (no code), in the same layout and
with the same SVG graph as JupyterLab.
"""
from __future__ import annotations

from collections.abc import Mapping

from .explorer import ScenarioExplorer

__all__ = ["app", "APP_HEIGHT_PX"]

#: Explorer height in the app: a 1366x768 browser window minus the browser's own margins.
APP_HEIGHT_PX = 700


def app(patient: Mapping[str, object] | None = None) -> ScenarioExplorer:
    """A full-page explorer for the shipped rulebook (the nephritis teaching patient unless ``patient``)."""
    start = patient if patient is not None else {"manifestations": "nephritis", "methotrexate": "intolerant"}
    return ScenarioExplorer(patient=start, height_px=APP_HEIGHT_PX)
