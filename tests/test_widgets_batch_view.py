"""Notebook 03's batch panel (widgets/batch_view.py): choose facts, run, plot, export."""
from __future__ import annotations

import pandas as pd
import pytest

from lupus_rules import default_rulebook
from lupus_rules.generate import count, value_bands
from lupus_rules.widgets import BatchPanel
from lupus_rules.widgets.batch_view import PLOTS
from lupus_rules.widgets.plots import rule_label


@pytest.fixture
def panel(tmp_path):
    return BatchPanel(facts=("manifestations", "methotrexate", "planning_pregnancy"), export_dir=tmp_path / "out")


def test_ticked_facts_are_run_as_every_combination(panel):
    bands = value_bands(default_rulebook())
    expected = count(bands, ["manifestations", "methotrexate", "planning_pregnancy"])
    assert f"{expected:,} scenarios" in panel.size.value
    assert panel.run() and len(panel.results) == expected
    assert set(panel.results["rulebook_version"]) == {default_rulebook().version}
    assert panel.results["planning_pregnancy"].nunique() == 2 and "every combination" in panel.status.value
    panel.ticks["egfr"].value = True                      # the estimate follows every tick
    assert f"{count(bands, panel.chosen()):,} scenarios" in panel.size.value


def test_a_large_product_is_sampled_with_the_seed(tmp_path):
    panel = BatchPanel(facts=("manifestations", "methotrexate", "mycophenolate", "azathioprine", "egfr", "upcr"),
                       max_rows=3_000, seed=4, export_dir=tmp_path)
    assert "a seeded sample of 3,000" in panel.size.value
    assert panel.run() and len(panel.results) == 3_000
    again = BatchPanel(facts=panel.chosen(), max_rows=3_000, seed=4, export_dir=tmp_path)
    again.run()
    pd.testing.assert_frame_equal(panel.results, again.results)


def test_exports_write_whole_files_named_by_version(panel):
    assert panel.export("CSV") is None and "run a batch first" in panel.status.value
    panel.run()
    csv = panel.export("CSV")
    assert csv.name == f"batch_{default_rulebook().version}.csv"
    assert len(pd.read_csv(csv, dtype=str, keep_default_na=False)) == len(panel.results)
    parquet = panel.export("Parquet")
    pd.testing.assert_series_equal(pd.read_parquet(parquet)["preferred"], panel.results["preferred"])
    panel.plot_choice.value = PLOTS[1]
    png = panel.export("PNG")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(png.parent.glob("*.partial*"))


def test_an_unwritable_folder_is_reported(panel, tmp_path):
    panel.run()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    panel.export_dir.value = str(blocker)
    assert panel.export("CSV") is None and str(blocker) in panel.status.value


def test_rule_plot_labels_carry_titles(panel):
    panel.run()
    panel.plot_choice.value = PLOTS[1]
    labels = [t.get_text() for t in panel.figure.axes[0].get_yticklabels()]
    assert labels and all(" " in label for label in labels)
    assert rule_label("R-LN-01", default_rulebook()).startswith("R-LN-01 Nephritis step 1")
    assert default_rulebook().version in panel.figure.axes[0].get_title()


def test_no_preferred_agent_is_grey_not_an_agent_colour(panel):
    from matplotlib.colors import to_hex

    panel.run()
    handles, labels = panel.figure.axes[0].get_legend_handles_labels()
    colours = {label: to_hex(h.patches[0].get_facecolor() if hasattr(h, "patches") else h.get_facecolor())
               for h, label in zip(handles, labels)}
    assert colours["none"] == "#b0b0b0" and list(colours.values()).count("#b0b0b0") == 1
