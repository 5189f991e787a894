"""Maximize slope/std over long-only weights: seeded search + exact local refinement.

Pipeline of ``solve_ratio`` (the core, on precomputed ``g`` and ``cov``):

1. validate and exclude zero-variance strategies; refuse infeasible bounds;
2. search: sparse Dirichlet portfolios, best single strategies, the best
   edges between them, equal weights and the previous weights, all scored in
   one numba batch (``batch_ratio_sparse_nb``, O(K s^2));
3. refinement from the best candidate of the convex reformulation
   min y'cov y s.t. g.y = 1, y >= 0, y_i <= m_i sum(y) (w = y / sum y):
   without binding bounds a primal active-set method with Cholesky factor
   updates (``ratio_active_set_nb``: monotone, O(k^2) per step), then if
   that does not certify a primal-dual active-set (semismooth Newton)
   iteration (``pdas_nb`` for faces <= 80 strategies, LAPACK beyond);
   otherwise, or if that fails, pairwise (SMO) moves with the exact line
   maximizer, O(N) each thanks to an incrementally updated ``cov @ w``,
   alternated with active-set steps that solve the current face exactly
   (with a ratio test), until the KKT gap is below ``tol``;
4. options: max_strategies (search over supports), min_weight (drop and
   re-solve), and in ``optimize`` the compounded-curve variant (sequential
   linearization + pairwise ascent).

``optimize`` with N >= ``WORKING_SET_MIN_N`` (300) strategies never forms the
N x N covariance: ``fastopt.optimize.ratio.working_set`` runs the active set on a
growing cache of covariance entries with the full gradient from the returns,
and falls back to the dense path when it cannot certify.

When some g_i > 0 the problem is pseudo-concave on {g.w > 0}: a KKT point is
the global optimum, so the certificate (status "optimal") is a proof.
Derivations and measurements: docs/objective.md.

Layout: this module holds the public entry points (``solve_ratio``,
``optimize``; ``kkt_gap``, ``KKT_TOL``, ``resolve_upper`` re-exported); the
pieces live in ``fastopt.optimize.ratio``: ``common`` (tolerances, bounds, validation,
scores, KKT certificate), ``candidates`` (start points), ``refine`` (face
solves, active set, PDAS, SMO + active-set rounds), ``search`` (search +
refinement), ``working_set`` (large N without the covariance matrix),
``cardinality`` (max_strategies, min_weight) and ``compound`` (the
compounded-curve variant).
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastopt.optimize.allocation import STATUSES, Allocation, normalize_weights
from fastopt.errors import InputError, NothingToDo
from fastopt.optimize.objective import (
    DEFAULT_PERIODS_PER_YEAR,
    OBJECTIVES,
    as_returns_matrix,
    covariance_of_centered,
    resolve_shrinkage,
    shrink_covariance,
    single_thread_blas,
    window_slopes_centered,
    window_stats,
)
from fastopt.files.panel import DEFAULT_LOOKBACK_DAYS, NamedReturns, Panel, as_named_returns, last_days_mask
from fastopt.files.screen import DEFAULT_MAX_STALE_DAYS, screen_panel
from fastopt.optimize.ratio.cardinality import apply_min_weight, cardinality
from fastopt.optimize.ratio.common import (
    CERTIFIED_GAP,
    KKT_TOL,
    UNBOUNDED_REL_VAR,
    check_previous_weights,
    check_stats,
    cov_times,
    kkt_gap,
    resolve_upper,
    score_of,
    submatrix,
    usable_bounds,
)
from fastopt.optimize.constant import constant_columns, constant_reason
from fastopt.optimize.ratio.compound import refine_compound
from fastopt.optimize.ratio.refine import face_is_singular
from fastopt.optimize.ratio.search import search_and_refine
from fastopt.optimize.ratio.working_set import WORKING_SET_MIN_N, CenteredWindow, solve_lazy
from fastopt.optimize.risk_model import (
    factor_model,
    gram,
    ledoit_wolf_intensity_gram,
    resolve_risk_model,
    resolve_risk_model_auto,
    resolve_risk_model_option,
)

#: Largest dense covariance (bytes) the large-N path falls back to when the working set cannot
#: certify a window: 256 MB, N <= 5792. Beyond it the working set's own point and
#: classification stand (a 20,000-strategy matrix is 3.2 GB and 12 s to form).
DENSE_FALLBACK_MAX_BYTES = 256 * 2**20
#: Largest N x N covariance (bytes) any path forms: 1 GiB, N <= 11,585. Beyond it the options
#: that need the dense solver (max_weight bounds, max_strategies, min_weight, windows without a
#: rising strategy) are refused with an InputError instead of exhausting memory (the dense path
#: took 19.8 GB at 20,000 strategies).
DENSE_MAX_BYTES = 2**30


def _check_dense_size(n: int, why: str) -> None:
    """InputError when an N x N covariance would exceed ``DENSE_MAX_BYTES``."""
    if 8 * n * n > DENSE_MAX_BYTES:
        raise InputError(f"{why} needs the dense {n} x {n} covariance ({8 * n * n / 2**30:.1f} GB): not supported "
                         f"above {math.isqrt(DENSE_MAX_BYTES // 8)} strategies; drop the option or pre-select "
                         "strategies")

__all__ = ["KKT_TOL", "kkt_gap", "optimize", "resolve_upper", "solve_ratio"]


def classify_rising(
    status: str,
    message: str,
    info: dict[str, Any],
    *,
    var: float,
    spread: float,
    n_usable: int,
    n_days: int | None,
    max_face: int | None,
    tol: float,
) -> tuple[str, str]:
    """Status and message of a solution with a rising curve (g.w > 0), from its refinement ``info``.

    ``var``: w' cov w (per day^2); ``spread``: (sum_k w_k std_k)^2. Sets
    ``info["relative_variance"]``; tells unbounded / ill-conditioned windows apart.
    """
    info["relative_variance"] = var / spread if spread > 0 else 0.0
    degenerate = info.get("singular") and info.get("kkt_gap", 0.0) > tol * CERTIFIED_GAP
    if info.get("rank_limited") and not (spread > 0 and var / spread < UNBOUNDED_REL_VAR):
        status = "unbounded"
        message = (f"N = {n_usable} usable strategies >= T = {n_days} days: the covariance is "
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
    return status, message


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
    g, cov = check_stats(g, cov)
    n = g.size
    upper = resolve_upper(max_weight, n, names)
    if not (0.0 <= float(min_weight) <= 1.0):
        raise InputError(f"min_weight must be in [0, 1], got {min_weight!r}")
    if max_strategies is not None and (int(max_strategies) != max_strategies or max_strategies < 1):
        raise InputError(f"max_strategies must be a positive integer, got {max_strategies!r}")
    previous_weights = check_previous_weights(previous_weights, n)
    diag = np.diag(cov)
    upper, excluded, usable = usable_bounds(upper, diag, min_weight=float(min_weight),
                                            max_strategies=max_strategies)
    ann = math.sqrt(periods_per_year)
    base_diag = {"excluded": excluded, "n_usable": int(usable.size)}

    def finish(w: np.ndarray, status: str, solver: str, info: dict[str, Any], message: str) -> Allocation:
        w = normalize_weights(w)
        s = score_of(g, cov, w)
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
        if not g[usable[0]] > 0:  # the no-rising-curve rule holds for one strategy too
            return finish(w, "no_rising_curve", "search", {"kkt_gap": 0.0},
                          "no allocation has a rising curve: the only usable strategy's slope is <= 0 "
                          "(least-bad allocation returned)")
        return finish(w, "single_strategy", "search", {"kkt_gap": 0.0},
                      "only one usable strategy: it gets weight 1")

    # Excluded strategies (zero variance, or max_weight 0) get upper = 0, which every step of the
    # solver respects, so the full problem is solved in place when their variances are >= 0 (copying
    # the usable sub-matrix cost ~2-3 ms at N = 1000); a negative diagonal (a caller's invalid cov)
    # is cut out instead, so that no sqrt of it is ever taken.
    index = np.arange(n) if bool((diag >= 0).all()) else usable
    sub_g = g if index.size == n else np.ascontiguousarray(g[index])
    sub_cov = cov if index.size == n else np.ascontiguousarray(submatrix(cov, index, index))
    sub_upper = np.ascontiguousarray(upper[index])
    sub_prev = previous_weights[index] if previous_weights is not None else None
    usable_g = g[usable]
    max_face = None
    if n_days is not None and usable.size >= int(n_days):
        max_face = max(int(n_days) - 1, 1)
        base_diag["rank_bound"] = max_face
    with single_thread_blas():
        w_sub, info = search_and_refine(sub_g, sub_cov, sub_upper, previous=sub_prev, seed=seed,
                            n_samples=n_samples, tol=tol, max_rounds=max_rounds, max_face=max_face)
    status = "optimal" if info["kkt_gap"] <= tol * CERTIFIED_GAP else "max_iterations"

    if max_strategies is not None and np.count_nonzero(w_sub) > max_strategies:
        info["kkt_gap_unrestricted"] = info.pop("kkt_gap")
        w_sub, card_info = cardinality(sub_g, sub_cov, sub_upper, w_sub, int(max_strategies),
                                        seed=seed, tol=tol, max_rounds=max_rounds)
        info.update(card_info)
        status = "cardinality_heuristic"

    if min_weight > 0:
        w_sub, dropped = apply_min_weight(sub_g, sub_cov, sub_upper, w_sub, float(min_weight),
                                           tol=tol, max_rounds=max_rounds)
        info["dropped_below_min_weight"] = [int(index[k]) for k in dropped]
        if dropped and status != "cardinality_heuristic":
            # the weights now solve the problem without the dropped strategies: certify that one
            kept_upper = sub_upper.copy()
            kept_upper[dropped] = 0.0
            info["kkt_gap_unrestricted"] = info.get("kkt_gap")
            info["kkt_gap"] = kkt_gap(sub_g, cov_times(sub_cov, w_sub), w_sub, kept_upper)
            status = "optimal" if info["kkt_gap"] <= tol * CERTIFIED_GAP else "max_iterations"
    if max_strategies is not None or (min_weight > 0 and info.get("dropped_below_min_weight")):
        # the unrestricted solve's flags do not describe these weights (K or fewer strategies,
        # or the kept ones): judge their own support
        info["rank_limited"] = False
        info["singular"] = face_is_singular(sub_cov, np.flatnonzero((w_sub > 0) & (w_sub < sub_upper)))

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
        supp = np.flatnonzero(w_sub)
        sw = w_sub[supp]
        var = float(sw @ submatrix(sub_cov, supp, supp) @ sw)
        spread = float(sw @ np.sqrt(np.diag(sub_cov))[supp]) ** 2
        status, message = classify_rising(status, message, info, var=var, spread=spread,
                                          n_usable=int(usable.size), n_days=n_days, max_face=max_face, tol=tol)
    return finish(w, status, "search", info, message)


def _solve_large(
    g: np.ndarray,
    window: CenteredWindow,
    *,
    intensity: float,
    max_weight: float | Mapping[Any, float] | Sequence[float],
    min_weight: float,
    max_strategies: int | None,
    previous_weights: np.ndarray | None,
    seed: int,
    periods_per_year: float,
    names: Sequence[str] | None,
    n_samples: int | None,
    tol: float = KKT_TOL,
    max_rounds: int = 200,
) -> Allocation:
    """``solve_ratio`` for large N, without the full covariance when it can (``fastopt.optimize.ratio.working_set``).

    Falls back to the dense solver (recorded in ``diagnostics["fallback"]``) for binding
    max_weight bounds, windows without a rising strategy, and whenever the lazy
    refinement ends without a KKT certificate.
    """
    started = time.perf_counter()
    n = g.size
    n_days = window.n_days
    upper = resolve_upper(max_weight, n, names)
    previous_weights = check_previous_weights(previous_weights, n)
    upper, excluded, usable = usable_bounds(upper, window.variances, min_weight=min_weight,
                                            max_strategies=max_strategies)
    low_rank = intensity == 0.0 and window.specific is None  # the sample covariance: rank <= T - 1
    rank_face = n_days - 1 if low_rank and usable.size >= n_days else None
    dense_ok = 8 * n * n <= DENSE_FALLBACK_MAX_BYTES
    fallback = ""
    if usable.size == 1:
        fallback = "one usable strategy"
    elif not (g[usable] > 0).any():
        fallback = "no rising strategy"
    elif bool(((upper > 0) & (upper < 1)).any()):
        fallback = "max_weight bounds"
    else:
        with single_thread_blas():
            outcome = solve_lazy(g, window, upper, intensity=intensity, previous=previous_weights, seed=seed,
                                 n_samples=n_samples, tol=tol, max_rounds=max_rounds, max_face=rank_face)
        if outcome.weights is not None:
            info = {"excluded": excluded, "n_usable": int(usable.size), **outcome.info}
            if rank_face is not None:
                info["rank_bound"] = rank_face
            status, message = classify_rising("optimal", "KKT certified optimum", info, var=outcome.var,
                                              spread=outcome.spread, n_usable=int(usable.size),
                                              n_days=n_days, max_face=rank_face, tol=tol)
            w = normalize_weights(outcome.weights)
            per_day = float(g @ w) / math.sqrt(outcome.var) if outcome.var > 0 else math.nan
            info["seconds"] = time.perf_counter() - started
            return Allocation(weights=w, score=per_day * math.sqrt(periods_per_year), status=status,
                              solver="search", iterations=int(info["iterations"]), message=message,
                              diagnostics=info)
        # the dense solve starts as it would have without the lazy attempt (not from its
        # point: on ill-posed windows a rank-limited start can keep it from the optimum)
        fallback = outcome.fallback
        if not dense_ok and outcome.point is not None:
            # too large for the dense solver: the working set's point and its own verdict stand
            # (at the rank bound: rank_limited, status unbounded; otherwise uncertified)
            info = {"excluded": excluded, "n_usable": int(usable.size), **outcome.info,
                    "fallback": f"none (N = {n}: the dense covariance would need {8 * n * n / 2**30:.1f} GB): "
                                f"{fallback}"}
            info["rank_limited"] = bool(rank_face is not None and info.get("active_set_code") == 2)
            if rank_face is not None:
                info["rank_bound"] = rank_face
            status, message = classify_rising("max_iterations", STATUSES.get("max_iterations", "max_iterations"),
                                              info, var=outcome.var, spread=outcome.spread,
                                              n_usable=int(usable.size), n_days=n_days, max_face=rank_face,
                                              tol=tol)
            w = normalize_weights(outcome.point)
            per_day = float(g @ w) / math.sqrt(outcome.var) if outcome.var > 0 else math.nan
            info["seconds"] = time.perf_counter() - started
            return Allocation(weights=w, score=per_day * math.sqrt(periods_per_year), status=status,
                              solver="search", iterations=int(info["iterations"]), message=message,
                              diagnostics=info)
    _check_dense_size(n, f"this window ({fallback})")
    cov = covariance_of_centered(window.centered) if window.specific is None else _model_matrix(window)
    alloc = solve_ratio(g, shrink_covariance(cov, intensity), max_weight=upper, previous_weights=previous_weights,
                        seed=seed, periods_per_year=periods_per_year, n_samples=n_samples, tol=tol,
                        max_rounds=max_rounds, n_days=n_days if low_rank else None)
    alloc.diagnostics["fallback"] = f"dense solve: {fallback}"
    return alloc


def _model_matrix(window: CenteredWindow) -> np.ndarray:
    """The N x N covariance scale * Y'Y + diag(specific) of a factor-model window (dense fallback only)."""
    with single_thread_blas():
        cov = window.centered.T @ window.centered
    cov *= window.scale if window.scale is not None else 1.0 / (window.n_days - 1)
    cov[np.diag_indices_from(cov)] = window.variances
    return cov


