"""Random-portfolio benchmark: static Dirichlet(1, ..., 1) weights over the out-of-sample days.

The question it answers: does the managed (re-optimized) portfolio beat weights
drawn at random, out of sample? Each random portfolio holds fixed weights (drawn
uniformly on the simplex, reproducible from ``seed``) for every out-of-sample
day, drift-free (reset to its weights daily, like the managed portfolio), and
pays ``cost_bps`` once on the first day (buying in from cash: turnover 1).

Units: returns are simple daily fractions; Sharpe ratios are annualized
(``fastopt.metrics``, ddof=1); total returns and drawdowns are fractions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fastopt import metrics

__all__ = ["RandomBenchmark", "dirichlet_weights", "random_portfolio_returns", "random_benchmark"]

#: Percentiles reported and drawn as the band in pnl.png.
BAND = (5.0, 50.0, 95.0)


@dataclass(frozen=True)
class RandomBenchmark:
    """Summary of ``n`` random static portfolios over the out-of-sample days.

    ``sharpes``, ``total_returns``, ``max_drawdowns`` (n,): per portfolio;
    ``band`` (3 x D): p5 / p50 / p95 across portfolios of the compounded
    cumulative return after each day (fractions); ``managed_beats_pct_sharpe``:
    percent (0-100) of random portfolios whose Sharpe is strictly below the
    managed one (None when no managed Sharpe was given).
    """

    n: int
    seed: int
    sharpes: NDArray[np.float64]
    total_returns: NDArray[np.float64]
    max_drawdowns: NDArray[np.float64]
    band: NDArray[np.float64]
    managed_beats_pct_sharpe: float | None

    def percentile(self, what: str, q: float) -> float:
        """``q``-th percentile (0-100) of ``sharpes`` / ``total_returns`` / ``max_drawdowns``."""
        return float(np.percentile(getattr(self, what), q))


def dirichlet_weights(n: int, n_strategies: int, seed: int) -> NDArray[np.float64]:
    """``n`` x ``n_strategies`` weights, each row uniform on the simplex (Dirichlet of ones).

    Reproducible: the same (n, n_strategies, seed) always gives the same matrix.
    """
    if n < 0 or n_strategies < 1:
        raise ValueError(f"need n >= 0 and n_strategies >= 1, got {n}, {n_strategies}")
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(n_strategies), size=n)


def random_portfolio_returns(
    oos_returns: NDArray[np.float64], weights: NDArray[np.float64], *, cost_bps: float = 0.0
) -> NDArray[np.float64]:
    """Daily returns (D x n) of static portfolios ``weights`` (n x N) on ``oos_returns`` (D x N).

    The first day is charged ``sum(|w|) * cost_bps / 1e4`` (entry from cash).
    """
    out = np.ascontiguousarray(oos_returns) @ np.ascontiguousarray(weights).T
    if cost_bps and out.shape[0]:
        out[0] -= np.abs(weights).sum(axis=1) * (cost_bps / 1e4)
    return out


def random_benchmark(
    oos_returns: NDArray[np.float64],
    *,
    n: int,
    seed: int,
    cost_bps: float = 0.0,
    periods_per_year: float = 365,
    managed_sharpe: float | None = None,
    chunk: int = 250,
) -> RandomBenchmark:
    """Draw ``n`` Dirichlet portfolios and summarize them (``chunk`` portfolios at a time).

    Memory: O(D * chunk) for the return paths, plus the D x n cumulative paths
    needed for the percentile band.
    """
    oos_returns = np.ascontiguousarray(oos_returns, dtype=np.float64)
    n_days, n_strategies = oos_returns.shape
    weights = dirichlet_weights(n, n_strategies, seed)
    sharpes = np.empty(n)
    totals = np.empty(n)
    drawdowns = np.empty(n)
    cumulative = np.empty((n_days, n))
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        paths = random_portfolio_returns(oos_returns, weights[lo:hi], cost_bps=cost_bps)
        sharpes[lo:hi] = metrics.sharpe(paths, periods_per_year)
        totals[lo:hi] = metrics.total_return(paths)
        drawdowns[lo:hi] = metrics.max_drawdown(paths)
        cumulative[:, lo:hi] = metrics.equity_curve(paths) - 1.0
    band = np.percentile(cumulative, BAND, axis=1) if n else np.zeros((len(BAND), n_days))
    beats = None
    if managed_sharpe is not None and n:
        beats = float(np.count_nonzero(sharpes < managed_sharpe) / n * 100.0)
    return RandomBenchmark(
        n=n, seed=seed, sharpes=sharpes, total_returns=totals, max_drawdowns=drawdowns,
        band=band, managed_beats_pct_sharpe=beats,
    )
