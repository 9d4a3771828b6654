"""Batch research helpers: tables and plots of a batch's outcomes, rulebook version on each figure.

Not for clinical use. (No ipywidgets needed; kept with the notebook helpers.)
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..rulebook import Rulebook

__all__ = ["preferred_by_manifestation", "rule_frequency", "plot_preferred_by_manifestation",
           "plot_rule_frequency", "rule_label"]


# ---------------------------------------------------------------------------------------
# Batch research helpers


def _version_of(results: pd.DataFrame) -> str:
    versions = sorted(set(results.get("rulebook_version", pd.Series(dtype=str))) - {""})
    return ", ".join(versions) or "unknown"


def preferred_by_manifestation(results: pd.DataFrame, percent: bool = True) -> pd.DataFrame:
    """How often each agent is preferred, per manifestation (a row counts once for each manifestation it has).

    Rows are manifestations (``(none)`` for patients without one), columns the
    preferred agent (``none`` when no agent is preferred); percentages of the
    manifestation's rows when ``percent``, else counts. Rows with an error are left out.
    """
    ok = results[results["error"] == ""] if "error" in results.columns else results
    manifest = ok["manifestations"].fillna("").astype(str).str.split(";")
    frame = pd.DataFrame({"manifestation": manifest, "preferred": ok["preferred"].replace("", "none")})
    frame = frame.explode("manifestation")
    frame["manifestation"] = frame["manifestation"].replace("", "(none)")
    table = pd.crosstab(frame["manifestation"], frame["preferred"])
    if percent:
        table = (table.div(table.sum(axis=1), axis=0) * 100).round(1)
    table.columns.name = "preferred agent"
    return table


def rule_frequency(results: pd.DataFrame) -> pd.DataFrame:
    """How many rows fired each rule, most frequent first (ties by rule id), with the share of rows.

    Rows with an error are left out.
    """
    ok = results[results["error"] == ""] if "error" in results.columns else results
    fired = ok["fired_rules"].astype(str).str.split(";").explode()
    counts = fired[fired != ""].value_counts()
    table = pd.DataFrame({"rows": counts, "percent": (counts / max(len(ok), 1) * 100).round(1)})
    table.index.name = "rule"
    return table.sort_values(["rows", "rule"], ascending=[False, True])


def plot_preferred_by_manifestation(results: pd.DataFrame):
    """Stacked bars: share of each preferred agent per manifestation; rulebook version in the title."""
    import matplotlib.pyplot as plt

    table = preferred_by_manifestation(results)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    palette = plt.get_cmap("tab20")
    agents = [c for c in table.columns if c != "none"]
    colours = [("#b0b0b0" if c == "none" else palette(agents.index(c) % 20)) for c in table.columns]
    table.plot.barh(stacked=True, ax=ax, color=colours, width=0.8)  # "none" grey: no agent is not an agent
    ax.set_xlabel("% of generated scenarios with this manifestation")
    ax.set_ylabel("")
    ax.legend(title="preferred agent", bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    ax.set_title(f"Preferred agent per manifestation — rulebook {_version_of(results)}")
    _footer(fig, results)
    fig.tight_layout()
    return fig


def rule_label(rule_id: str, rulebook: Rulebook | None, width: int = 46) -> str:
    """``"R-LN-01 Nephritis step 1: mycophenolate induct…"``: the id and its title, cut to ``width``."""
    titles = {r.id: r.title for r in rulebook.rules} if rulebook is not None else {}
    title = titles.get(rule_id, "")
    if len(title) > width:
        title = title[:width - 1].rstrip() + "…"
    return f"{rule_id} {title}".strip()


def plot_rule_frequency(results: pd.DataFrame, top: int = 20, rulebook: Rulebook | None = None):
    """Horizontal bars: the ``top`` most frequently fired rules, labelled with their titles from ``rulebook``.

    The rulebook version is in the title.
    """
    import matplotlib.pyplot as plt

    table = rule_frequency(results).head(top)
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(table) + 1.5))
    labels = [rule_label(r, rulebook) for r in table.index]
    ax.barh(labels[::-1], table["percent"][::-1], color="#d97706")
    ax.set_xlabel("% of generated scenarios in which the rule fired")
    ax.set_title(f"Most frequently fired rules — rulebook {_version_of(results)}")
    _footer(fig, results)
    fig.tight_layout()
    return fig


def _footer(fig: Any, results: pd.DataFrame) -> None:
    fig.text(0.01, 0.005, f"{len(results):,} generated scenarios · rulebook {_version_of(results)} · "
             "Not for clinical use", fontsize=7, color="#555")
