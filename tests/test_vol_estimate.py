"""fastopt.optimize.vol_estimate: definitions against dense numpy twins, invariances, no look-ahead, and the
walk-forward's leverage (default estimator, "in_sample" = the old behaviour)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastopt.errors import InputError
from fastopt.optimize.objective import ledoit_wolf_intensity
from fastopt.optimize.risk_model import SPECIFIC_FLOOR
from fastopt.optimize.vol_estimate import (
    DEFAULT_VOL_ESTIMATOR,
    VOL_ESTIMATORS,
    ewma_variance,
    factor_variance,
    in_sample_variance,
    portfolio_vol,
    shrunk_variance,
)
from fastopt.walkforward.core import walkforward


def _window(seed: int, t: int, n: int, *, factor: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    common = rng.standard_normal((t, 2)) * 0.02 if factor else np.zeros((t, 2))
    loadings = rng.uniform(-1, 1, size=(2, n))
    x = common @ loadings + rng.standard_normal((t, n)) * rng.uniform(0.005, 0.03, size=n)
    return np.ascontiguousarray(x + 0.0005)


def _weights(seed: int, n: int) -> np.ndarray:
    w = np.random.default_rng(seed + 1).dirichlet(np.ones(n))
    w[:: max(2, n // 3)] = 0.0  # some zero weights
    return w / w.sum()


# ------------------------------------------------------------------ definitions (dense twins)


def _dense_factor_variance(x: np.ndarray, w: np.ndarray, k: int) -> float:
    """Twin: the factor covariance from the SVD of the centered window, formed as an N x N matrix
    (specific variances floored at SPECIFIC_FLOOR of the variance, like the optimizer's model)."""
    t = x.shape[0]
    y = (x - x.mean(axis=0)) / math.sqrt(t - 1)
    _, s, vt = np.linalg.svd(y, full_matrices=False)
    b = vt[:k].T * s[:k]  # N x k loadings
    cov = np.cov(x, rowvar=False, ddof=1)
    specific = np.maximum(np.diag(cov) - (b * b).sum(axis=1), SPECIFIC_FLOOR * np.diag(cov))
    model = b @ b.T + np.diag(specific)
    return float(w @ model @ w)


@pytest.mark.parametrize("t, n", [(60, 5), (40, 80), (30, 30)])
def test_in_sample_and_shrunk_match_the_dense_covariance(t, n):
    x, w = _window(0, t, n), _weights(0, n)
    cov = np.cov(x, rowvar=False, ddof=1)
    assert in_sample_variance(x, w) == pytest.approx(float(w @ cov @ w), rel=1e-12)
    d = ledoit_wolf_intensity(x)
    shrunk = (1 - d) * cov + d * np.diag(np.diag(cov))
    assert shrunk_variance(x, w) == pytest.approx(float(w @ shrunk @ w), rel=1e-10)
    assert shrunk_variance(x, w, intensity=1.0) == pytest.approx(float((w * w) @ np.diag(cov)), rel=1e-12)


@pytest.mark.parametrize("k", [0, 1, 3, 7])
@pytest.mark.parametrize("t, n", [(80, 10), (25, 60)])
def test_factor_variance_matches_the_dense_svd_twin(k, t, n):
    x, w = _window(3, t, n), _weights(3, n)
    assert factor_variance(x, w, factors=k) == pytest.approx(_dense_factor_variance(x, w, k), rel=1e-9)


@pytest.mark.parametrize("factor", [True, False])  # with an eigengap (iterates) and pure noise (falls back)
@pytest.mark.parametrize("t, n", [(200, 150), (150, 400)])
def test_factor_variance_large_windows_match_the_dense_twin(factor, t, n):
    """Windows where the Gram (N > T) or the covariance (N < T) gives the eigenpairs: same variance."""
    x, w = _window(21, t, n, factor=factor), _weights(21, n)
    for k in (1, 3):
        assert factor_variance(x, w, factors=k) == pytest.approx(_dense_factor_variance(x, w, k), rel=1e-8)


def test_factor_model_with_every_component_is_the_sample_covariance():
    x, w = _window(4, 20, 50), _weights(4, 50)  # rank of the centered window: 19
    floor = SPECIFIC_FLOOR * float((w * w) @ np.var(x, axis=0, ddof=1))  # the specific-variance floor
    assert factor_variance(x, w, factors=19) == pytest.approx(in_sample_variance(x, w) + floor, rel=1e-9)
    assert factor_variance(x, w, factors=0) == pytest.approx(shrunk_variance(x, w, intensity=1.0), rel=1e-12)


def test_ewma_variance_matches_a_loop_and_tends_to_the_sample_variance():
    x, w = _window(5, 50, 6), _weights(5, 6)
    r = x @ w
    lam = 0.5 ** (1 / 10.0)
    a = [lam ** (len(r) - 1 - t) for t in range(len(r))]
    total = sum(a)
    a = [v / total for v in a]
    m = sum(ai * ri for ai, ri in zip(a, r))
    expected = sum(ai * (ri - m) ** 2 for ai, ri in zip(a, r)) / (1 - sum(ai * ai for ai in a))
    assert ewma_variance(x, w, half_life=10.0) == pytest.approx(expected, rel=1e-12)
    assert ewma_variance(x, w, half_life=1e12) == pytest.approx(float(np.var(r, ddof=1)), rel=1e-9)
    # the last days weigh most: a storm at the end raises it above the flat-window variance
    stormy = x.copy()
    stormy[-10:] *= 4
    assert ewma_variance(stormy, w, half_life=10.0) > in_sample_variance(stormy, w)


def test_annualization_units():
    x, w = _window(6, 40, 4), _weights(6, 4)
    daily = in_sample_variance(x, w)
    assert portfolio_vol(x, w, estimator="in_sample", periods_per_year=252) == pytest.approx(math.sqrt(daily * 252))


# ------------------------------------------------------------------ invariances


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.integers(10, 50), n=st.integers(2, 40),
       scale=st.floats(1e-3, 1e3), estimator=st.sampled_from(VOL_ESTIMATORS))
