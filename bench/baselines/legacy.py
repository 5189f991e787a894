"""Today's method: BlaveClaw's ``manager/manager.py`` ``optimize_weights``, re-implemented.

Behaviour reproduced (read from Blave-TW/blaveclaw-config, written again here):

- objective: −(annualized polyfit slope of cumsum(R·w)[-lookback:] × 252) / std (ddof 0),
  0 if fewer than 10 days or std == 0;
- scipy SLSQP with numeric (finite-difference) gradients, bounds [0, 1], Σw = 1,
  ``ftol=1e-9``, ``maxiter=1000``;
- starts: equal weights, then 10 Dirichlet(1, …, 1) draws from numpy's global-state
  generator (BlaveClaw seeds it with ``np.random.seed(42)`` in ``main``; here the
  generator is a local ``RandomState(seed)`` so the bench does not touch global state);
- keeps the successful run with the lowest objective; if none succeeded, equal weights;
  clips to [0, 1] and renormalizes. BlaveClaw then rounds to 4 decimals for display and
  for the config; ``round_decimals=4`` reproduces that, ``None`` keeps full precision.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from bench.baselines.limits import deadline_callback

LEGACY_SLOPE_ANNUALIZATION = 252.0
LEGACY_STARTS = 11
MIN_DAYS = 10


def legacy_slope_std(weights: np.ndarray, returns: np.ndarray, lookback: int) -> float:
    """BlaveClaw's portfolio score: polyfit slope per day × 252 / std (ddof 0) over the last ``lookback`` rows."""
    portfolio = np.asarray(returns, dtype=np.float64) @ np.asarray(weights, dtype=np.float64)
    recent = portfolio[-lookback:]
    if recent.shape[0] < MIN_DAYS:
        return 0.0
    curve = np.cumsum(recent)
    t = np.arange(curve.shape[0], dtype=np.float64)
    slope = np.polyfit(t, curve, 1)[0]
    std = recent.std()
    if std == 0.0:
        return 0.0
    return float(slope * LEGACY_SLOPE_ANNUALIZATION / std)


def legacy_starts(n_strategies: int, *, seed: int = 42, n_random: int = LEGACY_STARTS - 1) -> list[np.ndarray]:
    """Equal weights followed by ``n_random`` Dirichlet(1) draws (seeded)."""
    rng = np.random.RandomState(seed)
    starts = [np.full(n_strategies, 1.0 / n_strategies)]
    starts.extend(rng.dirichlet(np.ones(n_strategies)) for _ in range(n_random))
    return starts


def legacy_optimize(
    returns: np.ndarray,
    *,
    lookback: int = 365,
    seed: int = 42,
    n_starts: int = LEGACY_STARTS,
    round_decimals: int | None = None,
    on_start_done: Callable[[int, float], None] | None = None,
    time_limit_s: float | None = None,
) -> np.ndarray:
    """Weights (N, simplex) from BlaveClaw's multi-start SLSQP; ``n_starts`` < 11 only for timing one start.

    ``time_limit_s`` (bench only): raise ``TimeLimitExceeded`` once that much wall time has passed.
    """
    r = np.ascontiguousarray(returns, dtype=np.float64)
    n = r.shape[1]

    def objective(w: np.ndarray) -> float:
        return -legacy_slope_std(w, r, lookback)

    constraints = [{"type": "eq", "fun": lambda w: w.sum() - 1.0}]
    bounds = [(0.0, 1.0)] * n
    best_x = None
    best_fun = np.inf
    callback = deadline_callback(time_limit_s)
    for index, w0 in enumerate(legacy_starts(n, seed=seed)[:n_starts]):
        res = minimize(objective, w0, method="SLSQP", bounds=bounds, constraints=constraints,
                       options={"ftol": 1e-9, "maxiter": 1000}, callback=callback)
        if res.success and res.fun < best_fun:
            best_fun = res.fun
            best_x = res.x
        if on_start_done is not None:
            on_start_done(index, float(res.fun))
    if best_x is None:
        weights = np.full(n, 1.0 / n)
    else:
        weights = np.clip(best_x, 0.0, 1.0)
        weights = weights / weights.sum()
    if round_decimals is not None:
        weights = np.round(weights, round_decimals)
    return weights
