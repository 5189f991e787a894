"""Incremental statistics of a sliding window of daily returns.

The walk-forward fits on the trailing ``lookback`` days ``[i - L, i)`` of every
rebalance day ``i``. Recomputing the covariance from scratch costs O(L * N^2)
per day; :class:`RollingWindow` instead keeps running sums and slides them by
one day with a rank-one update in and one out, O(N^2) per day, and recomputes
them exactly every ``recompute_every`` days to bound floating-point drift.

Statistics (per strategy ``a``, over the ``L`` window days, ``s = 0..L-1`` the
position of a day, 0 = oldest):

- ``mean[a]``: mean daily return (a fraction per day);
- ``g[a]``: least-squares slope, per day, of the cumulative-sum curve
  ``c[t] = r[0] + ... + r[t]`` against ``t = 0..L-1``. It is linear in the
  returns: ``g = sum_s w_s r[s]`` with ``w_s = 6 s (L - s) / (L (L^2 - 1))``
  (the weights sum to 1, so a constant return ``c`` has slope ``c``);
- ``cov``: sample covariance, ``ddof=1`` (N x N, per day^2); ``var`` its diagonal.

A strategy whose returns are all exactly 0 in the window (not trading yet, or
stopped: the loader fills those days with 0) gets exact zeros (g, mean, var,
its cov row and column), as a from-scratch computation would, so that a
solver excluding zero-variance strategies sees the same problem either way.

Numerics: the sums are kept of the returns minus a per-strategy ``shift`` (the
window mean at the last exact recomputation), which removes the cancellation of
``sum x^2 - (sum x)^2 / L`` when means are large against the noise. The
positional sums use ``s1 = sum s x`` and ``s2 = sum s^2 x`` so that
``g = shift + 6 (L s1 - s2) / (L (L^2 - 1))``.

The numba kernels live in ``fastopt.walkforward.rolling_kernels``; the ``*_np`` functions
here are their plain-numpy twins (same arithmetic, tested at 1e-12).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fastopt.optimize.kernels_np import cholesky_append_np, cholesky_delete_np
from fastopt.walkforward.rolling_kernels import cov_from_cross_nb, moments_nb, slide_window_nb, sums_block_nb, sums_times_nb

__all__ = [
    "CovarianceSums",
    "RollingStats",
    "RollingWindow",
    "slope_weights",
    "exact_window_stats",
    "slide_window_np",
    "cov_from_cross_np",
    "moments_np",
]

#: Default number of slid days between two exact recomputations of the sums.
DEFAULT_RECOMPUTE_EVERY = 250


@dataclass(frozen=True)
class RollingStats:
    """Statistics of one window (units: fractions per day; cov per day^2)."""

    g: NDArray[np.float64]
    mean: NDArray[np.float64]
    var: NDArray[np.float64]
    cov: NDArray[np.float64] | None
    n_days: int


@dataclass(frozen=True)
class CovarianceSums:
    """A window's covariance kept as sums: ``cov[a, b] = (cross[a, b] - s0[a] s0[b] / L) / (L - 1)``.

    ``cross`` (N x N): sums of products of the (shifted) returns over the window's
    ``n_days`` = L days; ``s0`` (N): their sums. Entries are computed when read,
    so a fit touching k strategies costs O(k^2) or O(N k), never the O(N^2)
    of forming the matrix. ``of_matrix(cov)`` wraps a ready covariance
    (s0 = 0, L = 2: the formula returns ``cov`` exactly).
    """

    cross: NDArray[np.float64]
    s0: NDArray[np.float64]
    n_days: int

    @classmethod
    def of_matrix(cls, cov: NDArray[np.float64]) -> CovarianceSums:
        cov = np.ascontiguousarray(cov, dtype=np.float64)
        return cls(cross=cov, s0=np.zeros(cov.shape[0]), n_days=2)

    def face(self, index: NDArray[np.int64]) -> NDArray[np.float64]:
        """cov[index][:, index] (numba, ``sums_block_nb``; its twin is ``block``)."""
        return sums_block_nb(self.cross, self.s0, self.n_days, np.ascontiguousarray(index, dtype=np.int64))

    def times_fast(self, w: NDArray[np.float64], support: NDArray[np.int64]) -> NDArray[np.float64]:
        """cov @ w (numba, ``sums_times_nb``; its twin is ``times``)."""
        return sums_times_nb(self.cross, self.s0, self.n_days, np.ascontiguousarray(w, dtype=np.float64),
                             np.ascontiguousarray(support, dtype=np.int64))

    def block(self, rows: NDArray[np.int64], cols: NDArray[np.int64]) -> NDArray[np.float64]:
        """cov[rows][:, cols] (same arithmetic as ``cov_from_cross_nb``)."""
        inner = self.cross.take(rows, axis=0).take(cols, axis=1)
        inner -= np.multiply.outer(self.s0[rows], self.s0[cols]) * (1.0 / self.n_days)
        inner *= 1.0 / (self.n_days - 1)
        return inner

    def times(self, w: NDArray[np.float64], support: NDArray[np.int64]) -> NDArray[np.float64]:
        """cov @ w for w zero outside ``support``: O(N |support|)."""
        w_s = w[support]
        out = w_s @ self.cross.take(support, axis=0)
        out -= self.s0 * (float(self.s0[support] @ w_s) / self.n_days)
        out *= 1.0 / (self.n_days - 1)
        return out


def slope_weights(lookback: int) -> NDArray[np.float64]:
    """Weights ``w_s`` with ``slope(cumsum(r)) = sum_s w_s r[s]`` for a window of ``lookback`` days."""
    if lookback < 2:
        raise ValueError(f"lookback must be >= 2, got {lookback}")
    pos = np.arange(lookback, dtype=np.float64)
    return 6.0 * pos * (lookback - pos) / (lookback * (lookback * lookback - 1.0))


def exact_window_stats(window: NDArray[np.float64], *, full_cov: bool = True) -> RollingStats:
    """Statistics of ``window`` (L x N) computed from scratch (the cold path's reference)."""
    window = np.ascontiguousarray(window, dtype=np.float64)
    lookback = window.shape[0]
    mean = window.mean(axis=0)
    centered = window - mean
    g = slope_weights(lookback) @ window
    if full_cov:
        cov = centered.T @ centered / (lookback - 1)
        cov = 0.5 * (cov + cov.T)
        var = np.diag(cov).copy()
    else:
        cov = None
        var = np.einsum("ta,ta->a", centered, centered) / (lookback - 1)
    return RollingStats(g=g, mean=mean, var=var, cov=cov, n_days=lookback)


def slide_window_np(cross, s0, s1, s2, rows_out, rows_in, shift, lookback, full_cov) -> None:
    """Plain-numpy twin of :func:`fastopt.walkforward.rolling_kernels.slide_window_nb` (in place)."""
    x_in = rows_in - shift
    x_out = rows_out - shift
    last = float(lookback - 1)
    n = shift.shape[0]
    if full_cov:
        for j in range(x_in.shape[0]):
            cross += np.outer(x_in[j], x_in[j]) - np.outer(x_out[j], x_out[j])
    else:
        idx = np.arange(n)
        for j in range(x_in.shape[0]):
            cross[idx, idx] += x_in[j] * x_in[j] - x_out[j] * x_out[j]
    for j in range(x_in.shape[0]):
        rest0 = s0 - x_out[j]
        new_s2 = s2 - 2.0 * s1 + rest0 + last * last * x_in[j]
        new_s1 = s1 - rest0 + last * x_in[j]
        s0[:] = rest0 + x_in[j]
        s1[:] = new_s1
        s2[:] = new_s2


def cov_from_cross_np(cross, s0, lookback, out) -> None:
    """Plain-numpy twin of :func:`fastopt.walkforward.rolling_kernels.cov_from_cross_nb` (fills ``out``)."""
    inv_l = 1.0 / lookback
    inv_dof = 1.0 / (lookback - 1)
    out[:] = (cross - np.outer(s0, s0) * inv_l) * inv_dof


def moments_np(shift, s0, s1, s2, cross, active_days, lookback):
    """Plain-numpy twin of :func:`fastopt.walkforward.rolling_kernels.moments_nb`: (g, mean, var)."""
    denom = lookback * (lookback * lookback - 1.0)
    g = shift + 6.0 * (lookback * s1 - s2) / denom
    mean = shift + s0 / lookback
    var = np.maximum((np.diag(cross) - s0 * s0 * (1.0 / lookback)) * (1.0 / (lookback - 1)), 0.0)
    flat = active_days == 0
    g[flat] = 0.0
    mean[flat] = 0.0
    var[flat] = 0.0
    return g, mean, var


class RollingWindow:
    """Sliding-window statistics of a T x N return matrix, updated incrementally.

    Usage: ``win = RollingWindow(returns, lookback)``; ``win.move_to(i)`` makes the
    window ``returns[i - lookback : i]`` (``i`` must not decrease); ``win.stats()``.

    ``full_cov=False`` maintains only the variances (O(N) per day instead of O(N^2)).
    ``recompute_every``: slid days between exact recomputations (drift bound).
    ``use_numba=False`` runs the numpy twins (for tests).
    """

    def __init__(
        self,
        returns: NDArray[np.float64],
        lookback: int,
        *,
        full_cov: bool = True,
        recompute_every: int = DEFAULT_RECOMPUTE_EVERY,
        use_numba: bool = True,
    ) -> None:
        self.returns = np.ascontiguousarray(returns, dtype=np.float64)
        if self.returns.ndim != 2:
            raise ValueError("returns must be a 2-D (days x strategies) array")
        if lookback < 2:
            raise ValueError(f"lookback must be >= 2, got {lookback}")
        if recompute_every < 1:
            raise ValueError(f"recompute_every must be >= 1, got {recompute_every}")
        self.lookback = int(lookback)
        self.full_cov = bool(full_cov)
        self.recompute_every = int(recompute_every)
        self._slide = slide_window_nb if use_numba else slide_window_np
        self._cov = cov_from_cross_nb if use_numba else cov_from_cross_np
        self._moments = moments_nb if use_numba else moments_np
        n = self.returns.shape[1]
        self.end = -1  # window is returns[end - L : end]; -1 = not positioned yet
        self.slid_since_exact = 0
        self.shift = np.zeros(n)
        # N x N in both modes (the kernel's layout); without full_cov only the diagonal is used
        self.cross = np.zeros((n, n))
        self.s0 = np.zeros(n)
        self.s1 = np.zeros(n)
        self.s2 = np.zeros(n)
        self.active_days = np.zeros(n, dtype=np.int64)  # days with a non-zero return in the window
        self._weights = slope_weights(self.lookback)

    # -- positioning -------------------------------------------------------
    def recompute(self, end: int) -> None:
        """Set the window to ``returns[end - L : end]`` from scratch (exact sums)."""
        self._check_end(end)
        window = self.returns[end - self.lookback : end]
        self.shift = np.ascontiguousarray(window.mean(axis=0))
        x = window - self.shift
        pos = np.arange(self.lookback, dtype=np.float64)
        if self.full_cov:
            product = x.T @ x
            self.cross = np.ascontiguousarray(0.5 * (product + product.T))  # exactly symmetric
        else:
            self.cross[:] = 0.0
            np.fill_diagonal(self.cross, np.einsum("ta,ta->a", x, x))
        self.s0 = np.ascontiguousarray(x.sum(axis=0))
        self.s1 = np.ascontiguousarray(pos @ x)
        self.s2 = np.ascontiguousarray((pos * pos) @ x)
        self.active_days = np.count_nonzero(window, axis=0).astype(np.int64)
        self.end = end
        self.slid_since_exact = 0

    def move_to(self, end: int) -> None:
        """Make the window ``returns[end - L : end]``, sliding from the current one if possible."""
        self._check_end(end)
        if self.end < 0 or end < self.end:
            self.recompute(end)
            return
        step = end - self.end
        if step == 0:
            return
        if step >= self.lookback or self.slid_since_exact + step > self.recompute_every:
            self.recompute(end)
            return
        rows_out = self.returns[self.end - self.lookback : end - self.lookback]
        rows_in = self.returns[self.end : end]
        self._slide(
            self.cross, self.s0, self.s1, self.s2,
            np.ascontiguousarray(rows_out), np.ascontiguousarray(rows_in),
            self.shift, self.lookback, self.full_cov,
        )
        self.active_days += np.count_nonzero(rows_in, axis=0) - np.count_nonzero(rows_out, axis=0)
        self.end = end
        self.slid_since_exact += step

    def _check_end(self, end: int) -> None:
        if not self.lookback <= end <= self.returns.shape[0]:
            raise ValueError(
                f"window end {end} out of range [{self.lookback}, {self.returns.shape[0]}]"
            )

    # -- statistics ----------------------------------------------------------
    def stats(self, *, cov_out: NDArray[np.float64] | None = None, with_cov: bool = True) -> RollingStats:
        """Statistics of the current window.

        The arrays are fresh, except ``cov`` which is written into ``cov_out``
        when given (an N x N float64 buffer reused across days to avoid
        allocating and page-faulting N^2 floats per day). ``with_cov=False``
        skips the O(N^2) covariance (``cov`` None; ``sums()`` reads entries on
        demand); g, mean and var are the same either way.
        """
        if self.end < 0:
            raise ValueError("window not positioned: call move_to() first")
        lookback = self.lookback
        g, mean, var = self._moments(self.shift, self.s0, self.s1, self.s2, self.cross, self.active_days, lookback)
        cov = None
        if self.full_cov and with_cov:
            cov = np.empty_like(self.cross) if cov_out is None else cov_out
            self._cov(self.cross, self.s0, lookback, cov)
            np.fill_diagonal(cov, var)
            flat = np.flatnonzero(self.active_days == 0)
            if flat.size:  # all-zero columns (not trading yet / any more): exact zeros, no rounding residue
                cov[flat, :] = 0.0
                cov[:, flat] = 0.0
        return RollingStats(g=g, mean=mean, var=var, cov=cov, n_days=lookback)

    def sums(self) -> CovarianceSums:
        """The current window's covariance as sums (views of the running state: valid until
        the window moves). Needs ``full_cov``. Columns of strategies flat in the window are
        not zeroed here: callers exclude them by their variance (``stats().var == 0``)."""
        if not self.full_cov:
            raise ValueError("sums() needs full_cov=True")
        return CovarianceSums(cross=self.cross, s0=self.s0, n_days=self.lookback)


def face_moves_np(g, cross, s0, lookback, upper, order, size, chol, max_moves, tol, min_relative_variance):
    """Plain-numpy twin of ``fastopt.walkforward.rolling_kernels.face_moves_nb`` (same moves, same returns)."""
    sums = CovarianceSums(cross=cross, s0=s0, n_days=lookback)
    n = g.size
    cap = chol.shape[0]
    w = np.zeros(n)
    in_face = np.zeros(n, dtype=bool)
    in_face[order[:size]] = True
    for _ in range(max_moves + 1):
        lower = chol[:size, :size]
        y = np.linalg.solve(lower.T, np.linalg.solve(lower, g[order[:size]]))
        if not np.isfinite(y).all():
            return 0, size, w
        leaving = np.flatnonzero(y <= 0)
        if leaving.size == size:
            return 0, size, w
        if leaving.size:
            for position in leaving[::-1]:
                in_face[order[position]] = False
                cholesky_delete_np(chol, size, int(position))
                order[position : size - 1] = order[position + 1 : size].copy()
                size -= 1
            continue
        face = order[:size]
        w = np.zeros(n)
        w[face] = y / y.sum()
        if ((w[face] >= upper[face]) & (upper[face] < 1.0)).any():
            return 0, size, w
        cov_w = sums.times(w, face)
        var = float(w @ cov_w)
        big_g = float(g @ w)
        spread = float(w[face] @ np.sqrt(np.diag(sums.block(face, face)))) ** 2
        if not (var > 0 and big_g != 0 and spread > 0 and var / spread >= min_relative_variance
                and abs(big_g) * var > 0):
            return 0, size, w
        d = g * var - big_g * cov_w
        grow = d[w < upper].max(initial=-np.inf)
        give = d[w > 0].min(initial=np.inf)
        if max(0.0, (grow - give) / (abs(big_g) * var)) <= tol:
            return 1, size, w
        entering = np.flatnonzero((d > tol * abs(big_g) * var) & ~in_face & (upper > 0))
        if entering.size == 0:
            return 0, size, w
        for m in entering:
            if size >= cap:
                return -1, size, w
            column = sums.block(order[:size], np.array([m]))[:, 0]
            if not cholesky_append_np(chol, size, column, float(sums.block(np.array([m]), np.array([m]))[0, 0])):
                return 0, size, w
            order[size] = m
            in_face[m] = True
            size += 1
    return 0, size, w
