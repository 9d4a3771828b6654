"""Execution backends for a rulebook. Each one only decides which rules fire.

``durable`` (durable-rules, forward chaining, one patient at a time) is the
reference engine; ``vectorized`` compiles the rules to NumPy column masks for
batches; ``python`` reads the rules directly, one patient at a time, with no
numpy, pandas or durable-rules import (a cold one-row run).
:mod:`lupus_rules.result` turns fired rules into outcomes for every engine alike.
"""
from __future__ import annotations

__all__ = ["ENGINES"]

#: Engine names accepted by ``evaluate`` and ``run_batch``.
ENGINES = ("durable", "vectorized", "python")
