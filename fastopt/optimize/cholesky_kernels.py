"""Numba kernels that update a Cholesky factor one row/column at a time.

Used by the active-set solver (``fastopt.optimize.active_set_kernels``) and by the
walk-forward's warm-started face moves (``fastopt.walkforward.rolling_kernels``): they live in
the lower layer. ``chol`` is a (cap x cap) C-contiguous float64 buffer whose leading k x k
block holds the lower factor L of a face covariance; a strategy joining or leaving the face
costs O(k^2) instead of refactoring in O(k^3). Plain-numpy twins: ``cholesky_append_np`` and
``cholesky_delete_np`` in ``fastopt.optimize.kernels_np``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fastopt.optimize.kernels import cholesky_solve_nb, time_calls


@njit(cache=True)
def face_solve_nb(g, order, size, chol):
    """u with L L' u = g[order[:size]] for the face factor L (``chol``'s leading block, O(k^2))."""
    rhs = np.empty(size)
    for i in range(size):
        rhs[i] = g[order[i]]
    return cholesky_solve_nb(chol, rhs)


@njit(cache=True)
def cholesky_append_nb(chol, k, col, diag):
    """Border the k x k factor with a new last row/column; returns False if not positive definite.

    ``col`` (k): covariances of the new strategy with the current face, in
    factor order; ``diag``: its variance. Solves ``L l = col`` and sets
    ``L[k, :k] = l``, ``L[k, k] = sqrt(diag - l.l)``.
    """
    total = 0.0
    for i in range(k):
        acc = col[i]
        for j in range(i):
            acc -= chol[i, j] * chol[k, j]
        value = acc / chol[i, i]
        chol[k, i] = value
        total += value * value
    pivot = diag - total
    if not pivot > 1e-14 * diag:
        return False
    chol[k, k] = np.sqrt(pivot)
    for j in range(k + 1, chol.shape[1]):
        chol[k, j] = 0.0
    return True


@njit(cache=True)
def cholesky_delete_nb(chol, k, p):
    """Remove row/column ``p`` from the k x k factor in place (leaves a (k-1) x (k-1) factor).

    The rows below ``p`` lose column ``p``; their trailing block gets the
    rank-one update ``L22 L22' + x x'`` (x = old column p below the diagonal),
    done with Givens rotations, while rows and columns shift up/left by one.
    Row by row (contiguous memory): row j applies the rotations of the rows
    above it to its own entries, then defines its own rotation. O((k - p)^2 + k).
    """
    m = k - p - 1
    cos = np.empty(m)
    sin = np.empty(m)
    for jj in range(m):
        old = p + 1 + jj  # old row, becoming row p + jj
        new = p + jj
        xj = chol[old, p]
        for j in range(p):  # columns left of p only move up
            chol[new, j] = chol[old, j]
        for ii in range(jj):  # rotations of the rows above, on (L[j, i], x_j)
            value = (chol[old, p + 1 + ii] + sin[ii] * xj) / cos[ii]
            xj = cos[ii] * xj - sin[ii] * value
            chol[new, p + ii] = value
        diag = chol[old, old]
        r = np.sqrt(diag * diag + xj * xj)
        cos[jj] = r / diag
        sin[jj] = xj / diag
        chol[new, new] = r
        chol[new, old] = 0.0
    for j in range(k):
        chol[k - 1, j] = 0.0
    if m == 0:
        for i in range(k):
            chol[i, k - 1] = 0.0


def warmup() -> list[tuple[str, float]]:
    """Call every kernel of this module once on tiny inputs (fills the numba cache).

    Returns (kernel name, seconds) pairs: compile time on a cold cache, load time on a warm one.
    """
    spd = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 1.5]]) * 1e-4
    first = np.zeros((3, 3))
    first[0, 0] = np.sqrt(spd[0, 0])
    chol = first.copy()
    calls = [
        ("face_solve_nb", lambda: face_solve_nb(np.array([0.002, 0.001, 0.0015]), np.arange(3, dtype=np.int64), 1, first)),
        ("cholesky_append_nb", lambda: cholesky_append_nb(chol, 1, spd[1, :1].copy(), spd[1, 1])),
        ("cholesky_delete_nb", lambda: cholesky_delete_nb(chol, 2, 0)),
    ]
    return time_calls(calls)
