"""PyPortfolioOpt's max-Sharpe on (mu = g, cov = Σ): the same problem through a popular library.

With expected returns set to the per-day slopes g and risk-free rate 0, max Sharpe
is max g·w / sqrt(wᵀΣw) long-only — the slope/std problem. Raises whatever
PyPortfolioOpt raises (the bench reports it as a skipped method with the message).
"""
from __future__ import annotations

import numpy as np

from bench.baselines.reference import ratio_stats


def pypfopt_max_sharpe(returns: np.ndarray) -> np.ndarray:
    """Simplex weights (N,) from ``EfficientFrontier(g, Σ).max_sharpe(risk_free_rate=0)``."""
    from pypfopt import EfficientFrontier

    stats = ratio_stats(returns)
    frontier = EfficientFrontier(stats.g, stats.cov, weight_bounds=(0.0, 1.0))
    frontier.max_sharpe(risk_free_rate=0.0)
    weights = np.clip(np.asarray(frontier.weights, dtype=np.float64), 0.0, None)
    return weights / weights.sum()