def test_scale_invariance(seed, t, n, scale, estimator):
    """returns x c -> vol x c (positive c), for every estimator."""
    x, w = _window(seed, t, n), _weights(seed, n)
    base = portfolio_vol(x, w, estimator=estimator)
    assert portfolio_vol(x * scale, w, estimator=estimator) == pytest.approx(base * scale, rel=1e-8)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.integers(10, 50), n=st.integers(2, 40),
       estimator=st.sampled_from(VOL_ESTIMATORS))
def test_permutation_invariance(seed, t, n, estimator):
    """Reordering the strategies (columns and weights together) does not change the estimate."""
    x, w = _window(seed, t, n), _weights(seed, n)
    order = np.random.default_rng(seed + 7).permutation(n)
    assert portfolio_vol(x[:, order], w[order], estimator=estimator) == pytest.approx(
        portfolio_vol(x, w, estimator=estimator), rel=1e-8)


def test_unused_strategies_do_not_move_the_in_sample_and_ewma_estimates():
    x, w = _window(8, 40, 10), _weights(8, 10)
    y = np.column_stack([x, np.random.default_rng(1).standard_normal((40, 3))])
    wy = np.concatenate([w, np.zeros(3)])
    for estimator in ("in_sample", "ewma"):
        assert portfolio_vol(y, wy, estimator=estimator) == pytest.approx(portfolio_vol(x, w, estimator=estimator),
                                                                           rel=1e-12)


