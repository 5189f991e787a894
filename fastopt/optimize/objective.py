"""The objective: slope / std of the combined cumulative-return curve.

For weights w (w >= 0, sum 1) and a T x N window R of daily returns (fractions):

- portfolio returns r = R w (per day);
- cumulative curve C_t = r_1 + ... + r_t (``slope_std``) or prod(1 + r_s) - 1
  (``slope_std_compound``);
- slope = OLS slope of C_t against t = 0..T-1 (per day);
- std = sample standard deviation (ddof=1) of r (per day);
- score = slope / std * sqrt(periods_per_year)   (annualized, default 365).

For ``slope_std`` the slope is linear in w: slope = g . w with g = R' h and
h_s = 6 s (T - s) / (T (T^2 - 1)), and std^2 = w' cov w, so everything the
optimizer needs is ``window_stats(R)``. Derivations: docs/objective.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastopt.errors import InputError
from fastopt.optimize.kernels import portfolio_score_nb, slope_basis_nb

OBJECTIVES = ("slope_std", "slope_std_compound")
DEFAULT_PERIODS_PER_YEAR = 365


@dataclass(frozen=True)
class WindowStats:
    """Sufficient statistics of a return window for the ``slope_std`` objective.

    ``g``: (N,) slope per day of each strategy's cumulative-sum curve;
    ``cov``: (N, N) sample covariance of daily returns (ddof=1);
    ``mean``: (N,) mean daily return; ``n_days``: T.
    """

    g: np.ndarray
    cov: np.ndarray
    mean: np.ndarray
    n_days: int


def as_returns_matrix(returns: np.ndarray, *, what: str = "returns") -> np.ndarray:
    """Validate a T x N return window: 2-D, finite, float64, C-contiguous (copy if needed)."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"{what} must be a T x N matrix, got {arr.ndim} dimensions")
    if arr.shape[0] < 2:
        raise InputError(f"{what} needs at least 2 days, got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise InputError(f"{what} has no strategy (0 columns)")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"{what} has a non-finite value at day {bad[0]}, strategy {bad[1]}")
    return np.ascontiguousarray(arr)


_BLAS_CONTROLLER = None


def single_thread_blas():
    """Context manager limiting BLAS to one thread (about 10 us after the first call).

    On a loaded machine with few cores, multi-threaded OpenBLAS on small dense
    algebra oversubscribes the CPU and can be 100x slower than one thread.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def window_slopes_centered(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(g, mean, centered) of a validated T x N window: curve slopes per day, mean daily
    returns, and the returns minus their column means (T x N)."""
    h = slope_basis_nb(arr.shape[0])
    g = np.ascontiguousarray(h @ arr)
    mean = arr.mean(axis=0)
    return g, mean, arr - mean


def covariance_of_centered(centered: np.ndarray) -> np.ndarray:
    """Sample covariance (ddof=1, per day^2) of T x N returns already minus their column means."""
    with single_thread_blas():
        # numpy computes a.T @ a (same buffer) with BLAS syrk and mirrors the triangle, so the
        # result is exactly symmetric (tested); scaling in place avoids two N x N temporaries
        cov = centered.T @ centered
    cov *= 1.0 / (centered.shape[0] - 1)
    return cov


def window_stats(returns: np.ndarray) -> WindowStats:
    """g (slope per day of each cumulative-sum curve), cov (ddof=1), mean, T of a window."""
    arr = as_returns_matrix(returns)
    n_days = arr.shape[0]
    g, mean, centered = window_slopes_centered(arr)
    cov = covariance_of_centered(centered)
    return WindowStats(g=np.ascontiguousarray(g), cov=np.ascontiguousarray(cov), mean=mean, n_days=n_days)


def score(
    returns: np.ndarray,
    weights: np.ndarray,
    objective: str = "slope_std",
    periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
) -> float:
    """Annualized score of ``weights`` on the window, straight from the definition.

    NaN when the portfolio's std is 0 (the ratio is undefined).
    """
    arr = as_returns_matrix(returns)
    w = np.ascontiguousarray(np.asarray(weights, dtype=np.float64).reshape(-1))
    if w.size != arr.shape[1]:
        raise InputError(f"weights has {w.size} entries for {arr.shape[1]} strategies")
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    per_day = portfolio_score_nb(arr, w, objective == "slope_std_compound")
    return float(per_day * math.sqrt(periods_per_year))


def blaveclaw_score(score_value: float, *, n_days: int, periods_per_year: float = DEFAULT_PERIODS_PER_YEAR) -> float:
    """Convert our annualized score to BlaveClaw's number (polyfit slope * 252 / std ddof=0).

    BlaveClaw = slope * 252 / std_0 with std_0 = std_1 * sqrt((T-1)/T), so
    BlaveClaw = score / sqrt(ppy) * 252 * sqrt(T / (T-1)).
    """
    return score_value / math.sqrt(periods_per_year) * 252.0 * math.sqrt(n_days / (n_days - 1))


def shrink_covariance(cov: np.ndarray, intensity: float) -> np.ndarray:
    """(1 - X) cov + X diag(cov): shrink the correlations toward 0 by X in [0, 1]."""
    if not 0.0 <= intensity <= 1.0:
        raise InputError(f"shrinkage must be in [0, 1], got {intensity!r}")
    if intensity == 0.0:
        return cov
    out = cov * (1.0 - intensity)
    diag = np.diag(cov).copy()
    out[np.diag_indices_from(out)] = diag
    return out


def ledoit_wolf_intensity(returns: np.ndarray) -> float:
    """Ledoit-Wolf-type optimal intensity for the diagonal target (Schafer & Strimmer 2005).

    X* = sum_{i != j} Var(s_ij) / sum_{i != j} s_ij^2, clipped to [0, 1], where
    Var(s_ij) is estimated from the T products of centered returns.
    """
    arr = as_returns_matrix(returns)
    n_days = arr.shape[0]
    if arr.shape[1] < 2:
        return 0.0
    x = arr - arr.mean(axis=0)
    if arr.shape[1] > n_days:
        # the same sums from the T x T Gram matrix: O(T^2 N), never N x N (fastopt.optimize.risk_model)
        from fastopt.optimize.risk_model import ledoit_wolf_intensity_gram

        return ledoit_wolf_intensity_gram(x)
    s = x.T @ x / (n_days - 1)
    sq = x * x
    sum_w2 = sq.T @ sq  # sum_t (x_ti x_tj)^2
    w_bar = s * (n_days - 1) / n_days
    var_s = n_days / (n_days - 1) ** 3 * (sum_w2 - n_days * w_bar**2)
    off = ~np.eye(arr.shape[1], dtype=bool)
    denom = float((s[off] ** 2).sum())
    if denom <= 0:
        return 1.0
    return float(np.clip(var_s[off].sum() / denom, 0.0, 1.0))


def resolve_shrinkage(shrinkage: float | str | None, returns: np.ndarray | None) -> float:
    """Turn the ``shrinkage`` option (number in [0, 1], "auto" or None) into an intensity."""
    if shrinkage is None:
        return 0.0
    if isinstance(shrinkage, str):
        if shrinkage.strip().lower() == "auto":
            if returns is None:
                raise InputError("shrinkage='auto' needs the return window (use optimize(), not solve_ratio())")
            return ledoit_wolf_intensity(returns)
        try:
            shrinkage = float(shrinkage)
        except ValueError:
            raise InputError(f"shrinkage must be a number in [0, 1] or 'auto', got {shrinkage!r}") from None
    value = float(shrinkage)
    if not (0.0 <= value <= 1.0):
        raise InputError(f"shrinkage must be in [0, 1] or 'auto', got {value!r}")
    return value
