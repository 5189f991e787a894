"""Shared pieces of the slope/std solver: tolerances, bounds, validation, scores, the KKT certificate.

Conventions: ``g`` (N) slope per day of each strategy's cumulative-sum curve,
``cov`` (N x N) covariance of daily returns, ``w`` weights on the simplex,
``upper`` (N) per-strategy upper bounds (fractions; 0 = excluded). Scores
here are per-day ratios g.w / sqrt(w' cov w). See docs/objective.md.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.linalg.lapack import dpotrf

from fastopt.errors import InputError, NothingToDo
from fastopt.optimize.kernels import cov_matvec_sparse_nb

#: KKT gap (relative gradient spread, see ``kkt_gap``) the refinement aims for.
KKT_TOL = 1e-11
#: A KKT gap up to this multiple of the tolerance is certified (status "optimal").
CERTIFIED_GAP = 10.0
#: Largest face solved inside the numba PDAS kernel (own Cholesky); larger faces use LAPACK.
PDAS_NUMBA_MAX_FACE = 80
#: After a strategy has left the face, at most max(8, k // PDAS_DAMPING) enter per PDAS iteration.
PDAS_DAMPING = 2
#: Portfolio variance / (sum_k w_k std_k)^2 under which the optimum is called unbounded.
UNBOUNDED_REL_VAR = 1e-10
#: SMO + active-set rounds still run (best effort, uncertified) after PDAS stopped at the rank bound.
RANK_LIMITED_ROUNDS = 2
#: Relative multiplier threshold of the active-set kernel (lambda_j < -tol nu max|g|, the PDAS rule).
ACTIVE_SET_TOL = 1e-12
#: Active-set steps of the SMO rounds after a singular face was met before stopping (capped N >= T
#: windows: 10 stopped short of finite optima that 20-24 steps certify; each step is O(k^3)).
SINGULAR_MAX_STEPS = 30
#: Same ratio at which refinement stops early once a singular face has been met.
UNBOUNDED_EARLY_REL_VAR = 1e-6


def resolve_upper(
    max_weight: float | Mapping[Any, float] | Sequence[float] | np.ndarray,
    n_assets: int,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """Per-strategy upper bounds (fractions of the portfolio) from ``max_weight``.

    A scalar applies to all; a mapping (name or index -> bound) overrides the
    default 1.0 for the strategies it names; a sequence gives one bound each.
    """
    def check(value: Any, where: str) -> float:
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise InputError(f"max_weight{where} must be a number, got {value!r}") from None
        if not (0.0 <= out <= 1.0) or math.isnan(out):
            raise InputError(f"max_weight{where} must be in [0, 1], got {value!r}")
        return out

    if isinstance(max_weight, Mapping):
        upper = np.ones(n_assets)
        index = {name: k for k, name in enumerate(names or [])}
        for key, value in max_weight.items():
            if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                k = int(key)
                if not 0 <= k < n_assets:
                    raise InputError(f"max_weight index {k} out of range (N = {n_assets})")
            elif key in index:
                k = index[key]
            else:
                raise InputError(f"max_weight names an unknown strategy {key!r}")
            upper[k] = check(value, f"[{key!r}]")
        return upper
    if np.ndim(max_weight) == 0:
        return np.full(n_assets, check(max_weight, ""))
    arr = np.asarray(max_weight, dtype=np.float64).reshape(-1)
    if arr.size != n_assets:
        raise InputError(f"max_weight has {arr.size} entries for {n_assets} strategies")
    return np.array([check(v, f"[{k}]") for k, v in enumerate(arr)])


def check_stats(g: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = np.ascontiguousarray(np.asarray(g, dtype=np.float64).reshape(-1))
    cov = np.ascontiguousarray(np.asarray(cov, dtype=np.float64))
    n = g.size
    if n < 1:
        raise NothingToDo("no strategy to allocate (N = 0)")
    if cov.shape != (n, n):
        raise InputError(f"cov must be {n} x {n} to match g, got {cov.shape}")
    if not (np.isfinite(g).all() and np.isfinite(cov).all()):
        raise InputError("g and cov must be finite (NaN/inf in the return window?)")
    return g, cov


def usable_bounds(
    upper: np.ndarray, variances: np.ndarray, *, min_weight: float = 0.0, max_strategies: int | None = None
) -> tuple[np.ndarray, dict[int, str], np.ndarray]:
    """Exclude zero-variance strategies (upper -> 0, in place) and refuse infeasible bounds.

    ``variances``: (N,) per-day variance of each strategy in the window.
    Returns ``(upper, excluded index -> reason, usable indices)``.
    """
    excluded: dict[int, str] = {}
    for k in np.flatnonzero(~(variances > 0)):
        excluded[int(k)] = "zero variance in the window"
        upper[k] = 0.0
    usable = np.flatnonzero(upper > 0)
    if usable.size == 0:
        raise NothingToDo("no usable strategy: every one has zero variance or a max_weight of 0")
    total_room = float(upper[usable].sum())
    if total_room < 1.0 - 1e-12:
        raise InputError(
            f"infeasible bounds: the max weights of the {usable.size} usable strategies sum to "
            f"{total_room:.6g} < 1 (raise max_weight or add strategies)"
        )
    if max_strategies is not None:
        k_top = np.sort(upper[usable])[::-1][: int(max_strategies)].sum()
        if k_top < 1.0 - 1e-12:
            raise InputError(
                f"infeasible bounds: {max_strategies} strategies with max weights summing to {k_top:.6g} < 1"
            )
    if float(min_weight) > float(upper[usable].max()) + 1e-15:
        raise InputError(f"min_weight {min_weight} is above every max_weight")
    return upper, excluded, usable


def check_previous_weights(previous_weights: Sequence[float] | np.ndarray | None, n: int) -> np.ndarray | None:
    """``previous_weights`` as a float64 (N,) array (None stays None); InputError unless N finite numbers."""
    if previous_weights is None:
        return None
    out = np.asarray(previous_weights, dtype=np.float64).reshape(-1)
    if out.size != n or not np.isfinite(out).all():
        raise InputError(f"previous_weights must be {n} finite numbers")
    return out


def score_of(g: np.ndarray, cov: np.ndarray, w: np.ndarray) -> float:
    """Per-day slope/std of dense w (O(N s) using the support); -inf if var <= 0."""
    cov_w = cov_times(cov, w)
    var = float(w @ cov_w)
    return float(g @ w) / math.sqrt(var) if var > 0 else -math.inf


def submatrix(matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows][:, cols] as a new C-contiguous array (``take`` is ~3x faster than ``np.ix_``)."""
    return matrix.take(rows, axis=0).take(cols, axis=1)


