"""Exact reference solver: the convex reformulation in cvxpy, solved by Clarabel.

max g.w / sqrt(w' cov w) over {w >= 0, sum w = 1, w_i <= m_i} equals, when
some g_i > 0, min y' cov y s.t. g.y = 1, y >= 0, y_i <= m_i sum(y), with
w = y / sum(y). Used by tests and the bench as ground truth (slow: cvxpy is
imported only here). ``max_strategies`` is not supported (non-convex).
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastopt.optimize.allocation import Allocation, normalize_weights
from fastopt.errors import FastoptError, InputError, NothingToDo
from fastopt.optimize.objective import DEFAULT_PERIODS_PER_YEAR


def solve_exact(
    g: np.ndarray,
    cov: np.ndarray,
    *,
    max_weight: float | Mapping[Any, float] | Sequence[float] = 1.0,
    min_weight: float = 0.0,
    max_strategies: int | None = None,
    periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
    names: Sequence[str] | None = None,
) -> Allocation:
    """Solve the convex reformulation with cvxpy + Clarabel (same bounds as ``solve_ratio``)."""
    import cvxpy as cp

    from fastopt.optimize.ratio.common import check_stats, resolve_upper

    started = time.perf_counter()
    g, cov = check_stats(g, cov)
    n = g.size
    if max_strategies is not None:
        raise InputError("solver='exact' does not support max_strategies (non-convex); use solver='search'")
    if min_weight:
        raise InputError("solver='exact' does not support min_weight; use solver='search'")
    upper = resolve_upper(max_weight, n, names)
    upper[~(np.diag(cov) > 0)] = 0.0
    usable = np.flatnonzero(upper > 0)
    if usable.size == 0:
        raise NothingToDo("no usable strategy: every one has zero variance or a max_weight of 0")
    if upper[usable].sum() < 1 - 1e-12:
        raise InputError(f"infeasible bounds: max weights sum to {upper[usable].sum():.6g} < 1")
    if not (g[usable] > 0).any():
        raise NothingToDo("no allocation has a rising curve (every g_i <= 0): the exact solver needs one g_i > 0")
    sg = g[usable]
    sc = cov[np.ix_(usable, usable)]
    su = upper[usable]
    # factor cov = F F' (eigen-decomposition clipped at 0, robust to singular cov)
    vals, vecs = np.linalg.eigh(0.5 * (sc + sc.T))
    keep = vals > vals.max() * 1e-15
    factor = vecs[:, keep] * np.sqrt(vals[keep])
    scale = 1.0 / math.sqrt(max(vals.max(), 1e-300))
    y = cp.Variable(usable.size, nonneg=True)
    constraints = [sg @ y == 1]
    if (su < 1).any():
        capped = np.flatnonzero(su < 1)
        constraints.append(y[capped] <= cp.multiply(su[capped], cp.sum(y)))
    problem = cp.Problem(cp.Minimize(cp.sum_squares((factor * scale).T @ y)), constraints)
    try:
        # tighter than Clarabel's defaults (1e-8): this is the reference the tests compare to
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12,
                      tol_ktratio=1e-10, max_iter=500)
    except cp.error.SolverError as exc:
        raise FastoptError(f"exact solver failed: {exc}") from exc
    if problem.status in ("infeasible", "infeasible_inaccurate"):
        raise NothingToDo("no allocation within the weight bounds has a rising curve (g.w > 0 is infeasible)")
    if y.value is None or problem.status not in ("optimal", "optimal_inaccurate"):
        raise FastoptError(f"exact solver returned status {problem.status}")
    ys = np.clip(np.asarray(y.value, dtype=np.float64), 0.0, None)
    w = np.zeros(n)
    w[usable] = ys / ys.sum()
    w = np.minimum(w, upper)
    w = normalize_weights(w)
    var = float(w @ cov @ w)
    score = float(g @ w) / math.sqrt(var) * math.sqrt(periods_per_year) if var > 0 else float("inf")
    return Allocation(
        weights=w,
        score=score,
        status="optimal" if problem.status == "optimal" else "optimal_inaccurate",
        solver="exact",
        iterations=int(problem.solver_stats.num_iters or 0),
        message=f"cvxpy + Clarabel: {problem.status}",
        diagnostics={"seconds": time.perf_counter() - started, "cvxpy_status": problem.status},
    )
