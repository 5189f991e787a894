"""Every numba kernel of fastopt.optimize.kernels against its numpy twin (1e-12) and the definitions."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastopt.optimize import kernels as nb
from fastopt.optimize import kernels_np as ref
from fastopt.optimize.objective import window_stats

TOL = 1e-12


def _window(seed: int, n_days: int, n_assets: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    market = rng.standard_normal(n_days) * 0.02
    beta = rng.uniform(-0.5, 1.0, n_assets)
    noise = rng.standard_normal((n_days, n_assets)) * rng.uniform(0.005, 0.03, n_assets)
    return np.ascontiguousarray(rng.normal(3e-4, 1e-3, n_assets) + np.outer(market, beta) + noise)


def _simplex(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(n))
    w[rng.random(n) < 0.3] = 0.0
    if w.sum() == 0:
        w[0] = 1.0
    return w / w.sum()


def _close(a, b, tol=TOL):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    scale = max(1.0, float(np.max(np.abs(b[np.isfinite(b)]), initial=0.0)))
    assert a.shape == b.shape
    assert np.array_equal(np.isfinite(a), np.isfinite(b))
    fin = np.isfinite(a)
    assert np.all(np.abs(a[fin] - b[fin]) <= tol * scale), (a, b)


seeds = st.integers(0, 10_000)
days = st.integers(2, 60)
assets = st.integers(1, 12)


@given(n_days=st.integers(0, 400))
def test_slope_basis_matches_twin_and_polyfit(n_days):
    _close(nb.slope_basis_nb(n_days), ref.slope_basis(n_days))
    if n_days >= 2:
        r = np.random.default_rng(n_days).standard_normal(n_days)
        slope = np.polyfit(np.arange(n_days), np.cumsum(r), 1)[0]
        assert abs(nb.slope_basis_nb(n_days) @ r - slope) <= 1e-9 * max(1.0, abs(slope))


@given(seed=seeds, n_days=days, n_assets=assets, compound=st.booleans())
def test_portfolio_score_matches_twin(seed, n_days, n_assets, compound):
    returns = _window(seed, n_days, n_assets)
    w = _simplex(seed + 1, n_assets)
    _close(nb.portfolio_score_nb(returns, w, compound), ref.portfolio_score(returns, w, compound))


@given(seed=seeds, n_days=st.integers(3, 60), n_assets=st.integers(1, 12), width=st.integers(1, 6))
def test_batch_kernels_match_twins(seed, n_days, n_assets, width):
    returns = _window(seed, n_days, n_assets)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_assets, size=(7, width))
    val = rng.dirichlet(np.ones(width), size=7)
    val[0, :] = 0.0  # an all-zero candidate: variance 0 -> -inf in both
    centered = returns - returns.mean(0)
    cov = np.ascontiguousarray(centered.T @ centered / (n_days - 1))
    g = ref.slope_basis(n_days) @ returns
    _close(nb.batch_ratio_sparse_nb(g, cov, idx, val), ref.batch_ratio_sparse(g, cov, idx, val))
    _close(nb.batch_compound_sparse_nb(returns, idx, val), ref.batch_compound_sparse(returns, idx, val))
    # the sparse ratio equals the direct definition of the score on the dense weights
    for k in range(1, 7):
        dense = np.zeros(n_assets)
        np.add.at(dense, idx[k], val[k])
        direct = ref.portfolio_score(returns, dense, False)
        if np.isfinite(direct):
            assert abs(nb.batch_ratio_sparse_nb(g, cov, idx[k:k + 1], val[k:k + 1])[0] - direct) <= 1e-9 * max(1, abs(direct))


@given(seed=seeds, n_days=st.integers(3, 60), n_assets=st.integers(1, 12))
def test_gradients_match_twins_and_finite_differences(seed, n_days, n_assets):
    returns = _window(seed, n_days, n_assets)
    w = _simplex(seed + 2, n_assets)
    centered = returns - returns.mean(0)
    cov = np.ascontiguousarray(centered.T @ centered / (n_days - 1))
    g = ref.slope_basis(n_days) @ returns
    cov_w = cov @ w
    _close(nb.ratio_gradient_nb(g, cov_w, w), ref.ratio_gradient(g, cov_w, w))
    s_nb, grad_nb = nb.compound_score_grad_nb(returns, w)
    s_np, grad_np = ref.compound_score_grad(returns, w)
    _close(s_nb, s_np)
    _close(grad_nb, grad_np)
    # finite differences of the compound score
    k = seed % n_assets
    h = 1e-6
    up, down = w.copy(), w.copy()
    up[k] += h
    down[k] -= h
    fd = (ref.portfolio_score(returns, up, True) - ref.portfolio_score(returns, down, True)) / (2 * h)
    assert abs(fd - grad_np[k]) <= 1e-5 * max(1.0, abs(fd))


@given(seed=seeds, n_assets=st.integers(2, 12))
def test_pair_step_and_move_match_twins(seed, n_assets):
    returns = _window(seed, 40, n_assets)
    centered = returns - returns.mean(0)
    cov = np.ascontiguousarray(centered.T @ centered / 39)
    g = ref.slope_basis(40) @ returns
    w = _simplex(seed, n_assets)
    cov_w = cov @ w
    i, j = seed % n_assets, (seed // 7 + 1) % n_assets
    args = (g[i], g[j], g @ w, w @ cov_w, cov_w[i], cov_w[j], cov[i, i], cov[j, j], cov[i, j], 0.0, w[j])
    t_nb, t_np = nb.pair_step_nb(*args), ref.pair_step(*args)
    _close(t_nb, t_np)
    # the step is the exact line maximizer: no grid point does better
    def f(t):
        x = w.copy()
        x[i] += t
        x[j] -= t
        v = x @ cov @ x
        return (g @ x) / np.sqrt(v) if v > 0 else -np.inf
    if i != j and w[j] > 0:
        grid = np.linspace(0.0, w[j], 201)
        assert f(t_nb) >= max(f(t) for t in grid) - 1e-12 * max(1, abs(f(t_nb)))
    w1, w2 = w.copy(), w.copy()
    c1, c2 = cov_w.copy(), cov_w.copy()
    nb.pair_move_nb(cov, c1, w1, i, j, 0.01)
    ref.pair_move(cov, c2, w2, i, j, 0.01)
    _close(w1, w2)
    _close(c1, c2)
    _close(c1, cov @ w1)


@given(seed=seeds, n_assets=st.integers(2, 15), capped=st.booleans())
def test_smo_matches_twin(seed, n_assets, capped):
    returns = _window(seed, 80, n_assets)
    centered = returns - returns.mean(0)
    cov = np.ascontiguousarray(centered.T @ centered / 79)
    g = ref.slope_basis(80) @ returns
    upper = np.full(n_assets, max(1.0 / n_assets + 0.05, 0.3) if capped else 1.0)
    w0 = np.full(n_assets, 1.0 / n_assets)
    w1, w2 = w0.copy(), w0.copy()
    c1, c2 = cov @ w1, cov @ w2
    it1, gap1 = nb.smo_ratio_nb(g, cov, w1, c1, upper, 1e-6, 12)
    it2, gap2 = ref.smo_ratio(g, cov, w2, c2, upper, 1e-6, 12)
    assert it1 == it2
    _close(w1, w2)
    assert np.all(w1 >= 0) and np.all(w1 <= upper)
    assert abs(w1.sum() - 1) < 1e-12
    f0 = (g @ w0) / np.sqrt(w0 @ cov @ w0)
    f1 = (g @ w1) / np.sqrt(w1 @ cov @ w1)
    assert f1 >= f0 - 1e-12 * abs(f0)


@given(seed=seeds, n_assets=st.integers(1, 20), k=st.integers(1, 20))
def test_linear_algebra_kernels_match_twins(seed, n_assets, k):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n_assets, n_assets + 3))
    cov = np.ascontiguousarray(a @ a.T)
    w = _simplex(seed, n_assets)
    support = np.flatnonzero(w)
    _close(nb.cov_matvec_sparse_nb(cov, w, support), ref.cov_matvec_sparse(cov, w, support))
    _close(nb.cov_matvec_sparse_nb(cov, w, support), cov @ w)
    m = rng.standard_normal((k, k + 2))
    spd = m @ m.T + np.eye(k)
    chol = np.ascontiguousarray(np.linalg.cholesky(spd))
    rhs = rng.standard_normal(k)
    _close(nb.cholesky_solve_nb(chol, rhs), ref.cholesky_solve(chol, rhs))
    _close(spd @ nb.cholesky_solve_nb(chol, rhs), rhs, 1e-9)


def test_zero_std_portfolio_score_is_nan():
    returns = np.full((8, 2), 0.25)  # exactly representable: std is exactly 0
    assert np.isnan(nb.portfolio_score_nb(returns, np.array([0.5, 0.5]), False))
    assert np.isnan(ref.portfolio_score(returns, np.array([0.5, 0.5]), False))


@pytest.mark.parametrize("compound", [False, True])
def test_score_on_real_prices(shared_prices, compound):
    import polars as pl

    closes = [pl.read_csv(shared_prices / f"{s}-USD.csv")["close"].to_numpy()[-366:] for s in ("BTC", "ETH", "BNB", "SOL")]
    returns = np.ascontiguousarray(np.column_stack([c[1:] / c[:-1] - 1 for c in closes]))
    w = np.array([0.4, 0.3, 0.2, 0.1])
    _close(nb.portfolio_score_nb(returns, w, compound), ref.portfolio_score(returns, w, compound))


@given(seed=seeds, n_assets=st.integers(2, 30), start_size=st.integers(1, 5))
def test_pdas_matches_twin_and_certifies(seed, n_assets, start_size):
    returns = _window(seed, 120, n_assets)
    centered = returns - returns.mean(0)
    cov = np.ascontiguousarray(centered.T @ centered / 119)
    g = ref.slope_basis(120) @ returns
    if not (g > 0).any():
        g = np.abs(g)
    allowed = np.ones(n_assets, dtype=bool)
    start = np.zeros(n_assets, dtype=bool)
    start[np.argsort(-g)[:start_size]] = True
    y1, it1, st1, m1 = nb.pdas_nb(g, cov, allowed, start, 40, 80)
    y2, it2, st2, m2 = ref.pdas(g, cov, allowed, start, 40, 80)
    assert (it1, st1) == (it2, st2)
    np.testing.assert_array_equal(m1, m2)
    _close(y1, y2)
    if st1 == 0:  # converged: KKT holds, y >= 0, g.y = 1
        assert (y1 >= 0).all() and abs(g @ y1 - 1) < 1e-9
        lam = cov @ y1 - (y1 @ cov @ y1) * g
        assert lam.min() >= -1e-9 * abs(y1 @ cov @ y1) * np.abs(g).max()
    # a face larger than max_face stops with status 3 and hands back its mask
    y3, _, st3, m3 = nb.pdas_nb(g, cov, allowed, np.ones(n_assets, dtype=bool), 40, 1)
    assert st3 == 3 and m3.all()


@given(seed=seeds, n_days=st.integers(3, 80), hi=st.floats(0.01, 1.0))
def test_compound_line_max_matches_twin_and_grid(seed, n_days, hi):
    rng = np.random.default_rng(seed)
    r = rng.normal(5e-4, 0.01, n_days)
    delta = rng.normal(0.0, 0.01, n_days)
    t_nb, f_nb = nb.compound_line_max_nb(r, delta, 0.0, hi, 60)
    t_np, f_np = ref.compound_line_max(r, delta, 0.0, hi, 60)
    assert 0.0 <= t_nb <= hi
    _close(f_nb, f_np)
    _close(f_nb, ref.portfolio_score(np.column_stack([r, delta]), np.array([1.0, t_nb]), True))
    grid = [ref.portfolio_score(np.column_stack([r, delta]), np.array([1.0, t]), True) for t in np.linspace(0, hi, 101)]
    # golden section finds the maximum of a unimodal line; the compound score along a
    # short segment is unimodal in practice, so nothing on the grid is better
    assert f_nb >= max(grid) - 1e-9 * max(1.0, abs(f_nb))


@settings(max_examples=20)
@given(seed=st.integers(0, 10_000), n_days=st.integers(3, 80), n_assets=st.integers(1, 60))
def test_window_stats_covariance_is_exactly_symmetric_and_matches_numpy(seed, n_days, n_assets):
    """window_stats relies on numpy's syrk path for a.T @ a (mirrored triangle): check it stays exact."""
    returns = np.random.default_rng(seed).normal(0.0, 0.02, size=(n_days, n_assets))
    cov = window_stats(returns).cov
    assert np.array_equal(cov, cov.T)
    np.testing.assert_allclose(cov, np.atleast_2d(np.cov(returns, rowvar=False)), rtol=1e-12, atol=1e-18)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-2.0, -0.5, 0.0, 0.5, 1.0, 3.25, -1e-300, 1e300]), min_size=0, max_size=70))
def test_argsort_matches_numpy_stable_sort_with_ties(values):
    """The solver's sort (replacing numba's slow-to-compile quicksort) is numpy's stable argsort:
    few distinct values make many ties, whose index order must be kept."""
    arr = np.array(values, dtype=np.float64)
    got = nb.argsort_nb(arr)
    np.testing.assert_array_equal(got, np.argsort(arr, kind="stable"))
    assert got.dtype == np.int64


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 2000))
def test_argsort_matches_numpy_on_random_floats(seed, n):
    arr = np.random.default_rng(seed).normal(size=n)
    np.testing.assert_array_equal(nb.argsort_nb(arr), np.argsort(arr, kind="stable"))
