"""The bench's own exact solve (cvxpy + Clarabel), independent of fastopt.optimize.exact.

max g·w / sqrt(wᵀΣw), w >= 0, Σw = 1 is, when some g_i > 0, the convex problem
min yᵀΣy s.t. g·y = 1, y >= 0 with w = y / Σy. The quadratic is written as
||X y||² with X the centered returns / sqrt(T−1) when T < N (fewer nonzeros),
else as yᵀΣy with Σ marked PSD.
"""
from __future__ import annotations

import numpy as np

from bench.baselines.reference import RatioStats, ratio_stats


def exact_from_stats(stats: RatioStats, *, centered_scaled: np.ndarray | None = None) -> np.ndarray:
    """Simplex weights (N,) at the global optimum; ValueError if no g_i > 0 or the solve fails."""
    import cvxpy as cp

    if not np.any(stats.g > 0):
        raise ValueError("no strategy has a rising curve (all g <= 0)")
    n = stats.g.shape[0]
    y = cp.Variable(n, nonneg=True)
    if centered_scaled is not None:
        objective = cp.sum_squares(centered_scaled @ y)
    else:
        objective = cp.quad_form(y, cp.psd_wrap(stats.cov))
    problem = cp.Problem(cp.Minimize(objective), [stats.g @ y == 1.0])
    problem.solve(solver=cp.CLARABEL)
    if y.value is None or problem.status not in ("optimal", "optimal_inaccurate"):
        raise ValueError(f"cvxpy/Clarabel status {problem.status}")
    weights = np.clip(np.asarray(y.value, dtype=np.float64), 0.0, None)
    return weights / weights.sum()


def exact_cvxpy(returns: np.ndarray) -> np.ndarray:
    """Compute (g, Σ) from the T×N window, then solve exactly (see module doc)."""
    r = np.ascontiguousarray(returns, dtype=np.float64)
    stats = ratio_stats(r)
    centered_scaled = None
    if r.shape[0] < r.shape[1]:
        centered_scaled = (r - r.mean(axis=0)) / np.sqrt(r.shape[0] - 1)
    return exact_from_stats(stats, centered_scaled=centered_scaled)
