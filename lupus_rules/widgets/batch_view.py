"""Notebook 03's batch panel: choose the facts to vary, run the batch, see a plot, export CSV, Parquet or PNG.

Not for clinical use. The work is done outside the widgets: :mod:`lupus_rules.generate`
builds the scenarios (the whole product, or a seeded sample when it is larger than
``max_rows``), :func:`lupus_rules.batch.run_batch` evaluates them with the vectorized
engine, :mod:`.plots` draws, and :func:`lupus_rules.output.atomic_output` writes each
export whole or not at all. Every figure and file carries the rulebook version.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..errors import LupusRulesError
from ..evaluate import default_rulebook
from ..rulebook import Rulebook
from ._html import esc

__all__ = ["BatchPanel", "PLOTS"]

#: The plots the panel can draw, by label.
PLOTS: tuple[str, ...] = ("Preferred agent per manifestation", "Most frequently fired rules")


class BatchPanel:
    """Facts to vary (ticked per group), a size estimate, Run, a plot and three export buttons.

    ``results`` holds the last run (a DataFrame with ``rulebook_version`` on every
    row); ``figure`` the plot shown; ``status`` says what happened, in words.
    """

    def __init__(self, rulebook: Rulebook | None = None, facts: Iterable[str] = ("manifestations", "methotrexate"),
                 max_rows: int = 200_000, seed: int = 0, export_dir: str | Path = "batch_exports"):
        from ..generate import value_bands

        self.rulebook = rulebook if rulebook is not None else default_rulebook()
        self.bands = value_bands(self.rulebook)
        self.max_rows, self.seed = max_rows, seed
        self.results = None
        self.figure = None
        chosen = set(facts)
        self.ticks: dict[str, w.Checkbox] = {}
        groups: dict[str, list[w.Widget]] = {}
        for key in self.bands:
            spec = self.rulebook.facts.get(key)
            box = w.Checkbox(value=key in chosen, description=key, indent=False, layout=w.Layout(width="250px"))
            box.observe(lambda _: self._estimate(), names="value")
            self.ticks[key] = box
            groups.setdefault(getattr(spec, "group", "") or "other", []).append(box)
        columns = [w.VBox([w.HTML(f"<b style='font-size:14px'>{esc(g)}</b>"), *boxes])
                   for g, boxes in groups.items()]
        self.size = w.HTML()
        self.run_button = w.Button(description="Generate and run", button_style="primary", icon="play")
        self.plot_choice = w.Dropdown(options=PLOTS, value=PLOTS[0], description="Plot",
                                      layout=w.Layout(width="420px"))
        self.export_dir = w.Text(value=str(export_dir), description="Folder", layout=w.Layout(width="420px"))
        self.exports = {kind: w.Button(description=f"Save {kind}", icon="download") for kind in ("CSV", "Parquet", "PNG")}
        self.status = w.HTML()
        self.plot_area = w.Image(format="png", layout=w.Layout(max_width="1000px"))
        self.run_button.on_click(lambda _: self.run())
        self.plot_choice.observe(lambda _: self._draw(), names="value")
        for kind, button in self.exports.items():
            button.on_click(lambda _, kind=kind: self.export(kind))
        self.widget = w.VBox([
            w.HTML("<b style='font-size:15px'>Facts to vary</b> <span style='font-size:14px'>(every other fact "
                   "stays at its default; not for clinical use)</span>"),
            w.HBox(columns, layout=w.Layout(flex_flow="row wrap")),
            self.size, self.run_button, self.plot_choice, self.plot_area,
            w.HBox([self.export_dir, *self.exports.values()]), self.status])
        self.widget.add_class("lr-batch")
        self._estimate()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "BatchPanel (interactive widget: needs a running kernel)"
        return bundle

    def chosen(self) -> list[str]:
        """The facts ticked, in the bands' order."""
        return [key for key, box in self.ticks.items() if box.value]

    def run(self) -> bool:
        """Build and evaluate the batch; True on success (``status`` says what was run)."""
        from ..batch import run_batch
        from ..generate import cartesian, count, sample

        facts = self.chosen()
        try:
            total = count(self.bands, facts)
            batch = (cartesian(self.bands, facts) if total <= self.max_rows
                     else sample(self.bands, facts, self.max_rows, self.seed))
            self.results = run_batch(batch, engine="vectorized", rulebook=self.rulebook)
        except LupusRulesError as exc:
            return self._say(str(exc), False)
        rejected = int((self.results["error"] != "").sum())
        how = "every combination" if total <= self.max_rows else f"a seeded sample (seed {self.seed}) of {total:,}"
        self._draw()
        return self._say(f"{len(self.results):,} scenarios ({how}), {rejected} rejected, "
                         f"rulebook {self.rulebook.version}", True)

    def export(self, kind: str) -> Path | None:
        """Write the last results (CSV or Parquet) or the plot (PNG) into the export folder; the path, or None."""
        from ..output import atomic_output

        if self.results is None:
            self._say("Nothing to save yet: run a batch first.", False)
            return None
        suffix = {"CSV": ".csv", "Parquet": ".parquet", "PNG": ".png"}[kind]
        folder = Path(self.export_dir.value).expanduser()
        path = folder / f"batch_{self.rulebook.version}{suffix}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_output(path, suffixes=(suffix,)) as partial:
                if kind == "CSV":
                    self.results.to_csv(partial, index=False)
                elif kind == "Parquet":
                    self.results.to_parquet(partial, index=False)
                else:
                    self.figure.savefig(partial, format="png", dpi=120, bbox_inches="tight")
        except (LupusRulesError, OSError) as exc:
            self._say(f"Folder {str(folder)!r}: {exc}", False)
            return None
        self._say(f"Saved {path}", True)
        return path

    def _estimate(self) -> None:
        from ..generate import count

        total = count(self.bands, self.chosen())
        if total <= self.max_rows:
            self.size.value = f"<span style='font-size:14px'>{total:,} scenarios: every combination</span>"
        else:
            self.size.value = (f"<span style='font-size:14px'>{total:,} combinations: a seeded sample of "
                               f"{self.max_rows:,} is run</span>")

    def _draw(self) -> None:
        """Draw the chosen plot into the panel's image (closed in pyplot, so no cell shows it twice)."""
        import io

        import matplotlib.pyplot as plt

        from .plots import plot_preferred_by_manifestation, plot_rule_frequency

        if self.results is None:
            return
        self.figure = (plot_preferred_by_manifestation(self.results) if self.plot_choice.value == PLOTS[0]
                       else plot_rule_frequency(self.results, rulebook=self.rulebook))
        plt.close(self.figure)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        self.plot_area.value = buffer.getvalue()

    def _say(self, message: str, ok: bool) -> bool:
        colour = "#166534" if ok else "#b91c1c"
        self.status.value = f"<div class='lr-batch-status' style='color:{colour};font-size:14px'>{esc(message)}</div>"
        return ok