def _lookback_days(lookback: Any) -> int | None:
    """``lookback`` of ``optimize``: None (the default), "all", or a positive whole number of days."""
    if lookback is None:
        return DEFAULT_LOOKBACK_DAYS
    if isinstance(lookback, str) and lookback == "all":
        return None
    if isinstance(lookback, bool) or not isinstance(lookback, (int, np.integer)) or lookback < 1:
        raise InputError(f"lookback must be a positive whole number of days or 'all', got {lookback!r}")
    return int(lookback)


def _window_of(read: NamedReturns, lookback: Any) -> tuple[np.ndarray, list[str] | None, np.ndarray, dict[str, Any]]:
    """The rows and columns ``optimize`` solves on: (T x N window, names, kept columns, diagnostics).

    Dated input: the last ``lookback`` calendar days (default 365, the CLI's ``--lookback``), the
    rule of ``fastopt optimize``. A Panel also drops, like ``load_panel(lookback=...)`` does, the
    strategies with fewer than ``min(30, lookback)`` days of their own history inside that window
    and the days only they had, so that ``optimize(load_panel(folder))`` finds the CLI's weights.
    Undated input (an array, a frame without dates): the whole matrix, or its last ``lookback``
    rows when ``lookback`` is given.
    """
    names = read.names
    arr = np.asarray(read.values, dtype=np.float64) if read.dates is not None else read.values
    info: dict[str, Any] = {}
    if read.dates is None:
        if lookback is None or (isinstance(lookback, str) and lookback == "all"):
            arr = as_returns_matrix(arr)
            return arr, names, np.arange(arr.shape[1]), info
        days = _lookback_days(lookback)
        arr = as_returns_matrix(arr)
        return np.ascontiguousarray(arr[-days:]), names, np.arange(arr.shape[1]), info
    if arr.ndim != 2:
        raise InputError(f"returns must be a T x N matrix, got {arr.ndim} dimensions")
    days = _lookback_days(lookback)
    dates = read.dates
    rows = last_days_mask(dates, days) if days is not None else np.ones(dates.size, dtype=bool)
    keep = np.arange(arr.shape[1])
    panel = read.panel
    if panel is not None and days is not None and arr.shape[1]:
        from fastopt.files.loader import DEFAULT_MIN_HISTORY_DAYS

        active = panel.active_mask()[rows]
        required = min(DEFAULT_MIN_HISTORY_DAYS, days)
        counts = active.sum(axis=0)
        keep = np.flatnonzero(counts >= required)
        if keep.size < arr.shape[1]:
            info["dropped"] = {names[k]: (f"only {int(counts[k])} day(s) of history in the window "
                                          f"(minimum {required})" if counts[k] else
                                          "no daily return inside the window")
                               for k in np.flatnonzero(counts < required)}
            if keep.size == 0:
                raise NothingToDo(f"no strategy has {required} days of history in the last {days} days "
                                  "(pass lookback='all' or a longer lookback)")
            rows = rows.copy()
            rows[rows] = active[:, keep].any(axis=1)
    window = arr[rows][:, keep]
    if rows.any():
        info["window_start"] = str(dates[rows][0])
        info["window_end"] = str(dates[rows][-1])
    info["lookback_days"] = days
    names = [names[k] for k in keep] if names is not None else None
    if window.shape[0] < 2:
        raise NothingToDo(f"the {days}-day window holds {window.shape[0]} day(s) of data: need at least 2")
    return as_returns_matrix(window), names, keep, info


