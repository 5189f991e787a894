"""Start candidates of the slope/std search: bound repair, sparse Dirichlet portfolios, simplex edges."""
from __future__ import annotations

import numpy as np


def repair(w: np.ndarray, upper: np.ndarray) -> np.ndarray | None:
    """Map w >= 0 onto {0 <= w <= upper, sum 1} by capping and redistributing; None if impossible."""
    w = np.clip(np.asarray(w, dtype=np.float64), 0.0, None) * (upper > 0)
    if w.sum() <= 0:
        return None
    w = w / w.sum()
    for _ in range(w.size + 1):
        over = w > upper
        if not over.any():
            return w
        excess = float((w[over] - upper[over]).sum())
        w[over] = upper[over]
        free = (w > 0) & (w < upper)
        room = float(w[free].sum())
        if room <= 0:
            free = (upper > w)
            if not free.any():
                return None
            share = (upper - w) * free
            w = w + excess * share / share.sum()
        else:
            w[free] *= 1.0 + excess / room
    return w if (w <= upper + 1e-12).all() else None


def repair_sparse(idx: np.ndarray, val: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized ``repair`` of K sparse candidates; rows that cannot satisfy the bounds are dropped.

    A slot's cap is its strategy's bound divided by how often the index repeats
    in the row; excess over a cap is spread proportionally over the slots with
    room, repeated until nothing exceeds its cap (at most ``width`` rounds).
    """
    width = idx.shape[1]
    mult = (idx[:, :, None] == idx[:, None, :]).sum(axis=2)
    cap = upper[idx] / mult
    active = val > 0
    val = val.copy()
    for _ in range(width + 1):
        over = val > cap
        if not over.any():
            break
        excess = ((val - cap) * over).sum(axis=1)
        val = np.minimum(val, cap)
        free = active & (val < cap)
        room = (val * free).sum(axis=1)
        scale = np.divide(excess, room, out=np.zeros_like(room), where=room > 0)
        val = val + free * val * scale[:, None]
    ok = (np.abs(val.sum(axis=1) - 1.0) <= 1e-12) & (val <= cap * (1 + 1e-12)).all(axis=1)
    return np.ascontiguousarray(idx[ok]), np.ascontiguousarray(np.minimum(val[ok], cap[ok]))


def greedy_fill(order: np.ndarray, upper: np.ndarray) -> np.ndarray | None:
    """Fill strategies in ``order`` up to their bound until the weights sum to 1."""
    w = np.zeros(upper.size)
    left = 1.0
    for k in order:
        take = min(upper[k], left)
        w[k] = take
        left -= take
        if left <= 1e-15:
            return w / w.sum()
    return None


def sparse_candidates(
    rng: np.random.Generator,
    pool: np.ndarray,
    good_pool: np.ndarray,
    n_samples: int,
    width: int,
    min_support: int,
) -> tuple[np.ndarray, np.ndarray]:
    """K sparse Dirichlet(1) portfolios: idx (K x width) and val (K x width), zero-padded."""
    min_support = min(max(1, min_support), width)
    sizes = rng.integers(min_support, width + 1, size=n_samples)
    idx = np.empty((n_samples, width), dtype=np.int64)
    half = n_samples // 2 if good_pool.size >= width else 0
    # first half: supports drawn from the best strategies; second half: from all
    for source, rows in ((good_pool, slice(0, half)), (pool, slice(half, n_samples))):
        count = rows.stop - rows.start
        if count <= 0:
            continue
        # drawn with replacement: a repeated index just adds its weights (the scores stay exact)
        idx[rows] = source[rng.integers(0, source.size, size=(count, width))]
    val = rng.gamma(1.0, size=(n_samples, width))
    val[np.arange(width)[None, :] >= sizes[:, None]] = 0.0
    val /= val.sum(axis=1, keepdims=True)
    return idx, val


def best_edges(g: np.ndarray, cov: np.ndarray, top: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For every pair (a, b) of ``top``, the best point of the simplex edge between them.

    From vertex a, moving t to b gives slope g_a + t d and variance
    c_aa + 2 t p + t^2 q; d f/d t has the sign of a0 + a1 t (see pair_step_nb),
    so the best t in [0, 1] is -a0/a1 clipped when a1 < 0, else an end point.
    """
    ia, ib = np.triu_indices(top.size, k=1)
    a, b = top[ia], top[ib]
    big_g, var = g[a], cov[a, a]
    d = g[b] - g[a]
    p = cov[b, a] - cov[a, a]
    q = cov[b, b] + cov[a, a] - 2.0 * cov[a, b]
    a0 = d * var - big_g * p
    a1 = d * p - big_g * q
    with np.errstate(divide="ignore", invalid="ignore"):
        interior = np.clip(np.where(a1 < 0, -a0 / np.where(a1 < 0, a1, -1.0), 0.0), 0.0, 1.0)
        end_b = (g[b] / np.sqrt(cov[b, b])) > (g[a] / np.sqrt(cov[a, a]))
    t = np.where(a1 < 0, interior, np.where(end_b, 1.0, 0.0))
    idx = np.zeros((a.size, width), dtype=np.int64)
    val = np.zeros((a.size, width))
    idx[:, 0], idx[:, 1] = a, b
    val[:, 0], val[:, 1] = 1.0 - t, t
    return idx, val
