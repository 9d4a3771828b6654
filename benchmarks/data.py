"""Seeded benchmark data: patients drawn over every fact value the rulebook cares about.

Each fact is drawn from :func:`lupus_rules.generate.value_bands` (every status,
bool and manifestation subset; numbers unknown, exactly at, just below and
just above every threshold), and a quarter of the numbers anywhere in range,
so the rows are varied like real batches (many distinct fired-rule patterns).
Not patients: synthetic rows for timing. Not for clinical use.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lupus_rules.facts import FACTS
from lupus_rules.generate import band_columns, value_bands
from lupus_rules.rulebook import Rulebook

__all__ = ["generated_rows", "write_csv"]


def generated_rows(n: int, seed: int, rulebook: Rulebook) -> pd.DataFrame:
    """n rows of typed facts (sets as ';'-joined text, bools, float numbers with NaN = unknown)."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for key, band in value_bands(rulebook).items():
        picks = rng.integers(0, len(band), n)
        columns = band_columns(key)
        if len(columns) == 2:
            pairs = np.array(band, dtype=float)
            for position, name in enumerate(columns):
                data[name] = pairs[picks, position]
        elif FACTS[key].kind == "set":
            data[key] = np.array([";".join(sorted(v)) for v in band], dtype=object)[picks]
        elif FACTS[key].kind == "number":
            data[key] = np.array(band, dtype=float)[picks]
        elif FACTS[key].kind == "bool":
            data[key] = np.array(band, dtype=bool)[picks]
        else:
            data[key] = np.array(band, dtype=object)[picks]
    for name, spec in FACTS.items():
        if spec.kind == "number":
            free = rng.random(n) < 0.25
            values = np.round(rng.uniform(spec.minimum, min(spec.maximum, 120.0), n), 2)
            values[rng.random(n) < 0.1] = np.nan
            data[name] = np.where(free, values, data[name])
    return pd.DataFrame({name: data[name] for name in FACTS})


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """The rows as a CSV of cells: bools true/false, unknown numbers empty."""
    cells = df.copy()
    for name, spec in FACTS.items():
        if spec.kind == "bool":
            cells[name] = np.where(df[name].to_numpy(), "true", "false")
    cells.to_csv(path, index=False)


def typed_records(typed: pd.DataFrame) -> list[dict[str, object]]:
    """Rows of a ``validate_frame`` result as patient mappings (sets as frozensets, unknown = None).

    The same values :func:`lupus_rules.facts.validate_patient` gives, built
    column-wise so a million rows are prepared in seconds, outside any timing.
    """
    from lupus_rules.facts import MEASURES, member_column

    columns: dict[str, list[object]] = {}
    for name in list(FACTS) + list(MEASURES):
        spec = FACTS.get(name) or MEASURES[name]
        if spec.kind == "set":
            members = [typed[member_column(name, m)].to_numpy() for m in spec.allowed]
            codes = sum(bits.astype(np.int64) << i for i, bits in enumerate(members))
            sets = [frozenset(m for i, m in enumerate(spec.allowed) if k >> i & 1) for k in range(1 << len(members))]
            columns[name] = [sets[k] for k in codes]
        elif spec.kind == "number":
            values = typed[name].to_numpy(dtype=object)
            values[pd.isna(typed[name]).to_numpy()] = None
            columns[name] = values.tolist()
        else:
            columns[name] = typed[name].astype(object).tolist()
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]