def lower_cholesky(matrix: np.ndarray, *, clean: bool = False) -> np.ndarray:
    """Lower Cholesky factor L (matrix = L L') of a symmetric positive definite matrix.

    LAPACK dpotrf on the transposed (Fortran-ordered) view, without numpy's
    extra copies: about 2x faster than ``np.linalg.cholesky`` at k ~ 250. Only
    the lower triangle of the result is meaningful (the upper one is left as
    it was, or zeros with ``clean``); ``cholesky_solve_nb`` reads only the lower one. Raises
    ``np.linalg.LinAlgError`` when the matrix is not positive definite.
    """
    factor, info = dpotrf(np.asarray(matrix, dtype=np.float64).T, lower=0, clean=int(clean), overwrite_a=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix is not positive definite (dpotrf info {info})")
    return factor.T


def cov_times(cov: np.ndarray, w: np.ndarray) -> np.ndarray:
    """cov @ w in O(N |support|)."""
    # a writable copy: a read-only weights array would compile a second specialization
    return cov_matvec_sparse_nb(cov, np.array(w, dtype=np.float64), np.flatnonzero(w))


def relative_variance(cov: np.ndarray, w: np.ndarray, cov_w: np.ndarray) -> float:
    """w'cov w / (sum_k w_k std_k)^2: 1 for perfectly correlated, 0 for a riskless mix."""
    spread = float(w @ np.sqrt(np.diag(cov))) ** 2
    return float(w @ cov_w) / spread if spread > 0 else 0.0


def kkt_gap(g: np.ndarray, cov_w: np.ndarray, w: np.ndarray, upper: np.ndarray) -> float:
    """Relative KKT gap of max g.w/sqrt(w'cov w) on {0 <= w <= upper, sum w = 1}.

    (max grad over strategies that can grow - min grad over strategies that can
    shrink) / (|f| / V) ... expressed as (d_i - d_j) / (|G| V) with
    d = g V - G cov_w; 0 at a KKT point (a global optimum when g.w > 0).
    """
    big_g = float(g @ w)
    var = float(w @ cov_w)
    if not var > 0 or big_g == 0:
        return math.inf
    d = g * var - big_g * cov_w
    grow = d[w < upper]
    give = d[w > 0]
    if grow.size == 0 or give.size == 0:
        return 0.0
    scale = abs(big_g) * var
    if not scale > 0:  # underflow on (near-)riskless mixes: no certificate
        return math.inf
    return max(0.0, float(grow.max() - give.min()) / scale)
