"""Performance metrics of simple daily returns (pure numpy, vectorized).

Conventions shared by every function here:

- ``returns`` are *simple* per-period returns as **fractions** (0.01 = +1 %),
  one per period (one per calendar day for crypto, hence the default
  ``periods_per_year=365``).
- Input is a 1-D array (one series, length T) or a 2-D ``T x K`` array (K series
  in columns). A 1-D input gives a Python ``float``; a 2-D input gives a 1-D
  float64 array of length K (the metric of each column).
- Results are fractions, never percent (multiply by 100 for display).
- NaN/inf in the input propagate (they are not filtered): validate upstream.
- Degenerate inputs (documented per function) give 0.0 rather than NaN so that a
  metric can always be written to strict JSON.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Metric = float | NDArray[np.float64]

__all__ = [
    "total_return",
    "cagr",
    "ann_vol",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "equity_curve",
    "drawdown_curve",
    "summary",
]


def _as_2d(returns: ArrayLike) -> tuple[NDArray[np.float64], bool]:
    """Return (T x K float64 view, was_1d). Raises ValueError for ndim not in (1, 2)."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim == 1:
        return arr[:, None], True
    if arr.ndim == 2:
        return arr, False
    raise ValueError(f"returns must be 1-D or 2-D, got {arr.ndim}-D")


def _out(values: NDArray[np.float64], was_1d: bool) -> Metric:
    values = np.asarray(values, dtype=np.float64)
    return float(values[0]) if was_1d else values


def _std(arr: NDArray[np.float64]) -> NDArray[np.float64]:
    """Column std (ddof=1) that is exactly 0.0 for constant columns (no rounding residue)."""
    std = np.std(arr, axis=0, ddof=1)
    constant = np.all(arr == arr[:1], axis=0)
    return np.where(constant, 0.0, std)


def _check_ppy(periods_per_year: float) -> float:
    ppy = float(periods_per_year)
    if not np.isfinite(ppy) or ppy <= 0:
        raise ValueError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    return ppy


def equity_curve(returns: ArrayLike) -> NDArray[np.float64]:
    """Compounded equity after each period, starting from 1.0 before the first period.

    Same shape as ``returns``: ``equity[t] = prod(1 + r[0..t])``.
    """
    arr = np.asarray(returns, dtype=np.float64)
    return np.cumprod(1.0 + arr, axis=0)


def drawdown_curve(returns: ArrayLike) -> NDArray[np.float64]:
    """Drawdown after each period as a positive fraction of the running peak.

    The running peak includes the starting equity 1.0, so a loss on the first
    period is a drawdown. Same shape as ``returns``.
    """
    equity = equity_curve(returns)
    if equity.shape[0] == 0:
        return equity
    peak = np.maximum.accumulate(np.maximum(equity, 1.0), axis=0)
    return 1.0 - equity / peak


def total_return(returns: ArrayLike) -> Metric:
    """Compounded total return over the whole series, a fraction: ``prod(1 + r) - 1``.

    An empty series gives 0.0.
    """
    arr, was_1d = _as_2d(returns)
    return _out(np.prod(1.0 + arr, axis=0) - 1.0, was_1d)


