"""Risk models of a return window as "low rank + diagonal": cov = s Y'Y + diag(d), never N x N.

All three covariance estimates ``optimize`` offers have this structure, with
X the T x N centered daily returns (fractions) of the window:

- sample (``risk_model="sample"``): Y = X, s = 1 / (T - 1), d = 0 (rank <= T - 1:
  singular when N >= T);
- diagonal shrinkage by a in [0, 1]: Y = X, s = (1 - a) / (T - 1), d = a var;
- statistical factor model (``risk_model="factor"``, k factors): Y = L, the k x N
  loadings of the k leading principal components of X (L = U_k' X / sqrt(T - 1)
  with U_k the leading eigenvectors of the T x T Gram matrix X X'; equivalently
  sqrt(lambda_k) V_k' from the N x N covariance when N < T), s = 1, and
  d = var - colsum(L^2) (the specific variances, floored at ``SPECIFIC_FLOOR``
  var so that cov is positive definite): cov = B F B' + D with B F B' = L'L.

The large-N solver (``fastopt.optimize.ratio.working_set``) takes such a model: a
covariance entry costs O(m) from the m x N rows Y, the gradient
cov w = s Y'(Y w) + d w costs O(N m). Every estimate here is computed from
T x T or m x N products only: the Gram matrix X X' (T^2 N multiply-adds) gives
the principal components and the Ledoit-Wolf-type shrinkage intensity.
Units: variances per day^2 (daily returns as fractions).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import eigh

from fastopt.errors import InputError
from fastopt.optimize.objective import single_thread_blas

RISK_MODELS = ("sample", "factor")
#: Most factors of the default rule (``default_factors``).
MAX_DEFAULT_FACTORS = 20
#: Specific variance floor, as a fraction of the strategy's sample variance (keeps cov positive
#: definite even for a strategy the k factors explain entirely).
SPECIFIC_FLOOR = 1e-4


#: Options of ``risk_model`` in ``optimize`` and ``walkforward``: "auto" picks per window.
RISK_MODEL_OPTIONS = ("auto", *RISK_MODELS)


def _choose(risk_model: str | None, choices: tuple[str, ...], default: str) -> str:
    if risk_model is None:
        return default
    if not isinstance(risk_model, str) or risk_model.strip().lower() not in choices:
        raise InputError(f"unknown risk_model {risk_model!r}; choose one of {', '.join(choices)}")
    return risk_model.strip().lower()


def resolve_risk_model(risk_model: str | None) -> str:
    """A concrete risk model: "sample" (also for None) or "factor"."""
    return _choose(risk_model, RISK_MODELS, "sample")


def resolve_risk_model_option(risk_model: str | None) -> str:
    """The ``risk_model`` option with "auto": "auto" (also for None), "sample" or "factor"."""
    return _choose(risk_model, RISK_MODEL_OPTIONS, "auto")


def resolve_risk_model_auto(n_usable: int, n_days: int, shrinkage: float | str | None = None) -> str:
    """The "auto" rule: "sample" when the window is well-posed, "factor" otherwise.

    Well-posed: fewer usable (non-constant) strategies than days, ``n_usable < n_days``
    (the sample covariance of T days has rank <= T - 1, so with N >= T it is singular and
    slope/std can be unbounded), or a shrinkage other than 0/None is asked for (the shrunk
    covariance is positive definite: the caller's own remedy stands). Windows under 3 days stay
    "sample" (the factor model needs 3).
    """
    if int(n_days) < 3:
        return "sample"
    if shrinkage is not None and not (isinstance(shrinkage, (int, float)) and float(shrinkage) == 0.0):
        return "sample"
    return "sample" if int(n_usable) < int(n_days) else "factor"


def default_factors(n_days: int, n_assets: int) -> int:
    """Factors of the default rule: min(20, (min(N, T - 1)) // 4), at least 1.

    At most a quarter of the sample covariance's rank: with T = 365 days and
    thousands of strategies that is the cap of 20; each factor's loadings are
    estimated from T observations, so k stays far below T.
    """
    rank = min(int(n_assets), int(n_days) - 1)
    return max(1, min(MAX_DEFAULT_FACTORS, rank // 4))


def check_factors(factors: int | None, n_days: int, n_assets: int) -> int:
    """``factors`` of the factor model: None (``default_factors``) or 1 <= k <= min(N, T - 1)."""
    if factors is None:
        return default_factors(n_days, n_assets)
    if isinstance(factors, bool) or not isinstance(factors, (int, np.integer)) or factors < 1:
        raise InputError(f"factors must be a positive whole number, got {factors!r}")
    limit = min(int(n_assets), int(n_days) - 1)
    if factors > limit:
        raise InputError(f"factors = {factors} exceeds min(N, T - 1) = {limit} for {n_assets} strategies "
                         f"x {n_days} days")
    return int(factors)


def gram(centered: np.ndarray) -> np.ndarray:
    """X X' (T x T) of the T x N centered returns: T^2 N multiply-adds, exactly symmetric (syrk)."""
    with single_thread_blas():
        return centered @ centered.T


def ledoit_wolf_intensity_gram(centered: np.ndarray, gram_matrix: np.ndarray | None = None) -> float:
    """``fastopt.optimize.objective.ledoit_wolf_intensity`` from the T x T Gram matrix, without N x N.

    X* = sum_{i != j} Var(s_ij) / sum_{i != j} s_ij^2 (Schafer & Strimmer 2005), clipped to
    [0, 1]. With S = X'X / (T - 1) and q_t = sum_i x_ti^2:
    sum_ij s_ij^2 = ||X X'||_F^2 / (T - 1)^2 and sum_ij sum_t x_ti^2 x_tj^2 = sum_t q_t^2, so
    both sums over i != j are a total minus its diagonal, O(T^2 N + T N) in all.
    """
    x = np.asarray(centered, dtype=np.float64)
    n_days, n_assets = x.shape
    if n_assets < 2:
        return 0.0
    gm = gram(x) if gram_matrix is None else gram_matrix
    sq = x * x
    colsq = sq.sum(axis=0)  # (T - 1) s_ii
    s2_all = float(np.einsum("ij,ij->", gm, gm)) / (n_days - 1) ** 2
    s2_diag = float(colsq @ colsq) / (n_days - 1) ** 2
    q = sq.sum(axis=1)
    w2_all = float(q @ q)
    w2_diag = float(np.einsum("ti,ti->", sq, sq))
    denom = s2_all - s2_diag
    if not denom > 0:
        return 1.0
    wbar2 = ((n_days - 1) / n_days) ** 2 * denom  # sum_{i != j} w_bar_ij^2
    var_sum = n_days / (n_days - 1) ** 3 * ((w2_all - w2_diag) - n_days * wbar2)
    return float(np.clip(var_sum / denom, 0.0, 1.0))


class LowRankDiag:
    """cov = scale * Y'Y + diag(specific): ``rows`` Y (m x N, C-contiguous float64), ``scale`` s,
    ``specific`` d (N,) or None (no diagonal term), ``variances`` = diag(cov) (N,), ``n_days`` T
    of the window it was estimated on, ``factors`` k of a factor model (None otherwise).
    Variances per day^2."""

    def __init__(self, rows: np.ndarray, scale: float, specific: np.ndarray | None, n_days: int,
                 factors: int | None = None) -> None:
        self.rows = np.ascontiguousarray(rows, dtype=np.float64)
        self.scale = float(scale)
        self.specific = None if specific is None else np.ascontiguousarray(specific, dtype=np.float64)
        self.n_days = int(n_days)
        self.factors = factors
        variances = np.einsum("ti,ti->i", self.rows, self.rows) * self.scale
        if self.specific is not None:
            variances = variances + self.specific
        self.variances = variances

    @property
    def n_assets(self) -> int:
        return self.rows.shape[1]

    def times(self, w: np.ndarray) -> np.ndarray:
        """cov @ w in O(N m)."""
        with single_thread_blas():
            out = self.rows.T @ (self.rows @ w)
        out *= self.scale
        if self.specific is not None:
            out += self.specific * w
        return out

    def dense(self) -> np.ndarray:
        """The N x N matrix (small N only: references, tests and the dense solver's fallback)."""
        with single_thread_blas():
            cov = self.rows.T @ self.rows
        cov *= self.scale
        if self.specific is not None:
            cov[np.diag_indices_from(cov)] = self.variances
        return cov


def factor_model(centered: np.ndarray, factors: int | None = None,
                 gram_matrix: np.ndarray | None = None) -> LowRankDiag:
    """Statistical factor model of the T x N centered returns: k principal components + specific variances.

    L = U_k' X / sqrt(T - 1) (U_k: the k leading eigenvectors of X X'), so L'L is the
    rank-k truncation of the sample covariance; d_i = max(var_i - sum_j L_ji^2,
    SPECIFIC_FLOOR var_i), var_i the sample variance (ddof = 1). A strategy with zero
    variance keeps zero loadings and d_i = 0 (the solver excludes it).
    """
    x = np.asarray(centered, dtype=np.float64)
    n_days, n_assets = x.shape
    if n_days < 3:
        raise InputError(f"the factor model needs at least 3 days, got {n_days}")
    k = check_factors(factors, n_days, n_assets)
    with single_thread_blas():
        if gram_matrix is None and n_assets < n_days:
            # fewer strategies than days: the N x N covariance is the smaller eigenproblem
            matrix = x.T @ x
            matrix /= n_days - 1
        else:
            matrix = gram(x) if gram_matrix is None else gram_matrix
    variances = np.einsum("ti,ti->i", x, x) / (n_days - 1)
    if gram_matrix is not None or n_assets >= n_days:
        return factor_model_from_gram(matrix, x, k, variances=variances)
    with single_thread_blas():
        values, vectors = _leading_eigenpairs(matrix, k)
        loadings = np.ascontiguousarray((vectors * np.sqrt(np.maximum(values, 0.0))).T)
    return _with_specific(loadings, variances, n_days, k)


def _leading_eigenpairs(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues (descending) and their eigenvectors of a symmetric matrix
    (LAPACK dsyevr on a subset: no full eigenvector matrix)."""
    size = matrix.shape[0]
    values, vectors = eigh(matrix, subset_by_index=[size - k, size - 1], check_finite=False)
    return values[::-1], vectors[:, ::-1]


def _with_specific(loadings: np.ndarray, variances: np.ndarray, n_days: int, k: int) -> LowRankDiag:
    """The model L'L + diag(d), d_i = max(var_i - |L_i|^2, SPECIFIC_FLOOR var_i)."""
    explained = np.einsum("ti,ti->i", loadings, loadings)
    specific = np.maximum(variances - explained, SPECIFIC_FLOOR * variances)
    return LowRankDiag(loadings, 1.0, specific, n_days, factors=k)


def factor_model_from_gram(gram_matrix: np.ndarray, rows: np.ndarray, factors: int, *, variances: np.ndarray,
                           mean: np.ndarray | None = None) -> LowRankDiag:
    """:func:`factor_model` from the T x T Gram matrix X X' of the centered window.

    ``rows``: the T x N window, centered (``mean`` None) or raw with its column ``mean``: the
    loadings U_k' X / sqrt(T - 1) are then U_k' R - (U_k' 1) mean', so the walk-forward never forms
    X. ``variances``: the window's sample variances (ddof 1); ``factors``: k (already checked).
    """
    n_days = rows.shape[0]
    with single_thread_blas():
        values, vectors = _leading_eigenpairs(gram_matrix, factors)
        lead = np.ascontiguousarray(vectors * (values > 0))  # a zero eigenvalue carries no factor
        loadings = lead.T @ rows
        if mean is not None:
            loadings -= np.outer(lead.sum(axis=0), mean)
        loadings /= math.sqrt(n_days - 1)
    return _with_specific(np.ascontiguousarray(loadings), variances, n_days, factors)


def sample_model(centered: np.ndarray, intensity: float = 0.0) -> LowRankDiag:
    """The sample covariance (ddof = 1) of T x N centered returns, shrunk toward its diagonal by
    ``intensity`` a: (1 - a) X'X / (T - 1) + a diag(var)."""
    x = np.asarray(centered, dtype=np.float64)
    n_days = x.shape[0]
    if not 0.0 <= intensity <= 1.0:
        raise InputError(f"shrinkage must be in [0, 1], got {intensity!r}")
    if intensity == 0.0:
        return LowRankDiag(x, 1.0 / (n_days - 1), None, n_days)
    variances = np.einsum("ti,ti->i", x, x) / (n_days - 1)
    return LowRankDiag(x, (1.0 - intensity) / (n_days - 1), intensity * variances, n_days)
