"""Walk-forward management backtest: daily out-of-sample re-optimization.

For every rebalance day ``i`` (the first out-of-sample day ``lookback`` and then
every ``rebalance`` days) the allocator is fitted on the trailing window
``returns[i - lookback : i]`` only (strictly out of sample) and its weights are
held until the next rebalance day. Day ``i``'s out-of-sample portfolio return is
``returns[i] . exposure[i]`` minus costs.

Conventions (all returns are simple daily returns as fractions):

- ``weights`` (days x N): the allocator's weights in force each day, >= 0,
  summing to 1, or all 0 on a cash day.
- ``leverage`` (days): 1.0 without ``target_vol``; with it
  ``min(target_vol / ann_vol, max_leverage)`` where ``ann_vol`` is the
  annualized volatility of the fitted weights estimated on the *same trailing window*
  by ``vol_estimator`` (``fastopt.optimize.vol_estimate``; ``"in_sample"`` is
  ``sqrt(w' cov w * periods_per_year)``, cov ddof=1); ``max_leverage`` when
  that volatility is 0; 0.0 on cash days (with ``target_vol``).
- ``exposure = leverage * weights``: the fraction of equity in each strategy.
- Turnover, drift-free convention: the book is assumed to be reset to its
  target exposures every day (returns combine as ``r . exposure``, no drift of
  the weights between days), so trading happens only when the target changes:
  ``turnover[t] = sum_a |exposure[t, a] - exposure[t - 1, a]|`` with
  ``exposure[-1] = 0`` (the first day buys in from cash). With ``rebalance=k``
  it is non-zero only on rebalance days. ``cost_bps`` charges
  ``turnover * cost_bps / 1e4`` on that day's return.
- No rising curve: when the ``slope_std`` fit reports ``no_rising_curve`` (every
  strategy's cumulative-sum slope <= 0 on the window), ``when_negative`` decides:
  ``cash`` (default: weights 0), ``previous`` (keep the weights in force, cash
  if none) or ``least-bad`` (the optimizer's least-bad allocation). A window
  where every strategy is flat (zero variance) is always held in cash
  (fit status ``no_usable_strategy``), whatever the allocator.
- Benchmarks over the same out-of-sample days, unlevered, charged the same
  ``cost_bps`` on their own turnover (the first day buys in from cash):
  ``equal_weight`` (static 1/N, normalized like the allocators' output), ``inverse_vol`` (re-fitted on the same
  schedule and trailing window: ``w ~ 1 / std``, strategies with 0 std get 0)
  and ``random_n`` static Dirichlet(1, ..., 1) portfolios drawn from ``seed``.

Speed: with ``incremental=True`` (default) the window statistics slide by one
day with rank-one updates (``fastopt.walkforward.rolling``) and each ``slope_std`` fit is
warm-started from the previous solution: first on yesterday's support
(:func:`face_warm_start`, accepted only with the solver's KKT certificate),
else ``solve_ratio(previous_weights=...)``. ``incremental=False`` recomputes
the statistics from scratch and solves cold every rebalance day (the reference
the fast path is tested against); ``warm_face=False`` keeps the incremental
statistics but always calls the solver.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fastopt import metrics
from fastopt.optimize.allocation import normalize_weights
from fastopt.errors import InputError, NothingToDo
from fastopt.optimize.objective import ledoit_wolf_intensity, single_thread_blas
from fastopt.walkforward.random_portfolios import RandomBenchmark, random_benchmark
from fastopt.optimize.ratio.common import lower_cholesky
from fastopt.walkforward.rolling import (
    DEFAULT_RECOMPUTE_EVERY,
    CovarianceSums,
    RollingStats,
    RollingWindow,
    exact_window_stats,
    face_moves_np,
)
from fastopt.walkforward.rolling_kernels import face_moves_nb
from fastopt.walkforward.factor_path import FactorFitter, window_variation
from fastopt.optimize.risk_model import check_factors, resolve_risk_model_auto, resolve_risk_model_option
from fastopt.optimize.vol_estimate import DEFAULT_VOL_ESTIMATOR, check_vol_estimator, portfolio_variance

logger = logging.getLogger("fastopt.walkforward")

__all__ = ["walkforward", "WalkForwardResult", "PortfolioSummary", "WHEN_NEGATIVE", "FAST_ALLOCATOR"]

#: Policies for a window where no strategy has a rising curve.
WHEN_NEGATIVE = ("cash", "previous", "least-bad")
#: The allocator with the incremental / warm-started fast path.
FAST_ALLOCATOR = "slope_std"
NO_RISING = "no_rising_curve"
#: Fit status of a window where every strategy is flat (zero variance): held in cash.
NO_USABLE = "no_usable_strategy"

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class PortfolioSummary:
    """Out-of-sample performance of one portfolio (fractions; ratios annualized)."""

    total_return: float
    cagr: float
    sharpe: float
    sortino: float
    max_drawdown: float  # positive fraction (0.25 = a 25 % fall)
    ann_vol: float
    avg_turnover: float  # mean daily turnover, fraction of equity per day

    @classmethod
    def of(cls, returns: NDArray[np.float64], turnover: NDArray[np.float64], periods_per_year: float) -> PortfolioSummary:
        return cls(
            total_return=float(metrics.total_return(returns)),
            cagr=float(metrics.cagr(returns, periods_per_year)),
            sharpe=float(metrics.sharpe(returns, periods_per_year)),
            sortino=float(metrics.sortino(returns, periods_per_year)),
            max_drawdown=float(metrics.max_drawdown(returns)),
            ann_vol=float(metrics.ann_vol(returns, periods_per_year)),
            avg_turnover=float(np.mean(turnover)) if turnover.size else 0.0,
        )

    def to_dict(self) -> dict[str, float]:
        return {
            "total_return": self.total_return,
            "cagr": self.cagr,
            "sharpe": self.sharpe,
            "sortino": self.sortino,
            "max_drawdown": self.max_drawdown,
            "ann_vol": self.ann_vol,
            "avg_turnover": self.avg_turnover,
        }


@dataclass(frozen=True)
class WalkForwardResult:
    """Everything a walk-forward produced. Arrays have one row per out-of-sample day.

    ``returns`` (D): net out-of-sample portfolio returns (after costs), day
    ``lookback`` of the input onwards; ``gross_returns`` (D) before costs;
    ``weights`` (D x N); ``leverage`` (D); ``turnover`` (D);
    ``rebalance_mask`` (D, True on fit days); ``fit_scores`` (fits, the
    in-sample annualized score of each ``slope_std`` fit, NaN for other
    allocators); ``fit_status`` (fits); ``no_rising`` (D, True on days held
    from a fit with no rising curve); ``cash_days`` (days with zero exposure);
    ``no_rising_days``; ``benchmarks`` (name -> PortfolioSummary) with their
    daily returns in ``benchmark_returns``; ``random`` (None when random_n=0);
    ``face_fits``: fits certified by the same-face warm start (no solver call; on the factor
    path the fits certified by its warm start, ``fastopt.walkforward.factor_path``);
    ``hold_fits``: ill-posed fits served by :func:`ill_posed_hold` (no solver call).
    """

    returns: NDArray[np.float64]
    gross_returns: NDArray[np.float64]
    weights: NDArray[np.float64]
    leverage: NDArray[np.float64]
    turnover: NDArray[np.float64]
    rebalance_mask: NDArray[np.bool_]
    fit_scores: NDArray[np.float64]
    fit_status: list[str]
    no_rising: NDArray[np.bool_]
    cash_days: int
    no_rising_days: int
    names: list[str]
    dates: NDArray[np.datetime64] | None
    lookback: int
    rebalance: int
    allocator: str
    managed: PortfolioSummary
    benchmarks: dict[str, PortfolioSummary]
    benchmark_returns: dict[str, NDArray[np.float64]]
    random: RandomBenchmark | None
    settings: dict[str, Any] = field(default_factory=dict)
    face_fits: int = 0
    hold_fits: int = 0
    elapsed_seconds: float = 0.0

    @property
    def exposures(self) -> NDArray[np.float64]:
        """Fraction of equity in each strategy each day: ``leverage * weights`` (D x N)."""
        return self.weights * self.leverage[:, None]

    @property
    def n_days(self) -> int:
        return int(self.returns.shape[0])


# --------------------------------------------------------------------------- helpers


def _as_panel_parts(returns: Any, names: list[str] | None, dates: Any) -> tuple[NDArray[np.float64], list[str], Any]:
    """Accept a Panel, a pandas or polars DataFrame or a T x N array (``fastopt.files.panel.as_named_returns``);
    validate and return (returns, names, dates)."""
    from fastopt.files.panel import as_named_returns

    read = as_named_returns(returns, names=names, dates=dates)
    names, dates = read.names, read.dates
    arr = np.asarray(read.values, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"returns must be a days x strategies matrix, got {arr.ndim} dimension(s)")
    if arr.shape[1] < 1:
        raise NothingToDo("no strategy to walk forward (0 columns)")
    if not np.isfinite(arr).all():
        day, col = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"returns has a non-finite value at day {day}, strategy {col}")
    if names is None:
        names = [f"s{a}" for a in range(arr.shape[1])]
    names = [str(n) for n in names]
    if len(names) != arr.shape[1]:
        raise InputError(f"{len(names)} names for {arr.shape[1]} strategies")
    if dates is not None:
        dates = np.asarray(dates, dtype="datetime64[D]").reshape(-1)
        if dates.size != arr.shape[0]:
            raise InputError(f"{dates.size} dates for {arr.shape[0]} days of returns")
    return np.ascontiguousarray(arr), names, dates


def _check_options(
    *, lookback: int, rebalance: int, target_vol: float | None, max_leverage: float, cost_bps: float,
    when_negative: str, random_n: int, recompute_every: int, shrinkage: float | str | None = None,
) -> None:
    from fastopt.options import check_lookback, check_max_leverage, check_target_vol

    check_lookback(lookback)  # the rules and words of every command (fastopt/options.py)
    if isinstance(rebalance, bool) or not isinstance(rebalance, (int, np.integer)) or rebalance < 1:
        raise InputError(f"rebalance must be an integer >= 1 day, got {rebalance!r}")
    if target_vol is not None:
        check_target_vol(target_vol)
    check_max_leverage(max_leverage)
    if not (math.isfinite(cost_bps) and cost_bps >= 0):
        raise InputError(f"cost_bps must be >= 0, got {cost_bps!r}")
    if when_negative not in WHEN_NEGATIVE:
        raise InputError(f"when_negative must be one of {', '.join(WHEN_NEGATIVE)}, got {when_negative!r}")
    if isinstance(random_n, bool) or not isinstance(random_n, (int, np.integer)) or random_n < 0:
        raise InputError(f"random_n must be an integer >= 0, got {random_n!r}")
    if recompute_every < 1:
        raise InputError(f"recompute_every must be >= 1, got {recompute_every!r}")
    if shrinkage is not None and shrinkage != "auto":
        if isinstance(shrinkage, bool) or not isinstance(shrinkage, (int, float, np.floating)) or not (
            0.0 <= float(shrinkage) <= 1.0
        ):
            raise InputError(f"shrinkage must be a number in [0, 1] or 'auto', got {shrinkage!r}")


def resolve_allocator(allocator: Any, **options: Any) -> tuple[str, Any]:
    """(display name, allocator object or None for the fast slope_std path); InputError if unknown.

    ``options`` go to ``fastopt.optimize.allocators.get_allocator`` (lookback for BlaveClaw
    plug-ins; max_weight, min_weight, max_strategies, seed for the optimizing built-ins).
    """
    if isinstance(allocator, str):
        spec = allocator.strip()
        if spec == FAST_ALLOCATOR:
            return FAST_ALLOCATOR, None
        from fastopt.optimize.allocators import get_allocator

        try:
            obj = get_allocator(spec, **options)
        except InputError:
            raise
        except (KeyError, ValueError, ImportError, OSError) as exc:
            raise InputError(f"unknown allocator {spec!r}: {exc}") from None
        return str(getattr(obj, "name", spec)), obj
    if hasattr(allocator, "allocate"):
        return str(getattr(allocator, "name", type(allocator).__name__)), allocator
    raise InputError(f"allocator must be a name, a path or an object with allocate(), got {allocator!r}")


def _clean_weights(raw: Any, n: int, who: str) -> tuple[NDArray[np.float64], str, float]:
    """Validate an allocator's output: (weights, status, score). Accepts an array or an Allocation."""
    status = str(getattr(raw, "status", "allocator"))
    score = getattr(raw, "score", float("nan"))
    values = getattr(raw, "weights", raw)
    if isinstance(values, dict):
        raise InputError(f"allocator {who!r} returned a dict; the walk-forward expects an array in name order")
    w = np.asarray(values, dtype=np.float64).reshape(-1)
    if w.size != n:
        raise InputError(f"allocator {who!r} returned {w.size} weights for {n} strategies")
    if not np.isfinite(w).all():
        raise InputError(f"allocator {who!r} returned non-finite weights")
    if (w < -1e-9).any():
        raise InputError(f"allocator {who!r} returned negative weights (min {w.min():.3g})")
    total = float(w.sum())
    if total > 1.0 + 1e-6:
        raise InputError(f"allocator {who!r} returned weights summing to {total:.6g} > 1")
    w = np.where(w < 0, 0.0, w)
    return w, status, float(score) if score is not None else float("nan")


