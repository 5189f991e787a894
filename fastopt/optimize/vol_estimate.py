"""Which volatility the leverage divides the target by: estimators of a portfolio's vol on a window.

Every function takes the trailing window ``returns`` (T x N simple daily returns, fractions; only
days strictly before the rebalance day, so nothing here can look ahead) and the portfolio
``weights`` (N), and never forms an N x N matrix: portfolio variances come from ``X w`` (T values)
and cross-sectional sums from the T x T Gram matrix ``X X'``, so the cost is O(T N) or O(T^2 N).

Units: ``*_variance`` functions return a **daily** variance (fraction^2 per day);
:func:`portfolio_vol` returns an **annualized** vol (fraction per year, sqrt(periods_per_year) x
daily std). See docs/objective.md, "Sizing: which vol the leverage uses, and the evidence".

Estimators (``vol_estimator=``):

- ``"in_sample"``: std (ddof 1) of ``X w`` on the window: the sample covariance, the old behaviour.
  Biased low for weights optimized on the same window (the optimizer picks the directions where
  the sample covariance happens to be small), badly so when N approaches or exceeds T.
- ``"shrunk"``: ``w' ((1 - d) S + d diag(S)) w`` with d the Ledoit-Wolf-type intensity of the
  window (``fastopt.optimize.risk_model.ledoit_wolf_intensity_gram``, the optimizer's number,
  computed without the N x N matrix).
- ``"factor"`` (default): a statistical factor model: the first ``factors`` principal components
  of the window (default 1: a single-index model on the window's own market factor) plus a
  diagonal specific variance (``diag(S)`` minus what the factors explain, floored at 1e-4 of it):
  the optimizer's own ``fastopt.optimize.risk_model.factor_model``. The optimizer cannot
  hide variance in a spurious low-variance direction of the sample covariance: under this model
  only the common factor(s) are correlated, so a hedge the optimizer found in the residual
  correlations counts as no hedge at all.
- ``"ewma"``: exponentially weighted variance of ``X w`` (half-life ``half_life`` days), weighted
  mean removed, debiased for the weights' effective sample size.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from fastopt.errors import InputError
from fastopt.optimize.risk_model import factor_model, ledoit_wolf_intensity_gram

#: The estimators :func:`portfolio_vol` knows.
VOL_ESTIMATORS = ("in_sample", "shrunk", "factor", "ewma")
#: The estimator ``walkforward(target_vol=...)`` uses unless told otherwise.
DEFAULT_VOL_ESTIMATOR = "factor"
#: Principal components of the ``"factor"`` estimator.
DEFAULT_FACTORS = 1
#: Half-life (days) of the ``"ewma"`` estimator.
DEFAULT_HALF_LIFE = 60.0


def _window(returns: object) -> NDArray[np.float64]:
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise InputError(f"need a T x N return window with T >= 2 days, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("the return window has a non-finite value")
    return arr


def _weights(weights: object, n: int) -> NDArray[np.float64]:
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != n:
        raise InputError(f"{w.size} weights for a window of {n} strategies")
    if not np.isfinite(w).all():
        raise InputError("weights must be finite")
    return w


def in_sample_variance(returns: object, weights: object) -> float:
    """Sample variance (ddof 1) of the portfolio's daily returns ``X w`` on the window, per day."""
    arr = _window(returns)
    r = arr @ _weights(weights, arr.shape[1])
    return float(np.var(r, ddof=1))


def shrunk_variance(returns: object, weights: object, *, intensity: float | None = None) -> float:
    """``w' ((1 - d) S + d diag(S)) w`` per day; d = the window's Ledoit-Wolf-type intensity when None
    (``fastopt.optimize.risk_model.ledoit_wolf_intensity_gram``, the optimizer's own number)."""
    arr = _window(returns)
    w = _weights(weights, arr.shape[1])
    d = ledoit_wolf_intensity_gram(arr - arr.mean(axis=0)) if intensity is None else float(intensity)
    if not 0.0 <= d <= 1.0:
        raise InputError(f"shrinkage intensity must be in [0, 1], got {intensity!r}")
    diag = np.var(arr, axis=0, ddof=1)
    return float((1.0 - d) * np.var(arr @ w, ddof=1) + d * float((w * w) @ diag))


