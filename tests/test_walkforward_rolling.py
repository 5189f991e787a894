"""Incremental window statistics: numba kernels == numpy twins, incremental == exact."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastopt.optimize.objective import window_stats
from fastopt.walkforward.rolling import (
    RollingWindow,
    cov_from_cross_np,
    exact_window_stats,
    slide_window_np,
    slope_weights,
)
from fastopt.walkforward.rolling_kernels import cov_from_cross_nb, slide_window_nb


def _close(actual, expected, rel=1e-10):
    scale = max(float(np.abs(expected).max()), 1e-300)
    assert float(np.abs(actual - expected).max()) <= rel * scale


@st.composite
def sliding_case(draw):
    n = draw(st.integers(1, 6))
    lookback = draw(st.integers(2, 25))
    k = draw(st.integers(1, lookback - 1))
    seed = draw(st.integers(0, 2**32 - 1))
    full_cov = draw(st.booleans())
    scale = draw(st.sampled_from([1e-4, 0.02, 3.0]))
    return n, lookback, k, seed, full_cov, scale


@given(sliding_case())
def test_slide_kernel_matches_numpy_twin(case):
    n, lookback, k, seed, full_cov, scale = case
    rng = np.random.default_rng(seed)
    cross = rng.normal(size=(n, n))
    cross = np.ascontiguousarray(cross + cross.T)
    s0, s1, s2 = (rng.normal(size=n) for _ in range(3))
    rows_out = rng.normal(0.001, scale, size=(k, n))
    rows_in = rng.normal(0.001, scale, size=(k, n))
    shift = rng.normal(0, scale, size=n)
    state_nb = [cross.copy(), s0.copy(), s1.copy(), s2.copy()]
    state_np = [cross.copy(), s0.copy(), s1.copy(), s2.copy()]
    slide_window_nb(*state_nb, rows_out, rows_in, shift, lookback, full_cov)
    slide_window_np(*state_np, rows_out, rows_in, shift, lookback, full_cov)
    for got, want in zip(state_nb, state_np):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(want).max()))


@given(st.integers(1, 8), st.integers(2, 50), st.integers(0, 2**32 - 1))
def test_cov_kernel_matches_numpy_twin_and_is_symmetric(n, lookback, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(lookback, n))
    cross = np.ascontiguousarray(x.T @ x)
    cross = 0.5 * (cross + cross.T)
    s0 = x.sum(axis=0)
    out_nb = np.empty((n, n))
    out_np = np.empty((n, n))
    cov_from_cross_nb(cross, s0, lookback, out_nb)
    cov_from_cross_np(cross, s0, lookback, out_np)
    np.testing.assert_allclose(out_nb, out_np, rtol=1e-12, atol=1e-15)
    assert np.array_equal(out_nb, out_nb.T)
    if lookback > 1:
        np.testing.assert_allclose(out_nb, np.cov(x, rowvar=False, ddof=1).reshape(n, n), rtol=1e-9, atol=1e-12)


@given(st.integers(2, 60), st.integers(0, 2**32 - 1))
def test_slope_weights_give_the_ols_slope_of_the_cumulative_sum(lookback, seed):
    rng = np.random.default_rng(seed)
    r = rng.normal(0.001, 0.02, size=lookback)
    expected = np.polyfit(np.arange(lookback, dtype=float), np.cumsum(r), 1)[0]
    assert slope_weights(lookback) @ r == pytest.approx(expected, rel=1e-9, abs=1e-13)
    assert slope_weights(lookback).sum() == pytest.approx(1.0, rel=1e-13)


def test_exact_stats_agree_with_the_objective_module():
    rng = np.random.default_rng(3)
    window = rng.normal(0.002, 0.03, size=(120, 7))
    mine = exact_window_stats(window)
    theirs = window_stats(window)
    _close(mine.g, theirs.g, 1e-12)
    _close(mine.cov, theirs.cov, 1e-12)
    _close(mine.mean, theirs.mean, 1e-12)


@st.composite
def path_case(draw):
    n = draw(st.integers(1, 5))
    lookback = draw(st.integers(2, 30))
    n_days = draw(st.integers(lookback, lookback + 80))
    steps = draw(st.lists(st.integers(1, 12), min_size=1, max_size=20))
    seed = draw(st.integers(0, 2**32 - 1))
    recompute_every = draw(st.sampled_from([1, 7, 1000]))
    use_numba = draw(st.booleans())
    full_cov = draw(st.booleans())
    offset = draw(st.sampled_from([0.0, 0.05, 5.0]))
    return n, lookback, n_days, steps, seed, recompute_every, use_numba, full_cov, offset


@given(path_case())
def test_incremental_window_equals_exact_recomputation(case):
    n, lookback, n_days, steps, seed, recompute_every, use_numba, full_cov, offset = case
    rng = np.random.default_rng(seed)
    data = rng.normal(offset, 0.02, size=(n_days, n))
    win = RollingWindow(data, lookback, full_cov=full_cov, recompute_every=recompute_every, use_numba=use_numba)
    end = lookback
    for step in [0, *steps]:
        end = min(end + step, n_days)
        win.move_to(end)
        got = win.stats()
        want = exact_window_stats(data[end - lookback : end], full_cov=full_cov)
        _close(got.g, want.g)
        _close(got.mean, want.mean)
        _close(got.var, want.var)
        if full_cov:
            _close(got.cov, want.cov)
            assert np.array_equal(got.cov, got.cov.T)
        else:
            assert got.cov is None


def test_drift_stays_bounded_over_a_long_path_without_recomputation():
    rng = np.random.default_rng(11)
    data = rng.normal(0.001, 0.03, size=(3000, 12)) + rng.normal(0, 0.01, size=12)
    win = RollingWindow(data, 200, recompute_every=10**9)
    for end in range(200, 3001):
        win.move_to(end)
    assert win.slid_since_exact == 2800  # really incremental all the way
    got = win.stats()
    want = exact_window_stats(data[-200:])
    _close(got.g, want.g, 1e-11)
    _close(got.cov, want.cov, 1e-11)


def test_reused_cov_buffer_is_filled_in_place():
    rng = np.random.default_rng(5)
    data = rng.normal(size=(50, 4))
    win = RollingWindow(data, 10)
    buffer = np.full((4, 4), np.nan)
    win.move_to(20)
    stats = win.stats(cov_out=buffer)
    assert stats.cov is buffer
    _close(buffer, exact_window_stats(data[10:20]).cov)


def test_moving_backwards_recomputes_and_bad_positions_raise():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(40, 3))
    win = RollingWindow(data, 10)
    with pytest.raises(ValueError, match="not positioned"):
        win.stats()
    win.move_to(30)
    win.move_to(15)
    _close(win.stats().cov, exact_window_stats(data[5:15]).cov)
    for bad in (9, 41):
        with pytest.raises(ValueError, match="out of range"):
            win.move_to(bad)
    with pytest.raises(ValueError):
        RollingWindow(data, 1)


def _spd(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n + 4))
    return a @ a.T / (n + 4) + 1e-3 * np.eye(n)


@given(st.integers(1, 12), st.integers(0, 2**31))
def test_cholesky_append_kernel_matches_twin_and_refactorization(n, seed):
    from fastopt.optimize.kernels_np import cholesky_append_np
    from fastopt.optimize.cholesky_kernels import cholesky_append_nb

    a = _spd(n + 1, seed)
    results = []
    for append in (cholesky_append_nb, cholesky_append_np):
        chol = np.zeros((n + 3, n + 3))
        chol[:n, :n] = np.linalg.cholesky(a[:n, :n])
        assert append(chol, n, np.ascontiguousarray(a[:n, n]), float(a[n, n]))
        results.append(chol)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[0][: n + 1, : n + 1], np.linalg.cholesky(a), rtol=1e-12, atol=1e-12)


@given(st.integers(2, 12), st.data(), st.integers(0, 2**31))
def test_cholesky_delete_kernel_matches_twin_and_refactorization(n, data, seed):
    from fastopt.optimize.kernels_np import cholesky_delete_np
    from fastopt.optimize.cholesky_kernels import cholesky_delete_nb

    p = data.draw(st.integers(0, n - 1))
    a = _spd(n, seed)
    keep = np.delete(np.arange(n), p)
    results = []
    for delete in (cholesky_delete_nb, cholesky_delete_np):
        chol = np.zeros((n + 2, n + 2))
        chol[:n, :n] = np.linalg.cholesky(a)
        delete(chol, n, p)
        results.append(chol)
        assert (chol[n - 1 :, :] == 0).all() and (chol[:, n - 1 :] == 0).all()
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[0][: n - 1, : n - 1], np.linalg.cholesky(a[np.ix_(keep, keep)]),
                               rtol=1e-12, atol=1e-12)


def test_cholesky_append_refuses_a_singular_border():
    from fastopt.optimize.cholesky_kernels import cholesky_append_nb

    a = _spd(3, 1)
    chol = np.zeros((4, 4))
    chol[:3, :3] = np.linalg.cholesky(a)
    duplicate = a[:, 0].copy()  # the new strategy is an exact copy of strategy 0
    assert not cholesky_append_nb(chol, 3, np.ascontiguousarray(duplicate), float(a[0, 0]))


def test_face_moves_give_up_when_the_gap_scale_underflows():
    """|G| * V underflows to 0 on a tiny-scale face: both twins give up (code 0) instead of the
    kernel dividing by zero and the numpy twin certifying a NaN gap as optimal."""
    from fastopt.walkforward.rolling import face_moves_np
    from fastopt.walkforward.rolling_kernels import face_moves_nb

    g = np.array([1e-200, 1e-200])
    cov = np.eye(2) * 1e-200
    for face_moves in (face_moves_nb, face_moves_np):
        chol = np.zeros((2, 2))
        chol[0, 0] = np.sqrt(cov[0, 0])
        code, size, w = face_moves(g, cov, np.zeros(2), 2, np.ones(2), np.array([0, 1], dtype=np.int64), 1, chol, 5,
                                   1e-11, 1e-12)
        assert code == 0 and size == 1
        assert np.array_equal(w, [1.0, 0.0])


@settings(max_examples=30)
@given(st.integers(0, 2**31), st.integers(1, 30), st.integers(3, 40), st.integers(0, 12))
def test_sums_kernels_match_their_numpy_twins(seed, n, lookback, slid):
    """moments_nb, sums_block_nb and sums_times_nb against the numpy formulas (1e-12), on a
    window slid past its exact recomputation, with strategies flat in the window."""
    from fastopt.walkforward.rolling import CovarianceSums, RollingWindow, moments_np
    from fastopt.walkforward.rolling_kernels import moments_nb

    rng = np.random.default_rng(seed)
    returns = rng.normal(5e-4, 0.02, (lookback + slid, n))
    returns[:, rng.random(n) < 0.2] = 0.0  # flat strategies
    window = RollingWindow(returns, lookback)
    window.move_to(lookback)
    window.move_to(lookback + slid)
    args = (window.shift, window.s0, window.s1, window.s2, window.cross, window.active_days, lookback)
    for got, want in zip(moments_nb(*args), moments_np(*[a.copy() if hasattr(a, "copy") else a for a in args])):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    sums = window.sums()
    index = rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False).astype(np.int64)
    np.testing.assert_allclose(sums.face(index), sums.block(index, index), rtol=1e-12, atol=1e-18)
    w = np.where(rng.random(n) < 0.5, rng.random(n), 0.0)
    support = np.flatnonzero(w)
    np.testing.assert_allclose(sums.times_fast(w, support), sums.times(w, support), rtol=1e-10, atol=1e-16)
    # a ready matrix wrapped as sums reads back exactly
    cov = window.stats().cov
    wrapped = CovarianceSums.of_matrix(cov)
    assert np.array_equal(wrapped.face(np.arange(n)), cov)
