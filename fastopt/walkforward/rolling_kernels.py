"""Numba kernels of the sliding-window statistics (see ``fastopt.walkforward.rolling``).

Every kernel has a plain-numpy twin in ``fastopt.walkforward.rolling`` (``*_np``) that the
tests compare against at 1e-12. Inputs are C-contiguous float64 arrays; the
state arrays are updated in place.

Window state (all sums are over the ``lookback`` rows of the current window,
of the *shifted* returns ``x = r - shift``; ``s`` is the position of a row in
the window, 0 = oldest, ``lookback - 1`` = newest):

- ``cross[a, b] = sum_s x[s, a] * x[s, b]`` (the full symmetric matrix; with
  ``full_cov=False`` only the diagonal is maintained),
- ``s0[a] = sum_s x[s, a]``, ``s1[a] = sum_s s * x[s, a]``, ``s2[a] = sum_s s**2 * x[s, a]``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fastopt.optimize.cholesky_kernels import cholesky_append_nb, cholesky_delete_nb, face_solve_nb
from fastopt.optimize.kernels import most_violating_pair_nb, time_calls


@njit(cache=True)
def slide_window_nb(cross, s0, s1, s2, rows_out, rows_in, shift, lookback, full_cov):
    """Slide the window by ``k = rows_in.shape[0]`` days (``k < lookback``).

    ``rows_out`` (k x N) are the k oldest rows leaving the window (oldest first),
    ``rows_in`` (k x N) the k rows entering it (oldest first). Cost O(k * N^2)
    with ``full_cov``, O(k * N) without.
    """
    n_rows = rows_in.shape[0]
    n = rows_in.shape[1]
    last = float(lookback - 1)
    x_in = np.empty((n_rows, n))
    x_out = np.empty((n_rows, n))
    for j in range(n_rows):
        for a in range(n):
            x_in[j, a] = rows_in[j, a] - shift[a]
            x_out[j, a] = rows_out[j, a] - shift[a]
    # cross products: one rank-one update in and one out per day, full symmetric
    # matrix, row by row (contiguous, vectorizable inner loop)
    if full_cov:
        for j in range(n_rows):
            xi = x_in[j]
            xo = x_out[j]
            for a in range(n):
                in_a = xi[a]
                out_a = xo[a]
                row = cross[a]
                for b in range(n):
                    row[b] += in_a * xi[b] - out_a * xo[b]
    else:
        for j in range(n_rows):
            for a in range(n):
                cross[a, a] += x_in[j, a] * x_in[j, a] - x_out[j, a] * x_out[j, a]
    # positional sums: one day at a time (every remaining row moves one slot older)
    for j in range(n_rows):
        for a in range(n):
            leaving = x_out[j, a]
            entering = x_in[j, a]
            rest0 = s0[a] - leaving  # rows at positions 1..L-1 (the leaving row sits at 0)
            new_s2 = s2[a] - 2.0 * s1[a] + rest0 + last * last * entering
            new_s1 = s1[a] - rest0 + last * entering
            s0[a] = rest0 + entering
            s1[a] = new_s1
            s2[a] = new_s2


@njit(cache=True)
def moments_nb(shift, s0, s1, s2, cross, active_days, lookback):
    """(g, mean, var) of the window from the running sums, O(N) (twin: ``RollingWindow.moments_np``).

    ``g = shift + 6 (L s1 - s2) / (L (L^2 - 1))``, ``mean = shift + s0 / L``,
    ``var = max((cross[a, a] - s0[a]^2 / L) / (L - 1), 0)`` (the arithmetic of
    ``cov_from_cross_nb``'s diagonal); strategies with no active day in the
    window get exact zeros.
    """
    n = s0.size
    denom = lookback * (lookback * lookback - 1.0)
    inv_l = 1.0 / lookback
    inv_dof = 1.0 / (lookback - 1)
    g = np.empty(n)
    mean = np.empty(n)
    var = np.empty(n)
    for a in range(n):
        if active_days[a] == 0:
            g[a] = 0.0
            mean[a] = 0.0
            var[a] = 0.0
            continue
        g[a] = shift[a] + 6.0 * (lookback * s1[a] - s2[a]) / denom
        mean[a] = shift[a] + s0[a] / lookback
        value = (cross[a, a] - s0[a] * s0[a] * inv_l) * inv_dof
        var[a] = value if value > 0.0 else 0.0
    return g, mean, var


@njit(cache=True)
def cov_from_cross_nb(cross, s0, lookback, out):
    """Fill ``out`` (N x N) with the sample covariance (ddof=1) of the window.

    ``cov[a, b] = (cross[a, b] - s0[a] * s0[b] / L) / (L - 1)``. ``cross`` is
    symmetric and every cell is computed with the same expression, so ``out``
    is exactly symmetric.
    """
    n = s0.shape[0]
    inv_l = 1.0 / lookback
    inv_dof = 1.0 / (lookback - 1)
    for a in range(n):
        sum_a = s0[a]
        row = cross[a]
        out_row = out[a]
        for b in range(n):
            out_row[b] = (row[b] - sum_a * s0[b] * inv_l) * inv_dof


@njit(cache=True)
def sums_block_nb(cross, s0, lookback, index):
    """cov[index][:, index] from the window sums (``fastopt.walkforward.rolling.CovarianceSums``): O(k^2),
    ``cov[a, b] = (cross[a, b] - s0[a] s0[b] / L) / (L - 1)`` with the arithmetic of
    ``cov_from_cross_nb``. Twin: ``CovarianceSums.block`` (numpy)."""
    k = index.size
    inv_l = 1.0 / lookback
    inv_dof = 1.0 / (lookback - 1)
    out = np.empty((k, k))
    for i in range(k):
        a = index[i]
        row = cross[a]
        sum_a = s0[a]
        for j in range(k):
            b = index[j]
            out[i, j] = (row[b] - sum_a * s0[b] * inv_l) * inv_dof
    return out


@njit(cache=True)
def sums_times_nb(cross, s0, lookback, w, support):
    """cov @ w from the window sums for w zero outside ``support``: O(N |support|), rows of
    ``cross`` read in place. Twin: ``CovarianceSums.times`` (numpy)."""
    n = s0.size
    out = np.zeros(n)
    s0_w = 0.0
    for i in range(support.size):
        k = support[i]
        wk = w[k]
        s0_w += s0[k] * wk
        row = cross[k]
        for m in range(n):
            out[m] += wk * row[m]
    inv_l = 1.0 / lookback
    inv_dof = 1.0 / (lookback - 1)
    for m in range(n):
        out[m] = (out[m] - s0[m] * s0_w * inv_l) * inv_dof
    return out


@njit(cache=True)
def face_moves_nb(g, cross, s0, lookback, upper, order, size, chol, max_moves, tol, min_relative_variance):
    """Primal-dual active-set moves of the same-face warm start (twin: ``face_moves_np``).

    The covariance is read as sums (``fastopt.walkforward.rolling.CovarianceSums``):
    ``cov[a, b] = (cross[a, b] - s0[a] s0[b] / L) / (L - 1)`` with L =
    ``lookback``, each entry computed when used (a ready matrix: cross = cov,
    s0 = 0, L = 2). ``order[:size]``: the face (strategy indices in factor
    order); ``chol``: (cap x cap) buffer whose leading size x size block is the
    lower Cholesky factor of ``cov[order, order]``. Each move solves ``cov_SS y = g_S``; drops
    the non-positive ``y`` (factor downdates) or, if all are positive, checks
    the relative KKT gap of ``w = y / sum(y)`` (same formula as
    ``fastopt.optimize.solver.kkt_gap``) and adds every violator (factor borders).
    Returns ``(code, size, w)``: code 1 = KKT gap <= tol (w is the optimum),
    0 = gave up (singular border, no progress, a bound binds, a near-riskless
    face with ``var / (sum w_k std_k)^2 < min_relative_variance``, moves exhausted),
    -1 = the factor buffer is too small.
    """
    n = g.size
    cap = chol.shape[0]
    inv_l = 1.0 / lookback
    inv_dof = 1.0 / (lookback - 1)
    w = np.zeros(n)
    in_face = np.zeros(n, dtype=np.bool_)
    for i in range(size):
        in_face[order[i]] = True
    for _ in range(max_moves + 1):
        y = face_solve_nb(g, order, size, chol)  # L L' y = g[order]
        negatives = 0
        for i in range(size):
            if not np.isfinite(y[i]):
                return 0, size, w
            if y[i] <= 0.0:
                negatives += 1
        if negatives == size:
            return 0, size, w
        if negatives > 0:
            for i in range(size - 1, -1, -1):  # drop from the back so positions stay valid
                if y[i] <= 0.0:
                    in_face[order[i]] = False
                    cholesky_delete_nb(chol, size, i)
                    for m in range(i, size - 1):
                        order[m] = order[m + 1]
                    size -= 1
            continue
        total = 0.0
        for i in range(size):
            total += y[i]
        w[:] = 0.0
        for i in range(size):
            w[order[i]] = y[i] / total
        for i in range(size):
            if w[order[i]] >= upper[order[i]] and upper[order[i]] < 1.0:
                return 0, size, w  # a max_weight bound binds: leave it to the solver
        cov_w = sums_times_nb(cross, s0, lookback, w, order[:size])
        var = 0.0
        big_g = 0.0
        for m in range(n):
            var += w[m] * cov_w[m]
            big_g += g[m] * w[m]
        spread = 0.0
        for i in range(size):
            k = order[i]
            spread += w[k] * np.sqrt((cross[k, k] - s0[k] * s0[k] * inv_l) * inv_dof)
        spread *= spread
        # (near) riskless face (the ratio may be unbounded), or |G| V underflowing so the gap has
        # no scale: leave it to the solver (same rule as fastopt.optimize.ratio.common.kkt_gap)
        if not (var > 0.0 and big_g != 0.0 and spread > 0.0 and var / spread >= min_relative_variance
                and abs(big_g) * var > 0.0):
            return 0, size, w
        _, grow, _, give = most_violating_pair_nb(g, cov_w, w, upper, var, big_g)
        gap = max(0.0, (grow - give) / (abs(big_g) * var))
        if gap <= tol:
            return 1, size, w
        threshold = tol * abs(big_g) * var
        added = 0
        for m in range(n):
            if in_face[m] or upper[m] <= 0.0:
                continue
            if g[m] * var - big_g * cov_w[m] > threshold:
                if size >= cap:
                    return -1, size, w
                col = np.empty(size)
                for i in range(size):
                    col[i] = (cross[order[i], m] - s0[order[i]] * s0[m] * inv_l) * inv_dof
                if not cholesky_append_nb(chol, size, col, (cross[m, m] - s0[m] * s0[m] * inv_l) * inv_dof):
                    return 0, size, w
                order[size] = m
                in_face[m] = True
                size += 1
                added += 1
        if added == 0:
            return 0, size, w
    return 0, size, w


def warmup() -> list[tuple[str, float]]:
    """Call every kernel of this module once on tiny inputs (fills the numba cache).

    Returns (kernel name, seconds) pairs: compile time on a cold cache, load
    time on a warm one. Used by ``fastopt warmup``.
    """

    rng = np.random.default_rng(0)
    n, lookback = 3, 8
    window = np.ascontiguousarray(rng.normal(0.0, 0.01, (lookback, n)))
    positions = np.arange(lookback, dtype=np.float64)[:, None]
    cross = np.ascontiguousarray(window.T @ window)
    s0 = window.sum(axis=0)
    s1 = (positions * window).sum(axis=0)
    s2 = (positions**2 * window).sum(axis=0)
    rows_out = np.ascontiguousarray(window[:1])
    rows_in = np.ascontiguousarray(rng.normal(0.0, 0.01, (1, n)))
    shift = np.zeros(n)
    cov = np.empty((n, n))
    g = np.array([0.002, 0.001, 0.0015])
    spd = np.ascontiguousarray(window.T @ window / (lookback - 1) + np.eye(n) * 1e-4)
    chol = np.zeros((n, n))
    chol[0, 0] = np.sqrt(spd[0, 0])
    calls = [
        ("slide_window_nb", lambda: slide_window_nb(cross, s0, s1, s2, rows_out, rows_in, shift, lookback, True)),
        ("cov_from_cross_nb", lambda: cov_from_cross_nb(cross, s0, lookback, cov)),
        ("moments_nb", lambda: moments_nb(shift, s0, s1, s2, cross, np.ones(n, dtype=np.int64), lookback)),
        ("sums_block_nb", lambda: sums_block_nb(spd, np.zeros(n), 2, np.arange(n, dtype=np.int64))),
        ("sums_times_nb", lambda: sums_times_nb(spd, np.zeros(n), 2, g.copy(), np.arange(n, dtype=np.int64))),
        (
            "face_moves_nb",
            lambda: face_moves_nb(
                g, spd, np.zeros(n), 2, np.ones(n), np.arange(n, dtype=np.int64), 1, _first_factor(spd, n), 5,
                1e-11, 1e-12
            ),
        ),
    ]
    return time_calls(calls)


def _first_factor(spd: np.ndarray, n: int) -> np.ndarray:
    chol = np.zeros((n, n))
    chol[0, 0] = np.sqrt(spd[0, 0])
    return chol
