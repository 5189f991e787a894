"""The large-N path of ``optimize``: a lazily computed covariance (``fastopt.optimize.ratio.working_set``).

It must give the dense solver's (and cvxpy's) optimum, certify it on the whole
problem, and hand every case it does not handle to the dense solver.
"""
from __future__ import annotations

import math
from unittest.mock import patch

import numpy as np
import pytest
from fakes.universes import universe
from hypothesis import given, settings
from hypothesis import strategies as st

import fastopt.optimize.solver as optimizer_module
import fastopt.optimize.ratio.working_set as working_set_module
from fastopt.errors import FastoptError
from fastopt.optimize.objective import shrink_covariance, window_slopes_centered, window_stats
from fastopt.optimize.solver import optimize, solve_ratio
from fastopt.optimize.ratio.common import kkt_gap
from fastopt.optimize.ratio.working_set import CenteredWindow, LazyCovariance


def lazy_everywhere(pool_size: int):
    """Route every optimize() call through the lazy path, starting from a pool of ``pool_size``."""
    return patch.multiple(optimizer_module, WORKING_SET_MIN_N=2), patch.multiple(
        working_set_module, POOL_SIZE=pool_size)


@settings(deadline=None)
@given(seed=st.integers(0, 10_000), n_days=st.integers(3, 60), n_assets=st.integers(1, 40),
       intensity=st.sampled_from([0.0, 0.3, 1.0]), calls=st.integers(1, 4))
def test_lazy_covariance_equals_the_dense_matrix(seed, n_days, n_assets, intensity, calls):
    rng = np.random.default_rng(seed)
    returns = rng.standard_normal((n_days, n_assets)) * 0.02
    _, _, centered = window_slopes_centered(returns)
    lazy = LazyCovariance(CenteredWindow.from_centered(centered), intensity, capacity=2)
    dense = shrink_covariance(window_stats(returns).cov, intensity)
    scale = float(np.abs(dense).max()) or 1.0
    for _ in range(calls):  # blocks requested in pieces: the cache grows and reorders nothing
        rows = rng.choice(n_assets, size=rng.integers(1, n_assets + 1), replace=True)
        cols = rng.choice(n_assets, size=rng.integers(1, n_assets + 1), replace=False)
        np.testing.assert_allclose(lazy.block(rows, cols), dense[np.ix_(rows, cols)], rtol=0, atol=1e-13 * scale)
        w = np.where(rng.random(n_assets) < 0.5, rng.random(n_assets), 0.0)
        support = np.flatnonzero(w)
        np.testing.assert_allclose(lazy.times(w, support), dense @ w, rtol=0, atol=1e-13 * scale * n_assets)
    members = lazy.members()
    assert np.array_equal(np.sort(members), np.unique(members)) and members.size == lazy.size
    block = lazy.block(members, members)
    assert np.array_equal(block, block.T)  # exactly symmetric, as the Cholesky expects


@settings(deadline=None)
@given(seed=st.integers(0, 10_000), n_days=st.integers(30, 150), n_assets=st.integers(2, 60),
       pool=st.sampled_from([2, 5, 16]),
       kind=st.sampled_from(["plain", "duplicates", "zero_column", "one_positive", "shrinkage", "previous"]))
