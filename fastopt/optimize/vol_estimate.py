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
  window (:func:`ledoit_wolf_intensity_gram`, the same number as
  ``fastopt.optimize.objective.ledoit_wolf_intensity`` computed without the N x N matrix).
- ``"factor"`` (default): a statistical factor model: the first ``factors`` principal components
  of the window (default 1: a single-index model on the window's own market factor) plus a
  diagonal specific variance (``diag(S)`` minus what the factors explain). The optimizer cannot
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


def ledoit_wolf_intensity_gram(returns: object) -> float:
    """``fastopt.optimize.objective.ledoit_wolf_intensity`` (Schafer-Strimmer diagonal target) in O(T^2 N).

    X* = sum_{i != j} Var(s_ij) / sum_{i != j} s_ij^2, clipped to [0, 1]. The off-diagonal sums
    are whole-matrix sums minus the diagonal, and the whole-matrix sums are T x T:
    sum_ij s_ij^2 = ||X X'||_F^2 / (T-1)^2 and sum_ij sum_t x_ti^2 x_tj^2 = sum_t (sum_i x_ti^2)^2.
    """
    arr = _window(returns)
    n_days, n = arr.shape
    if n < 2:
        return 0.0
    x = arr - arr.mean(axis=0)
    sq = x * x
    s_diag = sq.sum(axis=0) / (n_days - 1)
    gram = x @ x.T
    off_s2 = float((gram * gram).sum()) / (n_days - 1) ** 2 - float(s_diag @ s_diag)
    off_w2 = float((sq.sum(axis=1) ** 2).sum()) - float((sq * sq).sum())
    # sum_{i != j} n w_bar_ij^2 with w_bar = s (n-1)/n
    off_var = n_days / (n_days - 1) ** 3 * (off_w2 - n_days * ((n_days - 1) / n_days) ** 2 * off_s2)
    if off_s2 <= 0:
        return 1.0
    return float(np.clip(off_var / off_s2, 0.0, 1.0))


def shrunk_variance(returns: object, weights: object, *, intensity: float | None = None) -> float:
    """``w' ((1 - d) S + d diag(S)) w`` per day; d = :func:`ledoit_wolf_intensity_gram` when None."""
    arr = _window(returns)
    w = _weights(weights, arr.shape[1])
    d = ledoit_wolf_intensity_gram(arr) if intensity is None else float(intensity)
    if not 0.0 <= d <= 1.0:
        raise InputError(f"shrinkage intensity must be in [0, 1], got {intensity!r}")
    diag = np.var(arr, axis=0, ddof=1)
    return float((1.0 - d) * np.var(arr @ w, ddof=1) + d * float((w * w) @ diag))


#: Below this size the small symmetric matrix is diagonalized outright (LAPACK), above it by
#: subspace iteration (:func:`_top_eigenpairs`).
EXACT_EIGEN_SIZE = 128
#: Ritz residual tolerance of the subspace iteration, relative to the largest eigenvalue.
EIGEN_TOLERANCE = 1e-9
EIGEN_MAX_ITERATIONS = 60


def _top_eigenpairs(m: NDArray[np.float64], k: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The ``k`` largest eigenvalues (descending) and unit eigenvectors of a symmetric PSD matrix.

    Small matrices: ``numpy.linalg.eigh``. Larger ones: block subspace iteration (block k + 8,
    Rayleigh-Ritz each step, deterministic start) until every wanted Ritz pair has residual
    ``|M v - theta v| <= EIGEN_TOLERANCE * theta_1``, O(m^2 (k + 8)) per step; without
    convergence in ``EIGEN_MAX_ITERATIONS`` steps, or as soon as the Ritz values predict it will
    not (no eigengap), it falls back to ``eigh``.
    """
    size = m.shape[0]
    if size <= EXACT_EIGEN_SIZE or k + 8 >= size // 2:
        values, vectors = np.linalg.eigh(m)
        order = np.argsort(values)[::-1][:k]
        return values[order], vectors[:, order]
    block = k + 8
    start = np.random.default_rng(20_241_203).standard_normal((size, block))
    basis, _ = np.linalg.qr(m @ start)
    for _ in range(EIGEN_MAX_ITERATIONS):
        image = m @ basis
        small = basis.T @ image
        theta, rotation = np.linalg.eigh(0.5 * (small + small.T))
        order = np.argsort(theta)[::-1]
        theta, rotation = theta[order], rotation[:, order]
        ritz = basis @ rotation[:, :k]
        residual = np.linalg.norm(image @ rotation[:, :k] - ritz * theta[:k], axis=0)
        if theta[0] <= 0 or (residual <= EIGEN_TOLERANCE * theta[0]).all():
            return theta[:k], ritz
        # residuals shrink like (theta_block / theta_k)^steps: without a gap, diagonalize now
        rate = theta[-1] / theta[k - 1] if theta[k - 1] > 0 else 1.0
        if rate >= 1.0 or math.log(EIGEN_TOLERANCE) / math.log(rate) > EIGEN_MAX_ITERATIONS:
            break
        basis, _ = np.linalg.qr(image)
    values, vectors = np.linalg.eigh(m)
    order = np.argsort(values)[::-1][:k]
    return values[order], vectors[:, order]


def factor_variance(returns: object, weights: object, *, factors: int = DEFAULT_FACTORS) -> float:
    """Portfolio variance per day under ``k`` principal components + diagonal specific variance.

    With Y = (X - mean) / sqrt(T - 1) (so S = Y'Y) and (theta_j, v_j) the top-k eigenpairs of S,
    the loadings are B = V diag(sqrt(theta)) (N x k, factors of unit variance) and
    Sigma_F = B B' + diag(max(diag(S) - rowsum(B^2), 0)). Returns w' Sigma_F w = |B'w|^2 +
    sum_i w_i^2 spec_i. The eigenpairs come from the smaller of S (N x N, only when N <= T) and
    the Gram Y Y' (T x T; then B = Y'U with U its unit eigenvectors, the same loadings), so the
    cost is O(min(N, T)^2 max(N, T)) and no N x N matrix is formed when N > T.
    """
    arr = _window(returns)
    w = _weights(weights, arr.shape[1])
    if isinstance(factors, bool) or not isinstance(factors, (int, np.integer)) or factors < 0:
        raise InputError(f"factors must be an integer >= 0, got {factors!r}")
    n_days, n = arr.shape
    y = (arr - arr.mean(axis=0)) / math.sqrt(n_days - 1)
    diag = (y * y).sum(axis=0)
    k = min(int(factors), n_days - 1, n)
    if k == 0:
        return float((w * w) @ diag)
    if n <= n_days:
        values, vectors = _top_eigenpairs(y.T @ y, k)
        loadings = vectors * np.sqrt(np.maximum(values, 0.0))  # N x k
    else:
        _, vectors = _top_eigenpairs(y @ y.T, k)
        loadings = y.T @ vectors  # N x k
    specific = np.maximum(diag - (loadings * loadings).sum(axis=1), 0.0)
    common = loadings.T @ w
    return float(common @ common + (w * w) @ specific)


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
