"""Seeded candidate search followed by the local refinement (the solver's core)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastopt.optimize.kernels import batch_ratio_sparse_nb
from fastopt.optimize.ratio.candidates import best_edges, greedy_fill, repair, repair_sparse, sparse_candidates
from fastopt.optimize.ratio.common import score_of
from fastopt.optimize.ratio.refine import refine

#: Default Dirichlet samples when no max_weight binds (the refinement is global there).
UNBOUNDED_SAMPLES = 32


def search_and_refine(
    g: np.ndarray,
    cov: np.ndarray,
    upper: np.ndarray,
    *,
    previous: np.ndarray | None,
    seed: int,
    n_samples: int | None,
    tol: float,
    max_rounds: int,
    max_face: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Search + refine on a problem whose strategies all have variance > 0 (upper may be 0)."""
    n = g.size
    rng = np.random.default_rng(seed)
    usable = np.flatnonzero(upper > 0)
    std = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):  # std 0 only where upper == 0
        single = np.where(upper > 0, g / std, -np.inf)
    order = np.argsort(-single, kind="stable")
    order = order[np.isfinite(single[order])]
    bounded = bool((upper[usable] < 1).any())
    dense: list[tuple[str, np.ndarray]] = []
    fill = greedy_fill(order, upper)
    if fill is not None:
        dense.append(("best_singles", fill))
    if bounded:
        # the max-slope allocation (greedy by g solves that LP): if any mix within the
        # bounds has a rising curve, this one does, so the ascent starts where g.w > 0
        steepest = greedy_fill(np.argsort(-np.where(upper > 0, g, -np.inf), kind="stable"), upper)
        if steepest is not None:
            dense.append(("max_slope", steepest))
    eq = repair(np.where(upper > 0, 1.0, 0.0), upper)
    if eq is not None:
        dense.append(("equal", eq))
    if previous is not None:
        prev = repair(previous, upper)
        if prev is not None:
            dense.append(("previous", prev))
    # sparse candidates: singles, best edges, Dirichlet samples
    if n_samples is None:
        # without binding caps the refinement (active set) reaches the global optimum from any
        # rising start, so samples only seed it: a few suffice; with caps SMO starts from the best
        if previous is not None:
            n_samples = 0
        elif not bounded:
            n_samples = UNBOUNDED_SAMPLES
        else:
            n_samples = int(min(4096, max(256, 2 * usable.size)))
    idx_blocks: list[np.ndarray] = []
    val_blocks: list[np.ndarray] = []
    min_support = int(math.ceil(1.0 / max(float(upper[usable].max()), 1e-12) - 1e-9))
    width = max(min_support + 6, 8)
    if not bounded:
        top = order[: min(order.size, 16 if previous is None else 4)]
        edges_idx, edges_val = best_edges(g, cov, top, width)
        idx_blocks.append(edges_idx)
        val_blocks.append(edges_val)
    if n_samples > 0 and usable.size >= 2:
        good = order[: min(order.size, max(4 * width, 64))]
        idx_s, val_s = sparse_candidates(rng, usable, good, n_samples, width, max(2, min_support))
        if bounded:
            idx_s, val_s = repair_sparse(idx_s, val_s, upper)
        idx_blocks.append(idx_s)
        val_blocks.append(val_s)
    best_w = None
    best_score = -math.inf
    best_name = ""
    n_tried = 0
    if idx_blocks:
        idx_all = np.ascontiguousarray(np.concatenate(idx_blocks))
        val_all = np.ascontiguousarray(np.concatenate(val_blocks))
        if idx_all.shape[0]:
            scores = batch_ratio_sparse_nb(g, cov, idx_all, val_all)
            n_tried += scores.size
            k = int(np.argmax(scores))
            if scores[k] > best_score:
                best_score = float(scores[k])
                best_w = np.zeros(n)
                np.add.at(best_w, idx_all[k], val_all[k])
                best_name = "edge" if (not bounded and k < idx_blocks[0].shape[0]) else "dirichlet"
    for name, w in dense:
        s = score_of(g, cov, w)
        n_tried += 1
        if s > best_score or best_w is None:
            best_score, best_w, best_name = s, w, name
    assert best_w is not None
    search_score = best_score
    w, info = refine(g, cov, best_w, upper, tol=tol, max_rounds=max_rounds, max_face=max_face)
    info.update(candidates=n_tried, best_candidate=best_name, search_score=search_score)
    return w, info
