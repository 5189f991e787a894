"""Non-convex options of the slope/std solver: at most K strategies, and min_weight (drop and re-solve)."""
from __future__ import annotations

import math

import numpy as np

from fastopt.errors import InputError
from fastopt.kernels import batch_ratio_sparse_nb
from fastopt.ratio.candidates import repair
from fastopt.ratio.common import score_of, submatrix
from fastopt.ratio.refine import refine

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
        cov_w = cov @ w_g
        big_g = float(g @ w_g)
        var = float(w_g @ cov_w)
        d = g * var - big_g * cov_w
        d[support] = -np.inf
        d[upper <= 0] = -np.inf
        nxt = int(np.argmax(d))
        if not np.isfinite(d[nxt]):
            break
        support.append(nxt)
    w_b, s_b, _ = restricted(g, cov, upper, support, tol=tol, max_rounds=max_rounds)
    results.append((s_b, w_b, "greedy_forward"))
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
        cov_w = cov @ best_w
        big_g = float(g @ best_w)
        var = float(best_w @ cov_w)
        d = g * var - big_g * cov_w
        d[members] = -np.inf
        d[upper <= 0] = -np.inf
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
