"""fastopt: fast, trustworthy portfolio manager for many automated trading strategies.

Public API (imported lazily so that `import fastopt` stays cheap):

- ``load_panel(strategies_dir, lookback=None, end=None, strict=False) -> Panel``
- ``optimize(returns, objective="slope_std", **options) -> Allocation``
- ``score(returns, weights, objective="slope_std", periods_per_year=365) -> float``
- ``walkforward(returns, lookback=365, rebalance=1, allocator="slope_std", **options)``
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_panel": "fastopt.loader",
    "Panel": "fastopt.panel",
    "optimize": "fastopt.optimizer",
    "score": "fastopt.objective",
    "Allocation": "fastopt.allocation",
    "walkforward": "fastopt.walkforward",
    "WalkForwardResult": "fastopt.walkforward",
    "FastoptError": "fastopt.errors",
    "InputError": "fastopt.errors",
    "NothingToDo": "fastopt.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastopt' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
