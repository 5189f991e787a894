"""Seeded one-factor return windows for optimizer tests (T x N daily fractions)."""
from __future__ import annotations

import numpy as np


def universe(seed: int, n_days: int, n_assets: int, drift: float = 4e-4) -> np.ndarray:
    """Market factor (2 %/day) with betas in [-0.5, 1], idiosyncratic noise 0.5-3 %/day, drifts ~ drift."""
    rng = np.random.default_rng(seed)
    market = rng.standard_normal(n_days) * 0.02
    beta = rng.uniform(-0.5, 1.0, n_assets)
    noise = rng.standard_normal((n_days, n_assets)) * rng.uniform(0.005, 0.03, n_assets)
    return np.ascontiguousarray(rng.normal(drift, 1e-3, n_assets) + np.outer(market, beta) + noise)
