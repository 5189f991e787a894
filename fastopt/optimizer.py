"""Maximize slope/std over long-only weights: seeded search + exact local refinement.

Pipeline of ``solve_ratio`` (the core, on precomputed ``g`` and ``cov``):

1. validate and exclude zero-variance strategies; refuse infeasible bounds;
2. search: sparse Dirichlet portfolios, best single strategies, the best
   edges between them, equal weights and the previous weights, all scored in
   one numba batch (``batch_ratio_sparse_nb``, O(K s^2));
3. refinement from the best candidate of the convex reformulation
   min y'cov y s.t. g.y = 1, y >= 0, y_i <= m_i sum(y) (w = y / sum y):
   without binding bounds a primal-dual active-set (semismooth Newton)
   iteration (``pdas_nb`` for faces <= 80 strategies, LAPACK beyond);
   otherwise, or if that fails, pairwise (SMO) moves with the exact line
   maximizer, O(N) each thanks to an incrementally updated ``cov @ w``,
   alternated with active-set steps that solve the current face exactly
   (with a ratio test), until the KKT gap is below ``tol``;
4. options: max_strategies (search over supports), min_weight (drop and
   re-solve), and in ``optimize`` the compounded-curve variant (sequential
   linearization + pairwise ascent).

When some g_i > 0 the problem is pseudo-concave on {g.w > 0}: a KKT point is
the global optimum, so the certificate (status "optimal") is a proof.
Derivations and measurements: docs/objective.md.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastopt.allocation import STATUSES, Allocation, normalize_weights
from fastopt.errors import InputError, NothingToDo
from fastopt.kernels import (
    batch_compound_sparse_nb,
    batch_ratio_sparse_nb,
    cholesky_solve_nb,
    compound_line_max_nb,
    compound_score_grad_nb,
    cov_matvec_sparse_nb,
    pdas_nb,
    portfolio_score_nb,
    smo_ratio_nb,
)
from fastopt.objective import (
    DEFAULT_PERIODS_PER_YEAR,
    OBJECTIVES,
    as_returns_matrix,
    resolve_shrinkage,
    shrink_covariance,
    single_thread_blas,
    window_stats,
)

#: KKT gap (relative gradient spread, see ``kkt_gap``) under which a point is certified.
KKT_TOL = 1e-11
#: Largest face solved inside the numba PDAS kernel (own Cholesky); larger faces use LAPACK.
PDAS_NUMBA_MAX_FACE = 80
#: After a strategy has left the face, at most max(8, k // PDAS_DAMPING) enter per PDAS iteration.
PDAS_DAMPING = 2
#: Portfolio variance / (sum_k w_k std_k)^2 under which the optimum is called unbounded.
UNBOUNDED_REL_VAR = 1e-10
#: SMO + active-set rounds still run (best effort, uncertified) after PDAS stopped at the rank bound.
RANK_LIMITED_ROUNDS = 2
#: Same ratio at which refinement stops early once a singular face has been met.
UNBOUNDED_EARLY_REL_VAR = 1e-6

# ---------------------------------------------------------------------------
# validation helpers


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


def _check_stats(g: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _score_of(g: np.ndarray, cov: np.ndarray, w: np.ndarray) -> float:
    """Per-day slope/std of dense w (O(N s) using the support); -inf if var <= 0."""
    cov_w = _cov_w(cov, w)
    var = float(w @ cov_w)
    return float(g @ w) / math.sqrt(var) if var > 0 else -math.inf


def _sub(matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows][:, cols] as a new C-contiguous array (``take`` is ~3x faster than ``np.ix_``)."""
    return matrix.take(rows, axis=0).take(cols, axis=1)


def _cov_w(cov: np.ndarray, w: np.ndarray) -> np.ndarray:
    """cov @ w in O(N |support|)."""
    return cov_matvec_sparse_nb(cov, np.ascontiguousarray(w, dtype=np.float64), np.flatnonzero(w))


def _relative_variance(cov: np.ndarray, w: np.ndarray, cov_w: np.ndarray) -> float:
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
    return max(0.0, float(grow.max() - give.min()) / (abs(big_g) * var))


# ---------------------------------------------------------------------------
# candidate generation


def _repair(w: np.ndarray, upper: np.ndarray) -> np.ndarray | None:
    """Map w >= 0 onto {0 <= w <= upper, sum 1} by capping and redistributing; None if impossible."""
    w = np.clip(np.asarray(w, dtype=np.float64), 0.0, None) * (upper > 0)
    if w.sum() <= 0:
        return None
    w = w / w.sum()
    for _ in range(w.size + 1):
        over = w > upper
        if not over.any():
            return w
        excess = float((w[over] - upper[over]).sum())
        w[over] = upper[over]
        free = (w > 0) & (w < upper)
        room = float(w[free].sum())
        if room <= 0:
            free = (upper > w)
            if not free.any():
                return None
            share = (upper - w) * free
            w = w + excess * share / share.sum()
        else:
            w[free] *= 1.0 + excess / room
    return w if (w <= upper + 1e-12).all() else None


