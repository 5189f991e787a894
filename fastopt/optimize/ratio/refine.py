"""Local refinement of the slope/std problem to a KKT point: the active-set kernel, face solves,
PDAS, SMO + active-set steps.

Works on the convex reformulation min y' cov y s.t. g.y = 1, y >= 0,
y_i <= m_i sum(y) (w = y / sum y); see docs/objective.md.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastopt.optimize.active_set_kernels import CODE_FAILED, CODE_KKT, run_active_set, start_face_nb
from fastopt.optimize.kernels import cholesky_solve_nb, cov_matvec_sparse_nb, pdas_nb, smo_ratio_nb
from fastopt.optimize.ratio.common import (
    ACTIVE_SET_TOL,
    CERTIFIED_GAP,
    PDAS_DAMPING,
    PDAS_NUMBA_MAX_FACE,
    RANK_LIMITED_ROUNDS,
    SINGULAR_MAX_STEPS,
    UNBOUNDED_EARLY_REL_VAR,
    UNBOUNDED_REL_VAR,
    cov_times,
    kkt_gap,
    lower_cholesky,
    relative_variance,
    score_of,
    submatrix,
)


def face_solve(
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
    q = submatrix(cov, free, free)
    b = g[free].copy()
    if at_ub.size:
        v = upper[at_ub] / (1.0 - m_u)
        u = submatrix(cov, free, at_ub) @ v
        kappa = float(v @ submatrix(cov, at_ub, at_ub) @ v)
        q = q + u[:, None] + u[None, :] + kappa
        b += float(g[at_ub] @ v)
    singular = False
    # BLAS is held single-threaded by solve_ratio() around the whole solve
    try:
        chol = lower_cholesky(q)
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
            chol = lower_cholesky(q + ridge * np.eye(q.shape[0]))
            z = cholesky_solve_nb(np.ascontiguousarray(chol), b)
        except np.linalg.LinAlgError:
            z = np.linalg.lstsq(q, b, rcond=1e-13)[0]
    bz = float(b @ z)
    if not (np.isfinite(z).all() and bz > 0):
        return None, singular
    return z / bz, singular


def active_set_step(
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
        z, sing = face_solve(g, cov, free, at_ub, upper)
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


def face_is_singular(cov: np.ndarray, free: np.ndarray) -> bool:
    """True when cov restricted to the free strategies is (numerically) singular."""
    if free.size < 2:
        return False
    try:
        diag = np.diag(lower_cholesky(submatrix(cov, free, free)))
    except np.linalg.LinAlgError:
        return True
    return bool(diag.min() ** 2 < 1e-13 * diag.max() ** 2)


def violators(g: np.ndarray, cov_w: np.ndarray, w: np.ndarray, upper: np.ndarray, tol: float, limit: int) -> np.ndarray:
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


def pdas(
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
        z, sing = face_solve(g, cov, inactive, none_ub, upper)
        singular |= sing
        if z is None:
            return best, it, singular, False
        y = np.zeros(g.size)
        y[inactive] = z
        positive = z > 0
        cov_y = cov_matvec_sparse_nb(cov, y, inactive)
        if positive.any():
            cand = np.where(y > 0, y, 0.0)
            cand /= cand.sum()
            if max_face is None:
                best = cand
            else:  # ill-posed: iterates can get worse, keep the best ratio seen
                if positive.all():  # cand = y / sum(y): its ratio from cov_y, no second product
                    var_y = float(y @ cov_y)
                    cand_score = float(g @ y) / math.sqrt(var_y) if var_y > 0 else -math.inf
                else:
                    cand_score = score_of(g, cov, cand)
                if cand_score > best_score:
                    best, best_score = cand, cand_score
        if max_face is not None and inactive.size >= max_face and not positive.all():
            # ill-posed problem on a singular face or at the rank bound: PDAS only cycles from here
            return best, it, singular, True
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


def active_set(
    g: np.ndarray, cov: np.ndarray, w0: np.ndarray, upper: np.ndarray, *, max_face: int | None = None,
    max_steps: int | None = None,
) -> tuple[np.ndarray, int, int]:
    """``ratio_active_set_nb`` on the whole (dense) problem from w0 (upper in {0, 1}).

    Returns (w on the simplex, kernel code, kernel steps); code ``CODE_KKT``
    means no zero-weight strategy violates KKT by the kernel's rule (the caller
    still certifies with ``kkt_gap``). ``max_face`` (rank bound) sizes the
    factor buffer: a face never exceeds the covariance's rank.
    """
    n = g.size
    allowed = upper > 0
    capacity = min(int(allowed.sum()), n if max_face is None else max_face + 1) + 2
    chol = np.zeros((capacity, capacity))
    order = np.zeros(capacity, dtype=np.int64)
    y = np.ascontiguousarray(w0, dtype=np.float64).copy()
    y[~allowed] = 0.0
    size = start_face_nb(g, cov, y, order, chol)
    if size < 0:
        return np.ascontiguousarray(w0, dtype=np.float64), CODE_FAILED, 0
    limit = max_steps if max_steps is not None else 20 * n + 1000
    code, size, steps, _, _ = run_active_set(g, cov, allowed, y, order, size, chol, limit, ACTIVE_SET_TOL)
    total = float(y.sum())
    if not (total > 0 and np.isfinite(y).all()):  # a failed first step (tiny windows): no point
        return np.ascontiguousarray(w0, dtype=np.float64), CODE_FAILED, int(steps)
    return y / total, int(code), int(steps)


def refine(
    g: np.ndarray,
    cov: np.ndarray,
    w0: np.ndarray,
    upper: np.ndarray,
    *,
    tol: float,
    max_rounds: int,
    max_face: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Refinement from w0 to a KKT point. Returns (w, info).

    Without binding caps the primal active-set kernel runs first (``active_set``);
    a point it certifies is returned. Otherwise (caps, the rank bound, rounding on
    near-singular faces) the PDAS and then SMO + block active-set rounds run; an
    uncertified end keeps the better of their point and the kernel's.

    ``max_face`` (rank bound of cov, set on structurally singular problems):
    PDAS keeps its faces within it; if it stops at the bound uncertified
    (``rank_limited``), the SMO / active-set rounds are skipped: they would
    only chase a near-riskless mix on singular faces (the slow ill-posed path).

    SMO moves (O(N) each) fix the active set where the active-set step cannot
    (releasing upper bounds); each active-set step solves the current face
    exactly, adding all zero-weight KKT violators at once.
    """
    w = np.ascontiguousarray(w0, dtype=np.float64).copy()
    cov_w = cov_times(cov, w)
    iterations = 0
    singular = False
    steps = 0
    gap = math.inf
    n = g.size
    pdas_iterations = 0
    kernel_steps = 0
    rank_limited = False
    w_a = None
    if bool(((upper == 0) | (upper >= 1)).all()) and float(g @ w) > 0:
        # primal active set with factor updates: exact and monotone; certified -> done
        w_a, code, kernel_steps = active_set(g, cov, w, upper, max_face=max_face)
        near_kkt = False
        if code == CODE_KKT:
            cov_a = cov_times(cov, w_a)
            gap = kkt_gap(g, cov_a, w_a, upper)
            if gap <= tol:
                return w_a, {"iterations": kernel_steps, "pdas_iterations": 0, "active_set_steps": 0,
                             "active_set_kernel_steps": kernel_steps, "kkt_gap": gap,
                             "singular": face_is_singular(cov, np.flatnonzero(w_a)), "rank_limited": False}
            # KKT by the kernel's rule but short of tol by rounding on a near-singular face:
            # the SMO rounds below polish that point (the PDAS would restart from scratch)
            w, cov_w, near_kkt = np.ascontiguousarray(w_a), cov_a, True
        # otherwise (rank bound, rounding on near-singular faces) PDAS and SMO from the start
        w_p = None
        if not near_kkt:
            w_p, pdas_iterations, singular, rank_limited = pdas(g, cov, w, upper, max_face=max_face)
        if w_p is not None:
            cov_p = cov_times(cov, w_p)
            var_p = float(w_p @ cov_p)
            old = _ratio(float(g @ w), float(w @ cov_w))
            if var_p > 0 and float(g @ w_p) / math.sqrt(var_p) >= old:
                w, cov_w = np.ascontiguousarray(w_p), cov_p
    budget = 2 * int(np.count_nonzero(w)) + 20
    if singular and relative_variance(cov, w, cov_w) < UNBOUNDED_EARLY_REL_VAR:
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
        add = violators(g, cov_w, w, upper, tol, 8)
        new_w, sing = active_set_step(g, cov, w, upper, add)
        singular |= sing
        steps += 1
        if new_w is not None:
            new_cov_w = cov_times(cov, new_w)
            old = _ratio(float(g @ w), float(w @ cov_w))
            var_new = float(new_w @ new_cov_w)
            if var_new > 0 and float(g @ new_w) / math.sqrt(var_new) >= old - 1e-15 * abs(old):
                w = np.ascontiguousarray(new_w)
                cov_w = new_cov_w
        gap = kkt_gap(g, cov_w, w, upper)
        if gap <= tol:
            break
        if singular and (relative_variance(cov, w, cov_w) < UNBOUNDED_REL_VAR or steps >= SINGULAR_MAX_STEPS):
            break  # singular covariance, heading to a zero-variance mix: stop here (reported)
        budget = 2 * int(np.count_nonzero(w)) + 20
    else:
        # last resort: plain SMO with a large budget (not on rank-limited windows, where
        # the ratio has no finite optimum to converge to: that would only burn time)
        if not singular and not rank_limited and max_rounds > 0:
            it, gap = smo_ratio_nb(g, cov, w, cov_w, upper, tol, 50 * n + 1000)
            iterations += int(it)
    cov_w = cov_times(cov, w)
    gap = kkt_gap(g, cov_w, w, upper)
    if gap > tol and w_a is not None:
        # uncertified (an ill-posed window): keep the better of the two best-effort points,
        # unless the active set's is a (numerically) riskless mix: no finite score, no leverage
        cov_a = cov_times(cov, w_a)
        var_a = float(w_a @ cov_a)
        if (var_a > 0 and relative_variance(cov, w_a, cov_a) >= UNBOUNDED_EARLY_REL_VAR
                and float(g @ w_a) / math.sqrt(var_a) > _ratio(float(g @ w), float(w @ cov_w))):
            w, cov_w = w_a, cov_a
            gap = kkt_gap(g, cov_w, w, upper)
            if gap <= CERTIFIED_GAP * tol:
                rank_limited = False  # certified (solve_ratio's rule): not an ill-posed stop
    singular = face_is_singular(cov, np.flatnonzero((w > 0) & (w < upper)))
    if rank_limited and gap > tol:
        singular = True  # the certificate needs a face beyond the covariance's rank
    return w, {"iterations": iterations + pdas_iterations + kernel_steps, "pdas_iterations": pdas_iterations,
               "active_set_steps": steps, "active_set_kernel_steps": kernel_steps, "kkt_gap": gap,
               "singular": singular,
               "rank_limited": bool(rank_limited and gap > tol)}


def _ratio(slope: float, var: float) -> float:
    """slope / sqrt(var), with var <= 0 (a riskless mix, or rounding on tiny windows) read as
    +inf for a rising mix and -inf otherwise, so a candidate never replaces a riskless rising mix."""
    if var > 0:
        return slope / math.sqrt(var)
    return math.inf if slope > 0 else -math.inf