def test_lazy_path_reaches_the_exact_optimum(seed, n_days, n_assets, pool, kind):
    returns = universe(seed, n_days, n_assets)
    options: dict = {}
    if kind == "duplicates":
        returns = np.column_stack([returns, returns[:, :2]])
    elif kind == "zero_column":
        returns = np.column_stack([returns, np.zeros(n_days)])
    elif kind == "one_positive":
        g = window_stats(returns).g
        flip = g > 0
        flip[int(np.argmax(g))] = False
        returns = np.where(flip, -returns, returns)
    elif kind == "shrinkage":
        options["shrinkage"] = 0.3
    elif kind == "previous":
        options["previous_weights"] = np.random.default_rng(seed).dirichlet(np.ones(returns.shape[1]))
    returns = np.ascontiguousarray(returns)
    if not (window_stats(returns).g > 0).any():
        return
    dense = optimize(returns, **options)
    first, second = lazy_everywhere(pool)
    with first, second:
        lazy = optimize(returns, **options)
    try:
        exact = optimize(returns, solver="exact", **options)
    except FastoptError:  # Clarabel gives up on some tiny degenerate windows (user_limit)
        exact = None
    w = np.asarray(lazy.weights)
    assert np.isfinite(w).all() and (w >= 0).all() and abs(math.fsum(w.tolist()) - 1) <= 1e-12
    assert lazy.status == dense.status or {lazy.status, dense.status} <= {"optimal", "ill_conditioned", "unbounded"}
    if dense.status in ("optimal", "ill_conditioned") and dense.diagnostics["kkt_gap"] <= 1e-10:
        # a finite certified optimum: the lazy path certifies the same score on the whole problem
        assert lazy.score == pytest.approx(dense.score, rel=1e-8)
        assert exact is None or lazy.score >= exact.score * (1 - 1e-9)
        assert lazy.diagnostics["kkt_gap"] <= 1e-10
    if returns.shape[1] >= 2 and "fallback" not in lazy.diagnostics:
        assert lazy.diagnostics["working_set"] <= returns.shape[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_pool_grows_to_the_exact_optimum(seed):
    returns = universe(seed, 120, 40)
    first, second = lazy_everywhere(4)
    with first, second:
        lazy = optimize(returns)
    assert lazy.diagnostics["pool"] == 4 and "fallback" not in lazy.diagnostics
    assert np.count_nonzero(lazy.weights) > 4  # the PDAS brought in strategies outside the pool
    exact = optimize(returns, solver="exact")
    assert lazy.score == pytest.approx(exact.score, rel=1e-8) and lazy.score >= exact.score * (1 - 1e-12)


@pytest.mark.parametrize(("n_days", "n_assets"), [(365, 600), (1000, 400)])
def test_large_universe_takes_the_lazy_path_and_matches_the_dense_solve(n_days, n_assets):
    returns = universe(7, n_days, n_assets)
    alloc = optimize(returns, risk_model="sample")
    assert "fallback" not in alloc.diagnostics
    assert alloc.diagnostics["working_set"] < n_assets  # the covariance was never formed in full
    stats = window_stats(returns)
    dense = solve_ratio(stats.g, stats.cov, n_days=n_days)
    assert alloc.score == pytest.approx(dense.score, rel=1e-9)
    cov_w = stats.cov @ np.asarray(alloc.weights)
    assert kkt_gap(stats.g, cov_w, np.asarray(alloc.weights), np.ones(n_assets)) <= 1e-10
    warm = optimize(returns, previous_weights=alloc.weights, risk_model="sample")
    assert warm.score == pytest.approx(alloc.score, rel=1e-9)


def test_cases_the_lazy_path_leaves_to_the_dense_solver_are_recorded():
    returns = universe(3, 365, 400)
    capped = optimize(returns, max_weight=0.05, risk_model="sample")
    assert capped.diagnostics["fallback"] == "dense solve: max_weight bounds"
    stats = window_stats(returns)
    dense = solve_ratio(stats.g, stats.cov, max_weight=0.05, n_days=365)
    assert capped.score == pytest.approx(dense.score, rel=1e-9)
    assert float(np.max(capped.weights)) <= 0.05 + 1e-12
    falling = optimize(-np.abs(returns) - 1e-4, risk_model="sample")
    assert falling.status == "no_rising_curve"
    assert falling.diagnostics["fallback"] == "dense solve: no rising strategy"
    with pytest.raises(Exception, match="previous_weights"):
        optimize(returns, previous_weights=np.ones(3), risk_model="sample")


def test_shrunk_windows_take_the_lazy_path_even_when_the_optimum_holds_more_than_t_strategies():
    """Review find: the factor buffer was sized by the sample covariance's rank (T) even with
    shrinkage (full rank), so a support above T overflowed it and every such solve fell back."""
    returns = universe(1, 60, 400)
    lazy = optimize(returns, shrinkage=0.5)
    assert "fallback" not in lazy.diagnostics and np.count_nonzero(lazy.weights) > 60
    stats = window_stats(returns)
    dense = solve_ratio(stats.g, shrink_covariance(stats.cov, 0.5))
    assert lazy.diagnostics["shrunk_score"] == pytest.approx(dense.score, rel=1e-9)
