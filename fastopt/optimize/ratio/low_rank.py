"""Large universes with a positive definite "low rank + diagonal" covariance: no N x N, no |F| x |F| cache.

With shrinkage or a factor model (``fastopt.optimize.risk_model``) the covariance is
cov = s Y'Y + diag(d) with Y m x N (m = T returns, or m = k factor loadings) and
d > 0 on the usable strategies. The optimum of such a window can hold thousands
of strategies (20,000 x 365, 20 factors: ~4,500), where the working set's
covariance cache and its factor updates (``fastopt.optimize.ratio.working_set``) cost
O(|F|^3) and O(|F|^2) memory. Here every face F is solved from scratch by
whichever is cheaper:

- direct: cov_FF = s Y_F'Y_F + diag(d_F) and its Cholesky factor,
  |F|^2 m + |F|^3 / 3 multiply-adds (small faces);
- Woodbury: cov_FF^-1 = D^-1 - D^-1 Y_F' (I / s + Y_F D^-1 Y_F')^-1 Y_F D^-1,
  an m x m system, |F| m^2 + m^3 / 3 (large faces, few factors);

each with one step of iterative refinement (the residual from Y_F, O(|F| m)).
The full gradient cov y = s Y'(Y y) + d y costs O(N m).

The method is the primal active set of ``fastopt.optimize.active_set_kernels`` without
the factor updates: from a feasible y (g.y = 1, y >= 0) on a face F, solve the
face optimum z (cov_FF z ∝ g_F, g.z = 1). If z > 0, y = z and the strategies
outside F with multiplier lambda_j = (cov y)_j - nu g_j < -tol nu max|g|
(nu = y'cov y) join, most violating per unit std first, at most
max(``MIN_GROWTH``, |F| / 2) per step (one after a step without progress);
otherwise y moves toward z until its first weight reaches 0 (ratio test) and the
weights at 0 with z <= 0 leave. y'cov y never increases; the kernel-free loop
ends at a KKT point, which the caller certifies with ``kkt_gap`` on the full
gradient. Conventions as in ``fastopt.optimize.ratio.common``.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve

#: Most strategies a step adds: max(MIN_GROWTH, face size / 2).
MIN_GROWTH = 32


def face_solve(g_f: np.ndarray, y_f: np.ndarray, scale: float, d_f: np.ndarray) -> np.ndarray:
    """u with (scale * Y_F'Y_F + diag(d_F)) u = g_F; ``y_f``: Y_F (m x k), ``d_f`` > 0 (k,).

    Direct Cholesky when k <= m, Woodbury (an m x m system) otherwise; one refinement step.
    Raises ``np.linalg.LinAlgError`` when the system is not positive definite.
    """
    m, k = y_f.shape

    def apply(v: np.ndarray) -> np.ndarray:
        return scale * (y_f.T @ (y_f @ v)) + d_f * v

    if scale == 0.0 or m == 0:
        return g_f / d_f
    if k <= m:
        matrix = y_f.T @ y_f
        matrix *= scale
        matrix[np.diag_indices(k)] += d_f
        factor = cho_factor(matrix, lower=True, check_finite=False)

        def solve(v: np.ndarray) -> np.ndarray:
            return cho_solve(factor, v, check_finite=False)
    else:
        inv_d = 1.0 / d_f
        scaled = y_f * inv_d  # Y D^-1, m x k
        small = scaled @ y_f.T  # Y D^-1 Y'
        small[np.diag_indices(m)] += 1.0 / scale
        factor = cho_factor(small, lower=True, check_finite=False)

        def solve(v: np.ndarray) -> np.ndarray:
            return inv_d * v - scaled.T @ cho_solve(factor, scaled @ v, check_finite=False)
    u = solve(g_f)
    u += solve(g_f - apply(u))  # iterative refinement: the residual costs O(k m)
    return u


def gradient(rows: np.ndarray, scale: float, diag: np.ndarray, y: np.ndarray, face: np.ndarray) -> np.ndarray:
    """cov @ y = scale * Y'(Y_F y_F) + diag * y for y supported on ``face``: O(N m)."""
    out = rows.T @ (rows[:, face] @ y[face])
    out *= scale
    out[face] += diag[face] * y[face]
    return out


def low_rank_active_set(
    g: np.ndarray,
    rows: np.ndarray,
    scale: float,
    diag: np.ndarray,
    allowed: np.ndarray,
    start: np.ndarray,
    *,
    tol: float,
    max_steps: int = 10_000,
) -> tuple[np.ndarray, str, int]:
    """min y' cov y s.t. g.y = 1, y >= 0, y_j = 0 unless ``allowed``; cov = scale Y'Y + diag(diag).

    ``rows``: Y (m x N, C-contiguous); ``diag`` > 0 where allowed; ``start``: weights >= 0
    with g.start > 0 on allowed strategies. Returns (w = y / sum y, outcome, steps): outcome
    "kkt" (no violator left: certify with ``kkt_gap``), "step_limit" or "failed" (the face
    optimum has g.z <= 0, is not finite, or a face system is not positive definite).
    """
    y = np.where(allowed, np.asarray(start, dtype=np.float64), 0.0)
    gy = float(g @ y)
    if not gy > 0:
        return start / start.sum(), "failed", 0
    y /= gy
    in_face = y > 0
    face = np.flatnonzero(in_face)
    variances = scale * np.einsum("ti,ti->i", rows, rows) + diag
    std = np.sqrt(np.maximum(variances, 0.0))
    gmax = float(np.abs(g).max())
    single = False
    for step in range(1, max_steps + 1):
        g_f = g[face]
        try:
            u = face_solve(g_f, np.ascontiguousarray(rows[:, face]), scale, diag[face])
        except np.linalg.LinAlgError:
            return y / y.sum(), "failed", step
        gu = float(g_f @ u)
        if not (gu > 0 and np.isfinite(u).all()):
            return y / y.sum(), "failed", step
        z = u / gu
        negative = z <= 0
        if negative.any():
            y_f = y[face]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.where(y_f > 0, y_f / (y_f - z), 0.0)
            ratios[~negative] = np.inf
            block = int(np.argmin(ratios))
            alpha = float(ratios[block])
            y_f = y_f + alpha * (z - y_f)
            leave = negative & (y_f <= 0)
            leave[block] = True
            y_f[leave] = 0.0
            y[face] = y_f
            in_face[face[leave]] = False
            face = face[~leave]
            single = alpha == 0.0  # only fresh entrants left: add one at a time next
            if face.size == 0:
                return start / start.sum(), "failed", step
            continue
        y[face] = z
        cov_y = gradient(rows, scale, diag, y, face)
        nu = float(z @ cov_y[face])
        lam = cov_y - nu * g
        cand = np.flatnonzero(allowed & ~in_face & (lam < -tol * nu * gmax))
        if cand.size == 0:
            return y / y.sum(), "kkt", step
        limit = 1 if single else max(MIN_GROWTH, face.size // 2)
        if cand.size > limit:
            rank = lam[cand] / std[cand]
            cand = cand[np.argpartition(rank, limit - 1)[:limit]]
        in_face[cand] = True
        face = np.concatenate([face, np.sort(cand)])
        single = False
    return y / y.sum(), "step_limit", max_steps