def test_bad_input_is_refused():
    x, w = _window(9, 20, 3), _weights(9, 3)
    with pytest.raises(InputError, match="vol_estimator"):
        portfolio_vol(x, w, estimator="garch")
    with pytest.raises(InputError, match="weights"):
        portfolio_vol(x, w[:2])
    with pytest.raises(InputError, match="T >= 2"):
        portfolio_vol(x[:1], w)
    with pytest.raises(InputError, match="half_life"):
        ewma_variance(x, w, half_life=0)
    with pytest.raises(InputError, match="factors"):
        factor_variance(x, w, factors=-1)


# ------------------------------------------------------------------ the walk-forward's leverage


def _panel(seed: int, t: int = 160, n: int = 12) -> np.ndarray:
    x = _window(seed, t, n)
    return np.ascontiguousarray(x + np.linspace(0.0005, 0.002, n))


def _fit_days(result, lookback):
    return [lookback + int(d) for d in np.flatnonzero(result.rebalance_mask)]


@pytest.mark.parametrize("incremental", [True, False])
def test_in_sample_reproduces_the_old_leverage_exactly(incremental):
    data, lookback, target, cap = _panel(10), 60, 0.3, 5.0
    res = walkforward(data, lookback=lookback, rebalance=7, target_vol=target, max_leverage=cap, random_n=0,
                      vol_estimator="in_sample", incremental=incremental)
    assert res.settings["vol_estimator"] == "in_sample"
    for day in _fit_days(res, lookback):
        w = res.weights[day - lookback]
        if not w.any():
            assert res.leverage[day - lookback] == 0.0
            continue
        cov = np.cov(data[day - lookback : day], rowvar=False, ddof=1)
        expected = min(target / math.sqrt(float(w @ cov @ w) * 365), cap)
        assert res.leverage[day - lookback] == pytest.approx(expected, rel=1e-9)


def test_walkforward_default_uses_the_default_estimator():
    data, lookback, target = _panel(11), 60, 0.3
    res = walkforward(data, lookback=lookback, rebalance=7, target_vol=target, random_n=0)
    assert res.settings["vol_estimator"] == DEFAULT_VOL_ESTIMATOR
    explicit = walkforward(data, lookback=lookback, rebalance=7, target_vol=target, random_n=0,
                           vol_estimator=DEFAULT_VOL_ESTIMATOR)
    np.testing.assert_array_equal(res.leverage, explicit.leverage)
    old = walkforward(data, lookback=lookback, rebalance=7, target_vol=target, random_n=0, vol_estimator="in_sample")
    np.testing.assert_array_equal(res.weights, old.weights)  # the estimator only sizes, never picks
    for day in _fit_days(res, lookback):
        w = res.weights[day - lookback]
        if w.any():
            vol = portfolio_vol(data[day - lookback : day], w, estimator=DEFAULT_VOL_ESTIMATOR)
            assert res.leverage[day - lookback] == pytest.approx(min(target / vol, 5.0), rel=1e-12)


@pytest.mark.parametrize("estimator", VOL_ESTIMATORS)
def test_no_look_ahead(estimator):
    """Changing the data from a rebalance day on does not change that day's (or any earlier) leverage."""
    data, lookback = _panel(12), 60
    base = walkforward(data, lookback=lookback, rebalance=7, target_vol=0.3, random_n=0, vol_estimator=estimator)
    cut = _fit_days(base, lookback)[5]
    changed = data.copy()
    changed[cut:] = np.random.default_rng(99).standard_normal(changed[cut:].shape) * 0.1
    other = walkforward(changed, lookback=lookback, rebalance=7, target_vol=0.3, random_n=0, vol_estimator=estimator)
    stop = cut - lookback + 1  # through the rebalance day itself
    np.testing.assert_array_equal(base.leverage[:stop], other.leverage[:stop])
    np.testing.assert_array_equal(base.weights[:stop], other.weights[:stop])


def test_walkforward_refuses_an_unknown_estimator():
    with pytest.raises(InputError, match="vol_estimator"):
        walkforward(_panel(13), lookback=60, target_vol=0.3, random_n=0, vol_estimator="magic")
