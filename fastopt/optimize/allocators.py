"""Allocators: named ways of turning a return window into weights.

``get_allocator(spec)`` returns an object with ``.name`` and
``.allocate(returns_window, names, *, previous_weights=None) -> np.ndarray``
(float64 N, >= 0, sum 1). ``spec`` is one of

- a built-in: ``slope_std`` (default), ``slope_std_compound``, ``equal``,
  ``inverse_vol``, ``max_sharpe`` (mean/std, long-only tangency);
- a path to a ``.py`` file, or an importable module name, exposing
  ``allocate(returns_window, names) -> weights`` (array of N, or mapping
  name -> weight; absent names get 0);
- a BlaveClaw allocator name: ``allocators/<name>/allocator.py`` relative to
  the current directory, exposing ``allocate(ret_df, lookback) -> {name: w}``
  (``ret_df`` a pandas DataFrame; pandas is imported only for these).

Every output is validated: finite, >= 0, known names, and for native
allocators summing to 1 within 1e-9 (then renormalized exactly). BlaveClaw
allocators may return raw scores (their documented contract), which are
normalized. A failing allocator raises ``AllocatorError``; there is no silent
fallback to another method.
"""
from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastopt.optimize.allocation import normalize_weights
from fastopt.errors import FastoptError, InputError

BUILTINS = ("slope_std", "slope_std_compound", "equal", "inverse_vol", "max_sharpe")
SUM_TOLERANCE = 1e-9


class AllocatorError(FastoptError):
    """An allocator could not be imported, raised, or returned invalid weights (exit 1; no allocate: InputError, 2)."""


