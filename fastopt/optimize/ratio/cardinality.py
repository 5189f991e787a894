"""Non-convex options of the slope/std solver: at most K strategies, and min_weight (drop and re-solve)."""
from __future__ import annotations

import math

import numpy as np

from fastopt.errors import InputError
from fastopt.optimize.kernels import batch_ratio_sparse_nb
from fastopt.optimize.ratio.candidates import repair
from fastopt.optimize.ratio.common import score_of, submatrix
from fastopt.optimize.ratio.refine import refine


def outsider_gain(g: np.ndarray, cov: np.ndarray, upper: np.ndarray, w: np.ndarray, members) -> np.ndarray:
    """d_k = g_k V - G (cov w)_k (the ratio's gradient at w times V^1.5, G = g.w, V = w'cov w);
    -inf for the ``members`` already held and for excluded strategies (upper <= 0)."""
    cov_w = cov @ w
    big_g = float(g @ w)
    var = float(w @ cov_w)
    d = g * var - big_g * cov_w
    d[members] = -np.inf
    d[upper <= 0] = -np.inf
    return d


def restricted(g, cov, upper, support, *, tol, max_rounds, start=None) -> tuple[np.ndarray, float, dict]:
    """Exact optimum on a support (dense N result, per-day score)."""
    support = np.asarray(sorted(set(int(k) for k in support)), dtype=np.int64)
    sub_upper = upper[support].copy()
    n = g.size
    if sub_upper.sum() < 1 - 1e-12:
        return np.zeros(n), -math.inf, {}
    sg = np.ascontiguousarray(g[support])
    sc = np.ascontiguousarray(submatrix(cov, support, support))
    if support.size == 1:
        w = np.zeros(n)
        w[support[0]] = 1.0
        return w, score_of(g, cov, w), {"iterations": 0}
    w0 = None if start is None else repair(start[support], sub_upper)
    if w0 is None:
        w0 = repair(np.ones(support.size), sub_upper)
    ws, info = refine(sg, sc, w0, sub_upper, tol=tol, max_rounds=max_rounds)
    w = np.zeros(n)
    w[support] = ws
    return w, score_of(g, cov, w), info


def tangent_greedy(g: np.ndarray, cov: np.ndarray, upper: np.ndarray, k_max: int) -> list[int]:
    """Forward selection of at most ``k_max`` strategies by exact gain in squared ratio.

    Starts from the best single g_i / std_i; each step adds the outsider j whose
    tangent portfolio on S + {j} (y = cov^-1 g restricted to the subset) stays
    strictly positive and raises g'y (the squared per-day ratio) the most. All
    outsiders are scored at once with the Schur complement of cov_SS:
    with u = cov_SS^-1 g_S and a_j = cov_SS^-1 cov_Sj,
    s_j = cov_jj - cov_Sj'a_j, e_j = g_j - cov_Sj'u, gain_j = e_j^2 / s_j,
    y_j = e_j / s_j and y_S = u - a_j y_j. O(N |S|) per step after an O(|S|^3) solve.
    Stops early when no outsider keeps every weight positive.
    """
    variances = np.diag(cov)
    # a falling strategy can still enter with a positive weight as a hedge (e_j > 0)
    usable = (upper > 0) & (variances > 0)
    if not (usable & (g > 0)).any():
        return []
    with np.errstate(divide="ignore", invalid="ignore"):
        single = np.where(usable & (g > 0), g / np.sqrt(variances), -np.inf)
    chosen = [int(np.argmax(single))]
    while len(chosen) < k_max:
        members = np.asarray(chosen, dtype=np.int64)
        outside = np.flatnonzero(usable)
        outside = outside[~np.isin(outside, members)]
        if outside.size == 0:
            break
        cov_ss = submatrix(cov, members, members)
        cross = submatrix(cov, members, outside)  # |S| x |outside|
        try:
            solved = np.linalg.solve(cov_ss, np.column_stack([g[members], cross]))
        except np.linalg.LinAlgError:
            break
        u, a = solved[:, 0], solved[:, 1:]
        schur = variances[outside] - np.einsum("ij,ij->j", cross, a)
        excess = g[outside] - cross.T @ u
        ok = schur > 1e-12 * variances[outside]
        y_new = excess / np.where(ok, schur, 1.0)
        ok &= (y_new > 0) & ((u[:, None] - a * y_new[None, :]) > 0).all(axis=0)
        if not ok.any():
            break
        gain = np.where(ok, excess * y_new, -np.inf)
        chosen.append(int(outside[int(np.argmax(gain))]))
    return chosen


