"""Large universes without the N x N covariance: a lazily computed working set.

Forming the whole covariance costs N^2 T / 2 multiply-adds: at N = 1000,
T = 365 that alone is about half of a dense solve. The optimum holds far
fewer strategies than N, and the refinement only ever needs

- cov restricted to the faces it solves (entries among a working set S), and
- the full gradient cov @ w, which is X'(X w) / (T - 1) from the centered
  returns X in O(N T), never a matrix.

``LazyCovariance`` provides exactly that:
covariance entries are computed from X the first time a strategy enters a
face (k new strategies next to s known ones cost (s k + k^2 / 2) T) and kept.
``solve_lazy`` runs the usual search + refinement on a pool of the best
single strategies (dense, small), then the PDAS iteration on the whole
problem from that start with the lazy operator; if that stalls (near-singular
faces, the rank bound of an ill-posed window) the dense refinement polishes
the point on the cached strategies. Only a KKT certificate computed from the
full gradient is accepted, which makes the result as exact as a dense solve;
anything else (binding max_weight, no certificate) is handed back to the
caller for the dense solver, which then runs exactly as without this path.
Conventions as in ``fastopt.optimize.ratio.common``; shrinkage X in [0, 1] acts as
(1 - X) cov + X diag(cov), the same as ``fastopt.optimize.objective.shrink_covariance``.

The window may be any "low rank + diagonal" covariance cov = s Y'Y + diag(d)
(``fastopt.optimize.risk_model``: the sample covariance, Y = X the centered returns and
s = 1 / (T - 1); a statistical factor model, Y = the k x N loadings, s = 1, d the
specific variances): an entry costs O(m) from the m x N rows Y, cov @ w costs O(N m).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastopt.optimize.active_set_kernels import (
    CODE_BUFFER,
    CODE_DEPENDENT,
    CODE_FAILED,
    CODE_KKT,
    CODE_STEP_LIMIT,
    run_active_set,
    start_face_nb,
)
from fastopt.optimize.kernels import kkt_violators_nb
from fastopt.optimize.ratio.common import ACTIVE_SET_TOL, CERTIFIED_GAP, kkt_gap
from fastopt.optimize.ratio.low_rank import low_rank_active_set
from fastopt.optimize.ratio.refine import refine
from fastopt.optimize.ratio.search import search_and_refine

#: ``optimize`` takes the lazy path from this many strategies on (dense below: the full
#: covariance is cheap there and the dense solver's numba kernels win).
WORKING_SET_MIN_N = 300
#: Strategies of best single slope/std solved densely first (the start of the active-set rounds).
POOL_SIZE = 64
#: Most strategies a round adds to the working set: max(MIN_GROWTH, face size / 2).
MIN_GROWTH = 32
#: With a positive definite low rank + diagonal covariance of rank m <= this (a factor model), the
#: faces are solved from the rows directly (``fastopt.optimize.ratio.low_rank``), without a cache.
LOW_RANK_DIRECT_M = 64
#: Otherwise (shrinkage: m = T) the cached working set runs first, up to this many strategies; an
#: optimum that needs more continues with ``fastopt.optimize.ratio.low_rank`` from its point (the cache
#: and its factor updates grow as |F|^2 memory and |F|^3 time: 22 s at |F| ~ 4,000).
MAX_CACHE_LOW_RANK = 1024
#: ``active_set_rounds`` stopped because the cache would outgrow ``max_cache``.
CODE_CACHE_FULL = 4


@dataclass(frozen=True)
class CenteredWindow:
    """A T x N window prepared for covariance-free work: cov = scale * Y'Y + diag(specific).

    ``centered``: the rows Y (m x N, C-contiguous): the daily returns minus each column's
    mean (m = T) for the sample covariance, or a factor model's loadings (m = k);
    ``variances``: (N,) diag(cov) per day^2 (the sample variance, ddof=1, for the sample
    covariance); ``n_days``: T, the window's length; ``scale``: s (None: 1 / (T - 1));
    ``specific``: d (N,) per day^2, or None (no diagonal term: rank <= T - 1).
    """

    centered: np.ndarray
    variances: np.ndarray
    n_days: int
    scale: float | None = None
    specific: np.ndarray | None = None

    @classmethod
    def from_centered(cls, centered: np.ndarray) -> CenteredWindow:
        n_days = centered.shape[0]
        variances = np.einsum("ti,ti->i", centered, centered) / (n_days - 1)
        return cls(centered=np.ascontiguousarray(centered), variances=variances, n_days=n_days)

    @classmethod
    def from_model(cls, model: Any) -> CenteredWindow:
        """From a ``fastopt.optimize.risk_model.LowRankDiag`` (rows, scale, specific, variances, n_days)."""
        return cls(centered=model.rows, variances=model.variances, n_days=model.n_days, scale=model.scale,
                   specific=model.specific)


class LazyCovariance:
    """Covariance of a ``CenteredWindow`` (shrunk by ``intensity``), computed only where used.

    ``block(rows, cols)``: cov[rows][:, cols]; entries of strategies seen for
    the first time are computed then and cached. ``times(w, support)``: cov @ w
    for all N strategies in O(N T). ``size``: strategies cached so far.
    """

    def __init__(self, window: CenteredWindow, intensity: float = 0.0, capacity: int = 256) -> None:
        self.window = window
        self.intensity = float(intensity)
        base = window.scale if window.scale is not None else 1.0 / (window.n_days - 1)
        self._scale = (1.0 - self.intensity) * base
        # the diagonal term of the (shrunk) model: X var + (1 - X) specific; None when there is none
        self._extra: np.ndarray | None = None
        if self.intensity > 0 or window.specific is not None:
            extra = self.intensity * window.variances
            if window.specific is not None:
                extra = extra + (1.0 - self.intensity) * window.specific
            self._extra = extra
        self._m = window.centered.shape[0]
        self._position = np.full(window.variances.size, -1, dtype=np.int64)
        self._rows = np.empty((capacity, self._m))  # rows Y of the cached strategies
        self._store = np.empty((capacity, capacity))
        self.size = 0

    def _grow(self, needed: int) -> None:
        capacity = self._store.shape[0]
        while capacity < needed:
            capacity *= 2
        store = np.empty((capacity, capacity))
        store[: self.size, : self.size] = self._store[: self.size, : self.size]
        rows = np.empty((capacity, self._m))
        rows[: self.size] = self._rows[: self.size]
        self._store, self._rows = store, rows

    def _ensure(self, index: np.ndarray) -> None:
        missing = self._position[index] < 0
        if not missing.any():
            return
        new = np.unique(index[missing])
        s, k = self.size, new.size
        if s + k > self._store.shape[0]:
            self._grow(s + k)
        x_new = np.ascontiguousarray(self.window.centered[:, new].T)  # k x T
        own = x_new @ x_new.T  # syrk on one buffer: exactly symmetric
        own *= self._scale
        if self._extra is not None:
            own[np.diag_indices(k)] = self.window.variances[new]
        self._store[s : s + k, s : s + k] = own
        if s:
            cross = x_new @ self._rows[:s].T
            cross *= self._scale
            self._store[s : s + k, :s] = cross
            self._store[:s, s : s + k] = cross.T
        self._rows[s : s + k] = x_new
        self._position[new] = np.arange(s, s + k)
        self.size = s + k

    def add(self, index: np.ndarray) -> None:
        """Cache these strategies: appended after the cached ones (in index order), whose
        positions, and so any face or point indexed by them, stay valid."""
        self._ensure(np.asarray(index, dtype=np.int64))

    def cached_matrix(self) -> np.ndarray:
        """The (capacity x capacity) buffer whose leading size x size block is cov among
        ``members()`` (no copy: valid until the next strategies are cached)."""
        return self._store

    def members(self) -> np.ndarray:
        """Indices of the cached strategies, in cache order."""
        members = np.empty(self.size, dtype=np.int64)
        cached = np.flatnonzero(self._position >= 0)
        members[self._position[cached]] = cached
        return members

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        self._ensure(rows)
        if cols is not rows:
            self._ensure(cols)
        return self._store.take(self._position[rows], axis=0).take(self._position[cols], axis=1)

    def times(self, w: np.ndarray, support: np.ndarray) -> np.ndarray:
        x = self.window.centered
        position = self._position[support]
        if (position >= 0).all():  # the held strategies' rows are cached contiguously: a cheap gather
            portfolio = w[support] @ self._rows.take(position, axis=0)
        else:  # not all cached (the low-rank path's large supports): from Y, caching nothing
            portfolio = x[:, support] @ w[support]
        out = x.T @ portfolio
        out *= self._scale
        if self._extra is not None:
            out[support] += self._extra[support] * w[support]
        return out

    @property
    def scale(self) -> float:
        """s of cov = s Y'Y + diag(extra) (shrinkage included)."""
        return self._scale

    @property
    def extra(self) -> np.ndarray | None:
        """The diagonal term (N,) per day^2 (shrinkage X var + (1 - X) specific), or None."""
        return self._extra

    @property
    def full_rank(self) -> bool:
        """True when the model has a diagonal term (shrinkage or specific variances): positive
        definite on the usable strategies, so a face is not limited by the window's rank."""
        return self._extra is not None


