"""Layer 3, the walk-forward management backtest: re-fit on the trailing window, hold out of sample.

- ``core`` - ``walkforward(...)`` and ``WalkForwardResult``;
- ``rolling`` / ``rolling_kernels`` - sliding-window statistics (numba kernels and numpy twins);
- ``random_portfolios`` - the Dirichlet benchmark; ``report`` - files and plots; ``sweep`` - a
  grid of walk-forwards.

Depends on ``fastopt.optimize``, ``fastopt.files`` and the base modules. ``fastopt.walkforward(...)``
is the package itself, callable as :func:`fastopt.walkforward.core.walkforward`, so it is the same
object whatever was imported first.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

from fastopt.callable_module import make_callable

_FROM_CORE = ("walkforward", "WalkForwardResult", "PortfolioSummary")


def __getattr__(name: str) -> Any:
    if name in _FROM_CORE:
        return getattr(import_module("fastopt.walkforward.core"), name)
    raise AttributeError(f"module 'fastopt.walkforward' has no attribute {name!r}")


make_callable(__name__, "fastopt.walkforward.core", "walkforward")
