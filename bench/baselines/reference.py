"""Reference statistics for the ``slope_std`` objective, in plain numpy.

Conventions (the same as fastopt's documented definition, written again here
independently so the bench can check fastopt against it):

- ``returns`` is a T×N array of simple daily returns (fractions, not percent);
- the curve of a portfolio ``w`` is C_t = r_1 + ... + r_t with r = R w;
- ``slope`` is the OLS slope of C_t against t = 0..T-1 (per day);
- ``std`` is the sample standard deviation (ddof=1) of r (per day);
- ``score = slope / std * sqrt(periods_per_year)`` (annualized, default 365).

Because slope is linear in w (slope = g·w with g the per-strategy slopes),
score(w) = sqrt(ppy) · g·w / sqrt(wᵀΣw) with Σ the sample covariance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RatioStats:
    """Per-strategy slopes ``g`` (per day, N) and sample covariance ``cov`` (N×N, ddof=1)."""

    g: np.ndarray
    cov: np.ndarray
    n_days: int


def curve_slopes(returns: np.ndarray) -> np.ndarray:
    """OLS slope per day of each column's cumulative-sum curve (N,)."""
    r = np.asarray(returns, dtype=np.float64)
    n_days = r.shape[0]
    t = np.arange(n_days, dtype=np.float64)
    t_centered = t - t.mean()
    curve = np.cumsum(r, axis=0)
    return (t_centered @ curve) / float(t_centered @ t_centered)


def ratio_stats(returns: np.ndarray) -> RatioStats:
    """g and Σ of a T×N window: what every optimize method needs before solving."""
    r = np.ascontiguousarray(returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 3:
        raise ValueError("returns must be T×N with T >= 3")
    g = curve_slopes(r)
    centered = r - r.mean(axis=0)
    cov = (centered.T @ centered) / (r.shape[0] - 1)
    return RatioStats(g=g, cov=cov, n_days=r.shape[0])


def slope_std_score(returns: np.ndarray, weights: np.ndarray, *, periods_per_year: float = 365.0) -> float:
    """Annualized slope/std of the portfolio ``returns @ weights`` (see module doc); 0 if std is 0."""
    portfolio = np.asarray(returns, dtype=np.float64) @ np.asarray(weights, dtype=np.float64)
    n_days = portfolio.shape[0]
    t = np.arange(n_days, dtype=np.float64)
    slope = np.polyfit(t, np.cumsum(portfolio), 1)[0]
    std = portfolio.std(ddof=1)
    if std == 0.0:
        return 0.0
    return float(slope / std * np.sqrt(periods_per_year))


def ratio_score(stats: RatioStats, weights: np.ndarray, *, periods_per_year: float = 365.0) -> float:
    """The same score from precomputed (g, Σ): sqrt(ppy) · g·w / sqrt(wᵀΣw)."""
    w = np.asarray(weights, dtype=np.float64)
    variance = float(w @ stats.cov @ w)
    if variance <= 0.0:
        return 0.0
    return float(stats.g @ w / np.sqrt(variance) * np.sqrt(periods_per_year))


def simplex_violation(weights: np.ndarray) -> float:
    """How far ``weights`` are from the simplex: max(|Σw − 1|, −min(w), 0); NaN/inf → inf."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or not np.all(np.isfinite(w)):
        return float("inf")
    return float(max(abs(w.sum() - 1.0), -w.min(), 0.0))


def kkt_residual(stats: RatioStats, weights: np.ndarray) -> float:
    """Optimality certificate of ``weights`` for max g·w/sqrt(wᵀΣw), w >= 0, Σw = 1.

    With y = w / (g·w) (so g·y = 1) the convex problem min yᵀΣy s.t. g·y = 1, y >= 0
    is optimal iff s = Σy − (yᵀΣy)·g satisfies s >= 0 everywhere and s = 0 on the
    support (complementarity is weighted by w_i / max(w)). Returned: the largest violation, relative to yᵀΣy·max|g|. 0 = optimal.
    Returns inf when g·w <= 0 (no rising curve: the certificate does not apply).
    """
    w = np.asarray(weights, dtype=np.float64)
    slope = float(stats.g @ w)
    if slope <= 0.0:
        return float("inf")
    y = w / slope
    sigma_y = stats.cov @ y
    quad = float(y @ sigma_y)
    s = sigma_y - quad * stats.g
    scale = quad * float(np.max(np.abs(stats.g)))
    # Complementarity weighted by each weight's share, so a dust weight of 1e-12
    # on a dominated strategy does not count as a full violation.
    complementarity = float(np.max(np.abs(s) * (w / w.max())))
    violation = max(float(-s.min()), complementarity)
    return violation / scale if scale > 0 else float("inf")


def count_nonzero(weights: np.ndarray, *, threshold: float = 1e-6) -> int:
    """Number of weights above ``threshold`` (a fraction of capital)."""
    return int(np.count_nonzero(np.asarray(weights) > threshold))
