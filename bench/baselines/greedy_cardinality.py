"""Cardinality baseline: greedy forward selection of K strategies, then an exact re-solve.

Selection (exact for the long-only problem on each subset it keeps): start from the
strategy with the best g_i / sqrt(Σ_ii) (g_i > 0); at each step add the candidate c
whose tangent portfolio on S ∪ {c} (y ∝ Σ_S∪c⁻¹ g_S∪c) has all weights positive and
the largest squared ratio gᵀΣ⁻¹g. Adding c costs a Schur-complement update for all
candidates at once: with u = Σ_S⁻¹ g_S, b_c = Σ_S,c, A = Σ_S⁻¹ Σ_S,C and
s_c = Σ_cc − b_cᵀ A_c, the new ratio² is g_Sᵀu + (g_c − b_cᵀu)² / s_c and the new
weights are y_c = (g_c − b_cᵀu) / s_c, y_S = u − A_c y_c. When the tangent weights
are all positive they are also the long-only optimum on that subset. Selection stops
early when no candidate keeps every weight positive (fewer than K are then used).
Finally the long-only problem on the chosen subset is re-solved with cvxpy + Clarabel.
"""
from __future__ import annotations

import numpy as np

from bench.baselines.exact_cvxpy import exact_from_stats
from bench.baselines.reference import RatioStats, ratio_stats


def greedy_select(stats: RatioStats, max_strategies: int) -> list[int]:
    """Indices (in selection order) of at most ``max_strategies`` strategies."""
    g = stats.g
    cov = stats.cov
    variances = np.diag(cov).copy()
    usable = (g > 0) & (variances > 0)
    if not np.any(usable):
        raise ValueError("no strategy has a rising curve and non-zero variance")
    first_ratio = np.where(usable, g / np.sqrt(np.where(variances > 0, variances, 1.0)), -np.inf)
    selected = [int(np.argmax(first_ratio))]
    while len(selected) < max_strategies:
        s_idx = np.array(selected)
        candidates = np.setdiff1d(np.arange(g.shape[0]), s_idx)
        if candidates.size == 0:
            break
        inverse = np.linalg.inv(cov[np.ix_(s_idx, s_idx)])
        u = inverse @ g[s_idx]
        cross = cov[np.ix_(s_idx, candidates)]
        a = inverse @ cross
        schur = variances[candidates] - np.einsum("kc,kc->c", cross, a)
        excess = g[candidates] - cross.T @ u
        ok = schur > 1e-12 * np.maximum(variances[candidates], 1e-300)
        safe_schur = np.where(ok, schur, 1.0)
        y_new = excess / safe_schur
        y_old = u[:, None] - a * y_new[None, :]
        ok &= (y_new > 0) & np.all(y_old > 0, axis=0)
        if not np.any(ok):
            break
        gain = np.where(ok, excess**2 / safe_schur, -np.inf)
        selected.append(int(candidates[int(np.argmax(gain))]))
    return selected


def greedy_cardinality(returns: np.ndarray, *, max_strategies: int) -> np.ndarray:
    """Simplex weights (N,) with at most ``max_strategies`` non-zeros (see module doc)."""
    stats = ratio_stats(returns)
    chosen = np.array(sorted(greedy_select(stats, max_strategies)))
    sub = RatioStats(g=stats.g[chosen], cov=stats.cov[np.ix_(chosen, chosen)], n_days=stats.n_days)
    weights = np.zeros(stats.g.shape[0])
    weights[chosen] = exact_from_stats(sub)
    return weights
