"""The walk-forward's factor-model path: slope/std fits under a statistical factor model, no N x N.

Used by ``fastopt.walkforward`` with ``risk_model="factor"`` (or "auto" on a universe
where some fit window has at least ``lookback`` usable strategies: the sample covariance is
singular there, ``fastopt.optimize.risk_model.resolve_risk_model_auto``). Each fit day's
risk model is exactly the one ``optimize(window, risk_model="factor")`` builds
(``fastopt.optimize.risk_model.factor_model``: the k leading principal components of the
window from its T x T Gram matrix, plus specific variances), and the fit is the model's
unique optimum (the model covariance is positive definite), so the weights equal
``optimize``'s on that window to solver tolerance. What is incremental:

- the raw Gram matrix R R' of the window (T x T, T = lookback) slides: sliding by j days
  shifts it by j rows and columns and computes j new rows, ``R @ r_new`` (O(T N) a day
  instead of T^2 N). Every entry is one dot product computed once (no accumulation, so no
  drift). The centered Gram X X' = C R R' C (C = I - 11'/T) follows in O(T^2);
- the fit starts from yesterday's weights: the low-rank primal active set
  (``fastopt.optimize.ratio.low_rank.low_rank_active_set``, faces solved from the k x N
  loadings) from yesterday's support, accepted only if ``kkt_gap`` on the full gradient
  certifies it at the solver's tolerance (it is then the model's unique optimum);
  otherwise, and on the first day, ``optimize(window, risk_model="factor")`` itself runs
  (warm-started from yesterday's weights).

Per fit day at N = 2,000, T = 365: the slide ~1 ms, the k = 20 leading eigenpairs of the
T x T centered Gram (LAPACK dsyevr on a subset) ~6 ms, the loadings (k T N) ~2 ms, the warm
active set ~1-2 ms. Memory: the T x N window is a view of the input; the model is k x N.
Units: daily returns as fractions, variances per day^2.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fastopt.errors import NothingToDo
from fastopt.optimize.allocation import Allocation, normalize_weights
from fastopt.optimize.constant import constant_from_moments
from fastopt.optimize.objective import single_thread_blas
from fastopt.optimize.ratio.common import CERTIFIED_GAP, KKT_TOL, kkt_gap
from fastopt.optimize.ratio.low_rank import low_rank_active_set
from fastopt.optimize.risk_model import check_factors, factor_model_from_gram

#: Most active-set steps of the warm start before ``optimize`` takes over.
WARM_MAX_STEPS = 200
#: Columns per chunk when counting changes (bounds the int32 prefix sums to chunk x days).
VARIATION_CHUNK = 4096


def window_variation(data: NDArray[np.float64], lookback: int, ends: list[int] | NDArray[np.int64]) -> NDArray[np.bool_]:
    """(len(ends), N) booleans: strategy j is not constant on window ``data[end - lookback : end]``.

    Exact: a column varies on a window iff two consecutive days in it differ, counted with
    prefix sums of ``data[t] != data[t - 1]`` (O(T N), columns in chunks of ``VARIATION_CHUNK``).
    """
    n_total, n = data.shape
    ends = np.asarray(ends, dtype=np.int64)
    starts = ends - int(lookback)
    out = np.zeros((ends.size, n), dtype=bool)
    for lo in range(0, n, VARIATION_CHUNK):
        block = data[:, lo : lo + VARIATION_CHUNK]
        prefix = np.zeros((n_total, block.shape[1]), dtype=np.int32)  # prefix[t] = changes on days 1..t
        np.cumsum(block[1:] != block[:-1], axis=0, out=prefix[1:])
        # changes at days start + 1 .. end - 1
        out[:, lo : lo + VARIATION_CHUNK] = prefix[ends - 1] > prefix[starts]
    return out


def window_variation_np(data: NDArray[np.float64], lookback: int, ends: list[int] | NDArray[np.int64]) -> NDArray[np.bool_]:
    """Reference of :func:`window_variation`: ``ptp > 0`` of each window, one window at a time."""
    return np.array([np.ptp(data[end - lookback : end], axis=0) > 0 for end in ends], dtype=bool).reshape(
        len(ends), data.shape[1])


class SlidingGram:
    """The raw Gram matrix R R' (T x T) of the window ``data[end - T : end]``, slid day by day.

    ``move_to(end)``: sliding forward by j < T days drops the j oldest rows and columns and
    computes the j newest, ``R @ R[-j:]'`` (O(T N j)); any other move recomputes R R'
    (T^2 N). ``centered()``: X X' of the window minus its column means, C (R R') C.
    """

    def __init__(self, data: NDArray[np.float64], lookback: int) -> None:
        self.data = data
        self.lookback = int(lookback)
        self.matrix = np.zeros((self.lookback, self.lookback))
        self.end = -1
        self.recomputed = 0
        self.slid = 0

    def move_to(self, end: int) -> None:
        lookback = self.lookback
        if end < lookback or end > self.data.shape[0]:
            raise ValueError(f"window end {end} out of range")
        window = self.data[end - lookback : end]
        step = end - self.end
        with single_thread_blas():
            if self.end < 0 or not 0 < step < lookback:
                self.matrix = window @ window.T
                self.matrix = 0.5 * (self.matrix + self.matrix.T)  # exactly symmetric
                self.recomputed += 1
            else:
                g = self.matrix
                g[: lookback - step, : lookback - step] = g[step:, step:].copy()
                new = window @ window[lookback - step :].T  # (T, j): every pair with a new day
                g[:, lookback - step :] = new
                g[lookback - step :, :] = new.T
                self.slid += 1
        self.end = end

    def centered(self) -> NDArray[np.float64]:
        """X X' with X the window minus its column means: G - r 1' - 1 r' + mean(G), r = row means."""
        g = self.matrix
        rows = g.mean(axis=1)
        out = g - rows[:, None]
        out -= rows[None, :]
        out += rows.mean()
        return out


