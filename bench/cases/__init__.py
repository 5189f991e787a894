"""Benchmark cases: each module exposes ``NAME``, ``TITLE`` and ``run(ctx) -> CaseResult``.

A case raises ``Unavailable(reason)`` when what it measures is not in the tree
(yet); the suite then reports it as "not measured: <reason>".
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: case name -> module, in run order.
CASES: dict[str, str] = {
    "optimize": "bench.cases.optimize",
    "load": "bench.cases.load",
    "end_to_end": "bench.cases.end_to_end",
    "walkforward": "bench.cases.walkforward",
    "reconcile": "bench.cases.reconcile",
    "cardinality": "bench.cases.cardinality",
    "shrinkage": "bench.cases.shrinkage",
    "vol_targeting": "bench.cases.vol_targeting",
    "scale": "bench.cases.scale",
}


class Unavailable(Exception):
    """What the case measures is missing (API not landed, optional package absent)."""


@dataclass
class BenchContext:
    """Settings shared by every case."""

    quick: bool
    seed: int
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fastopt-bench-")))
    log: Callable[[str], None] = print


def universe(n_strategies: int, n_days: int, *, seed: int, market_factor: bool = True) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(dates, names, returns T×N C-contiguous float64) from the foundation's seeded generator."""
    try:
        from bench.universe import generate_universe
    except ImportError as exc:
        raise Unavailable(f"bench.universe.generate_universe is not in the tree ({exc})") from exc
    dates, names, returns = generate_universe(n_strategies, n_days, seed, market_factor=market_factor)
    return dates, list(names), np.ascontiguousarray(returns, dtype=np.float64)


def require(module: str, attribute: str):
    """``module.attribute`` or Unavailable naming what is missing."""
    import importlib

    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"{module}.{attribute} is not available ({exc.__class__.__name__}: {exc})") from exc