def _repair_sparse(idx: np.ndarray, val: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized ``_repair`` of K sparse candidates; rows that cannot satisfy the bounds are dropped.

    A slot's cap is its strategy's bound divided by how often the index repeats
    in the row; excess over a cap is spread proportionally over the slots with
    room, repeated until nothing exceeds its cap (at most ``width`` rounds).
    """
    width = idx.shape[1]
    mult = (idx[:, :, None] == idx[:, None, :]).sum(axis=2)
    cap = upper[idx] / mult
    active = val > 0
    val = val.copy()
    for _ in range(width + 1):
        over = val > cap
        if not over.any():
            break
        excess = ((val - cap) * over).sum(axis=1)
        val = np.minimum(val, cap)
        free = active & (val < cap)
        room = (val * free).sum(axis=1)
        scale = np.divide(excess, room, out=np.zeros_like(room), where=room > 0)
        val = val + free * val * scale[:, None]
    ok = (np.abs(val.sum(axis=1) - 1.0) <= 1e-12) & (val <= cap * (1 + 1e-12)).all(axis=1)
    return np.ascontiguousarray(idx[ok]), np.ascontiguousarray(np.minimum(val[ok], cap[ok]))


def _greedy_fill(order: np.ndarray, upper: np.ndarray) -> np.ndarray | None:
    """Fill strategies in ``order`` up to their bound until the weights sum to 1."""
    w = np.zeros(upper.size)
    left = 1.0
    for k in order:
        take = min(upper[k], left)
        w[k] = take
        left -= take
        if left <= 1e-15:
            return w / w.sum()
    return None


def _sparse_candidates(
    rng: np.random.Generator,
    pool: np.ndarray,
    good_pool: np.ndarray,
    n_samples: int,
    width: int,
    min_support: int,
) -> tuple[np.ndarray, np.ndarray]:
    """K sparse Dirichlet(1) portfolios: idx (K x width) and val (K x width), zero-padded."""
    min_support = min(max(1, min_support), width)
    sizes = rng.integers(min_support, width + 1, size=n_samples)
    idx = np.empty((n_samples, width), dtype=np.int64)
    half = n_samples // 2 if good_pool.size >= width else 0
    # first half: supports drawn from the best strategies; second half: from all
    for source, rows in ((good_pool, slice(0, half)), (pool, slice(half, n_samples))):
        count = rows.stop - rows.start
        if count <= 0:
            continue
        # drawn with replacement: a repeated index just adds its weights (the scores stay exact)
        idx[rows] = source[rng.integers(0, source.size, size=(count, width))]
    val = rng.gamma(1.0, size=(n_samples, width))
    val[np.arange(width)[None, :] >= sizes[:, None]] = 0.0
    val /= val.sum(axis=1, keepdims=True)
    return idx, val


# ---------------------------------------------------------------------------
# local refinement


def _face_solve(
    g: np.ndarray, cov: np.ndarray, free: np.ndarray, at_ub: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray | None, bool]:
    """Exact optimum z (b.z = 1) of the convex reformulation on one face.

    Free F, at-bound U (w = upper < 1), zero elsewhere. With y = w / (g.w),
    y_U = v 1'y_F, v = upper_U / (1 - sum upper_U), the problem
    min y'cov y s.t. g.y = 1 becomes min z'Qz s.t. b.z = 1 with
    Q = cov_FF + u1' + 1u' + kappa 11', b = g_F + (g_U . v), solved by
    z = Q^-1 b / (b'Q^-1 b). Returns (z or None, singular flag).
    """
    m_u = float(upper[at_ub].sum())
    q = _sub(cov, free, free)
    b = g[free].copy()
    if at_ub.size:
        v = upper[at_ub] / (1.0 - m_u)
        u = _sub(cov, free, at_ub) @ v
        kappa = float(v @ _sub(cov, at_ub, at_ub) @ v)
        q = q + u[:, None] + u[None, :] + kappa
        b += float(g[at_ub] @ v)
    singular = False
    # BLAS is held single-threaded by solve_ratio() around the whole solve
    try:
        chol = np.linalg.cholesky(q)
        diag = np.diag(chol)
        if diag.min() ** 2 < 1e-13 * diag.max() ** 2:
            raise np.linalg.LinAlgError("near-singular")
        z = cholesky_solve_nb(np.ascontiguousarray(chol), b)
    except np.linalg.LinAlgError:
        # singular face (N >= T, duplicates): a tiny ridge picks one of the optimal
        # solutions at Cholesky cost (an SVD here cost 100x more at k ~ 500)
        singular = True
        ridge = 1e-12 * float(np.trace(q)) / q.shape[0] + 1e-300
        try:
            chol = np.linalg.cholesky(q + ridge * np.eye(q.shape[0]))
            z = cholesky_solve_nb(np.ascontiguousarray(chol), b)
        except np.linalg.LinAlgError:
            z = np.linalg.lstsq(q, b, rcond=1e-13)[0]
    bz = float(b @ z)
    if not (np.isfinite(z).all() and bz > 0):
        return None, singular
    return z / bz, singular


def _active_set_step(
    g: np.ndarray,
    cov: np.ndarray,
    w: np.ndarray,
    upper: np.ndarray,
    add: np.ndarray | None = None,
) -> tuple[np.ndarray | None, bool]:
    """One block active-set step of the convex reformulation from w.

    The free set is {0 < w < upper} plus the zero-weight KKT violators ``add``;
    added strategies whose face optimum is negative are dropped again and the
    face re-solved (they cannot enter together). Then the step moves from the
    current y toward the face optimum as far as y >= 0 and y_i <= m_i sum(y)
    allow (ratio test); along that segment the convex objective decreases, so
    the ratio never gets worse. Returns (new w or None, singular flag).
    """
    big_g = float(g @ w)
    if not big_g > 0:
        return None, False
    base_free = np.flatnonzero((w > 0) & (w < upper))
    at_ub = np.flatnonzero((w > 0) & (w >= upper) & (upper < 1))
    m_u = float(upper[at_ub].sum())
    if m_u >= 1.0:
        return None, False
    extra = np.zeros(0, dtype=np.int64) if add is None else np.asarray(add, dtype=np.int64)
    singular = False
    z = None
    free = base_free
    for _ in range(extra.size + 1):
        free = np.sort(np.concatenate([base_free, extra])) if extra.size else base_free
        if free.size == 0:
            return None, singular
        z, sing = _face_solve(g, cov, free, at_ub, upper)
        singular |= sing
        if z is None or extra.size == 0:
            break
        bad = np.isin(free, extra) & (z <= 0)
        if not bad.any():
            break
        extra = np.setdiff1d(extra, free[bad])
    if z is None:
        return None, singular
    y_cur = w[free] / big_g
    d = z - y_cur
    alpha = 1.0
    block_zero = -1
    block_ub = -1
    neg = d < 0
    if neg.any():
        ratios = -y_cur[neg] / d[neg]
        k = int(np.argmin(ratios))
        if ratios[k] < alpha:
            alpha = float(ratios[k])
            block_zero = int(np.flatnonzero(neg)[k])
    cap = upper[free] < 1
    if cap.any():
        denom = 1.0 - m_u
        s_cur = y_cur.sum() / denom
        s_d = d.sum() / denom
        h0 = np.minimum(y_cur - upper[free] * s_cur, 0.0)
        dh = d - upper[free] * s_d
        rising = cap & (dh > 0)
        if rising.any():
            ratios = np.where(rising, -h0 / np.where(rising, dh, 1.0), np.inf)
            k = int(np.argmin(ratios))
            if ratios[k] < alpha:
                alpha = float(ratios[k])
                block_zero = -1
                block_ub = k
    y_new = y_cur + alpha * d
    y_new[y_new < 0] = 0.0
    if block_zero >= 0:
        y_new[block_zero] = 0.0
    total = y_new.sum() / (1.0 - m_u)
    if not total > 0:
        return None, singular
    out = np.zeros_like(w)
    out[free] = y_new / total
    out[at_ub] = upper[at_ub]
    if block_ub >= 0:
        out[free[block_ub]] = upper[free[block_ub]]
    out = np.minimum(out, upper)
    s_out = out.sum()
    if not s_out > 0:
        return None, singular
    return out / s_out, singular


def _face_is_singular(cov: np.ndarray, free: np.ndarray) -> bool:
    """True when cov restricted to the free strategies is (numerically) singular."""
    if free.size < 2:
        return False
    try:
        diag = np.diag(np.linalg.cholesky(_sub(cov, free, free)))
    except np.linalg.LinAlgError:
        return True
    return bool(diag.min() ** 2 < 1e-13 * diag.max() ** 2)


def _violators(g: np.ndarray, cov_w: np.ndarray, w: np.ndarray, upper: np.ndarray, tol: float, limit: int) -> np.ndarray:
    """Zero-weight strategies whose gradient exceeds the smallest one among held strategies."""
    big_g = float(g @ w)
    var = float(w @ cov_w)
    if not (var > 0 and big_g != 0):
        return np.zeros(0, dtype=np.int64)
    d = g * var - big_g * cov_w
    held = w > 0
    ref = float(d[held].min()) + tol * abs(big_g) * var
    cand = np.flatnonzero((~held) & (upper > 0) & (d > ref))
    if cand.size > limit:
        cand = cand[np.argsort(-d[cand])[:limit]]
    return cand


def _pdas(
    g: np.ndarray, cov: np.ndarray, w0: np.ndarray, upper: np.ndarray, *, max_iter: int = 40,
    max_face: int | None = None,
) -> tuple[np.ndarray | None, int, bool, bool]:
    """Primal-dual active set (semismooth Newton) for min y'cov y, g.y = 1, y >= 0.

    Only for problems without binding upper bounds (upper in {0, 1}). Each
    iteration solves the face of the current inactive set I exactly and then
    sets I = {k in I: y_k > 0} + {k not in I: lambda_k < 0} with the
    multipliers lambda = cov y - nu g, nu = y'cov y. Converges in a few
    iterations from a reasonable start; returns (feasible w or None,
    iterations, singular flag, rank_limited flag). The caller certifies (KKT
    gap) and falls back to SMO + active-set steps when it fails or cycles.

    ``max_face``: the covariance's rank bound (n_days - 1). A finite optimum
    always has an optimal solution on a face of at most that many strategies
    with a nonsingular covariance block (docs/objective.md, "ill-posed
    windows"), so faces are never grown beyond it; when violators remain and
    the face is full, the iteration stops with rank_limited=True.
    """
    allowed = upper > 0
    start = (w0 > 0) & allowed
    # small faces: the whole iteration in numba (no per-iteration Python overhead)
    y, it_nb, status, mask = pdas_nb(g, cov, allowed, start, max_iter, PDAS_NUMBA_MAX_FACE)
    if status == 0:
        return y / y.sum(), it_nb, False, False
    inactive = np.flatnonzero(mask if status == 3 else start)
    if max_face is not None and inactive.size > max_face:
        # the start is on a structurally singular face: keep its heaviest max_face strategies
        inactive = np.sort(inactive[np.argsort(-w0[inactive], kind="stable")[:max_face]])
    none_ub = np.zeros(0, dtype=np.int64)
    singular = False
    best = None
    best_score = -math.inf
    dropped_any = False
    seen: set[bytes] = set()
    for it in range(1, max_iter + 1):
        key = inactive.tobytes()
        if inactive.size == 0 or key in seen:
            return best, it, singular, False
        seen.add(key)
        z, sing = _face_solve(g, cov, inactive, none_ub, upper)
        singular |= sing
        if z is None:
            return best, it, singular, False
        y = np.zeros(g.size)
        y[inactive] = z
        positive = z > 0
        if positive.any():
            cand = np.where(y > 0, y, 0.0)
            cand /= cand.sum()
            if max_face is None:
                best = cand
            else:  # ill-posed: iterates can get worse, keep the best ratio seen
                cand_score = _score_of(g, cov, cand)
                if cand_score > best_score:
                    best, best_score = cand, cand_score
        if max_face is not None and inactive.size >= max_face and not positive.all():
            # ill-posed problem on a singular face or at the rank bound: PDAS only cycles from here
            return best, it, singular, True
        cov_y = cov_matvec_sparse_nb(cov, y, inactive)
        nu = float(y @ cov_y)
        lam = cov_y - nu * g
        threshold = -1e-12 * nu * float(np.abs(g).max())
        enter = np.flatnonzero(allowed & (y == 0) & (lam < threshold))
        # damping: a bounded number of entries per iteration avoids the cycling
        # full PDAS shows on ill-conditioned covariances
        # while nothing has left the face, let it double (pure growth phase)
        limit = max(8, inactive.size // PDAS_DAMPING) if dropped_any else max(8, inactive.size)
        if max_face is not None:
            limit = min(limit, max_face - int(np.count_nonzero(positive)))
            if limit <= 0 and enter.size and positive.all():
                return best, it, singular, True  # KKT violators but the face is at the rank bound
        if enter.size > limit:
            enter = enter[np.argsort(lam[enter])[: max(limit, 0)]]
        if positive.all() and enter.size == 0:
            return best, it, singular, False
        dropped_any = dropped_any or not positive.all()
        inactive = np.sort(np.concatenate([inactive[positive], enter]))
    return best, max_iter, singular, False


def _refine(
    g: np.ndarray,
    cov: np.ndarray,
    w0: np.ndarray,
    upper: np.ndarray,
    *,
    tol: float,
    max_rounds: int,
    max_face: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """SMO + block active-set refinement from w0 to a KKT point. Returns (w, info).

    ``max_face`` (rank bound of cov, set on structurally singular problems):
    PDAS keeps its faces within it; if it stops at the bound uncertified
    (``rank_limited``), the SMO / active-set rounds are skipped: they would
    only chase a near-riskless mix on singular faces (the slow ill-posed path).

    SMO moves (O(N) each) fix the active set where the active-set step cannot
    (releasing upper bounds); each active-set step solves the current face
    exactly, adding all zero-weight KKT violators at once.
    """
    w = np.ascontiguousarray(w0, dtype=np.float64).copy()
    cov_w = _cov_w(cov, w)
    iterations = 0
    singular = False
    steps = 0
    gap = math.inf
    n = g.size
    pdas_iterations = 0
    rank_limited = False
    if bool(((upper == 0) | (upper >= 1)).all()) and float(g @ w) > 0:
        w_p, pdas_iterations, singular, rank_limited = _pdas(g, cov, w, upper, max_face=max_face)
        if w_p is not None:
            cov_p = _cov_w(cov, w_p)
            var_p = float(w_p @ cov_p)
            old = float(g @ w) / math.sqrt(float(w @ cov_w))
            if var_p > 0 and float(g @ w_p) / math.sqrt(var_p) >= old:
                w, cov_w = np.ascontiguousarray(w_p), cov_p
    budget = 2 * int(np.count_nonzero(w)) + 20
    if singular and _relative_variance(cov, w, cov_w) < UNBOUNDED_EARLY_REL_VAR:
        # PDAS ran into singular faces and already holds a near-riskless mix: the
        # ratio is unbounded; more refinement only chases numerical noise
        max_rounds = 0
    if rank_limited and kkt_gap(g, cov_w, w, upper) > tol:
        max_rounds = min(max_rounds, RANK_LIMITED_ROUNDS)
    for _ in range(max_rounds):
        it, gap = smo_ratio_nb(g, cov, w, cov_w, upper, tol, budget)
        iterations += int(it)
        if gap <= tol:
            break
        add = _violators(g, cov_w, w, upper, tol, 8)
        new_w, sing = _active_set_step(g, cov, w, upper, add)
        singular |= sing
        steps += 1
        if new_w is not None:
            new_cov_w = _cov_w(cov, new_w)
            old = float(g @ w) / math.sqrt(float(w @ cov_w))
            var_new = float(new_w @ new_cov_w)
            if var_new > 0 and float(g @ new_w) / math.sqrt(var_new) >= old - 1e-15 * abs(old):
                w = np.ascontiguousarray(new_w)
                cov_w = new_cov_w
        gap = kkt_gap(g, cov_w, w, upper)
        if gap <= tol:
            break
        if singular and (_relative_variance(cov, w, cov_w) < UNBOUNDED_REL_VAR or steps >= 10):
            break  # singular covariance, heading to a zero-variance mix: stop here (reported)
        budget = 2 * int(np.count_nonzero(w)) + 20
    else:
        if not singular and max_rounds > 0:  # last resort: plain SMO with a large budget
            it, gap = smo_ratio_nb(g, cov, w, cov_w, upper, tol, 50 * n + 1000)
            iterations += int(it)
    cov_w = _cov_w(cov, w)
    gap = kkt_gap(g, cov_w, w, upper)
    singular = _face_is_singular(cov, np.flatnonzero((w > 0) & (w < upper)))
    if rank_limited and gap > tol:
        singular = True  # the certificate needs a face beyond the covariance's rank
    return w, {"iterations": iterations + pdas_iterations, "pdas_iterations": pdas_iterations,
               "active_set_steps": steps, "kkt_gap": gap, "singular": singular,
               "rank_limited": bool(rank_limited and gap > tol)}


# ---------------------------------------------------------------------------
# the core


def _core(
    g: np.ndarray,
    cov: np.ndarray,
    upper: np.ndarray,
    *,
    previous: np.ndarray | None,
    seed: int,
    n_samples: int | None,
    tol: float,
    max_rounds: int,
    max_face: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Search + refine on a problem whose strategies all have variance > 0 (upper may be 0)."""
    n = g.size
    rng = np.random.default_rng(seed)
    usable = np.flatnonzero(upper > 0)
    std = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):  # std 0 only where upper == 0
        single = np.where(upper > 0, g / std, -np.inf)
    order = np.argsort(-single, kind="stable")
    order = order[np.isfinite(single[order])]
    bounded = bool((upper[usable] < 1).any())
    dense: list[tuple[str, np.ndarray]] = []
    fill = _greedy_fill(order, upper)
    if fill is not None:
        dense.append(("best_singles", fill))
    if bounded:
        # the max-slope allocation (greedy by g solves that LP): if any mix within the
        # bounds has a rising curve, this one does, so the ascent starts where g.w > 0
        steepest = _greedy_fill(np.argsort(-np.where(upper > 0, g, -np.inf), kind="stable"), upper)
        if steepest is not None:
            dense.append(("max_slope", steepest))
    eq = _repair(np.where(upper > 0, 1.0, 0.0), upper)
    if eq is not None:
        dense.append(("equal", eq))
    if previous is not None:
        prev = _repair(previous, upper)
        if prev is not None:
            dense.append(("previous", prev))
    # sparse candidates: singles, best edges, Dirichlet samples
    if n_samples is None:
        n_samples = 0 if previous is not None else int(min(4096, max(256, 2 * usable.size)))
    idx_blocks: list[np.ndarray] = []
    val_blocks: list[np.ndarray] = []
    min_support = int(math.ceil(1.0 / max(float(upper[usable].max()), 1e-12) - 1e-9))
    width = max(min_support + 6, 8)
    if not bounded:
        top = order[: min(order.size, 16 if previous is None else 4)]
        edges_idx, edges_val = _best_edges(g, cov, top, width)
        idx_blocks.append(edges_idx)
        val_blocks.append(edges_val)
    if n_samples > 0 and usable.size >= 2:
        good = order[: min(order.size, max(4 * width, 64))]
        idx_s, val_s = _sparse_candidates(rng, usable, good, n_samples, width, max(2, min_support))
        if bounded:
            idx_s, val_s = _repair_sparse(idx_s, val_s, upper)
        idx_blocks.append(idx_s)
        val_blocks.append(val_s)
    best_w = None
    best_score = -math.inf
    best_name = ""
    n_tried = 0
    if idx_blocks:
        idx_all = np.ascontiguousarray(np.concatenate(idx_blocks))
        val_all = np.ascontiguousarray(np.concatenate(val_blocks))
        if idx_all.shape[0]:
            scores = batch_ratio_sparse_nb(g, cov, idx_all, val_all)
            n_tried += scores.size
            k = int(np.argmax(scores))
            if scores[k] > best_score:
                best_score = float(scores[k])
                best_w = np.zeros(n)
                np.add.at(best_w, idx_all[k], val_all[k])
                best_name = "edge" if (not bounded and k < idx_blocks[0].shape[0]) else "dirichlet"
    for name, w in dense:
        s = _score_of(g, cov, w)
        n_tried += 1
        if s > best_score or best_w is None:
            best_score, best_w, best_name = s, w, name
    assert best_w is not None
    search_score = best_score
    w, info = _refine(g, cov, best_w, upper, tol=tol, max_rounds=max_rounds, max_face=max_face)
    info.update(candidates=n_tried, best_candidate=best_name, search_score=search_score)
    return w, info


def _best_edges(g: np.ndarray, cov: np.ndarray, top: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For every pair (a, b) of ``top``, the best point of the simplex edge between them.

    From vertex a, moving t to b gives slope g_a + t d and variance
    c_aa + 2 t p + t^2 q; d f/d t has the sign of a0 + a1 t (see pair_step_nb),
    so the best t in [0, 1] is -a0/a1 clipped when a1 < 0, else an end point.
    """
    ia, ib = np.triu_indices(top.size, k=1)
    a, b = top[ia], top[ib]
    big_g, var = g[a], cov[a, a]
    d = g[b] - g[a]
    p = cov[b, a] - cov[a, a]
    q = cov[b, b] + cov[a, a] - 2.0 * cov[a, b]
    a0 = d * var - big_g * p
    a1 = d * p - big_g * q
    with np.errstate(divide="ignore", invalid="ignore"):
        interior = np.clip(np.where(a1 < 0, -a0 / np.where(a1 < 0, a1, -1.0), 0.0), 0.0, 1.0)
        end_b = (g[b] / np.sqrt(cov[b, b])) > (g[a] / np.sqrt(cov[a, a]))
    t = np.where(a1 < 0, interior, np.where(end_b, 1.0, 0.0))
    idx = np.zeros((a.size, width), dtype=np.int64)
    val = np.zeros((a.size, width))
    idx[:, 0], idx[:, 1] = a, b
    val[:, 0], val[:, 1] = 1.0 - t, t
    return idx, val


def solve_ratio(
    g: np.ndarray,
    cov: np.ndarray,
    *,
    max_weight: float | Mapping[Any, float] | Sequence[float] = 1.0,
    min_weight: float = 0.0,
    max_strategies: int | None = None,
    previous_weights: np.ndarray | None = None,
    seed: int = 0,
    periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
    names: Sequence[str] | None = None,
    n_samples: int | None = None,
    tol: float = KKT_TOL,
    max_rounds: int = 200,
    n_days: int | None = None,
) -> Allocation:
    """Maximize g.w / sqrt(w' cov w) over w >= 0, sum w = 1, w_i <= max_weight_i.

    ``g``: (N,) slope per day of each strategy's cumulative-sum curve;
    ``cov``: (N, N) covariance of daily returns (ddof=1, possibly shrunk).
    ``max_weight``: scalar, sequence, or mapping name/index -> bound (fractions);
    ``min_weight``: weights below it are set to 0 and the rest re-optimized;
    ``max_strategies``: at most K non-zero weights (non-convex: heuristic);
    ``previous_weights``: warm start (e.g. yesterday's weights in a walk-forward);
    without it a seeded random search runs first. Deterministic for a seed.
    ``n_days``: length of the window ``cov`` was estimated on (rank of cov <=
    n_days - 1). When given and there are at least n_days usable strategies
    (N >= T, ill-posed), the refinement keeps faces within the rank bound and
    stops early, uncertified, when the optimum would need more (status
    ``unbounded`` or ``ill_conditioned``): see docs/objective.md.
    ``score`` of the result is annualized with sqrt(periods_per_year).
    """
    started = time.perf_counter()
    g, cov = _check_stats(g, cov)
    n = g.size
    upper = resolve_upper(max_weight, n, names)
    if not (0.0 <= float(min_weight) <= 1.0):
        raise InputError(f"min_weight must be in [0, 1], got {min_weight!r}")
    if max_strategies is not None and (int(max_strategies) != max_strategies or max_strategies < 1):
        raise InputError(f"max_strategies must be a positive integer, got {max_strategies!r}")
    if previous_weights is not None:
        previous_weights = np.asarray(previous_weights, dtype=np.float64).reshape(-1)
        if previous_weights.size != n or not np.isfinite(previous_weights).all():
            raise InputError(f"previous_weights must be {n} finite numbers")
    diag = np.diag(cov)
    excluded: dict[int, str] = {}
    for k in np.flatnonzero(~(diag > 0)):
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
    ann = math.sqrt(periods_per_year)
    base_diag = {"excluded": excluded, "n_usable": int(usable.size)}

    def finish(w: np.ndarray, status: str, solver: str, info: dict[str, Any], message: str) -> Allocation:
        w = normalize_weights(w)
        s = _score_of(g, cov, w)
        diag_out = {**base_diag, **info, "seconds": time.perf_counter() - started}
        return Allocation(
            weights=w,
            score=float(s * ann) if math.isfinite(s) else float("nan"),
            status=status,
            solver=solver,
            iterations=int(info.get("iterations", 0)),
            message=message,
            diagnostics=diag_out,
        )

    if usable.size == 1:
        w = np.zeros(n)
        w[usable[0]] = 1.0
        return finish(w, "single_strategy", "search", {"kkt_gap": 0.0},
                      "only one usable strategy: it gets weight 1")

    # Excluded strategies (zero variance, or max_weight 0) get upper = 0, which every step of the
    # solver respects, so the full problem is solved in place when their variances are >= 0 (copying
    # the usable sub-matrix cost ~2-3 ms at N = 1000); a negative diagonal (a caller's invalid cov)
    # is cut out instead, so that no sqrt of it is ever taken.
    index = np.arange(n) if bool((diag >= 0).all()) else usable
    sub_g = g if index.size == n else np.ascontiguousarray(g[index])
    sub_cov = cov if index.size == n else np.ascontiguousarray(_sub(cov, index, index))
    sub_upper = np.ascontiguousarray(upper[index])
    sub_prev = previous_weights[index] if previous_weights is not None else None
    usable_g = g[usable]
    max_face = None
    if n_days is not None and usable.size >= int(n_days):
        max_face = max(int(n_days) - 1, 1)
        base_diag["rank_bound"] = max_face
    with single_thread_blas():
        w_sub, info = _core(sub_g, sub_cov, sub_upper, previous=sub_prev, seed=seed,
                            n_samples=n_samples, tol=tol, max_rounds=max_rounds, max_face=max_face)
    status = "optimal" if info["kkt_gap"] <= tol * 10 else "max_iterations"

    if max_strategies is not None and np.count_nonzero(w_sub) > max_strategies:
        info["kkt_gap_unrestricted"] = info.pop("kkt_gap")
        w_sub, card_info = _cardinality(sub_g, sub_cov, sub_upper, w_sub, int(max_strategies),
                                        seed=seed, tol=tol, max_rounds=max_rounds)
        info.update(card_info)
        status = "cardinality_heuristic"

    if min_weight > 0:
        w_sub, dropped = _apply_min_weight(sub_g, sub_cov, sub_upper, w_sub, float(min_weight),
                                           tol=tol, max_rounds=max_rounds)
        info["dropped_below_min_weight"] = [int(index[k]) for k in dropped]

    w = np.zeros(n)
    w[index] = w_sub
    message = "KKT certified optimum" if status == "optimal" else STATUSES.get(status, status)
    if info.get("dropped_below_min_weight"):
        message += (f" on the strategies kept after dropping {len(info['dropped_below_min_weight'])} "
                    "under min_weight (min_weight itself is a heuristic, non-convex rule)")
    if not (usable_g > 0).any():
        status = "no_rising_curve"
        message = ("no allocation has a rising curve: every strategy's slope is <= 0 "
                   "(least-bad allocation returned)")
    elif not float(sub_g @ w_sub) > 0:
        # some g_i > 0, but the bounds keep every allowed mix's slope <= 0
        status = "no_rising_curve"
        message = ("no allocation within the weight bounds has a rising curve (the rising strategies "
                   "are capped too low); least-bad allocation returned")
    else:
        sw = w_sub[w_sub > 0]
        supp = np.flatnonzero(w_sub)
        var = float(sw @ _sub(sub_cov, supp, supp) @ sw)
        spread = float(sw @ np.sqrt(np.diag(sub_cov))[supp]) ** 2
        info["relative_variance"] = var / spread if spread > 0 else 0.0
        degenerate = info.get("singular") and info.get("kkt_gap", 0.0) > tol * 10
        if info.get("rank_limited") and not (spread > 0 and var / spread < UNBOUNDED_REL_VAR):
            status = "unbounded"
            message = (f"N = {usable.size} usable strategies >= T = {n_days} days: the covariance is "
                       f"singular and no optimum was certified on a face of <= {max_face} strategies "
                       "(a finite optimum has one; every larger face is singular), so slope/std grows "
                       "without bound; these weights are a finite best-effort point. "
                       "Use shrinkage (e.g. 'auto') or a longer lookback")
        elif (spread > 0 and var / spread < UNBOUNDED_REL_VAR) or degenerate:
            status = "unbounded"
            message = ("the window admits a long-only mix with almost zero variance and a positive slope, "
                       "so slope/std grows without bound (N >= T or near-duplicate strategies); "
                       "use shrinkage (e.g. 'auto') or a longer lookback")
        elif info.get("singular") and status in ("optimal", "max_iterations"):
            if status == "optimal":
                # the score is still the certified maximum; only the weights are not unique
                message = ("KKT certified optimum; the covariance is (near-)singular on the support "
                           "(near-duplicate strategies?), so other weights reach the same score")
            else:
                status = "ill_conditioned"
                message = ("covariance is singular on the solution's support and the optimum could not be "
                           "certified; consider shrinkage")
    return finish(w, status, "search", info, message)


def _restricted(g, cov, upper, support, *, tol, max_rounds, start=None) -> tuple[np.ndarray, float, dict]:
    """Exact optimum on a support (dense N result, per-day score)."""
    support = np.asarray(sorted(set(int(k) for k in support)), dtype=np.int64)
    sub_upper = upper[support].copy()
    n = g.size
    if sub_upper.sum() < 1 - 1e-12:
        return np.zeros(n), -math.inf, {}
    sg = np.ascontiguousarray(g[support])
    sc = np.ascontiguousarray(_sub(cov, support, support))
    if support.size == 1:
        w = np.zeros(n)
        w[support[0]] = 1.0
        return w, _score_of(g, cov, w), {"iterations": 0}
    w0 = None if start is None else _repair(start[support], sub_upper)
    if w0 is None:
        w0 = _repair(np.ones(support.size), sub_upper)
    ws, info = _refine(sg, sc, w0, sub_upper, tol=tol, max_rounds=max_rounds)
    w = np.zeros(n)
    w[support] = ws
    return w, _score_of(g, cov, w), info


def _cardinality(g, cov, upper, w_full, k_max, *, seed, tol, max_rounds) -> tuple[np.ndarray, dict]:
    """At most k_max strategies: greedy forward selection vs top-k of the full optimum, then swaps."""
    n = g.size
    results: list[tuple[float, np.ndarray, str]] = []
    # (a) top-k of the unconstrained optimum
    top = np.argsort(-w_full, kind="stable")[:k_max]
    w_a, s_a, _ = _restricted(g, cov, upper, top, tol=tol, max_rounds=max_rounds, start=w_full)
    results.append((s_a, w_a, "top_k_of_optimum"))
    # (b) greedy forward selection by gradient + exact re-solve
    std = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):  # std 0 only where upper == 0
        single = np.where(upper > 0, g / std, -np.inf)
    support = [int(np.argmax(single))]
    while len(support) < k_max or upper[support].sum() < 1 - 1e-12:
        if len(support) >= k_max:
            break
        w_g, s_g, _ = _restricted(g, cov, upper, support, tol=tol, max_rounds=max_rounds)
        if not np.isfinite(s_g):
            w_g = np.zeros(n)
            w_g[support] = 1.0 / len(support)
        cov_w = cov @ w_g
        big_g = float(g @ w_g)
        var = float(w_g @ cov_w)
        d = g * var - big_g * cov_w
        d[support] = -np.inf
        d[upper <= 0] = -np.inf
        nxt = int(np.argmax(d))
        if not np.isfinite(d[nxt]):
            break
        support.append(nxt)
    w_b, s_b, _ = _restricted(g, cov, upper, support, tol=tol, max_rounds=max_rounds)
    results.append((s_b, w_b, "greedy_forward"))
    # (c) random supports: K-subsets of the strategies the full optimum holds (plus the
    # best singles), scored with random weights in one batch; the 4 best are re-solved exactly
    rng = np.random.default_rng(seed)
    pool = np.union1d(np.flatnonzero(w_full > 0), np.argsort(-single, kind="stable")[: 2 * k_max])
    pool = pool[upper[pool] > 0]
    if pool.size > k_max:
        n_draw = 256
        keys = rng.random((n_draw, pool.size))
        idx = pool[np.argpartition(keys, k_max - 1, axis=1)[:, :k_max]]
        val = rng.gamma(1.0, size=(n_draw, k_max))
        val /= val.sum(axis=1, keepdims=True)
        scores = batch_ratio_sparse_nb(g, cov, np.ascontiguousarray(idx), np.ascontiguousarray(val))
        for row in np.argsort(-scores)[:4]:
            w_r, s_r, _ = _restricted(g, cov, upper, idx[row], tol=tol, max_rounds=max_rounds)
            results.append((s_r, w_r, "random_support"))
    # (d) local swap search from the best so far: replace the smallest member by top outsiders
    best_s, best_w, best_from = max(results, key=lambda r: r[0])
    swaps = 0
    improved = True
    rounds = 0
    while improved and rounds < 3 * k_max:
        improved = False
        rounds += 1
        members = np.flatnonzero(best_w)
        cov_w = cov @ best_w
        big_g = float(g @ best_w)
        var = float(best_w @ cov_w)
        d = g * var - big_g * cov_w
        d[members] = -np.inf
        d[upper <= 0] = -np.inf
        outsiders = np.argsort(-d)[:3]
        for out_k in members[np.argsort(best_w[members])][:3]:
            for in_k in outsiders:
                if not np.isfinite(d[in_k]):
                    continue
                trial = [m for m in members if m != out_k] + [int(in_k)]
                w_t, s_t, _ = _restricted(g, cov, upper, trial, tol=tol, max_rounds=max_rounds)
                if s_t > best_s * (1 + 1e-12) + 1e-300:
                    best_s, best_w, best_from, improved = s_t, w_t, "swap_search", True
                    swaps += 1
                    break
            if improved:
                break
    return best_w, {"cardinality_from": best_from, "cardinality_swaps": swaps,
                    "greedy_score_per_day": s_b}


def _apply_min_weight(g, cov, upper, w, min_weight, *, tol, max_rounds) -> tuple[np.ndarray, list[int]]:
    """Zero the smallest weight under min_weight and re-optimize, until all are >= min_weight."""
    dropped: list[int] = []
    upper = upper.copy()
    while True:
        small = np.flatnonzero((w > 0) & (w < min_weight * (1 - 1e-12)))
        if small.size == 0:
            return w, dropped
        k = int(small[np.argmin(w[small])])
        upper[k] = 0.0
        dropped.append(k)
        if upper.sum() < 1 - 1e-12:
            raise InputError(
                f"min_weight {min_weight:g} cannot hold together with max_weight: dropping strategies "
                "under min_weight leaves too little room"
            )
        support = np.flatnonzero(upper > 0)
        w, _, _ = _restricted(g, cov, upper, support, tol=tol, max_rounds=max_rounds, start=w)


# ---------------------------------------------------------------------------
# public entry point on a return window


def optimize(
    returns: np.ndarray,
    objective: str = "slope_std",
    *,
    solver: str = "search",
    shrinkage: float | str = 0.0,
    max_weight: float | Mapping[Any, float] | Sequence[float] = 1.0,
    min_weight: float = 0.0,
    max_strategies: int | None = None,
    previous_weights: np.ndarray | None = None,
    seed: int = 0,
    periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
    names: Sequence[str] | None = None,
    n_samples: int | None = None,
) -> Allocation:
    """Optimal long-only weights for a T x N window of daily returns.

    ``objective``: "slope_std" (cumulative-sum curve, convex reformulation,
    certified optimum) or "slope_std_compound" (compounded curve: search +
    local refinement from the slope_std optimum, status "local").
    ``solver``: "search" (this module) or "exact" (cvxpy + Clarabel, slope_std only).
    ``shrinkage``: X in [0, 1] or "auto" (Ledoit-Wolf intensity): the solver sees
    (1-X) cov + X diag(cov); ``score`` is always reported on the raw covariance.
    """
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if solver not in ("search", "exact"):
        raise InputError(f"unknown solver {solver!r}; choose search or exact")
    arr = as_returns_matrix(returns)
    stats = window_stats(arr)
    intensity = resolve_shrinkage(shrinkage, arr)
    cov = shrink_covariance(stats.cov, intensity)
    options = dict(max_weight=max_weight, min_weight=min_weight, max_strategies=max_strategies,
                   previous_weights=previous_weights, seed=seed, periods_per_year=periods_per_year,
                   names=names)
    if solver == "exact":
        if objective != "slope_std":
            raise InputError("solver='exact' supports only the slope_std objective")
        from fastopt.exact import solve_exact

        alloc = solve_exact(stats.g, cov, max_weight=max_weight, min_weight=min_weight,
                            max_strategies=max_strategies, periods_per_year=periods_per_year, names=names)
    else:
        alloc = solve_ratio(stats.g, cov, n_samples=n_samples,
                            n_days=stats.n_days if intensity == 0.0 else None, **options)
    if objective == "slope_std_compound" and alloc.status not in ("single_strategy",):
        alloc = _refine_compound(arr, alloc, names=names, max_weight=max_weight, seed=seed,
                                 periods_per_year=periods_per_year, n_samples=n_samples,
                                 max_strategies=max_strategies, min_weight=min_weight,
                                 previous_weights=previous_weights)
    ann = math.sqrt(periods_per_year)
    w = alloc.weights
    if objective == "slope_std":
        raw = _score_of(stats.g, stats.cov, np.asarray(w))
        raw_score = raw * ann if math.isfinite(raw) else float("nan")
    else:
        raw_score = alloc.score
    status = alloc.status
    message = alloc.message
    n_days, n_assets = arr.shape
    if status == "optimal" and n_assets >= n_days and intensity == 0.0:
        status = "ill_conditioned"
        message = (f"N = {n_assets} strategies >= T = {n_days} days: the covariance is singular, the "
                   "optimum is not unique and fits noise; use shrinkage='auto' or a longer lookback")
    diagnostics = {**alloc.diagnostics, "shrinkage": intensity, "objective": objective}
    if intensity > 0:
        diagnostics["shrunk_score"] = alloc.score
    return Allocation(weights=w, score=float(raw_score), status=status, solver=alloc.solver,
                      iterations=alloc.iterations, message=message, diagnostics=diagnostics)


def _refine_compound(returns, alloc, *, names, max_weight, seed, periods_per_year, n_samples,
                     max_strategies, min_weight, previous_weights=None, max_iter: int = 300) -> Allocation:
    """Local refinement of the compounded-curve objective (non-convex).

    Starts: the slope_std optimum, plus the previous weights when given (warm
    path, no random portfolios) or the two best of ``n_samples`` random sparse
    portfolios; each is refined by sequential linearization, then pairwise ascent.
    """
    n_days, n = returns.shape
    upper = resolve_upper(max_weight, n, names)
    diag = np.einsum("ij,ij->j", returns - returns.mean(0), returns - returns.mean(0))
    upper[~(diag > 0)] = 0.0
    ann = math.sqrt(periods_per_year)
    rng = np.random.default_rng(seed)
    starts = [np.asarray(alloc.weights, dtype=np.float64)]
    usable = np.flatnonzero(upper > 0)
    if previous_weights is not None and max_strategies is None and min_weight == 0:
        prev = _repair(np.asarray(previous_weights, dtype=np.float64), upper)
        if prev is not None:
            starts.append(prev)
    if n_samples is None:
        n_samples = 0 if previous_weights is not None else 256
    if max_strategies is None and usable.size >= 2 and n_samples > 0:
        order = usable
        idx, val = _sparse_candidates(rng, usable, order[: min(order.size, 64)], n_samples,
                                      min(8, usable.size), 2)
        scores = batch_compound_sparse_nb(returns, np.ascontiguousarray(idx), np.ascontiguousarray(val))
        for k in np.argsort(-scores)[:2]:
            w = np.zeros(n)
            np.add.at(w, idx[k], val[k])
            rep = _repair(w, upper)
            if rep is not None:
                starts.append(rep)
    best_w, best_s, total_it, best_gap = None, -math.inf, 0, math.inf
    frozen = max_strategies is not None or min_weight > 0
    cov = window_stats(returns).cov
    lin_steps = 0
    for w0 in starts:
        w1, steps = _compound_linearized(returns, cov, w0, upper if not frozen else upper * (w0 > 0))
        lin_steps += steps
        w, s, it, gap = _compound_ascent(returns, w1, upper, max_iter=max_iter, frozen_support=frozen)
        total_it += it + steps
        if s > best_s:
            best_w, best_s, best_gap = w, s, gap
    diagnostics = {**alloc.diagnostics, "compound_starts": len(starts), "compound_kkt_gap": best_gap,
                   "compound_linearized_steps": lin_steps,
                   "slope_std_start_score": alloc.score}
    status = "local" if alloc.status in ("optimal", "ill_conditioned", "max_iterations") else alloc.status
    return Allocation(weights=normalize_weights(best_w), score=float(best_s * ann), status=status,
                      solver=alloc.solver, iterations=alloc.iterations + total_it,
                      message="KKT point of the compounded-curve objective (non-convex: local)"
                      if status == "local" else alloc.message, diagnostics=diagnostics)


def _compound_slope_grad(returns: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """(slope per day of prod(1 + r) - 1 vs t, its gradient in w); O(T N)."""
    n_days = returns.shape[0]
    r = returns @ w
    growth = np.cumprod(1.0 + r)
    a = np.arange(n_days, dtype=np.float64) - (n_days - 1) / 2.0
    s_tt = n_days * (n_days * n_days - 1.0) / 12.0
    slope = float(a @ (growth - 1.0) / s_tt)
    tail = np.cumsum((a * growth)[::-1])[::-1]
    return slope, (tail / (1.0 + r) / s_tt) @ returns


def _compound_linearized(returns, cov, w0, upper, *, max_steps: int = 20) -> tuple[np.ndarray, int]:
    """Sequential linearization of the compounded slope, each step an exact slope/std solve.

    At w, slope(v) ~ gamma'.v on the simplex with gamma' = grad + (slope - grad.w);
    the std part is exact (v' cov v), so the step target is the certified optimum
    of gamma'.v / sqrt(v' cov v) (solve_ratio warm-started at w). A golden-section
    search on the segment [w, target] keeps only improvements of the true score.
    """
    w = np.asarray(w0, dtype=np.float64).copy()
    best = float(portfolio_score_nb(returns, np.ascontiguousarray(w), True))
    steps = 0
    for steps in range(1, max_steps + 1):
        slope, grad = _compound_slope_grad(returns, w)
        gamma = grad + (slope - float(grad @ w))
        if not (gamma[upper > 0] > 0).any():
            break
        try:
            target = np.asarray(solve_ratio(gamma, cov, max_weight=upper, previous_weights=w,
                                            n_samples=0).weights)
        except (InputError, NothingToDo):
            break
        r0 = returns @ w
        delta = returns @ target - r0
        alpha, value = compound_line_max_nb(r0, delta, 0.0, 1.0, 60)
        if not value > best * (1 + 1e-13) + 1e-300:
            break
        w = (1.0 - alpha) * w + alpha * target
        best = value
    return w, steps


def _compound_ascent(returns, w0, upper, *, max_iter, frozen_support) -> tuple[np.ndarray, float, int, float]:
    """Pairwise ascent on the compound score with a golden-section line search per pair."""
    w = np.ascontiguousarray(w0, dtype=np.float64).copy()
    allowed = (upper > 0) if not frozen_support else (w > 0)
    score, grad = compound_score_grad_nb(returns, w)
    gap = math.inf
    it = 0
    for it in range(1, max_iter + 1):
        grow = np.where(allowed & (w < upper), grad, -np.inf)
        give = np.where(w > 0, grad, np.inf)
        i, j = int(np.argmax(grow)), int(np.argmin(give))
        gap = float(grow[i] - give[j]) / max(abs(score), 1e-300)
        if i == j or not np.isfinite(gap) or gap <= 1e-9:
            break
        hi = min(upper[i] - w[i], w[j])
        r = returns @ w
        delta = returns[:, i] - returns[:, j]
        t, _ = compound_line_max_nb(r, np.ascontiguousarray(delta), 0.0, float(hi), 60)
        trial = w.copy()
        trial[i] += t
        trial[j] -= t
        if t == hi:
            trial[j] = 0.0 if w[j] <= upper[i] - w[i] else trial[j]
        new_score, new_grad = compound_score_grad_nb(returns, trial)
        if not new_score > score:
            break
        w, score, grad = trial, new_score, new_grad
    return w, float(score), it, gap
