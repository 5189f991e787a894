"""The compounded-curve variant (slope_std_compound): local refinement from the slope_std optimum.

Non-convex: sequential linearization (each step an exact slope/std solve)
then pairwise ascent with a golden-section line search; status ``local``.
"""
from __future__ import annotations

import math

import numpy as np

from fastopt.optimize.allocation import Allocation, normalize_weights
from fastopt.errors import InputError, NothingToDo
from fastopt.optimize.kernels import (
    batch_compound_sparse_nb,
    compound_line_max_nb,
    compound_score_grad_nb,
    portfolio_score_nb,
)
from fastopt.optimize.kernels_np import compound_slope_and_derivative
from fastopt.optimize.objective import window_stats
from fastopt.optimize.ratio.candidates import repair, sparse_candidates
from fastopt.optimize.ratio.common import resolve_upper


def refine_compound(returns, alloc, *, names, max_weight, seed, periods_per_year, n_samples,
                     max_strategies, min_weight, previous_weights=None, max_iter: int = 300) -> Allocation:
    """Local refinement of the compounded-curve objective (non-convex).

    Starts: the slope_std optimum, plus the previous weights when given (warm
    path, no random portfolios) or the two best of ``n_samples`` random sparse
    portfolios; each is refined by sequential linearization, then pairwise ascent.
    """
    n_days, n = returns.shape
    upper = resolve_upper(max_weight, n, names)
    diag = np.einsum("ij,ij->j", returns - returns.mean(0), returns - returns.mean(0))
    upper[~(diag > 0)] = 0.0
    ann = math.sqrt(periods_per_year)
    rng = np.random.default_rng(seed)
    starts = [np.asarray(alloc.weights, dtype=np.float64)]
    usable = np.flatnonzero(upper > 0)
    if previous_weights is not None and max_strategies is None and min_weight == 0:
        prev = repair(np.asarray(previous_weights, dtype=np.float64), upper)
        if prev is not None:
            starts.append(prev)
    if n_samples is None:
        n_samples = 0 if previous_weights is not None else 256
    if max_strategies is None and usable.size >= 2 and n_samples > 0:
        order = usable
        idx, val = sparse_candidates(rng, usable, order[: min(order.size, 64)], n_samples,
                                      min(8, usable.size), 2)
        scores = batch_compound_sparse_nb(returns, np.ascontiguousarray(idx), np.ascontiguousarray(val))
        for k in np.argsort(-scores)[:2]:
            w = np.zeros(n)
            np.add.at(w, idx[k], val[k])
            rep = repair(w, upper)
            if rep is not None:
                starts.append(rep)
    best_w, best_s, total_it, best_gap = None, -math.inf, 0, math.inf
    frozen = max_strategies is not None or min_weight > 0
    cov = window_stats(returns).cov
    lin_steps = 0
    for w0 in starts:
        w1, steps = compound_linearized(returns, cov, w0, upper if not frozen else upper * (w0 > 0))
        lin_steps += steps
        w, s, it, gap = compound_ascent(returns, w1, upper, max_iter=max_iter, frozen_support=frozen)
        total_it += it + steps
        if s > best_s:
            best_w, best_s, best_gap = w, s, gap
    diagnostics = {**alloc.diagnostics, "compound_starts": len(starts), "compound_kkt_gap": best_gap,
                   "compound_linearized_steps": lin_steps,
                   "slope_std_start_score": alloc.score}
    status = "local" if alloc.status in ("optimal", "ill_conditioned", "max_iterations") else alloc.status
    return Allocation(weights=normalize_weights(best_w), score=float(best_s * ann), status=status,
                      solver=alloc.solver, iterations=alloc.iterations + total_it,
                      message="KKT point of the compounded-curve objective (non-convex: local)"
                      if status == "local" else alloc.message, diagnostics=diagnostics)


def compound_slope_grad(returns: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """(slope per day of prod(1 + r) - 1 vs t, its gradient in w); O(T N)."""
    slope, dslope_dr = compound_slope_and_derivative(returns @ w)
    return slope, dslope_dr @ returns


def compound_linearized(returns, cov, w0, upper, *, max_steps: int = 20) -> tuple[np.ndarray, int]:
    """Sequential linearization of the compounded slope, each step an exact slope/std solve.

    At w, slope(v) ~ gamma'.v on the simplex with gamma' = grad + (slope - grad.w);
    the std part is exact (v' cov v), so the step target is the certified optimum
    of gamma'.v / sqrt(v' cov v) (solve_ratio warm-started at w). A golden-section
    search on the segment [w, target] keeps only improvements of the true score.
    """
    from fastopt.optimize.solver import solve_ratio  # the public solver (imports this module)

    w = np.asarray(w0, dtype=np.float64).copy()
    best = float(portfolio_score_nb(returns, np.ascontiguousarray(w), True))
    steps = 0
    for steps in range(1, max_steps + 1):
        slope, grad = compound_slope_grad(returns, w)
        gamma = grad + (slope - float(grad @ w))
        if not (gamma[upper > 0] > 0).any():
            break
        try:
            target = np.asarray(solve_ratio(gamma, cov, max_weight=upper, previous_weights=w,
                                            n_samples=0).weights)
        except (InputError, NothingToDo):
            break
        r0 = returns @ w
        delta = returns @ target - r0
        alpha, value = compound_line_max_nb(r0, delta, 0.0, 1.0, 60)
        if not value > best * (1 + 1e-13) + 1e-300:
            break
        w = (1.0 - alpha) * w + alpha * target
        best = value
    return w, steps


def compound_ascent(returns, w0, upper, *, max_iter, frozen_support) -> tuple[np.ndarray, float, int, float]:
    """Pairwise ascent on the compound score with a golden-section line search per pair."""
    w = np.ascontiguousarray(w0, dtype=np.float64).copy()
    allowed = (upper > 0) if not frozen_support else (w > 0)
    score, grad = compound_score_grad_nb(returns, w)
    gap = math.inf
    it = 0
    for it in range(1, max_iter + 1):
        grow = np.where(allowed & (w < upper), grad, -np.inf)
        give = np.where(w > 0, grad, np.inf)
        i, j = int(np.argmax(grow)), int(np.argmin(give))
        gap = float(grow[i] - give[j]) / max(abs(score), 1e-300)
        if i == j or not np.isfinite(gap) or gap <= 1e-9:
            break
        hi = min(upper[i] - w[i], w[j])
        r = returns @ w
        delta = returns[:, i] - returns[:, j]
        t, _ = compound_line_max_nb(r, np.ascontiguousarray(delta), 0.0, float(hi), 60)
        trial = w.copy()
        trial[i] += t
        trial[j] -= t
        if t == hi:
            trial[j] = 0.0 if w[j] <= upper[i] - w[i] else trial[j]
        new_score, new_grad = compound_score_grad_nb(returns, trial)
        if not new_score > score:
            break
        w, score, grad = trial, new_score, new_grad
    return w, float(score), it, gap