def cagr(returns: ArrayLike, periods_per_year: float = 365) -> Metric:
    """Compound annual growth rate, a fraction per year.

    ``(1 + total_return) ** (periods_per_year / T) - 1``. An empty series gives
    0.0; a series that loses everything (total return <= -100 %) gives -1.0.
    """
    ppy = _check_ppy(periods_per_year)
    arr, was_1d = _as_2d(returns)
    n_periods = arr.shape[0]
    if n_periods == 0:
        return _out(np.zeros(arr.shape[1]), was_1d)
    growth = np.prod(1.0 + arr, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(growth > 0, np.power(np.where(growth > 0, growth, 1.0), ppy / n_periods) - 1.0, -1.0)
    out = np.where(np.isnan(growth), np.nan, out)
    return _out(out, was_1d)


def ann_vol(returns: ArrayLike, periods_per_year: float = 365) -> Metric:
    """Annualized volatility, a fraction per year: ``std(r, ddof=1) * sqrt(periods_per_year)``.

    Fewer than 2 periods gives 0.0 (no dispersion can be measured); a constant
    series gives exactly 0.0 (no floating-point residue).
    """
    ppy = _check_ppy(periods_per_year)
    arr, was_1d = _as_2d(returns)
    if arr.shape[0] < 2:
        return _out(np.zeros(arr.shape[1]), was_1d)
    return _out(_std(arr) * np.sqrt(ppy), was_1d)


def sharpe(returns: ArrayLike, periods_per_year: float = 365) -> Metric:
    """Annualized Sharpe ratio (risk-free rate 0): ``mean / std(ddof=1) * sqrt(ppy)``.

    0.0 when the standard deviation is 0 (constant series, exactly detected) or
    undefined (fewer than 2 periods).
    """
    ppy = _check_ppy(periods_per_year)
    arr, was_1d = _as_2d(returns)
    if arr.shape[0] < 2:
        return _out(np.zeros(arr.shape[1]), was_1d)
    mean = arr.mean(axis=0)
    std = _std(arr)
    safe = np.where(std > 0, std, 1.0)
    out = np.where(std > 0, mean / safe * np.sqrt(ppy), 0.0)
    out = np.where(np.isnan(std), np.nan, out)
    return _out(out, was_1d)


def sortino(returns: ArrayLike, periods_per_year: float = 365) -> Metric:
    """Annualized Sortino ratio (target 0): ``mean / downside_dev * sqrt(ppy)``.

    ``downside_dev = sqrt(mean(min(r, 0) ** 2))`` over *all* periods. 0.0 when
    there is no downside (downside_dev == 0) or the series is empty.
    """
    ppy = _check_ppy(periods_per_year)
    arr, was_1d = _as_2d(returns)
    if arr.shape[0] == 0:
        return _out(np.zeros(arr.shape[1]), was_1d)
    mean = arr.mean(axis=0)
    downside = np.sqrt(np.mean(np.minimum(arr, 0.0) ** 2, axis=0))
    safe = np.where(downside > 0, downside, 1.0)
    out = np.where(downside > 0, mean / safe * np.sqrt(ppy), 0.0)
    out = np.where(np.isnan(downside), np.nan, out)
    return _out(out, was_1d)


def max_drawdown(returns: ArrayLike) -> Metric:
    """Largest peak-to-trough fall of the compounded equity curve, a positive fraction.

    0.25 means a 25 % fall from the running peak (which starts at equity 1.0).
    0.0 for an empty or never-falling series; at most 1.0 (for r >= -1).
    """
    arr, was_1d = _as_2d(returns)
    if arr.shape[0] == 0:
        return _out(np.zeros(arr.shape[1]), was_1d)
    return _out(drawdown_curve(arr).max(axis=0), was_1d)


def win_rate(returns: ArrayLike) -> Metric:
    """Fraction of *active* periods (r != 0) with a positive return, in [0, 1].

    Flat periods (r == 0, e.g. no position) are not counted; 0.0 when no period
    is active.
    """
    arr, was_1d = _as_2d(returns)
    wins = np.count_nonzero(arr > 0, axis=0).astype(np.float64)
    active = np.count_nonzero(arr != 0, axis=0).astype(np.float64)
    out = np.where(active > 0, wins / np.where(active > 0, active, 1.0), 0.0)
    return _out(out, was_1d)


def summary(returns: ArrayLike, periods_per_year: float = 365) -> dict[str, float]:
    """All metrics of one 1-D series as plain floats (fractions), keyed by function name."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"summary() takes one 1-D series, got {arr.ndim}-D")
    return {
        "total_return": float(total_return(arr)),
        "cagr": float(cagr(arr, periods_per_year)),
        "ann_vol": float(ann_vol(arr, periods_per_year)),
        "sharpe": float(sharpe(arr, periods_per_year)),
        "sortino": float(sortino(arr, periods_per_year)),
        "max_drawdown": float(max_drawdown(arr)),
        "win_rate": float(win_rate(arr)),
    }