def factor_variance(returns: object, weights: object, *, factors: int = DEFAULT_FACTORS) -> float:
    """Portfolio variance per day under ``k`` principal components + diagonal specific variance.

    The optimizer's own statistical factor model (``fastopt.optimize.risk_model.factor_model``:
    loadings L (k x N) of the k leading principal components, from the smaller of the N x N
    covariance and the T x T Gram, never N x N when N > T; specific variances
    d_i = max(var_i - |L_i|^2, 1e-4 var_i)): w' (L'L + diag(d)) w = |L w|^2 + sum_i d_i w_i^2.
    ``factors`` = 0 is the diagonal model (every correlation ignored); k is clipped to
    min(N, T - 1), where the model is the sample covariance plus the 1e-4 floor.
    """
    arr = _window(returns)
    w = _weights(weights, arr.shape[1])
    if isinstance(factors, bool) or not isinstance(factors, (int, np.integer)) or factors < 0:
        raise InputError(f"factors must be an integer >= 0, got {factors!r}")
    n_days, n = arr.shape
    centered = arr - arr.mean(axis=0)
    k = min(int(factors), n_days - 1, n)
    if k == 0:
        return float((w * w) @ ((centered * centered).sum(axis=0) / (n_days - 1)))
    model = factor_model(centered, factors=k)
    common = model.rows @ w
    return float(common @ common + (w * w) @ model.specific)


def ewma_variance(returns: object, weights: object, *, half_life: float = DEFAULT_HALF_LIFE) -> float:
    """Exponentially weighted variance per day of ``X w`` (the last day weighs most).

    Weights a_t ~ 0.5 ** ((T - 1 - t) / half_life), normalized to 1; variance
    sum a_t (r_t - sum a r)^2 / (1 - sum a_t^2) (unbiased for i.i.d. returns, the ddof-1 analogue).
    """
    arr = _window(returns)
    w = _weights(weights, arr.shape[1])
    if not (math.isfinite(half_life) and half_life > 0):
        raise InputError(f"half_life must be a positive number of days, got {half_life!r}")
    n_days = arr.shape[0]
    a = 0.5 ** (np.arange(n_days - 1, -1, -1) / float(half_life))
    a /= a.sum()
    r = arr @ w
    centered = r - a @ r
    return float(a @ (centered * centered) / (1.0 - float(a @ a)))


def portfolio_variance(
    returns: object, weights: object, *, estimator: str = DEFAULT_VOL_ESTIMATOR,
    factors: int = DEFAULT_FACTORS, half_life: float = DEFAULT_HALF_LIFE,
) -> float:
    """Daily variance of the portfolio by ``estimator`` (one of :data:`VOL_ESTIMATORS`)."""
    if estimator == "in_sample":
        return in_sample_variance(returns, weights)
    if estimator == "shrunk":
        return shrunk_variance(returns, weights)
    if estimator == "factor":
        return factor_variance(returns, weights, factors=factors)
    if estimator == "ewma":
        return ewma_variance(returns, weights, half_life=half_life)
    raise InputError(f"vol_estimator must be one of {', '.join(VOL_ESTIMATORS)}, got {estimator!r}")


def check_vol_estimator(estimator: object) -> str:
    """``estimator`` if it names one of :data:`VOL_ESTIMATORS`, else InputError."""
    if not isinstance(estimator, str) or estimator not in VOL_ESTIMATORS:
        raise InputError(f"vol_estimator must be one of {', '.join(VOL_ESTIMATORS)}, got {estimator!r}")
    return estimator


def portfolio_vol(
    returns: object, weights: object, *, estimator: str = DEFAULT_VOL_ESTIMATOR,
    periods_per_year: float = 365, factors: int = DEFAULT_FACTORS, half_life: float = DEFAULT_HALF_LIFE,
) -> float:
    """Annualized vol (fraction per year) = sqrt(daily variance by ``estimator`` x periods_per_year)."""
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise InputError(f"periods_per_year must be positive, got {periods_per_year!r}")
    variance = portfolio_variance(returns, weights, estimator=estimator, factors=factors, half_life=half_life)
    return math.sqrt(max(variance, 0.0) * periods_per_year)
