"""Execution backends for a rulebook. Each one only decides which rules fire.

``durable`` (durable-rules, forward chaining, one patient at a time) is the
reference engine; :mod:`lupus_rules.result` turns fired rules into outcomes for
every engine alike.
"""
from __future__ import annotations

__all__ = ["ENGINES"]

#: Engine names accepted by ``evaluate`` and ``run_batch``.
ENGINES = ("durable", "vectorized")