def usable_columns(varies: NDArray[np.bool_], mean: NDArray[np.float64], var: NDArray[np.float64],
                   n_days: int) -> NDArray[np.bool_]:
    """Strategies a fit may hold: varying on the window and not numerically constant by
    ``fastopt.optimize.constant.constant_columns``'s rule (std <= 1e-12 max(rms, typical std)),
    evaluated from the window's moments."""
    var = np.maximum(var, 0.0)
    rms = np.sqrt(var * (n_days - 1) / n_days + mean * mean)
    return varies & (var > 0) & ~constant_from_moments(np.sqrt(var), rms)


class FactorFitter:
    """The slope/std fit of each walk-forward window under the factor model (see the module doc).

    ``fit(day, g, mean, var, varies, previous)`` fits ``data[day - lookback : day]``:
    ``g``, ``mean``, ``var`` the window's slopes, means and variances (ddof 1), ``varies`` its
    non-constant columns, ``previous`` yesterday's weights (None: cold). Returns an
    ``Allocation`` whose ``score`` is the window's true slope/std (sample covariance,
    annualized) as ``optimize`` reports it, ``diagnostics["model_score"]`` the model's;
    None when no strategy is usable (every one constant on the window).
    """

    def __init__(self, data: NDArray[np.float64], lookback: int, *, factors: int | None, max_weight: Any,
                 min_weight: float, max_strategies: int | None, seed: int, periods_per_year: float,
                 incremental: bool) -> None:
        self.data = data
        self.lookback = int(lookback)
        self.n = data.shape[1]
        self.factors = check_factors(factors, self.lookback, self.n)
        self.max_weight = max_weight
        self.min_weight = float(min_weight)
        self.max_strategies = max_strategies
        self.seed = seed
        self.periods_per_year = float(periods_per_year)
        self.incremental = bool(incremental)
        self.warm_ok = (incremental and self.min_weight == 0 and max_strategies is None
                        and np.ndim(max_weight) == 0 and float(max_weight) >= 1.0)
        self.gram = SlidingGram(data, lookback) if self.warm_ok else None
        self.warm_fits = 0
        self.optimize_fits = 0

    def fit(self, day: int, g: NDArray[np.float64], mean: NDArray[np.float64], var: NDArray[np.float64],
            varies: NDArray[np.bool_], previous: NDArray[np.float64] | None) -> Allocation | None:
        window = self.data[day - self.lookback : day]
        if self.gram is not None:
            self.gram.move_to(day)  # every fit day, so that the next day slides by one
        if self.gram is not None and previous is not None:
            allowed = usable_columns(varies, mean, var, self.lookback)
            warm = self._warm(window, g, mean, var, allowed, previous)
            if warm is not None:
                self.warm_fits += 1
                return warm
        return self._optimize(window, previous)

    def _warm(self, window: NDArray[np.float64], g: NDArray[np.float64], mean: NDArray[np.float64],
              var: NDArray[np.float64], allowed: NDArray[np.bool_], previous: NDArray[np.float64]) -> Allocation | None:
        """The model's optimum from yesterday's support, KKT certified; None to let ``optimize`` run."""
        if np.count_nonzero(allowed) < 2 or not (g[allowed] > 0).any():
            return None  # single strategy / no rising curve: optimize's own rules
        start = np.where(allowed, previous, 0.0)
        if not float(g @ start) > 0:
            return None
        model = factor_model_from_gram(self.gram.centered(), window, self.factors,
                                       variances=np.maximum(var, 0.0), mean=mean)
        g_c = np.ascontiguousarray(g, dtype=np.float64)
        with single_thread_blas():
            w, outcome, steps = low_rank_active_set(g_c, model.rows, 1.0, model.specific, allowed, start,
                                                    tol=KKT_TOL, max_steps=WARM_MAX_STEPS)
            if outcome != "kkt":
                return None
            w = normalize_weights(w)
            cov_w = model.times(w)
        upper = np.where(allowed, 1.0, 0.0)
        gap = kkt_gap(g_c, cov_w, w, upper)
        if not gap <= KKT_TOL * CERTIFIED_GAP:
            return None
        model_var = float(w @ cov_w)
        support = np.flatnonzero(w)
        portfolio = window[:, support] @ w[support] - float(mean[support] @ w[support])
        raw_var = float(portfolio @ portfolio) / (self.lookback - 1)
        ann = math.sqrt(self.periods_per_year)
        slope = float(g_c @ w)
        score = slope / math.sqrt(raw_var) * ann if raw_var > 0 else float("nan")
        return Allocation(weights=w, score=score, status="optimal", solver="factor_warm_start",
                          iterations=int(steps), message="KKT certified optimum of the factor model (warm start)",
                          diagnostics={"kkt_gap": gap, "support": int(support.size), "risk_model": "factor",
                                       "factors": self.factors,
                                       "model_score": slope / math.sqrt(model_var) * ann})

    def _optimize(self, window: NDArray[np.float64], previous: NDArray[np.float64] | None) -> Allocation | None:
        """``optimize(window, risk_model="factor")``, the reference, warm-started from ``previous``."""
        from fastopt.optimize.solver import optimize

        self.optimize_fits += 1
        try:
            return optimize(window, risk_model="factor", factors=self.factors, max_weight=self.max_weight,
                            min_weight=self.min_weight, max_strategies=self.max_strategies,
                            previous_weights=previous if self.incremental else None, seed=self.seed,
                            periods_per_year=self.periods_per_year)
        except NothingToDo:  # every strategy constant on the window
            return None
