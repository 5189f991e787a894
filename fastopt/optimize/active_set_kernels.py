"""Numba kernel of the primal active-set method with Cholesky factor updates (twin: ``kernels_np.ratio_active_set``).

Problem (the convex reformulation of max slope/std, docs/objective.md):
min y' cov y  s.t.  g . y = 1,  y >= 0,  y_i = 0 where ``allowed`` is False.

State shared with the caller, so that a solve can resume after the caller
grew the problem (the large-N working set appends strategies at the end):

- ``y`` (n): the current feasible point (y >= 0, g . y = 1, zero off the face);
- ``order[:size]``: the face (strategy indices, in factor order);
- ``chol`` (cap x cap): its leading size x size block is the lower Cholesky
  factor of ``cov[order[:size]][:, order[:size]]``.

``cov`` may be larger than n x n: only its leading n x n block is read (the
working set's covariance cache is passed without a copy). Inputs are
C-contiguous float64 (``order`` int64, ``allowed`` bool) arrays.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fastopt.optimize.kernels import argsort_nb, cholesky_solve_nb, cov_matvec_sparse_nb, kkt_violators_nb, time_calls
from fastopt.optimize.cholesky_kernels import cholesky_append_nb, cholesky_delete_nb, face_solve_nb

_FLAGS = {"cache": True, "nogil": True}

#: Return codes of ``ratio_active_set_nb``.
CODE_KKT = 1
CODE_STEP_LIMIT = 0
CODE_DEPENDENT = 2
CODE_FAILED = 3
CODE_BUFFER = -1
#: y'cov y / (sum_k y_k std_k)^2 under which the face optimum is a riskless mix (the solver's
#: UNBOUNDED_REL_VAR): slope/std is unbounded, the kernel stops with CODE_DEPENDENT.
RISKLESS_RELATIVE_VARIANCE = 1e-10


@njit(**_FLAGS)
def face_optimum_nb(g, order, size, chol):
    """z on the face with cov_FF z proportional to g_F and g . z = 1 (``face_solve_nb``, O(k^2)).

    Returns (z in factor order, g_F . u) where u = cov_FF^-1 g_F; z = u / (g_F . u).
    """
    u = face_solve_nb(g, order, size, chol)
    gu = 0.0
    for i in range(size):
        gu += g[order[i]] * u[i]
    if gu > 0.0:
        for i in range(size):
            u[i] /= gu
    return u, gu


@njit(**_FLAGS)
def start_face_nb(g, cov, y, order, chol):
    """Factor the face of the start point ``y`` (>= 0): heaviest weights first, skipping any
    strategy linearly dependent on those before it (its weight is set to 0).

    Rescales y to g . y = 1 and returns the face size, or -1 when no start is
    possible (g . y <= 0 after the skips, or an empty face). ``order`` and
    ``chol`` receive the face and its factor as ``ratio_active_set_nb`` expects.
    """
    n = g.size
    cap = chol.shape[0]
    support = np.flatnonzero(y > 0.0)
    by_weight = support[argsort_nb(-y[support])]
    size = 0
    for a in range(by_weight.size):
        m = by_weight[a]
        if size < cap:
            col = np.empty(size)
            for i in range(size):
                col[i] = cov[order[i], m]
            if cholesky_append_nb(chol, size, col, cov[m, m]):
                order[size] = m
                size += 1
                continue
        y[m] = 0.0
    gy = 0.0
    for m in range(n):
        gy += g[m] * y[m]
    if size == 0 or not gy > 0.0:
        return -1
    for m in range(n):
        y[m] /= gy
    return size


@njit(**_FLAGS)
def ratio_active_set_nb(g, cov, allowed, y, order, size, chol, max_steps, tol):
    """Primal active-set steps from the feasible ``y`` until the KKT conditions hold.

    Each step solves the face with the factor (O(k^2)). If the face optimum z
    is positive, y = z and the zero-weight strategies with
    lambda_j = (cov y)_j - nu g_j < -tol nu max|g| (nu = y' cov y; the
    multipliers, O(n k)) join the face, most violating per unit std first: at
    most max(1, k // 4) per step, a single one after a step that made no
    progress (the classic rule that makes every step decrease y' cov y).
    Borders that would make the face singular are skipped. Otherwise y moves
    toward z until its first weight reaches 0 (ratio test) and the weights at 0
    with z <= 0 leave the face (factor downdates, O(k^2) each). y' cov y never
    increases.

    A violator linearly dependent on the face (the covariance's rank bound) is
    exchanged in for a member (``_exchange``: a variance-neutral direction,
    ratio test), at most 4 cap times.

    Returns (code, size, steps): code 1 = KKT (no violator), 0 = ``max_steps``
    reached, 2 = the ratio looks unbounded (a riskless face mix, a riskless
    rising direction, or no end to the exchanges), 3 = the face optimum has
    g . z <= 0 or is not finite, -1 = ``chol`` is too small for the face.
    """
    n = g.size
    cap = chol.shape[0]
    in_face = np.zeros(n, dtype=np.bool_)
    for i in range(size):
        in_face[order[i]] = True
    single = False
    exchanges = 0
    for step in range(1, max_steps + 1):
        if size == 0:
            return CODE_FAILED, size, step
        z, gu = face_optimum_nb(g, order, size, chol)
        if not (gu > 0.0 and np.isfinite(gu)):
            return CODE_FAILED, size, step
        alpha = 1.0
        block = -1
        for i in range(size):
            if not np.isfinite(z[i]):
                return CODE_FAILED, size, step
            if z[i] <= 0.0:
                yi = y[order[i]]
                ratio = yi / (yi - z[i]) if yi > 0.0 else 0.0
                if block < 0 or ratio < alpha:
                    alpha = ratio
                    block = i
        if block >= 0:
            # step toward the face optimum; the blocking weight (and any other that reached 0) leaves
            for i in range(size):
                k = order[i]
                y[k] = y[k] + alpha * (z[i] - y[k])
            y[order[block]] = 0.0
            for i in range(size - 1, -1, -1):  # from the back: positions below stay valid
                k = order[i]
                # leaving: weights that reached 0 moving down (entrants with z > 0 stay and grow)
                if i == block or (z[i] <= 0.0 and y[k] <= 0.0):
                    y[k] = 0.0
                    in_face[k] = False
                    cholesky_delete_nb(chol, size, i)
                    for m in range(i, size - 1):
                        order[m] = order[m + 1]
                    size -= 1
            single = alpha == 0.0  # only fresh entrants left: add one at a time next
            continue
        for i in range(size):
            y[order[i]] = z[i]
        # multipliers of the zero-weight strategies
        cov_y = cov_matvec_sparse_nb(cov, y, order[:size])
        nu = 0.0
        spread = 0.0
        for i in range(size):
            k = order[i]
            nu += y[k] * cov_y[k]
            spread += y[k] * np.sqrt(cov[k, k])
        if not nu > RISKLESS_RELATIVE_VARIANCE * spread * spread:
            return CODE_DEPENDENT, size, step  # a (numerically) riskless mix: slope/std is unbounded
        cand, lam = kkt_violators_nb(g, cov_y, nu, allowed, in_face, tol)
        n_cand = cand.size
        if n_cand == 0:
            return CODE_KKT, size, step
        rank = np.empty(n_cand)  # most violating per unit std first
        for a in range(n_cand):
            rank[a] = lam[a] / np.sqrt(cov[cand[a], cand[a]])
        limit = 1 if single else max(1, size // 4)
        by_rank = argsort_nb(rank)
        added = 0
        for a in range(n_cand):
            if added >= limit:
                break
            m = cand[by_rank[a]]
            if size >= cap:
                return CODE_BUFFER, size, step
            col = np.empty(size)
            for i in range(size):
                col[i] = cov[order[i], m]
            if cholesky_append_nb(chol, size, col, cov[m, m]):
                order[size] = m
                in_face[m] = True
                size += 1
                added += 1
            elif added == 0:
                # m is linearly dependent on the face (the covariance's rank bound): exchange it in
                if exchanges >= 4 * cap:
                    return CODE_DEPENDENT, size, step  # no end in sight: an unbounded ratio, most likely
                exchanges += 1
                outcome, size = _exchange(g, cov, y, order, size, chol, in_face, m, col)
                if outcome == 1:
                    added = 1
                    break  # the face changed: solve it again before adding more
                if outcome == 2:
                    return CODE_DEPENDENT, size, step  # a riskless rising direction: unbounded
        if added == 0:
            return CODE_DEPENDENT, size, step
        single = False
    return CODE_STEP_LIMIT, size, max_steps


@njit(**_FLAGS)
def _exchange(g, cov, y, order, size, chol, in_face, m, col):
    """Bring the violator m, linearly dependent on the face F, into it in place of a member.

    With cov_FF a = cov_Fm (``col``), d = e_m - a has d' cov d = 0 on F + m, and
    at the face optimum (cov y)_F = nu g_F, so along y + t d the variance moves
    by 2 t lambda_m + 2 t nu delta and the slope by t delta (delta = g_m - a.g_F):
    the ratio improves for t > 0 (d/dt of y'cov y / (g.y)^2 at 0 is 2 lambda_m < 0).
    The ratio test stops t where the first member with a_i > 0 reaches 0; it
    leaves (downdate) and m joins (border). Returns (outcome, face size):
    outcome 1 done, 0 not possible here (delta <= 0, or rounding left m dependent
    after the member left: the face lost it, y stays feasible), 2 no member
    limits t (y + t d stays feasible for every t: slope/std is unbounded).
    """
    a = cholesky_solve_nb(chol, col)  # col has the face's size
    delta = g[m]
    for i in range(size):
        delta -= a[i] * g[order[i]]
    if not delta > 0.0:
        return 0, size
    t = np.inf
    block = -1
    for i in range(size):
        if a[i] > 0.0:
            ratio = y[order[i]] / a[i]
            if ratio < t:
                t = ratio
                block = i
    if block < 0:
        return 2, size
    for i in range(size):
        k = order[i]
        y[k] = max(y[k] - t * a[i], 0.0)
    y[order[block]] = 0.0
    y[m] = t
    scale = 1.0 + t * delta  # g . y after the move; back to g . y = 1
    for i in range(size):
        y[order[i]] /= scale
    y[m] /= scale
    in_face[order[block]] = False
    cholesky_delete_nb(chol, size, block)
    for i in range(block, size - 1):
        order[i] = order[i + 1]
    size -= 1
    border = np.empty(size)
    for i in range(size):
        border[i] = cov[order[i], m]
    if not cholesky_append_nb(chol, size, border, cov[m, m]):
        # rounding left m dependent on the rest: keep the smaller face, y back on it
        y[m] = 0.0
        gy = 0.0
        for i in range(size):
            gy += g[order[i]] * y[order[i]]
        if gy > 0.0:
            for i in range(size):
                y[order[i]] /= gy
        return 0, size
    order[size] = m
    in_face[m] = True
    return 1, size + 1


def run_active_set(g, cov, allowed, y, order, size, chol, max_steps, tol):
    """``ratio_active_set_nb`` with a factor buffer that grows (doubling, leading block copied)
    when a face outgrows it: near-dependent borders can pass the pivot test, so a face may
    exceed the covariance's rank by a few. Returns (code, size, steps, order, chol)."""
    steps = 0
    while True:
        code, size, used = ratio_active_set_nb(g, cov, allowed, y, order, size, chol, max_steps - steps, tol)
        steps += int(used)
        if code != CODE_BUFFER or chol.shape[0] >= g.size + 2 or steps >= max_steps:
            return code, size, steps, order, chol
        capacity = min(2 * chol.shape[0], g.size + 2)
        bigger = np.zeros((capacity, capacity))
        bigger[:size, :size] = chol[:size, :size]
        grown = np.zeros(capacity, dtype=np.int64)
        grown[:size] = order[:size]
        chol, order = bigger, grown


def warmup() -> list[tuple[str, float]]:
    """Call every kernel of this module once on tiny inputs (fills the numba cache).

    Returns (kernel name, seconds) pairs: compile time on a cold cache, load time on a warm one.
    """
    cov = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 1.5]]) * 1e-4
    g = np.array([0.002, 0.001, 0.0015])
    allowed = np.ones(3, dtype=np.bool_)
    order = np.zeros(3, dtype=np.int64)
    chol = np.zeros((3, 3))
    chol[0, 0] = np.sqrt(cov[0, 0])
    y = np.array([1.0 / g[0], 0.0, 0.0])
    calls = [
        ("face_optimum_nb", lambda: face_optimum_nb(g, order, 1, chol)),
        ("start_face_nb", lambda: start_face_nb(g, cov, y.copy(), order.copy(), np.zeros((3, 3)))),
        ("ratio_active_set_nb", lambda: ratio_active_set_nb(g, cov, allowed, y.copy(), order.copy(), 1,
                                                            chol.copy(), 50, 1e-12)),
    ]
    return time_calls(calls)