def _portfolio_path(
    oos_returns: NDArray[np.float64], exposures: NDArray[np.float64], cost_bps: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(net returns, gross returns, turnover) of held exposures (D x N), drift-free turnover."""
    gross = np.einsum("tn,tn->t", oos_returns, exposures)
    change = np.empty_like(exposures)
    change[0] = exposures[0]
    np.subtract(exposures[1:], exposures[:-1], out=change[1:])
    turnover = np.abs(change).sum(axis=1)
    net = gross - turnover * (cost_bps / 1e4) if cost_bps else gross.copy()
    return net, gross, turnover


def _inverse_vol_weights(var: NDArray[np.float64]) -> NDArray[np.float64]:
    """``w ~ 1 / std`` over strategies with std > 0, per row of ``var`` (fits x N, or one
    N vector); a row with no std > 0 is all 0 (cash)."""
    std = np.sqrt(np.maximum(var, 0.0))
    inv = np.zeros_like(std)
    positive = std > 0
    inv[positive] = 1.0 / std[positive]
    total = inv.sum(axis=-1, keepdims=True)
    return np.divide(inv, total, out=np.zeros_like(inv), where=total > 0)


# --------------------------------------------------------------------------- warm start

#: Active-set moves tried by the same-face warm start before falling back to the solver.
FACE_MAX_MOVES = 20
#: Relative ridge (times the mean variance of the face) when yesterday's face is singular today.
FACE_SINGULAR_RIDGE = 1e-12
#: Relative variance under which the face is treated as degenerate (left to the solver).
FACE_MIN_RELATIVE_VARIANCE = 1e-8


def face_warm_start(
    g: NDArray[np.float64],
    cov: NDArray[np.float64] | CovarianceSums,
    previous: NDArray[np.float64],
    *,
    max_weight: float,
    var: NDArray[np.float64] | None = None,
    periods_per_year: float,
    max_moves: int = FACE_MAX_MOVES,
    max_support: int | None = None,
    use_numba: bool = True,
) -> Any | None:
    """Re-fit the ``slope_std`` optimum on yesterday's support, certified by the KKT gap.

    Between two consecutive windows the optimal support rarely changes. On a
    support S with no bound active, the optimum of ``g.w / sqrt(w' cov w)`` is
    ``w_S ~ cov_SS^-1 g_S`` (the ratio is scale-free, so the budget constraint
    has a zero multiplier). Starting from ``S = support(previous)``, up to
    ``max_moves`` active-set moves are tried (drop the non-positive weights, or
    add every strategy violating the KKT conditions); the result is accepted only
    if ``fastopt.optimize.solver.kkt_gap`` certifies it at the solver's own
    tolerance (``10 * KKT_TOL``), i.e. it *is* the global optimum the solver
    would return. Anything unusual (no rising curve, a bound hit, a singular
    or near-riskless face) returns None and the caller runs ``solve_ratio``
    warm-started from ``previous``. Cost: one Cholesky factorization of the
    face, O(|S|^3), then O(N |S| + |S|^2) per move (the factor is bordered or
    downdated, ``fastopt.walkforward.rolling_kernels.cholesky_append_nb/_delete_nb``).
    ``max_support``: give up on supports larger than this (a sample covariance
    of L days has rank <= L - 1, so bigger faces are singular). The moves run
    in ``fastopt.walkforward.rolling_kernels.face_moves_nb`` (``use_numba=False``: its
    numpy twin); the final weights are re-certified with ``kkt_gap``.
    ``cov``: the covariance, or the window's ``CovarianceSums`` (entries read on
    demand: no O(N^2) matrix per day); with sums, ``var`` (the window's
    variances, 0 for strategies flat in the window) decides who is usable.
    """
    from fastopt.optimize.allocation import Allocation
    from fastopt.optimize.solver import KKT_TOL, kkt_gap

    if not (g > 0).any():
        return None
    n = g.size
    if isinstance(cov, CovarianceSums):
        if var is None:
            raise ValueError("face_warm_start needs var with CovarianceSums")
        sums = cov
    else:
        sums = CovarianceSums.of_matrix(cov)
        var = np.diag(cov) if var is None else var
    upper = np.where(var > 0, float(max_weight), 0.0)
    if np.count_nonzero(upper) < 2:
        return None  # a single usable strategy: the solver's "single_strategy" case
    support = np.flatnonzero((previous > 0) & (upper > 0))
    if support.size == 0:
        return None
    if max_support is not None and support.size > max_support:
        return None
    size = support.size
    capacity = n if max_support is None else min(n, max_support)
    capacity = max(capacity, size)
    chol = np.zeros((min(capacity, size + 64),) * 2)
    block = sums.face(support)
    try:
        # LAPACK dpotrf (lower triangle only); the moves then update the factor in O(k^2)
        chol[:size, :size] = lower_cholesky(block, clean=True)
    except np.linalg.LinAlgError:
        # singular face (near-duplicate or barely-trading strategies): the solver's own remedy, a
        # 1e-12 relative ridge, picks one of the optimal weightings; kkt_gap below still decides
        ridge = FACE_SINGULAR_RIDGE * float(np.trace(block)) / size + 1e-300
        try:
            chol[:size, :size] = lower_cholesky(block + ridge * np.eye(size), clean=True)
        except np.linalg.LinAlgError:
            return None
    order = np.zeros(n, dtype=np.int64)
    order[:size] = support
    moves = face_moves_nb if use_numba else face_moves_np
    g_c = np.ascontiguousarray(g, dtype=np.float64)
    while True:
        code, size, w = moves(g_c, sums.cross, sums.s0, sums.n_days, upper, order, size, chol, max_moves,
                              10 * KKT_TOL, FACE_MIN_RELATIVE_VARIANCE)
        if code != -1:
            break
        if chol.shape[0] >= capacity:
            return None  # the face outgrew max_support
        bigger = np.zeros((min(capacity, 2 * chol.shape[0]),) * 2)
        bigger[:size, :size] = chol[:size, :size]
        chol = bigger  # (restart the moves from the current face with room to grow)
    if code != 1:
        return None
    support = np.sort(order[:size])
    w = normalize_weights(w)
    cov_w = sums.times_fast(w, support)
    gap = kkt_gap(g_c, cov_w, w, upper)  # the solver's own certificate on the final weights
    if not gap <= 10 * KKT_TOL:
        return None
    score = float(g_c @ w) / math.sqrt(float(w @ cov_w)) * math.sqrt(periods_per_year)
    return Allocation(weights=w, score=score, status="optimal", solver="face_warm_start",
                      message="KKT certified optimum (same-face warm start)",
                      diagnostics={"kkt_gap": gap, "support": int(support.size)})


#: Pairwise (SMO) moves that polish yesterday's weights on a held ill-posed day.
HOLD_SMO_MOVES = 200
#: Consecutive held ill-posed days after which the full (rank-limited) solve runs again.
HOLD_MAX_DAYS = 20


def ill_posed_hold(
    g: NDArray[np.float64],
    cov: NDArray[np.float64],
    previous: NDArray[np.float64],
    *,
    max_weight: float,
    periods_per_year: float,
    moves: int = HOLD_SMO_MOVES,
) -> Any | None:
    """Warm fit of an ill-posed window (usable strategies >= lookback, no shrinkage).

    Used when yesterday's fit was uncertified on an ill-posed window (stopped
    at the covariance's rank bound, ``rank_limited``, or otherwise reported
    ``unbounded``: slope/std most likely unbounded) and today's window is
    ill-posed the same way (at least ``lookback`` usable strategies). The ratio has no finite optimum to find,
    so instead of the full rank-limited solve (~0.1 s at N = 2000) yesterday's
    weights are kept and polished by at most ``moves`` pairwise moves
    (``fastopt.optimize.kernels.smo_ratio_nb``, O(N) each; the score never decreases).
    Status ``unbounded`` unless the KKT certificate happens to hold
    (then ``optimal``), the statuses the full rank-limited solve gives; None when
    yesterday's weights are unusable today (the caller runs the solver).
    """
    from fastopt.optimize.allocation import Allocation
    from fastopt.optimize.kernels import cov_matvec_sparse_nb, smo_ratio_nb
    from fastopt.optimize.solver import KKT_TOL, kkt_gap

    upper = np.where(np.diag(cov) > 0, float(max_weight), 0.0)
    w = np.where(upper > 0, previous, 0.0)
    total = float(w.sum())
    if not (total > 0 and (g > 0).any()):
        return None
    w = np.ascontiguousarray(np.minimum(w / total, upper))
    if abs(float(w.sum()) - 1.0) > 1e-12:
        return None  # a cap bites after renormalizing: leave it to the solver
    cov_c = np.ascontiguousarray(cov)
    g_c = np.ascontiguousarray(g, dtype=np.float64)
    cov_w = cov_matvec_sparse_nb(cov_c, w, np.flatnonzero(w))
    if not (float(g_c @ w) > 0 and float(w @ cov_w) > 0):
        return None
    smo_ratio_nb(g_c, cov_c, w, cov_w, upper, KKT_TOL, int(moves))
    w = normalize_weights(w)
    cov_w = cov_matvec_sparse_nb(cov_c, w, np.flatnonzero(w))
    var = float(w @ cov_w)
    if not var > 0:
        return None
    gap = kkt_gap(g_c, cov_w, w, upper)
    certified = gap <= 10 * KKT_TOL
    score = float(g_c @ w) / math.sqrt(var) * math.sqrt(periods_per_year)
    return Allocation(
        weights=w, score=score, status="optimal" if certified else "unbounded", solver="ill_posed_hold",
        message=("KKT certified optimum (ill-posed hold)" if certified else
                 "ill-posed window (usable strategies >= lookback): yesterday's uncertified weights, "
                 "polished by pairwise moves; slope/std most likely unbounded"),
        diagnostics={"kkt_gap": gap, "rank_limited": not certified},
    )


# --------------------------------------------------------------------------- main


def walkforward(
    returns: Any,
    lookback: int = 365,
    rebalance: int = 1,
    allocator: Any = FAST_ALLOCATOR,
    *,
    names: list[str] | None = None,
    dates: Any = None,
    target_vol: float | None = None,
    max_leverage: float = 5.0,
    vol_estimator: str = DEFAULT_VOL_ESTIMATOR,
    cost_bps: float = 0.0,
    when_negative: str = "cash",
    random_n: int = 1000,
    seed: int = 42,
    max_weight: float = 1.0,
    min_weight: float = 0.0,
    max_strategies: int | None = None,
    shrinkage: float | str | None = None,
    risk_model: str = "auto",
    factors: int | None = None,
    periods_per_year: float = 365,
    incremental: bool = True,
    recompute_every: int = DEFAULT_RECOMPUTE_EVERY,
    warm_face: bool = True,
    progress: ProgressCallback | None = None,
) -> WalkForwardResult:
    """Walk-forward the allocator over ``returns`` (T x N daily fractions, a pandas or polars
    DataFrame read like ``fastopt.optimize`` reads it, or a Panel: every day of it, ``lookback`` rows
    per fit, the defaults of ``fastopt walkforward``).

    Out-of-sample days are ``lookback .. T-1``; see the module docstring for the
    conventions. ``allocator``: ``"slope_std"`` (the fast incremental path), any
    name/path ``fastopt.optimize.allocators.get_allocator`` accepts, or an object with
    ``allocate(window, names, *, previous_weights=None)``. ``progress(done, total)``
    is called after every fit. ``shrinkage`` (``slope_std`` only): fit on
    ``(1 - X) cov + X diag(cov)`` with X in [0, 1], or ``"auto"`` (Ledoit-Wolf
    intensity of each window, O(L N^2) per fit); leverage and the inverse-vol
    benchmark still use the sample covariance. ``vol_estimator``: the vol the leverage divides
    ``target_vol`` by (``fastopt.optimize.vol_estimate``: ``"factor"`` default, ``"shrunk"``, ``"ewma"``, or
    ``"in_sample"``, the fitted weights' sample vol on the window, the old behaviour).
    ``risk_model`` (``slope_std`` only): ``"sample"`` (the sample covariance, the fast incremental
    path above), ``"factor"`` (each window fitted under the statistical factor model with
    ``factors`` principal components, as ``optimize(window, risk_model="factor")`` fits it:
    ``fastopt.walkforward.factor_path``, no N x N matrix) or ``"auto"`` (default): "sample" unless
    some fit window has at least ``lookback`` usable (non-constant) strategies, then "factor" for
    every window (``fastopt.optimize.risk_model.resolve_risk_model_auto``; "sample" whenever
    ``shrinkage`` is given). The model used is ``settings["risk_model"]``.
    Raises InputError (bad options, unknown allocator)
    or NothingToDo (fewer than ``lookback + 1`` days).
    """
    started = time.perf_counter()
    data, names, dates = _as_panel_parts(returns, names, dates)
    _check_options(
        lookback=lookback, rebalance=rebalance, target_vol=target_vol, max_leverage=max_leverage,
        cost_bps=cost_bps, when_negative=when_negative, random_n=random_n, recompute_every=recompute_every,
        shrinkage=shrinkage,
    )
    vol_estimator = check_vol_estimator(vol_estimator)
    if target_vol is not None and vol_estimator == "factor" and lookback < 3:
        raise InputError(f"vol_estimator='factor' needs a lookback of at least 3 days, got {lookback} "
                         "(or vol_estimator='in_sample')")
    risk_model = resolve_risk_model_option(risk_model)
    lookback = int(lookback)
    rebalance = int(rebalance)
    allocator_name, allocator_obj = resolve_allocator(
        allocator, lookback=lookback, max_weight=max_weight, min_weight=min_weight,
        max_strategies=max_strategies, seed=seed,
    )
    n_total, n_strategies = data.shape
    if n_total < lookback + 1:
        raise NothingToDo(
            f"not enough history: {n_total} days, the walk-forward needs at least lookback + 1 = "
            f"{lookback + 1} days"
        )
    fast = allocator_obj is None
    n_oos = n_total - lookback
    fit_days = list(range(lookback, n_total, rebalance))
    if factors is not None:
        check_factors(factors, lookback, n_strategies)
    if risk_model == "factor" and lookback < 3:
        raise InputError(f"risk_model='factor' needs a lookback of at least 3 days, got {lookback}")
    if risk_model == "factor" and shrinkage is not None:
        raise InputError("risk_model='factor' and shrinkage cannot be combined in the walk-forward; "
                         "use one of them")
    # the risk model of each slope_std fit: "auto" decides window by window from that window's
    # own data (no look-ahead); varies[i]: the strategies not constant on fit window i
    factor_fit = np.full(len(fit_days), fast and risk_model == "factor")
    varies = None
    if fast and risk_model != "sample" and shrinkage is None:
        varies = window_variation(data, lookback, fit_days)
        if risk_model == "auto":
            factor_fit = np.array([resolve_risk_model_auto(int(count), lookback) == "factor"
                                   for count in varies.sum(axis=1)], dtype=bool)
    n_factor_fits = int(np.count_nonzero(factor_fit))
    used_model = None if not fast else (
        "sample" if n_factor_fits == 0 else "factor" if n_factor_fits == len(fit_days) else "mixed")
    factor_fitter = (
        FactorFitter(data, lookback, factors=factors, max_weight=max_weight, min_weight=min_weight,
                     max_strategies=max_strategies, seed=seed, periods_per_year=periods_per_year,
                     incremental=incremental)
        if n_factor_fits else None
    )
    if used_model != "factor":
        need_cov = fast or target_vol is not None
    else:  # the factor path never needs the N x N covariance; the in-sample leverage does
        need_cov = target_vol is not None and vol_estimator == "in_sample"
    if fast:
        from fastopt.optimize.solver import solve_ratio
    weights = np.zeros((n_oos, n_strategies))
    fit_var = np.zeros((len(fit_days), n_strategies))  # each fit window's variances (inverse-vol benchmark)
    leverage = np.zeros(n_oos)
    no_rising = np.zeros(n_oos, dtype=bool)
    rebalance_mask = np.zeros(n_oos, dtype=bool)
    fit_scores = np.full(len(fit_days), np.nan)
    fit_status: list[str] = []

    window = (
        RollingWindow(data, lookback, full_cov=need_cov, recompute_every=recompute_every)
        if incremental else None
    )
    cov_buffer = np.empty((n_strategies, n_strategies)) if (incremental and need_cov) else None
    shrunk_buffer = np.empty((n_strategies, n_strategies)) if (fast and shrinkage is not None) else None
    if fast and risk_model == "sample" and shrinkage is None and n_strategies >= lookback:
        logger.warning(
            "%d strategies >= %d-day lookback: the sample covariance is singular; on windows where "
            "slope/std is unbounded the fits are flagged 'unbounded' (best-effort weights, not optima) "
            "and the others fit noise; the default risk_model='auto' fits the factor model there (or pass "
            "shrinkage, or a longer lookback)",
            n_strategies, lookback,
        )
    solution: NDArray[np.float64] | None = None  # last optimizer solution (warm start)
    held = np.zeros(n_strategies)  # weights in force

    face_hits = 0
    hold_hits = 0
    held_run = 0  # consecutive fits served by ill_posed_hold
    rank_limited_prev = False  # yesterday's fit stopped at the rank bound, uncertified
    # one BLAS thread: the dense algebra here is small and sequential; on a loaded 2-core
    # machine a multi-threaded BLAS oversubscribes and runs 10-20x slower
    with single_thread_blas():
        for fit_index, day in enumerate(fit_days):
            use_face = (fast and incremental and warm_face and solution is not None and min_weight == 0
                        and max_strategies is None and np.ndim(max_weight) == 0 and not factor_fit[fit_index])
            max_support: int | None = lookback - 1  # a sample cov of L days has rank <= L - 1
            # a warm day reads covariance entries from the running sums (O(N k)); the N x N
            # matrix is formed only if the solver has to run
            sums_day = use_face and shrinkage is None and window is not None
            # a factor fit needs no covariance (an in-sample leverage reads the sums when they are kept)
            with_cov = need_cov and not sums_day and not (factor_fit[fit_index] and window is not None)
            stats = _stats_for(data, day, lookback, window, with_cov, cov_buffer,
                               fast and not incremental and not factor_fit[fit_index])
            if factor_fit[fit_index]:
                allocation = factor_fitter.fit(day, stats.g, stats.mean, stats.var, varies[fit_index],
                                               solution if incremental else None)
            if fast and not factor_fit[fit_index]:
                allocation = None
                fit_cov = stats.cov
                if shrinkage is not None:
                    intensity = (ledoit_wolf_intensity(data[day - lookback : day]) if shrinkage == "auto"
                                 else float(shrinkage))
                    if intensity > 0:
                        fit_cov = _shrink_into(stats.cov, intensity, shrunk_buffer)
                        max_support = None  # shrunk covariance is positive definite
                # order: certified face warm start, then (ill-posed windows only) the uncertified
                # hold of yesterday's weights, then the solver
                if use_face:
                    allocation = face_warm_start(stats.g, window.sums() if sums_day else fit_cov, solution,
                                                 var=stats.var, max_weight=max_weight,
                                                 periods_per_year=periods_per_year, max_support=max_support)
                    face_hits += allocation is not None
                if allocation is None and stats.cov is None and need_cov:
                    stats = window.stats(cov_out=cov_buffer)  # the solver needs the matrix today
                    fit_cov = stats.cov
                hold_ok = (allocation is None and use_face and rank_limited_prev and max_support is not None
                           and int(np.count_nonzero(stats.var > 0)) >= lookback)
                if hold_ok and held_run < HOLD_MAX_DAYS:
                    allocation = ill_posed_hold(stats.g, fit_cov, solution, max_weight=max_weight,
                                                periods_per_year=periods_per_year)
                    held_run = held_run + 1 if allocation is not None else 0
                    hold_hits += allocation is not None
                else:
                    held_run = 0  # (after HOLD_MAX_DAYS held days the solver runs today)
                if allocation is None:
                    try:
                        allocation = solve_ratio(
                            stats.g, fit_cov, max_weight=max_weight, min_weight=min_weight,
                            max_strategies=max_strategies, previous_weights=solution if incremental else None,
                            seed=seed, periods_per_year=periods_per_year,
                            n_days=lookback if max_support is not None else None,
                        )
                    except NothingToDo:  # every strategy flat (zero variance) in the window
                        allocation = None
            if fast:
                # yesterday's fit was an uncertified ill-posed one (rank-limited, or flagged unbounded)
                rank_limited_prev = bool(allocation is not None and (
                    allocation.diagnostics.get("rank_limited") or allocation.status == "unbounded"))
                if allocation is None:
                    fitted, status, score = np.zeros(n_strategies), NO_USABLE, float("nan")
                else:
                    fitted, status, score = _clean_weights(allocation, n_strategies, allocator_name)
                    if not (stats.g > 0).any():  # also when the solver short-cuts (one usable strategy)
                        status = NO_RISING
                fit_scores[fit_index] = score
                if status == NO_USABLE:
                    new = fitted
                elif status == NO_RISING:
                    if when_negative == "cash":
                        new = np.zeros(n_strategies)
                    elif when_negative == "previous":
                        new = held.copy()
                    else:
                        new = fitted
                else:
                    new = fitted
                    solution = fitted
            elif not (stats.var > 0).any():  # every strategy flat in the window: nothing to weigh
                new, status = np.zeros(n_strategies), NO_USABLE
            else:
                raw = allocator_obj.allocate(
                    data[day - lookback : day], names, previous_weights=held if held.any() else None
                )
                new, status, score = _clean_weights(raw, n_strategies, allocator_name)
                fit_scores[fit_index] = score
            fit_status.append(status)
            held = new
            sums = window.sums() if stats.cov is None and window is not None and window.full_cov else None
            lev = _leverage(held, stats, sums, target_vol, max_leverage, periods_per_year,
                            vol_estimator, data[day - lookback : day])
            start = day - lookback
            stop = min(start + rebalance, n_oos)
            weights[start:stop] = held
            leverage[start:stop] = lev
            fit_var[fit_index] = stats.var
            no_rising[start:stop] = status == NO_RISING
            rebalance_mask[start] = True
            if progress is not None:
                progress(fit_index + 1, len(fit_days))

    # inverse-vol benchmark weights of every fit at once, held until the next rebalance
    inv_vol = np.repeat(_inverse_vol_weights(fit_var), rebalance, axis=0)[:n_oos]
    oos = data[lookback:]
    net, gross, turnover = _portfolio_path(oos, weights * leverage[:, None], cost_bps)
    bench_returns: dict[str, NDArray[np.float64]] = {}
    benchmarks: dict[str, PortfolioSummary] = {}
    # the allocators' own normalization (sum exactly 1), so allocator "equal" reproduces it bit for bit
    equal = np.tile(normalize_weights(np.full(n_strategies, 1.0 / n_strategies)), (n_oos, 1))
    for label, exposure in (("equal_weight", equal), ("inverse_vol", inv_vol)):
        b_net, _, b_turn = _portfolio_path(oos, exposure, cost_bps)
        bench_returns[label] = b_net
        benchmarks[label] = PortfolioSummary.of(b_net, b_turn, periods_per_year)
    managed = PortfolioSummary.of(net, turnover, periods_per_year)
    random = (
        random_benchmark(
            oos, n=random_n, seed=seed, cost_bps=cost_bps, periods_per_year=periods_per_year,
            managed_sharpe=managed.sharpe,
        )
        if random_n > 0 else None
    )
    exposure_total = np.abs(weights).sum(axis=1) * leverage
    settings = {
        "lookback": lookback, "rebalance": rebalance, "allocator": allocator_name,
        "target_vol": target_vol, "max_leverage": max_leverage, "vol_estimator": vol_estimator,
        "cost_bps": cost_bps,
        "when_negative": when_negative, "random_n": random_n, "seed": seed,
        "max_weight": max_weight, "min_weight": min_weight, "max_strategies": max_strategies,
        "shrinkage": shrinkage,
        "risk_model": used_model, "factor_fits": n_factor_fits,
        "factors": factor_fitter.factors if factor_fitter is not None else None,
        "periods_per_year": periods_per_year, "incremental": incremental,
        "recompute_every": recompute_every, "warm_face": warm_face,
    }
    return WalkForwardResult(
        returns=net,
        gross_returns=gross,
        weights=weights,
        leverage=leverage,
        turnover=turnover,
        rebalance_mask=rebalance_mask,
        fit_scores=fit_scores,
        fit_status=fit_status,
        no_rising=no_rising,
        cash_days=int(np.count_nonzero(exposure_total == 0)),
        no_rising_days=int(np.count_nonzero(no_rising)),
        names=names,
        dates=None if dates is None else dates[lookback:],
        lookback=lookback,
        rebalance=rebalance,
        allocator=allocator_name,
        managed=managed,
        benchmarks=benchmarks,
        benchmark_returns=bench_returns,
        random=random,
        settings=settings,
        face_fits=face_hits + (factor_fitter.warm_fits if factor_fitter is not None else 0),
        hold_fits=hold_hits,
        elapsed_seconds=time.perf_counter() - started,
    )


def _stats_for(
    data: NDArray[np.float64], day: int, lookback: int, window: RollingWindow | None, need_cov: bool,
    cov_buffer: NDArray[np.float64] | None, use_objective: bool,
) -> RollingStats:
    """Statistics of ``data[day - lookback : day]``: incremental (window given) or from scratch."""
    if window is not None:
        window.move_to(day)
        return window.stats(cov_out=cov_buffer, with_cov=need_cov)
    block = data[day - lookback : day]
    if use_objective:
        from fastopt.optimize.objective import window_stats

        ws = window_stats(block)
        return RollingStats(g=ws.g, mean=ws.mean, var=np.diag(ws.cov).copy(), cov=ws.cov, n_days=ws.n_days)
    return exact_window_stats(block, full_cov=need_cov)


def _shrink_into(cov: NDArray[np.float64], intensity: float, out: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(1 - X) cov + X diag(cov)`` into ``out`` (same as ``fastopt.optimize.objective.shrink_covariance``)."""
    np.multiply(cov, 1.0 - intensity, out=out)
    np.fill_diagonal(out, np.diag(cov))
    return out


def _leverage(
    held: NDArray[np.float64], stats: RollingStats, sums: CovarianceSums | None, target_vol: float | None,
    max_leverage: float, periods_per_year: float, vol_estimator: str = "in_sample",
    window: NDArray[np.float64] | None = None,
) -> float:
    """Leverage applied to ``held`` (see the module docstring). ``"in_sample"``: the covariance from
    ``stats.cov`` or, when that was not formed today, from the window's ``sums``; any other
    ``vol_estimator``: ``fastopt.optimize.vol_estimate.portfolio_variance`` of the trailing ``window``."""
    if not held.any():
        return 0.0 if target_vol is not None else 1.0
    if target_vol is None:
        return 1.0
    if vol_estimator != "in_sample":
        variance = portfolio_variance(window, held, estimator=vol_estimator)
    elif stats.cov is not None:
        variance = float(held @ stats.cov @ held)
    else:
        support = np.flatnonzero(held)
        variance = float(held[support] @ sums.times_fast(held, support)[support])
    ann_vol = math.sqrt(max(variance, 0.0) * periods_per_year)
    if ann_vol <= 0:
        return float(max_leverage)
    return float(min(target_vol / ann_vol, max_leverage))