@dataclass
class Allocator:
    """A named weighting method; ``allocate`` always returns validated weights."""

    name: str
    func: Callable[..., Any]
    kind: str = "builtin"  # builtin | plugin | blaveclaw
    options: dict[str, Any] = field(default_factory=dict)
    normalize_raw: bool = False
    last_allocation: Any = None

    def allocate(
        self,
        returns_window: np.ndarray,
        names: Sequence[str],
        *,
        previous_weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Weights (float64 N, >= 0, sum 1) for the T x N window, validated."""
        window = np.ascontiguousarray(np.asarray(returns_window, dtype=np.float64))
        names = list(names)
        if window.ndim != 2 or window.shape[1] != len(names):
            raise InputError(f"returns window must be T x {len(names)}, got shape {window.shape}")
        try:
            if self.kind == "builtin":
                raw = self.func(window, names, previous_weights=previous_weights, **self.options)
            else:  # plug-ins (native or BlaveClaw) take no warm start
                raw = self.func(window, names)
        except FastoptError:
            raise
        except Exception as exc:  # a plug-in bug must surface, never fall back silently
            raise AllocatorError(f"allocator {self.name!r} failed: {type(exc).__name__}: {exc}") from exc
        return validate_weights(raw, names, allocator=self.name, normalize_raw=self.normalize_raw)


def validate_weights(
    raw: Any,
    names: Sequence[str],
    *,
    allocator: str,
    normalize_raw: bool = False,
) -> np.ndarray:
    """Check an allocator's output and return float64 weights summing to 1.

    Accepts an array of N numbers or a mapping name -> weight (absent = 0).
    Refused: unknown names, non-numbers, NaN/inf, negatives, all zeros, and
    (unless ``normalize_raw``) a sum differing from 1 by more than 1e-9.
    """
    n = len(names)
    if isinstance(raw, Mapping):
        index = {name: k for k, name in enumerate(names)}
        unknown = sorted(str(k) for k in raw if k not in index)
        if unknown:
            raise AllocatorError(f"allocator {allocator!r} returned unknown strategies: {', '.join(unknown[:5])}")
        w = np.zeros(n)
        for key, value in raw.items():
            w[index[key]] = _number(value, allocator, str(key))
    else:
        try:
            w = np.asarray(raw, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise AllocatorError(
                f"allocator {allocator!r} must return an array of {n} weights or a name -> weight mapping, "
                f"got {type(raw).__name__}"
            ) from None
        if w.size != n:
            raise AllocatorError(f"allocator {allocator!r} returned {w.size} weights for {n} strategies")
    if not np.isfinite(w).all():
        k = int(np.flatnonzero(~np.isfinite(w))[0])
        raise AllocatorError(f"allocator {allocator!r} returned a non-finite weight for {names[k]!r}")
    if (w < 0).any():
        k = int(np.argmin(w))
        raise AllocatorError(
            f"allocator {allocator!r} returned a negative weight for {names[k]!r} ({w[k]:g}); weights must be >= 0 "
            "(shorting is the strategy's signal, not the portfolio weight)"
        )
    total = math.fsum(w.tolist())
    if not total > 0:
        raise AllocatorError(f"allocator {allocator!r} returned all-zero weights")
    if not normalize_raw and abs(total - 1.0) > SUM_TOLERANCE:
        raise AllocatorError(f"allocator {allocator!r} returned weights summing to {total:.12g}, not 1 (tolerance 1e-9)")
    return normalize_weights(w)


def _number(value: Any, allocator: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise AllocatorError(f"allocator {allocator!r} returned a non-number for {name!r}: {value!r}")
    return float(value)


# ---------------------------------------------------------------------------
# built-ins


def _slope_std(window, names, *, previous_weights=None, objective="slope_std", **options) -> np.ndarray:
    from fastopt.optimize.solver import optimize

    alloc = optimize(window, objective, names=names, previous_weights=previous_weights, **options)
    return np.asarray(alloc.weights)


def _equal(window, names, *, previous_weights=None) -> np.ndarray:
    return np.full(len(names), 1.0 / len(names))


def _inverse_vol(window, names, *, previous_weights=None) -> np.ndarray:
    std = window.std(axis=0, ddof=1)
    inv = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 0.0)
    if not inv.sum() > 0:
        raise AllocatorError("inverse_vol: every strategy has zero variance in the window")
    return inv / inv.sum()


def _max_sharpe(window, names, *, previous_weights=None, **options) -> np.ndarray:
    """Long-only max mean/std: the same solver with g replaced by the mean return."""
    from fastopt.optimize.objective import as_returns_matrix, window_stats
    from fastopt.optimize.solver import solve_ratio

    stats = window_stats(as_returns_matrix(window))
    alloc = solve_ratio(stats.mean, stats.cov, previous_weights=previous_weights, names=names, **options)
    return np.asarray(alloc.weights)


def _builtin(name: str, options: Mapping[str, Any]) -> Allocator:
    if name == "slope_std":
        return Allocator(name, _slope_std, options=dict(options))
    if name == "slope_std_compound":
        return Allocator(name, _slope_std, options={**options, "objective": "slope_std_compound"})
    if name == "equal":
        return Allocator(name, _equal)
    if name == "inverse_vol":
        return Allocator(name, _inverse_vol)
    if name == "max_sharpe":
        return Allocator(name, _max_sharpe, options=dict(options))
    raise KeyError(name)


# ---------------------------------------------------------------------------
# plug-ins


def _load_file(path: Path, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise AllocatorError(f"cannot import allocator file {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise AllocatorError(f"{path}: importing the allocator failed: {type(exc).__name__}: {exc}") from exc
    return module


def _native_plugin(module, name: str, where: str) -> Allocator:
    func = getattr(module, "allocate", None)
    if not callable(func):
        raise InputError(f"{where}: defines no allocate(returns_window, names)")
    return Allocator(name, func, kind="plugin")


def _blaveclaw_plugin(module, name: str, where: str, lookback: int | None) -> Allocator:
    func = getattr(module, "allocate", None)
    if not callable(func):
        raise InputError(f"{where}: defines no allocate(returns, lookback)")

    def call(window: np.ndarray, names: list[str]):
        import pandas as pd

        frame = pd.DataFrame(window, columns=names)
        return func(frame, int(lookback if lookback is not None else window.shape[0]))

    display = getattr(module, "DISPLAY_NAME", name)
    return Allocator(str(name), call, kind="blaveclaw", normalize_raw=True,
                     options={"display_name": display})


def get_allocator(
    spec: str | None = "slope_std",
    *,
    lookback: int | None = None,
    base_dir: str | Path | None = None,
    **options: Any,
) -> Allocator:
    """Resolve an allocator by built-in name, .py path, module name or BlaveClaw name.

    ``options`` (max_weight, min_weight, max_strategies, seed, shrinkage, ...)
    go to the optimizing built-ins (slope_std, slope_std_compound, max_sharpe).
    ``lookback`` is passed to BlaveClaw allocators (default: the window length).
    ``base_dir`` is where ``allocators/<name>/allocator.py`` is looked up (cwd).
    """
    spec = "slope_std" if spec is None else str(spec).strip()
    if not spec:
        raise InputError("empty allocator name")
    if spec in BUILTINS:
        return _builtin(spec, options)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    as_path = Path(spec)
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = as_path if as_path.is_absolute() else base / as_path
        if not path.is_file():
            raise InputError("allocator file not found", path=path)
        module = _load_file(path, f"fastopt_allocator_{path.stem}")
        if _is_blaveclaw_signature(module):
            return _blaveclaw_plugin(module, path.parent.name if path.name == "allocator.py" else path.stem,
                                     str(path), lookback)
        return _native_plugin(module, path.stem, str(path))
    legacy = base / "allocators" / spec / "allocator.py"
    if legacy.is_file():
        module = _load_file(legacy, f"fastopt_allocator_{spec}")
        return _blaveclaw_plugin(module, spec, str(legacy), lookback)
    try:
        module = importlib.import_module(spec)
    except ImportError:
        raise InputError(
            f"unknown allocator {spec!r}: not a built-in ({', '.join(BUILTINS)}), no {legacy} "
            "and no importable module of that name"
        ) from None
    except Exception as exc:
        raise AllocatorError(f"importing allocator module {spec!r} failed: {type(exc).__name__}: {exc}") from exc
    return _native_plugin(module, spec, f"module {spec}")


def _is_blaveclaw_signature(module) -> bool:
    """True when allocate's second parameter is ``lookback`` (BlaveClaw's contract)."""
    import inspect

    func = getattr(module, "allocate", None)
    if not callable(func):
        return False
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 and params[1] == "lookback"
