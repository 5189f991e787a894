"""Numba kernels of the optimizer (every one has a plain-numpy twin in ``kernels_np``).

Conventions (see docs/objective.md):

- ``returns`` is a C-contiguous float64 ``T x N`` matrix of simple daily returns
  (fractions, 0.01 = +1 %), one column per strategy, oldest row first.
- ``weights`` / ``w`` are float64 ``N`` vectors on the simplex (>= 0, sum 1).
- ``g`` is the slope (per day) of each strategy's cumulative-sum curve and
  ``cov`` the sample covariance (ddof=1), so that for the ``slope_std``
  objective ``slope(w) = g . w`` and ``std(w) = sqrt(w' cov w)``.
- Scores returned here are *per day* ratios (slope / std); callers annualize
  with ``sqrt(periods_per_year)``.

All kernels are ``cache=True, nogil=True`` and single-threaded: on the target
machines (a few shared cores) the O(N) / O(K s^2) loops here are memory bound
and ``parallel=True`` only added thread start-up cost (see docs/objective.md).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fastopt import compile_notice

_FLAGS = {"cache": True, "nogil": True}

compile_notice.install()


@njit(**_FLAGS)
def slope_basis_nb(n_days):
    """h such that the OLS slope (per day) of cumsum(r) vs t = 0..T-1 is ``h . r``.

    Closed form: h_s = 6 s (T - s) / (T (T^2 - 1)), s = 0..T-1 (h_0 = 0: the first
    day's return shifts the whole curve and does not change its slope).
    """
    out = np.zeros(n_days)
    if n_days < 2:
        return out
    t = float(n_days)
    scale = 6.0 / (t * (t * t - 1.0))
    for s in range(n_days):
        out[s] = scale * s * (t - s)
    return out


@njit(**_FLAGS)
def _curve_slope_std(r, compound):
    """(slope per day of the cumulative curve vs t, sample std ddof=1 of r)."""
    n = r.size
    if n < 2:
        return np.nan, np.nan
    t_mean = (n - 1) / 2.0
    s_tt = n * (n * n - 1.0) / 12.0
    acc = 0.0
    level = 0.0
    growth = 1.0
    total = 0.0
    for t in range(n):
        if compound:
            growth *= 1.0 + r[t]
            level = growth - 1.0
        else:
            level += r[t]
        acc += (t - t_mean) * level
        total += r[t]
    mean = total / n
    ss = 0.0
    for t in range(n):
        d = r[t] - mean
        ss += d * d
    return acc / s_tt, np.sqrt(ss / (n - 1))


@njit(**_FLAGS)
def _portfolio_returns(returns, weights):
    """r[t] = sum_k returns[t, k] * weights[k] (daily portfolio returns), summed in k order."""
    n_days, n_assets = returns.shape
    r = np.zeros(n_days)
    for t in range(n_days):
        acc = 0.0
        for k in range(n_assets):
            acc += returns[t, k] * weights[k]
        r[t] = acc
    return r


@njit(**_FLAGS)
def portfolio_score_nb(returns, weights, compound):
    """slope / std (per day, not annualized) of the portfolio curve, by definition.

    r = returns @ weights; C_t = cumsum(r) (or prod(1 + r) - 1 when ``compound``);
    slope = OLS slope of C_t vs t = 0..T-1; std = std(r, ddof=1). NaN when
    T < 2 or std == 0.
    """
    r = _portfolio_returns(returns, weights)
    slope, std = _curve_slope_std(r, compound)
    if not (std > 0.0):
        return np.nan
    return slope / std


@njit(**_FLAGS)
def batch_ratio_sparse_nb(g, cov, idx, val):
    """Per-day slope/std ratio of K sparse candidates: row k has weights val[k] on idx[k].

    Cost O(K s^2) for support size s (never forms a dense N vector). -inf when
    the candidate's variance is not positive.
    """
    n_cand, s = idx.shape
    out = np.empty(n_cand)
    for k in range(n_cand):
        num = 0.0
        var = 0.0
        for a in range(s):
            ia = idx[k, a]
            va = val[k, a]
            num += g[ia] * va
            row = 0.0
            for b in range(s):
                row += cov[ia, idx[k, b]] * val[k, b]
            var += va * row
        out[k] = num / np.sqrt(var) if var > 0.0 else -np.inf
    return out


@njit(**_FLAGS)
def batch_compound_sparse_nb(returns, idx, val):
    """Per-day score of the ``slope_std_compound`` objective for K sparse candidates.

    Cost O(K T s). -inf when std == 0.
    """
    n_days = returns.shape[0]
    n_cand, s = idx.shape
    out = np.empty(n_cand)
    r = np.empty(n_days)
    for k in range(n_cand):
        for t in range(n_days):
            acc = 0.0
            for a in range(s):
                acc += returns[t, idx[k, a]] * val[k, a]
            r[t] = acc
        slope, std = _curve_slope_std(r, True)
        out[k] = slope / std if std > 0.0 else -np.inf
    return out


@njit(**_FLAGS)
def ratio_gradient_nb(g, cov_w, weights):
    """Gradient of f(w) = g.w / sqrt(w' cov w) given cov_w = cov @ w (O(N)).

    grad_k = (g_k V - G (cov w)_k) / V^(3/2) with G = g.w, V = w' cov w.
    """
    n = g.size
    big_g = 0.0
    var = 0.0
    for k in range(n):
        big_g += g[k] * weights[k]
        var += weights[k] * cov_w[k]
    out = np.empty(n)
    scale = 1.0 / (var * np.sqrt(var))
    for k in range(n):
        out[k] = (g[k] * var - big_g * cov_w[k]) * scale
    return out


@njit(**_FLAGS)
def pair_step_nb(g_i, g_j, big_g, var, cov_w_i, cov_w_j, c_ii, c_jj, c_ij, lo, hi):
    """Exact maximizer t in [lo, hi] of f(w + t (e_i - e_j)) for the slope/std ratio.

    Along the line, slope = G + t d and variance = V + 2 t p + t^2 q, so
    d f / d t has the sign of (d V - G p) + t (d p - G q): linear in t.
    """
    d = g_i - g_j
    p = cov_w_i - cov_w_j
    q = c_ii + c_jj - 2.0 * c_ij
    a0 = d * var - big_g * p
    a1 = d * p - big_g * q
    if a0 == 0.0 and a1 == 0.0:
        return 0.0
    if a1 < 0.0:
        root = -a0 / a1
        if root < lo:
            return lo
        if root > hi:
            return hi
        return root
    # f' increasing (or constant slope sign): the best point is an end of the segment.
    best_t = lo
    best_f = -np.inf
    for t in (lo, hi):
        v = var + 2.0 * t * p + t * t * q
        if v > 0.0:
            f = (big_g + t * d) / np.sqrt(v)
            if f > best_f:
                best_f = f
                best_t = t
    return best_t


@njit(**_FLAGS)
def pair_move_nb(cov, cov_w, weights, i, j, t):
    """Move t of weight from j to i and keep cov_w = cov @ w current in O(N)."""
    weights[i] += t
    weights[j] -= t
    n = cov_w.size
    for k in range(n):
        cov_w[k] += t * (cov[i, k] - cov[j, k])


@njit(**_FLAGS)
def most_violating_pair_nb(g, cov_w, weights, upper, var, big_g):
    """(i, d_i, j, d_j): the largest d_k = g_k V - G cov_w_k over strategies that can grow
    (w_k < upper_k) and the smallest over those that can shrink (w_k > 0); -1 when none.

    d_k = grad_k * V^(3/2), so the ordering of d is that of the gradient of
    g.w / sqrt(w' cov w); (d_i - d_j) / (|G| V) is the KKT gap of ``kkt_gap``.
    """
    best_i = -1
    best_j = -1
    d_i = -np.inf
    d_j = np.inf
    for k in range(g.size):
        d_k = g[k] * var - big_g * cov_w[k]
        if weights[k] < upper[k] and d_k > d_i:
            d_i = d_k
            best_i = k
        if weights[k] > 0.0 and d_k < d_j:
            d_j = d_k
            best_j = k
    return best_i, d_i, best_j, d_j


@njit(**_FLAGS)
def smo_ratio_nb(g, cov, weights, cov_w, upper, tol, max_iter):
    """Pairwise (SMO) ascent of f(w) = g.w / sqrt(w' cov w) on {0 <= w <= upper, sum w = 1}.

    Each iteration picks the most violating pair (i: largest gradient with room
    to grow, j: smallest gradient with weight to give), moves weight between
    them by the exact line maximizer (``pair_step_nb``) and updates cov_w in
    O(N). Stops when the KKT gap (grad_i - grad_j) / |f| <= tol. ``weights``
    and ``cov_w`` are updated in place. Returns (iterations, final relative gap).
    """
    n = g.size
    gap = np.inf
    it = 0
    while it < max_iter:
        big_g = 0.0
        var = 0.0
        for k in range(n):
            big_g += g[k] * weights[k]
            var += weights[k] * cov_w[k]
        if not (var > 0.0):
            break
        best_i, d_i, best_j, d_j = most_violating_pair_nb(g, cov_w, weights, upper, var, big_g)
        if best_i < 0 or best_j < 0 or best_i == best_j:
            gap = 0.0
            break
        scale = abs(big_g) * var
        gap = (d_i - d_j) / scale if scale > 0.0 else np.inf
        if gap <= tol:
            break
        i = best_i
        j = best_j
        room_i = upper[i] - weights[i]
        give_j = weights[j]
        hi = min(room_i, give_j)
        # d f / d t > 0 at t = 0 (d_i > d_j), so the maximizer lies in [0, hi].
        t = pair_step_nb(g[i], g[j], big_g, var, cov_w[i], cov_w[j],
                         cov[i, i], cov[j, j], cov[i, j], 0.0, hi)
        it += 1
        if not (t > 0.0):
            break
        pair_move_nb(cov, cov_w, weights, i, j, t)
        # snap the bound that was hit exactly, so the active set is unambiguous
        if t == hi:
            if give_j <= room_i:
                weights[i] -= weights[j]
                weights[j] = 0.0
            else:
                weights[j] += weights[i] - upper[i]
                weights[i] = upper[i]
    return it, gap


@njit(**_FLAGS)
def compound_score_grad_nb(returns, weights):
    """(per-day score, gradient) of the ``slope_std_compound`` objective at w.

    C_t = prod_{s<=t}(1 + r_s) - 1; slope = sum_t a_t C_t / S_tt with
    a_t = t - (T-1)/2; std = std(r, ddof=1). O(T N).
    """
    n_days, n_assets = returns.shape
    r = _portfolio_returns(returns, weights)
    t_mean = (n_days - 1) / 2.0
    s_tt = n_days * (n_days * n_days - 1.0) / 12.0
    growth = np.empty(n_days)
    level = 1.0
    for t in range(n_days):
        level *= 1.0 + r[t]
        growth[t] = level
    slope = 0.0
    for t in range(n_days):
        slope += (t - t_mean) * (growth[t] - 1.0)
    slope /= s_tt
    # d slope / d r_s = sum_{t >= s} a_t P_t / (1 + r_s) / S_tt
    tail = np.zeros(n_days)
    acc = 0.0
    for t in range(n_days - 1, -1, -1):
        acc += (t - t_mean) * growth[t]
        tail[t] = acc
    dslope_dr = np.empty(n_days)
    for t in range(n_days):
        dslope_dr[t] = tail[t] / (1.0 + r[t]) / s_tt
    mean = 0.0
    for t in range(n_days):
        mean += r[t]
    mean /= n_days
    ss = 0.0
    for t in range(n_days):
        ss += (r[t] - mean) ** 2
    std = np.sqrt(ss / (n_days - 1))
    grad = np.zeros(n_assets)
    if not (std > 0.0):
        return np.nan, grad
    score = slope / std
    # d score / d r_t = dslope/std - slope/std^2 * (r_t - mean)/((T-1) std)
    coef = np.empty(n_days)
    for t in range(n_days):
        coef[t] = dslope_dr[t] / std - slope * (r[t] - mean) / ((n_days - 1) * std ** 3)
    for t in range(n_days):
        c = coef[t]
        for k in range(n_assets):
            grad[k] += c * returns[t, k]
    return score, grad


@njit(**_FLAGS)
def cov_matvec_sparse_nb(cov, weights, support):
    """cov @ w using only the rows in ``support`` (cov symmetric): O(N |support|).

    N = weights.size; ``cov`` may be a larger buffer (only its leading N x N block is read).
    """
    n = weights.size
    out = np.zeros(n)
    for a in range(support.size):
        k = support[a]
        wk = weights[k]
        for m in range(n):
            out[m] += wk * cov[k, m]
    return out


@njit(**_FLAGS)
def cholesky_solve_nb(chol, rhs):
    """Solve (L L') x = rhs given the lower Cholesky factor L (two triangular sweeps, O(k^2)).

    k = rhs.size; only L's leading k x k lower triangle is read (``chol`` may be a
    larger buffer). Both sweeps read rows of L (contiguous memory).
    """
    k = rhs.size
    x = np.empty(k)
    for i in range(k):
        acc = rhs[i]
        for j in range(i):
            acc -= chol[i, j] * x[j]
        x[i] = acc / chol[i, i]
    for i in range(k - 1, -1, -1):  # L' x = v by rows of L, not its columns
        x[i] /= chol[i, i]
        xi = x[i]
        for j in range(i):
            x[j] -= chol[i, j] * xi
    return x


@njit(**_FLAGS)
def argsort_nb(values):
    """Indices that sort ``values`` (finite float64) ascending; ties keep their index order.

    A bottom-up merge sort (O(n log n), stable): the same order as
    ``np.argsort(values, kind="stable")``, its numpy twin. The solver's kernels use it
    instead of ``np.argsort``, whose generic quicksort took ~2 s of numba compile time on a
    first run for a handful of calls on short arrays.
    """
    n = values.size
    order = np.arange(n)
    scratch = np.empty(n, dtype=np.int64)
    width = 1
    while width < n:
        lo = 0
        while lo < n - width:
            mid = lo + width
            hi = min(lo + 2 * width, n)
            i, j, out = lo, mid, lo
            while i < mid and j < hi:
                if values[order[j]] < values[order[i]]:
                    scratch[out] = order[j]
                    j += 1
                else:
                    scratch[out] = order[i]
                    i += 1
                out += 1
            while i < mid:
                scratch[out] = order[i]
                i += 1
                out += 1
            while j < hi:
                scratch[out] = order[j]
                j += 1
                out += 1
            for k in range(lo, hi):
                order[k] = scratch[k]
            lo += 2 * width
        width *= 2
    return order


def warmup() -> list[tuple[str, float]]:
    """Call every kernel of this module once on tiny inputs (fills the numba cache).

    Returns (kernel name, seconds) pairs: compile time on a cold cache, load
    time on a warm one.
    """
    rng = np.random.default_rng(0)
    returns = np.ascontiguousarray(rng.normal(0.0, 0.01, (8, 3)))
    weights = np.full(3, 1.0 / 3.0)
    readonly_weights = weights.copy()
    readonly_weights.setflags(write=False)
    centered = returns - returns.mean(axis=0)
    cov = np.ascontiguousarray(centered.T @ centered / 7.0)
    g = slope_basis_nb(8) @ returns
    idx = np.zeros((2, 2), dtype=np.int64)
    idx[1, 1] = 2
    val = np.full((2, 2), 0.5)
    support = np.arange(3, dtype=np.int64)
    upper = np.ones(3)
    chol = np.ascontiguousarray(np.linalg.cholesky(cov + np.eye(3) * 1e-4))
    calls = [
        ("slope_basis_nb", lambda: slope_basis_nb(8)),
        ("argsort_nb", lambda: argsort_nb(np.array([0.3, -1.0, 0.3]))),
        ("portfolio_score_nb", lambda: portfolio_score_nb(returns, weights, False)),
        ("batch_ratio_sparse_nb", lambda: batch_ratio_sparse_nb(g, cov, idx, val)),
        ("batch_compound_sparse_nb", lambda: batch_compound_sparse_nb(returns, idx, val)),
        ("ratio_gradient_nb", lambda: ratio_gradient_nb(g, cov @ weights, weights)),
        ("pair_step_nb", lambda: pair_step_nb(0.1, 0.0, 0.05, 1.0, 0.1, 0.2, 1.0, 1.0, 0.1, 0.0, 0.5)),
        ("pair_move_nb", lambda: pair_move_nb(cov, cov @ weights, weights.copy(), 0, 1, 0.0)),
        ("most_violating_pair_nb", lambda: most_violating_pair_nb(g, cov @ weights, weights, upper, 1.0, 0.5)),
        ("smo_ratio_nb", lambda: smo_ratio_nb(g, cov, weights.copy(), cov @ weights, upper, 1e-9, 5)),
        ("compound_score_grad_nb", lambda: compound_score_grad_nb(returns, weights)),
        ("cov_matvec_sparse_nb", lambda: cov_matvec_sparse_nb(cov, weights, support)),
        # Allocation.weights are read-only arrays: numba compiles a separate specialization
        ("cov_matvec_sparse_nb[readonly]", lambda: cov_matvec_sparse_nb(cov, readonly_weights, support)),
        ("cholesky_solve_nb", lambda: cholesky_solve_nb(chol, g.copy())),
        ("compound_line_max_nb", lambda: compound_line_max_nb(returns[:, 0].copy(), returns[:, 1].copy(), 0.0, 1.0, 5)),
        ("kkt_violators_nb", lambda: kkt_violators_nb(g, cov @ weights, 1.0, upper > 0, upper < 0, 1e-12)),
        ("pdas_nb", lambda: pdas_nb(np.abs(g) + 1e-3, cov + np.eye(3) * 1e-4, upper > 0, upper > 0, 5, 10)),
    ]
    return time_calls(calls)


def time_calls(calls: list[tuple[str, object]]) -> list[tuple[str, float]]:
    """Run each (name, zero-argument callable) once: (name, seconds) pairs (the warmup hooks' timer)."""
    import time

    timings = []
    for name, call in calls:
        started = time.perf_counter()
        call()
        timings.append((name, time.perf_counter() - started))
    return timings


@njit(**_FLAGS)
def _cholesky_lower(a):
    """In-place lower Cholesky of the SPD matrix a; returns False if a pivot is <= 0."""
    k = a.shape[0]
    for j in range(k):
        s = a[j, j]
        for p in range(j):
            s -= a[j, p] * a[j, p]
        if not (s > 0.0):
            return False
        d = np.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, k):
            s = a[i, j]
            for p in range(j):
                s -= a[i, p] * a[j, p]
            a[i, j] = s / d
    for i in range(k):
        for j in range(i + 1, k):
            a[i, j] = 0.0
    return True


@njit(**_FLAGS)
def kkt_violators_nb(g, cov_y, nu, allowed, in_face, tol):
    """Zero-weight strategies violating KKT for min y'cov y s.t. g.y = 1, y >= 0.

    ``cov_y``: cov @ y; ``nu``: y'cov y. Multipliers lambda_m = cov_y[m] - nu g[m];
    strategies not ``in_face`` but ``allowed`` with lambda_m < -tol nu max|g| are
    returned as (indices, lambdas), in index order.
    """
    n = g.size
    gmax = 0.0
    for m in range(n):
        gmax = max(gmax, abs(g[m]))
    threshold = -tol * nu * gmax
    cand = np.empty(n, dtype=np.int64)
    lam = np.empty(n)
    count = 0
    for m in range(n):
        if allowed[m] and not in_face[m]:
            value = cov_y[m] - nu * g[m]
            if value < threshold:
                cand[count] = m
                lam[count] = value
                count += 1
    return cand[:count], lam[:count]


@njit(**_FLAGS)
def pdas_nb(g, cov, allowed, start, max_iter, max_face):
    """Primal-dual active set for min y'cov y s.t. g.y = 1, y >= 0 (no upper bounds).

    ``start``: boolean mask of the initial inactive (free) set; ``allowed``:
    strategies that may enter. Each iteration solves the free face exactly
    (own Cholesky, O(k^3/3)), computes lambda = cov y - nu g (O(N k)), drops
    non-positive y and lets at most max(8, k // 4) of the most negative
    lambda enter. Returns (y normalized to g.y = 1, iterations, status, mask):
    status 0 converged (KKT), 1 iteration limit, 2 singular face, 3 face larger
    than ``max_face``, 4 no positive solution on the face.
    """
    n = g.size
    mask = start.copy()
    y = np.zeros(n)
    for it in range(1, max_iter + 1):
        k = 0
        for m in range(n):
            if mask[m]:
                k += 1
        if k == 0:
            return y, it, 4, mask
        if k > max_face:
            return y, it, 3, mask
        idx = np.empty(k, dtype=np.int64)
        c = 0
        for m in range(n):
            if mask[m]:
                idx[c] = m
                c += 1
        q = np.empty((k, k))
        b = np.empty(k)
        for a in range(k):
            b[a] = g[idx[a]]
            for bb in range(k):
                q[a, bb] = cov[idx[a], idx[bb]]
        if not _cholesky_lower(q):
            return y, it, 2, mask
        dmin = np.inf
        dmax = 0.0
        for a in range(k):
            dmin = min(dmin, q[a, a])
            dmax = max(dmax, q[a, a])
        if dmin * dmin < 1e-13 * dmax * dmax:
            return y, it, 2, mask
        z = cholesky_solve_nb(q, b)
        bz = 0.0
        for a in range(k):
            bz += b[a] * z[a]
        if not (bz > 0.0):
            return y, it, 4, mask
        y[:] = 0.0
        all_positive = True
        for a in range(k):
            y[idx[a]] = z[a] / bz
            if not (z[a] > 0.0):
                all_positive = False
        cov_y = cov_matvec_sparse_nb(cov, y, idx)
        nu = 0.0
        for a in range(k):
            nu += y[idx[a]] * cov_y[idx[a]]
        cand, lam_c = kkt_violators_nb(g, cov_y, nu, allowed, mask, 1e-12)
        n_enter = cand.size
        if all_positive and n_enter == 0:
            return y, it, 0, mask
        for a in range(k):
            if not (y[idx[a]] > 0.0):
                mask[idx[a]] = False
        limit = max(8, k // 4)
        if n_enter > limit:
            order = argsort_nb(lam_c)
            for a in range(limit):
                mask[cand[order[a]]] = True
        else:
            for a in range(n_enter):
                mask[cand[a]] = True
    return y, max_iter, 1, mask


@njit(**_FLAGS)
def compound_line_max_nb(r, delta, lo, hi, iters):
    """Golden-section maximizer t in [lo, hi] of the compound score of r + t delta.

    ``r``: current portfolio returns (T), ``delta``: change per unit t (T).
    Returns (t, per-day score at t); ends of the interval are candidates too.
    """
    n = r.size
    x = np.empty(n)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0

    def value(t):
        for s in range(n):
            x[s] = r[s] + t * delta[s]
        slope, std = _curve_slope_std(x, True)
        return slope / std if std > 0.0 else -np.inf

    a = lo
    b = hi
    c = b - ratio * (b - a)
    d = a + ratio * (b - a)
    fc = value(c)
    fd = value(d)
    for _ in range(iters):
        if b - a <= 1e-14 * max(1.0, abs(hi)):
            break
        if fc >= fd:
            b = d
            d = c
            fd = fc
            c = b - ratio * (b - a)
            fc = value(c)
        else:
            a = c
            c = d
            fc = fd
            d = a + ratio * (b - a)
            fd = value(d)
    best_t = hi
    best_f = value(hi)
    if fc > best_f:
        best_t = c
        best_f = fc
    if fd > best_f:
        best_t = d
        best_f = fd
    return best_t, best_f