def optimize(
    returns: Any,
    objective: str = "slope_std",
    *,
    lookback: int | str | None = None,
    dates: Any = None,
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
    risk_model: str = "auto",
    factors: int | None = None,
    max_stale_days: int = DEFAULT_MAX_STALE_DAYS,
    allow_synthetic: bool = False,
) -> Allocation:
    """Optimal long-only weights for a window of daily returns; an :class:`Allocation` with the names.

    ``returns``: a T x N array of simple daily returns (fractions), a pandas or polars
    DataFrame (one numeric column per strategy, named after it; dates from a ``Date``/``date``
    column or a pandas DatetimeIndex; any other non-numeric column is refused) or a
    :class:`~fastopt.files.panel.Panel` (``fastopt.load_panel``). ``names`` / ``dates`` override the
    input's. ``lookback``: with dates, the window is the last ``lookback`` calendar days (default
    365, like ``fastopt optimize --lookback``; ``"all"``: every day); a Panel also drops the
    strategies with under 30 days of their own history in it, as the CLI's loader does, so
    ``optimize(load_panel(folder))`` gives the CLI's weights (its other defaults match too).
    Without dates (a plain array) the whole matrix is the window unless ``lookback`` (rows) is given.
    ``objective``: "slope_std" (cumulative-sum curve, convex reformulation,
    certified optimum) or "slope_std_compound" (compounded curve: search +
    local refinement from the slope_std optimum, status "local").
    ``solver``: "search" (this module) or "exact" (cvxpy + Clarabel, slope_std only).
    ``shrinkage``: X in [0, 1] or "auto" (Ledoit-Wolf intensity): the solver sees
    (1-X) cov + X diag(cov); ``score`` is always reported on the raw covariance.
    ``risk_model``: "auto" (default: "sample" when the window is well-posed, fewer usable
    strategies than days or a shrinkage asked for, else "factor";
    ``fastopt.optimize.risk_model.resolve_risk_model_auto``, the walk-forward's rule too),
    "sample" (the sample covariance: exactly the user's slope/std) or "factor": a statistical
    factor model cov = L'L + diag(d) from the ``factors`` leading principal components of the
    window (default min(20, min(N, T-1) // 4); ``fastopt.optimize.risk_model``), positive definite, so
    well-posed when strategies outnumber days; from 300 strategies on it is solved without
    ever forming an N x N matrix. Shrinkage, if any, then applies to the model's covariance.
    ``score`` stays the window's true slope/std (sample covariance);
    ``diagnostics["model_score"]`` is the objective the solver saw.
    ``max_stale_days`` / ``allow_synthetic`` (a Panel only, the CLI's screening,
    ``fastopt.files.screen``): a strategy whose last day trails the panel's by more than
    ``max_stale_days`` calendar days, or backtested on synthetic prices, is left out with its reason
    in ``diagnostics["screened"]`` (name -> reason), as ``fastopt optimize`` skips it.
    """
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if solver not in ("search", "exact"):
        raise InputError(f"unknown solver {solver!r}; choose search or exact")
    screened: dict[str, str] = {}
    if isinstance(returns, Panel):
        screen = screen_panel(returns, "", max_stale_days=max_stale_days, allow_synthetic=allow_synthetic)
        screened = {s.strategy: s.reason for s in screen.skips if s.strategy not in returns.skipped}
        if screen.panel.n_strategies == 0:
            raise NothingToDo("no usable strategy: " + "; ".join(f"{k}: {v}" for k, v in list(screened.items())[:5]))
        if screened:  # positional options follow the kept columns
            kept = [returns.names.index(name) for name in screen.panel.names]
            if previous_weights is not None and not isinstance(previous_weights, Mapping) \
                    and np.size(previous_weights) == returns.n_strategies:
                previous_weights = np.asarray(previous_weights, dtype=np.float64)[kept]
            if not isinstance(max_weight, (Mapping, int, float, np.number)) and np.size(max_weight) == returns.n_strategies:
                max_weight = [np.asarray(max_weight, dtype=np.float64)[k] for k in kept]
        returns = screen.panel
    read = as_named_returns(returns, names=names, dates=dates)
    arr, names, keep, window_info = _window_of(read, lookback)
    n_days, n_assets = arr.shape
    if names is not None and len(names) != n_assets:
        raise InputError(f"{len(names)} names for {n_assets} strategies")
    constant = constant_columns(arr)  # excluded like zero variance (fastopt.optimize.constant)
    if constant.all():
        raise NothingToDo("no usable strategy: every one is constant (zero variance) in the window")
    if keep.size < read.values.shape[1]:
        # columns dropped from a Panel: positional options follow the kept columns
        if previous_weights is not None and not isinstance(previous_weights, Mapping):
            previous_weights = np.asarray(previous_weights, dtype=np.float64)[keep]
        if not isinstance(max_weight, (Mapping, int, float, np.number)):
            max_weight = [np.asarray(max_weight, dtype=np.float64)[k] for k in keep]
    if constant.any():
        max_weight = resolve_upper(max_weight, n_assets, names)
        max_weight[constant] = 0.0
    options = dict(max_weight=max_weight, min_weight=min_weight, max_strategies=max_strategies,
                   previous_weights=previous_weights, seed=seed, periods_per_year=periods_per_year,
                   names=names)
    risk_model_option = resolve_risk_model_option(risk_model)
    risk_model = (resolve_risk_model_auto(int(n_assets - constant.sum()), n_days, shrinkage)
                  if risk_model_option == "auto" else resolve_risk_model(risk_model_option))
    auto = isinstance(shrinkage, str) and shrinkage.strip().lower() == "auto"
    working_set = (solver == "search" and n_assets >= WORKING_SET_MIN_N and max_strategies is None
                   and not float(min_weight) > 0)
    n_factors = None
    if working_set:
        g, _, centered = window_slopes_centered(arr)
        # with N >= T the T x T Gram matrix serves the Ledoit-Wolf intensity and the principal
        # components (below T strategies the N x N products are the smaller ones)
        gram_matrix = gram(centered) if (auto or risk_model == "factor") and n_assets >= n_days else None
        if auto:
            intensity = (ledoit_wolf_intensity_gram(centered, gram_matrix) if gram_matrix is not None
                         else resolve_shrinkage(shrinkage, arr))
        else:
            intensity = resolve_shrinkage(shrinkage, None)
        if risk_model == "factor":
            model = factor_model(centered, factors, gram_matrix)
            n_factors = model.factors
            window = CenteredWindow.from_model(model)
        else:
            window = CenteredWindow.from_centered(centered)
        del gram_matrix
        alloc = _solve_large(g, window, intensity=intensity, n_samples=n_samples, **options)

        def raw_per_day(w: np.ndarray) -> float:
            portfolio = centered @ w
            var = float(portfolio @ portfolio) / (n_days - 1)
            return float(g @ w) / math.sqrt(var) if var > 0 else -math.inf
    else:
        if solver == "search" and n_assets >= WORKING_SET_MIN_N:
            _check_dense_size(n_assets, "max_strategies or min_weight")
        stats = window_stats(arr)
        intensity = resolve_shrinkage(shrinkage, arr)
        model_cov = stats.cov
        if risk_model == "factor":
            model = factor_model(arr - stats.mean, factors)
            n_factors = model.factors
            model_cov = model.dense()
        cov = shrink_covariance(model_cov, intensity)
        if solver == "exact":
            if objective != "slope_std":
                raise InputError("solver='exact' supports only the slope_std objective")
            from fastopt.optimize.exact import solve_exact

            alloc = solve_exact(stats.g, cov, max_weight=max_weight, min_weight=min_weight,
                                max_strategies=max_strategies, periods_per_year=periods_per_year, names=names)
        else:
            alloc = solve_ratio(stats.g, cov, n_samples=n_samples,
                                n_days=stats.n_days if intensity == 0.0 and risk_model == "sample" else None,
                                **options)

        def raw_per_day(w: np.ndarray) -> float:
            return score_of(stats.g, stats.cov, w)
    if objective == "slope_std_compound" and alloc.status not in ("single_strategy",):
        alloc = refine_compound(arr, alloc, names=names, max_weight=max_weight, seed=seed,
                                 periods_per_year=periods_per_year, n_samples=n_samples,
                                 max_strategies=max_strategies, min_weight=min_weight,
                                 previous_weights=previous_weights)
    ann = math.sqrt(periods_per_year)
    w = alloc.weights
    if objective == "slope_std":
        raw = raw_per_day(np.asarray(w))
        raw_score = raw * ann if math.isfinite(raw) else float("nan")
    else:
        raw_score = alloc.score
    status = alloc.status
    message = alloc.message
    n_days, n_assets = arr.shape
    if status == "optimal" and n_assets >= n_days and intensity == 0.0 and risk_model == "sample":
        status = "ill_conditioned"
        message = (f"N = {n_assets} strategies >= T = {n_days} days: the covariance is singular, the "
                   "optimum is not unique and fits noise; use risk_model='factor' or a longer lookback")
    diagnostics = {**alloc.diagnostics, **window_info, "shrinkage": intensity, "objective": objective,
                   "n_days": int(n_days)}
    if constant.any():
        diagnostics["excluded"] = {**diagnostics.get("excluded", {}),
                                   **{int(k): constant_reason(arr[:, k]) for k in np.flatnonzero(constant)}}
    if intensity > 0:
        diagnostics["shrunk_score"] = alloc.score
    diagnostics["risk_model"] = risk_model
    diagnostics["risk_model_option"] = risk_model_option
    if screened:
        diagnostics["screened"] = screened
    if risk_model == "factor":
        diagnostics["factors"] = n_factors
        diagnostics["model_score"] = alloc.score
    portfolio = arr @ np.asarray(w)
    sd = float(np.std(portfolio, ddof=1))
    sharpe = float(portfolio.mean() / sd * ann) if sd > 0 else 0.0
    return Allocation(weights=w, score=float(raw_score), status=status, solver=alloc.solver,
                      iterations=alloc.iterations, message=message, diagnostics=diagnostics,
                      names=tuple(names) if names is not None else None, sharpe=sharpe, vol=sd * ann)
