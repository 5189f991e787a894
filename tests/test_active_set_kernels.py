"""The primal active-set kernel (``fastopt.optimize.active_set_kernels``) against its numpy twin and the KKT rules."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fastopt.optimize import kernels_np as ref
from fastopt.optimize.active_set_kernels import (
    CODE_DEPENDENT,
    CODE_KKT,
    face_optimum_nb,
    ratio_active_set_nb,
    start_face_nb,
)


def _problem(seed: int, n_days: int, n_assets: int, duplicates: int = 0):
    rng = np.random.default_rng(seed)
    market = rng.standard_normal(n_days) * 0.02
    returns = (rng.normal(4e-4, 1e-3, n_assets) + np.outer(market, rng.uniform(-0.5, 1.0, n_assets))
               + rng.standard_normal((n_days, n_assets)) * rng.uniform(0.005, 0.03, n_assets))
    if duplicates:
        returns = np.column_stack([returns, returns[:, :duplicates]])
    centered = returns - returns.mean(0)
    cov = np.ascontiguousarray(centered.T @ centered / (n_days - 1))
    g = np.ascontiguousarray(ref.slope_basis(n_days) @ returns)
    if not (g > 0).any():
        g = np.abs(g)
    return g, cov


def _state(g, cov, start_size, cap):
    order = np.zeros(cap, dtype=np.int64)
    chol = np.zeros((cap, cap))
    y = np.zeros(g.size)
    y[np.argsort(-g)[:start_size]] = 1.0
    size = start_face_nb(g, cov, y, order, chol)
    return y, order, size, chol


@given(seed=st.integers(0, 10_000), n_days=st.integers(10, 150), n_assets=st.integers(2, 40),
       start_size=st.integers(1, 6), duplicates=st.integers(0, 2))
def test_kernel_matches_twin_and_ends_at_a_kkt_point(seed, n_days, n_assets, start_size, duplicates):
    g, cov = _problem(seed, n_days, n_assets, duplicates)
    n = g.size
    allowed = np.ones(n, dtype=bool)
    cap = n + 2
    y, order, size, chol = _state(g, cov, min(start_size, n), cap)
    assume(size > 0)
    start = (y.copy(), order.copy(), size, chol.copy())
    code, size_nb, steps = ratio_active_set_nb(g, cov, allowed, y, order, size, chol, 20 * n + 100, 1e-12)
    y2, order2, size2, chol2 = start[0].copy(), start[1].copy(), start[2], start[3].copy()
    code2, size_np, steps2 = ref.ratio_active_set(g, cov, allowed, y2, order2, size2, chol2, 20 * n + 100, 1e-12)
    well_posed = n_days > n + 2  # otherwise y' cov y can be ~0: rounding decides the path
    assert code == code2 or not well_posed
    if not well_posed:
        assert code in (CODE_KKT, CODE_DEPENDENT)
    elif duplicates == 0:  # a unique optimum: the same steps give the same point
        assert size_nb == size_np
        np.testing.assert_allclose(y, y2, rtol=0, atol=1e-9 * max(1.0, float(np.abs(y2).max())))
    else:  # duplicates: which copy holds the weight is a rounding decision; the objective is not
        np.testing.assert_allclose(y @ cov @ y, y2 @ cov @ y2, rtol=1e-9)
    # the updated factor is the factor of the final face
    face = order[:size_nb]
    lower = chol[:size_nb, :size_nb]
    np.testing.assert_allclose(np.tril(lower) @ np.tril(lower).T, cov[np.ix_(face, face)],
                               rtol=0, atol=1e-10 * float(np.abs(cov).max()))
    assert (y >= 0).all() and abs(g @ y - 1) <= 1e-9 and set(np.flatnonzero(y)) <= set(face)
    if code == CODE_KKT and well_posed:
        nu = float(y @ cov @ y)
        lam = cov @ y - nu * g
        assert lam.min() >= -1e-9 * nu * np.abs(g).max()
    elif well_posed:  # only a face at the rank bound stops short
        assert code == CODE_DEPENDENT


@given(seed=st.integers(0, 10_000), n_assets=st.integers(2, 30))
def test_objective_never_increases_along_the_steps(seed, n_assets):
    g, cov = _problem(seed, 90, n_assets)
    allowed = np.ones(n_assets, dtype=bool)
    y, order, size, chol = _state(g, cov, 1, n_assets + 2)
    values = [float(y @ cov @ y)]
    for _ in range(200):  # one step at a time: the state carries over between calls
        code, size, _ = ratio_active_set_nb(g, cov, allowed, y, order, size, chol, 1, 1e-12)
        values.append(float(y @ cov @ y))
        if code == CODE_KKT:
            break
    assert all(b <= a * (1 + 1e-9) for a, b in zip(values, values[1:]))


@given(seed=st.integers(0, 10_000), size=st.integers(1, 25))
def test_face_optimum_solves_the_face(seed, size):
    g, cov = _problem(seed, 60, size)
    y, order, got, chol = _state(g, cov, size, size + 1)
    assume(got > 0)  # the start mix has g . y > 0
    z, gu = face_optimum_nb(g, order, got, chol)
    face = order[:got]
    u = np.linalg.solve(cov[np.ix_(face, face)], g[face])
    np.testing.assert_allclose(gu, g[face] @ u, rtol=1e-9)
    if gu > 0:
        np.testing.assert_allclose(z, u / (g[face] @ u), rtol=1e-7, atol=1e-9 * np.abs(u / gu).max())


def test_start_face_skips_dependent_strategies_and_the_disallowed_stay_out():
    g, cov = _problem(1, 80, 6, duplicates=2)  # columns 6, 7 duplicate 0, 1
    g = np.abs(g)
    y = np.ones(8)
    order = np.zeros(10, dtype=np.int64)
    chol = np.zeros((10, 10))
    size = start_face_nb(g, cov, y, order, chol)
    assert size == 6 and np.count_nonzero(y) == 6 and abs(g @ y - 1) < 1e-12
    allowed = np.ones(8, dtype=bool)
    allowed[[2, 3]] = False
    y = np.zeros(8)
    y[int(np.argmax(np.where(allowed, g, -np.inf)))] = 1.0
    size = start_face_nb(g, cov, y, order, chol)
    code, size, _ = ratio_active_set_nb(g, cov, allowed, y, order, size, chol, 500, 1e-12)
    assert y[2] == 0 and y[3] == 0


@given(seed=st.integers(0, 10_000), n_assets=st.integers(1, 40), tol=st.sampled_from([0.0, 1e-12, 1e-3]))
def test_kkt_violators_kernel_matches_twin(seed, n_assets, tol):
    from fastopt.optimize.kernels import kkt_violators_nb

    g, cov = _problem(seed, 60, n_assets)
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n_assets) < 0.5, rng.random(n_assets), 0.0)
    cov_y = cov @ y
    nu = float(y @ cov_y)
    allowed = rng.random(n_assets) < 0.9
    in_face = y > 0
    got = kkt_violators_nb(g, cov_y, nu, allowed, in_face, tol)
    want = ref.kkt_violators(g, cov_y, nu, allowed, in_face, tol)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    assert not (in_face[got[0]]).any() and allowed[got[0]].all()


@given(seed=st.integers(0, 2_000))
def test_exchange_at_the_rank_bound_reaches_the_finite_optimum(seed):
    """N = 2 T: faces hit the covariance's rank; a violator dependent on the face is exchanged in
    (variance-neutral direction, ratio test) instead of stopping. Kernel and twin take the same
    steps; when the kernel reports KKT the point is the face optimum with no violator left."""
    g, cov = _problem(seed, 25, 50)
    n = g.size
    allowed = np.ones(n, dtype=bool)
    y, order, size, chol = _state(g, cov, 1, n + 2)
    assume(size > 0)
    start = (y.copy(), order.copy(), size, chol.copy())
    code, size_nb, _ = ratio_active_set_nb(g, cov, allowed, y, order, size, chol, 20 * n + 100, 1e-12)
    y2, order2, size2, chol2 = start[0].copy(), start[1].copy(), start[2], start[3].copy()
    code2, size_np, _ = ref.ratio_active_set(g, cov, allowed, y2, order2, size2, chol2, 20 * n + 100, 1e-12)
    assert (y >= 0).all() and abs(g @ y - 1) <= 1e-9 and size_nb <= 25
    if code == code2 == CODE_KKT:  # same rule, same optimum value (the optimum may not be unique)
        np.testing.assert_allclose(y @ cov @ y, y2 @ cov @ y2, rtol=1e-6)


def test_exchange_certifies_a_window_the_pdas_called_unbounded():
    """Review find: 54 strategies on 28 days, finite optimum 198.16 (cvxpy) on 27 = T - 1
    strategies; the active set used to fill the face with the wrong strategies and stop."""
    from fakes.universes import universe

    from fastopt import optimize
    from fastopt.optimize.objective import window_stats
    from fastopt.optimize.solver import solve_ratio

    returns = universe(1072, 28, 54)
    stats = window_stats(returns)
    result = solve_ratio(stats.g, stats.cov, n_days=28)
    assert result.status == "optimal" and result.diagnostics["kkt_gap"] <= 1e-10
    assert result.score == pytest.approx(optimize(returns, solver="exact", risk_model="sample").score, rel=1e-8)
