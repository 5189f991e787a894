"""fastopt: fast, trustworthy portfolio manager for many automated trading strategies.

Public API (imported lazily so that `import fastopt` stays cheap; ``dir(fastopt)`` lists it):

- ``load_panel(strategies_dir, lookback=None, end=None, strict=False) -> Panel`` (every day by
  default: what ``walkforward`` needs; ``optimize`` cuts its own window)
- ``optimize(returns, objective="slope_std", *, lookback=None, **options) -> Allocation``:
  ``returns`` is a T x N array, a pandas or polars DataFrame (dates from a Date/date column or
  the index) or a Panel; dated input is cut to the last 365 calendar days by default, like
  ``fastopt optimize --lookback``; ``Allocation.weights_by_name()`` / ``.to_series()`` /
  ``.summary()``
- ``score(returns, weights, objective="slope_std", periods_per_year=365) -> float``
- ``walkforward(returns, lookback=365, rebalance=1, allocator="slope_std", **options)``: same
  inputs as ``optimize``. ``fastopt.optimize`` and ``fastopt.walkforward`` are the packages of
  those names made callable as their functions (``fastopt.callable_module``), so each is the same
  object whatever was imported first.

Layout (a lower layer never imports a higher one): base modules (``errors``, ``metrics``,
``options``) < ``files/`` < ``optimize/`` and ``backtest/`` < ``walkforward/`` < ``commands/`` and
``cli``. See docs/architecture.md.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_panel": "fastopt.files.loader",
    "Panel": "fastopt.files.panel",
    "optimize": "fastopt.optimize",
    "score": "fastopt.optimize.objective",
    "Allocation": "fastopt.optimize.allocation",
    "walkforward": "fastopt.walkforward",
    "WalkForwardResult": "fastopt.walkforward.core",
    "FastoptError": "fastopt.errors",
    "InputError": "fastopt.errors",
    "NothingToDo": "fastopt.errors",
}

__all__ = ["__version__", *_LAZY]


#: Public names that are also the names of submodules: importing the submodule binds it to the
#: package attribute, so the attribute is the (callable) module itself, never the function.
_CALLABLE_MODULES = {"optimize", "walkforward"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastopt' has no attribute {name!r}")
    loaded = import_module(module)
    value = loaded if name in _CALLABLE_MODULES else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
