"""A careful scipy user: SLSQP from equal weights with the analytic gradient.

Maximizes f(w) = sqrt(ppy) · g·w / sqrt(wᵀΣw) over w >= 0, Σw = 1, given
precomputed (g, Σ) (see ``reference.ratio_stats``):
∇f = sqrt(ppy) · (g / s − (g·w) Σw / s³) with s = sqrt(wᵀΣw).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from bench.baselines.limits import deadline_callback
from bench.baselines.reference import RatioStats, ratio_stats


def slsqp_analytic_from_stats(stats: RatioStats, *, periods_per_year: float = 365.0,
                              ftol: float = 1e-12, maxiter: int = 1000,
                              time_limit_s: float | None = None) -> np.ndarray:
    """Simplex weights (N,) from one SLSQP run started at equal weights.

    ``time_limit_s``: raise ``TimeLimitExceeded`` once that much wall time has passed.
    """
    g = stats.g
    cov = stats.cov
    n = g.shape[0]
    root_ppy = np.sqrt(periods_per_year)

    def negative_score_and_gradient(w: np.ndarray) -> tuple[float, np.ndarray]:
        sigma_w = cov @ w
        s = np.sqrt(max(float(w @ sigma_w), 1e-300))
        slope = float(g @ w)
        value = root_ppy * slope / s
        gradient = root_ppy * (g / s - slope * sigma_w / s**3)
        return -value, -gradient

    res = minimize(negative_score_and_gradient, np.full(n, 1.0 / n), jac=True, method="SLSQP",
                   bounds=[(0.0, 1.0)] * n,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                 "jac": lambda w: np.ones_like(w)}],
                   options={"ftol": ftol, "maxiter": maxiter}, callback=deadline_callback(time_limit_s))
    weights = np.clip(res.x, 0.0, None)
    return weights / weights.sum()


def slsqp_analytic(returns: np.ndarray, *, periods_per_year: float = 365.0,
                   time_limit_s: float | None = None) -> np.ndarray:
    """Compute (g, Σ) from the T×N window, then ``slsqp_analytic_from_stats``."""
    return slsqp_analytic_from_stats(ratio_stats(returns), periods_per_year=periods_per_year,
                                     time_limit_s=time_limit_s)
