"""Pure random search: the best of ``n_samples`` Dirichlet(1, …, 1) portfolios.

Scores every sample by g·w / sqrt(wᵀΣw) in blocks, choosing the cheaper way to get
the variance: through Σ (cost B·N²) when N <= T, through the centered returns
(cost B·N·T) when T < N. Memory stays bounded by ``block`` × max(N, T) floats.
"""
from __future__ import annotations

import numpy as np

from bench.baselines.reference import ratio_stats


def dirichlet_block(rng: np.random.Generator, n_samples: int, n_strategies: int) -> np.ndarray:
    """``n_samples`` × N uniform draws on the simplex (normalized standard exponentials)."""
    draws = rng.standard_exponential((n_samples, n_strategies))
    draws /= draws.sum(axis=1, keepdims=True)
    return draws


def random_search(returns: np.ndarray, *, n_samples: int = 100_000, seed: int = 0,
                  block: int = 2_000, max_blocks: int | None = None) -> np.ndarray:
    """Best-scoring simplex weights among ``n_samples`` Dirichlet draws.

    ``max_blocks`` stops early (only for timing one block to extrapolate the full run).
    """
    r = np.ascontiguousarray(returns, dtype=np.float64)
    n_days, n = r.shape
    stats = ratio_stats(r)
    use_returns = n_days < n
    centered = r - r.mean(axis=0) if use_returns else None
    rng = np.random.default_rng(seed)
    best_score = -np.inf
    best = np.full(n, 1.0 / n)
    done = 0
    blocks = 0
    while done < n_samples and (max_blocks is None or blocks < max_blocks):
        size = min(block, n_samples - done)
        w = dirichlet_block(rng, size, n)
        if use_returns:
            variance = np.einsum("tb,tb->b", centered @ w.T, centered @ w.T) / (n_days - 1)
        else:
            variance = np.einsum("bn,bn->b", w @ stats.cov, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = (w @ stats.g) / np.sqrt(variance)
        scores[~np.isfinite(scores)] = -np.inf
        i = int(np.argmax(scores))
        if scores[i] > best_score:
            best_score = float(scores[i])
            best = w[i].copy()
        done += size
        blocks += 1
    return best
