"""HTML building blocks shared by the widgets: escaping, tables, lists and the explorer's style sheet.

Not for clinical use. No ipywidgets here: plain functions of text.
"""
from __future__ import annotations

import html
from collections.abc import Iterable

__all__ = ["esc", "table", "bullets", "STYLE"]


def esc(value: object) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(value))


def table(headers: list[str], rows: list[list[str]], css: str = "", font: str = "90%") -> str:
    """A compact HTML table; cells are already HTML (escape them first)."""
    head = "".join(f"<th style='text-align:left;padding:2px 6px'>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:2px 6px;vertical-align:top'>{cell}</td>" for cell in row) + "</tr>"
        for row in rows)
    return f"<table class='{css}' style='border-collapse:collapse;font-size:{font}'><tr>{head}</tr>{body}</table>"


def bullets(items: Iterable[str], css: str = "") -> str:
    """An HTML list of already-escaped items (``<i>none</i>`` when empty)."""
    items = list(items)
    if not items:
        return "<div style='margin:0 0 4px 18px'><i style='color:#6b7280'>none</i></div>"
    return f"<ul class='{css}' style='margin:2px 0 4px 0;padding-left:18px'>" + "".join(
        f"<li>{item}</li>" for item in items) + "</ul>"


#: The explorer's style sheet (injected once per explorer, in JupyterLab and in Voila alike).
STYLE = """
<style>
.lr-explorer { font-size: 14px; }
.lr-explorer .widget-box > * { flex-shrink: 0; }
.lr-explorer .widget-html-content { line-height: 1.4; font-size: 14px; }
.lr-explorer .widget-html, .lr-explorer .widget-checkbox { margin-top: 1px; margin-bottom: 1px; }
.lr-explorer .widget-label, .lr-explorer .widget-inline-hbox .widget-label { font-size: 14px; }
.lr-col-controls { overflow-y: auto !important; overflow-x: hidden !important; }
.lr-explorer .widget-html-content span[title] { text-overflow: ellipsis; }
.lr-group-title { font-weight: bold; color: #374151; margin: 6px 0 0 0; border-bottom: 1px solid #e5e7eb; }
.lr-outcome-box { overflow-y: auto !important; border-left: 3px solid #1d4ed8; padding-left: 8px !important; }
.lr-outcome .lr-preferred { font-size: 22px; color: #1d4ed8; }
.lr-banner { background: #b91c1c; color: #fff; font-weight: bold; padding: 2px 8px; border-radius: 3px; }
.lr-tab-body { overflow: auto !important; }
.lr-explorer .widget-tab > .lm-TabBar .lm-TabBar-tab, .lr-explorer .widget-tab > .p-TabBar .p-TabBar-tab {
  flex: 0 1 auto !important; min-width: 0 !important; padding: 0 9px !important; font-size: 14px; }
.lr-graph-box { overflow: auto !important; border: 1px solid #e5e7eb; background: #fff; }
.lr-fullscreen { position: fixed !important; left: 0 !important; top: 0 !important; width: 100vw !important;
                 height: 100vh !important; z-index: 10000 !important; background: #fff !important; }
.lr-unknown input { color: #9ca3af !important; font-style: italic; }
.lr-add { color: #166534; font-weight: bold; }
.lr-del { color: #b91c1c; text-decoration: line-through; }
.lr-diff-mark { background: #fef3c7; }
.lr-whynot li { margin-bottom: 4px; }
</style>
"""