def initial_pool(g: np.ndarray, std: np.ndarray, upper: np.ndarray, previous: np.ndarray | None,
                 size: int) -> np.ndarray:
    """The ``size`` usable strategies of best single slope/std, plus the previous weights' support."""
    usable = upper > 0
    single = np.full(g.size, -np.inf)
    single[usable] = g[usable] / std[usable]
    order = np.argsort(-single, kind="stable")
    pool = order[usable[order]][:size]
    if previous is not None:
        pool = np.union1d(pool, np.flatnonzero((previous > 0) & usable))
    return np.sort(pool)


@dataclass
class LazyOutcome:
    """What ``solve_lazy`` reached: certified ``weights``, or ``fallback`` (why the dense
    solver must solve it instead), refinement ``info`` (with the whole problem's
    ``kkt_gap``), and the portfolio's ``var`` (w' cov w) and ``spread`` ((sum w_k std_k)^2).
    ``point``: the uncertified point reached when ``fallback`` is set by the active set
    (the best-effort weights of a window the caller may classify without the dense solver)."""

    weights: np.ndarray | None
    info: dict[str, Any] = field(default_factory=dict)
    fallback: str = ""
    var: float = 0.0
    spread: float = 0.0
    point: np.ndarray | None = None


def active_set_rounds(
    g: np.ndarray, cov: LazyCovariance, upper: np.ndarray, start: np.ndarray, *, max_steps: int | None = None,
    max_cache: int | None = None,
) -> tuple[np.ndarray, int, bool, int, int]:
    """Primal active-set solve of the whole problem on a growing working set, from ``start``.

    Each round runs ``ratio_active_set_nb`` on the cached strategies (the face
    factor and the point carry over between rounds), then checks every other
    strategy with the full gradient (O(N T)); the violators, most violating per
    unit std first, join the cache and the next round resumes. ``start``: weights
    (>= 0, g.w > 0) on cached strategies. Returns (w on the simplex, kernel code
    of the last round, singular flag of the final face, rounds, kernel steps).
    """
    n = g.size
    members = cov.members()
    allowed = upper > 0
    std = np.sqrt(cov.window.variances)
    g_m = np.ascontiguousarray(g[members])
    y = np.ascontiguousarray(start[members])
    # a face never exceeds the rank of the sample covariance (T - 1); with a diagonal term it can
    # hold all: start at most 1024 wide (``run_active_set`` doubles the buffer when a face outgrows it)
    if cov.full_rank:
        capacity = min(int(allowed.sum()), max(1024, 2 * int(np.count_nonzero(y)))) + 2
    else:
        capacity = min(int(allowed.sum()), cov.window.n_days) + 2
    chol = np.zeros((capacity, capacity))
    order = np.zeros(capacity, dtype=np.int64)
    size = start_face_nb(g_m, cov.cached_matrix(), y, order, chol)
    if size < 0:
        return start / start.sum(), CODE_FAILED, False, 0, 0
    allowed_m = np.ascontiguousarray(allowed[members])
    rounds = steps = 0
    limit = max_steps if max_steps is not None else 20 * n + 1000
    while True:
        rounds += 1
        code, size, used, order, chol = run_active_set(g_m, cov.cached_matrix(), allowed_m, y, order, size, chol,
                                                       limit - steps, ACTIVE_SET_TOL)
        steps += int(used)
        w = np.zeros(n)
        w[members] = y
        total = float(w.sum())
        if not (total > 0 and np.isfinite(w).all()):
            return start / start.sum(), CODE_FAILED, False, rounds, steps
        w /= total
        if code != CODE_KKT or steps >= limit:
            break
        support = np.flatnonzero(w)
        cov_y = cov.times(w, support) / float(g @ w)  # for y = w / g.w, the kernel's scaling
        nu = float(w[support] @ cov_y[support]) / float(g @ w)
        cached = np.zeros(n, dtype=bool)
        cached[members] = True
        cand, lam = kkt_violators_nb(g, cov_y, nu, allowed, cached, ACTIVE_SET_TOL)
        if cand.size == 0:
            break
        cand = cand[np.argsort(lam / std[cand], kind="stable")][: max(MIN_GROWTH, size // 2)]
        if max_cache is not None and cov.size + cand.size > max_cache:
            code = CODE_CACHE_FULL  # w: the KKT point of the cached strategies' problem
            break
        cov.add(cand)  # appended after the cached strategies: their positions, the face and y stay valid
        members = cov.members()
        g_m = np.ascontiguousarray(g[members])
        allowed_m = np.ascontiguousarray(allowed[members])
        y = np.concatenate([y, np.zeros(members.size - y.size)])
    diag = np.diagonal(chol)[:size]
    singular = bool(size and diag.min() ** 2 < 1e-13 * diag.max() ** 2)
    return w, int(code), singular, rounds, steps


def solve_lazy(
    g: np.ndarray,
    window: CenteredWindow,
    upper: np.ndarray,
    *,
    intensity: float = 0.0,
    previous: np.ndarray | None = None,
    seed: int = 0,
    n_samples: int | None = None,
    tol: float,
    max_rounds: int,
    max_face: int | None = None,
) -> LazyOutcome:
    """Maximize g.w / std(w) over the simplex (upper in {0, 1}: no binding max_weight).

    ``upper``: validated bounds (0 = excluded); ``max_face``: the covariance's rank
    bound on ill-posed windows (N >= T), for the dense steps (pool solve, polish).
    """
    std = np.sqrt(window.variances)
    cov = LazyCovariance(window, intensity)
    pool = initial_pool(g, std, upper, previous, POOL_SIZE)
    pool_face = max_face if max_face is not None and pool.size > max_face else None
    w_pool, pool_info = search_and_refine(
        np.ascontiguousarray(g[pool]), cov.block(pool, pool), np.ascontiguousarray(upper[pool]),
        previous=previous[pool] if previous is not None else None, seed=seed, n_samples=n_samples,
        tol=tol, max_rounds=max_rounds, max_face=pool_face)
    info: dict[str, Any] = {key: pool_info[key] for key in ("candidates", "best_candidate", "search_score")}
    info.update(pool=int(pool.size), pool_iterations=int(pool_info["iterations"]))
    start = np.zeros(g.size)
    start[pool] = w_pool
    capped = None
    if cov.full_rank:
        # positive definite low rank + diagonal: faces solved from Y (``fastopt.optimize.ratio.low_rank``),
        # no covariance cache (an optimum of thousands of strategies would make it |F|^2); with
        # many rows (shrinkage, m = T) the cache is faster while the working set stays small
        low_start = start
        if window.centered.shape[0] > LOW_RANK_DIRECT_M:
            capped = active_set_rounds(g, cov, upper, start, max_cache=MAX_CACHE_LOW_RANK)
            low_start = capped[0] if capped[1] == CODE_CACHE_FULL else None
        if low_start is not None:
            w, outcome, steps = low_rank_active_set(g, window.centered, cov.scale, cov.extra, upper > 0, low_start,
                                                    tol=ACTIVE_SET_TOL)
            cov_w = cov.times(w, np.flatnonzero(w))
            gap = kkt_gap(g, cov_w, w, upper)
            info.update(iterations=int(pool_info["iterations"]) + steps, low_rank_steps=steps, kkt_gap=gap,
                        low_rank_outcome=outcome, working_set=cov.size)
            if outcome == "kkt" and gap <= CERTIFIED_GAP * tol:
                info.update(singular=False, rank_limited=False)
                return LazyOutcome(w, info, var=float(w @ cov_w), spread=float(w @ std) ** 2)
            info["low_rank_fallback"] = f"{outcome}, KKT gap {gap:.1e}"  # the cached working set tries next
            capped = None
    w, code, singular, rounds, steps = capped if capped is not None else active_set_rounds(g, cov, upper, start)
    info.update(iterations=int(pool_info["iterations"]) + steps, active_set_kernel_steps=steps,
                working_set_rounds=rounds, working_set=cov.size)
    cov_w = cov.times(w, np.flatnonzero(w))
    gap = kkt_gap(g, cov_w, w, upper)
    info["kkt_gap"] = gap
    if code == CODE_KKT and gap <= CERTIFIED_GAP * tol:
        info.update(singular=singular, rank_limited=False)
    elif code != CODE_KKT:
        # at the rank bound (every violator dependent on the face), out of steps, or failed:
        # the dense solver's own path (SMO swaps, rank-limited rounds) decides such a window
        reasons = {CODE_DEPENDENT: "violators remain but each is linearly dependent on the face (N >= T?)",
                   CODE_STEP_LIMIT: "step limit", CODE_BUFFER: "the face outgrew the rank bound (rounding)"}
        return LazyOutcome(
            None, {**info, "active_set_code": int(code)},
            fallback=f"active set stopped: {reasons.get(code, 'numerical failure')}",
            var=float(w @ cov_w), spread=float(w @ std) ** 2, point=w)
    else:
        # KKT by the kernel's rule but not by the certificate computed from scratch (rounding
        # in the factor updates on a near-singular face): polish on the working set with the
        # dense refinement (SMO + active-set steps on cov among the cached strategies)
        members = cov.members()
        w_sub, sub_info = refine(np.ascontiguousarray(g[members]), cov.block(members, members), w[members],
                                 np.ascontiguousarray(upper[members]), tol=tol, max_rounds=max_rounds,
                                 max_face=max_face if max_face is not None and members.size > max_face else None)
        w = np.zeros(g.size)
        w[members] = w_sub
        cov_w = cov.times(w, np.flatnonzero(w))
        gap = kkt_gap(g, cov_w, w, upper)
        info.update(kkt_gap=gap, polish_iterations=int(sub_info["iterations"]),
                    polish_active_set_steps=int(sub_info["active_set_steps"]))
        info["iterations"] += int(sub_info["iterations"])
        if not gap <= CERTIFIED_GAP * tol:
            # uncertified: only the dense solver's own path classifies such a window the same
            # way every time (ill-posed windows are path-dependent), so it solves it instead
            return LazyOutcome(None, info, fallback=f"the lazy refinement ended uncertified (KKT gap {gap:.1e})",
                               var=float(w @ cov_w), spread=float(w @ std) ** 2, point=w)
        info.update(singular=bool(sub_info["singular"]), rank_limited=False)
    info["working_set"] = cov.size
    return LazyOutcome(w, info, var=float(w @ cov_w), spread=float(w @ std) ** 2)