def cardinality(g, cov, upper, w_full, k_max, *, seed, tol, max_rounds) -> tuple[np.ndarray, dict]:
    """At most k_max strategies: greedy forward selection vs top-k of the full optimum, then swaps."""
    n = g.size
    results: list[tuple[float, np.ndarray, str]] = []
    # (a) top-k of the unconstrained optimum
    top = np.argsort(-w_full, kind="stable")[:k_max]
    w_a, s_a, _ = restricted(g, cov, upper, top, tol=tol, max_rounds=max_rounds, start=w_full)
    results.append((s_a, w_a, "top_k_of_optimum"))
    # (b) greedy forward selection by gradient + exact re-solve
    std = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):  # std 0 only where upper == 0
        single = np.where(upper > 0, g / std, -np.inf)
    support = [int(np.argmax(single))]
    while len(support) < k_max or upper[support].sum() < 1 - 1e-12:
        if len(support) >= k_max:
            break
        w_g, s_g, _ = restricted(g, cov, upper, support, tol=tol, max_rounds=max_rounds)
        if not np.isfinite(s_g):
            w_g = np.zeros(n)
            w_g[support] = 1.0 / len(support)
        d = outsider_gain(g, cov, upper, w_g, support)
        nxt = int(np.argmax(d))
        if not np.isfinite(d[nxt]):
            break
        support.append(nxt)
    w_b, s_b, _ = restricted(g, cov, upper, support, tol=tol, max_rounds=max_rounds)
    results.append((s_b, w_b, "greedy_forward"))
    # (b2) greedy forward selection by exact gain (uncapped problems only: the tangent
    # portfolio of a subset is its long-only optimum only while no cap binds)
    if bool((upper[upper > 0] >= 1).all()):
        tangent = tangent_greedy(g, cov, upper, k_max)
        if tangent:
            w_t, s_t, _ = restricted(g, cov, upper, tangent, tol=tol, max_rounds=max_rounds)
            results.append((s_t, w_t, "greedy_tangent"))
    # (c) random supports: K-subsets of the strategies the full optimum holds (plus the
    # best singles), scored with random weights in one batch; the 4 best are re-solved exactly
    rng = np.random.default_rng(seed)
    pool = np.union1d(np.flatnonzero(w_full > 0), np.argsort(-single, kind="stable")[: 2 * k_max])
    pool = pool[upper[pool] > 0]
    if pool.size > k_max:
        n_draw = 256
        keys = rng.random((n_draw, pool.size))
        idx = pool[np.argpartition(keys, k_max - 1, axis=1)[:, :k_max]]
        val = rng.gamma(1.0, size=(n_draw, k_max))
        val /= val.sum(axis=1, keepdims=True)
        scores = batch_ratio_sparse_nb(g, cov, np.ascontiguousarray(idx), np.ascontiguousarray(val))
        for row in np.argsort(-scores)[:4]:
            w_r, s_r, _ = restricted(g, cov, upper, idx[row], tol=tol, max_rounds=max_rounds)
            results.append((s_r, w_r, "random_support"))
    # (d) local swap search from the best so far: replace the smallest member by top outsiders
    best_s, best_w, best_from = max(results, key=lambda r: r[0])
    swaps = 0
    improved = True
    rounds = 0
    while improved and rounds < 3 * k_max:
        improved = False
        rounds += 1
        members = np.flatnonzero(best_w)
        d = outsider_gain(g, cov, upper, best_w, members)
        outsiders = np.argsort(-d)[:3]
        for out_k in members[np.argsort(best_w[members])][:3]:
            for in_k in outsiders:
                if not np.isfinite(d[in_k]):
                    continue
                trial = [m for m in members if m != out_k] + [int(in_k)]
                w_t, s_t, _ = restricted(g, cov, upper, trial, tol=tol, max_rounds=max_rounds)
                if s_t > best_s * (1 + 1e-12) + 1e-300:
                    best_s, best_w, best_from, improved = s_t, w_t, "swap_search", True
                    swaps += 1
                    break
            if improved:
                break
    return best_w, {"cardinality_from": best_from, "cardinality_swaps": swaps,
                    "greedy_score_per_day": s_b}


def apply_min_weight(g, cov, upper, w, min_weight, *, tol, max_rounds) -> tuple[np.ndarray, list[int]]:
    """Zero the smallest weight under min_weight and re-optimize, until all are >= min_weight."""
    dropped: list[int] = []
    upper = upper.copy()
    while True:
        small = np.flatnonzero((w > 0) & (w < min_weight * (1 - 1e-12)))
        if small.size == 0:
            return w, dropped
        k = int(small[np.argmin(w[small])])
        upper[k] = 0.0
        dropped.append(k)
        if upper.sum() < 1 - 1e-12:
            raise InputError(
                f"min_weight {min_weight:g} cannot hold together with max_weight: dropping strategies "
                "under min_weight leaves too little room"
            )
        support = np.flatnonzero(upper > 0)
        w, _, _ = restricted(g, cov, upper, support, tol=tol, max_rounds=max_rounds, start=w)
