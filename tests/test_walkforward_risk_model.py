"""The walk-forward's risk model: "sample" as before, "factor" as optimize(window, risk_model="factor"),
"auto" (default) = sample on well-posed windows (usable strategies < lookback), factor otherwise."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastopt.errors import InputError
from fastopt.optimize.risk_model import factor_model_from_gram, resolve_risk_model_auto, resolve_risk_model_option
from fastopt.optimize.solver import optimize
from fastopt.walkforward.core import walkforward
from fastopt.walkforward.factor_path import (
    SlidingGram,
    usable_columns,
    window_variation,
    window_variation_np,
)


def _universe(n: int, days: int, seed: int) -> np.ndarray:
    """Market factor + idiosyncratic noise + per-strategy drift (every strategy trades every day)."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, 0.02, size=(days, 1))
    beta = rng.uniform(-0.5, 1.0, size=(1, n))
    drift = rng.normal(0.0005, 0.0015, size=(1, n))
    noise = rng.normal(0.0, 0.015, size=(days, n)) * rng.uniform(0.5, 2.0, size=(1, n))
    return np.ascontiguousarray(drift + beta * market + noise)


def _same_result(a, b) -> None:
    for field in ("weights", "leverage", "returns", "turnover", "fit_scores"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.fit_status == b.fit_status


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 10_000))
def test_auto_rule_is_sample_below_lookback_and_factor_from_it(n_usable, n_days):
    expected = "sample" if n_usable < n_days or n_days < 3 else "factor"
    assert resolve_risk_model_auto(n_usable, n_days) == expected
    assert resolve_risk_model_auto(n_usable, n_days, shrinkage=0.0) == expected
    assert resolve_risk_model_auto(n_usable, n_days, shrinkage=0.1) == "sample"
    assert resolve_risk_model_auto(n_usable, n_days, shrinkage="auto") == "sample"


def test_risk_model_option_values_and_errors():
    assert resolve_risk_model_option(None) == "auto"
    assert resolve_risk_model_option(" Factor ") == "factor"
    returns = _universe(5, 40, 0)
    with pytest.raises(InputError, match="unknown risk_model"):
        walkforward(returns, lookback=20, random_n=0, risk_model="pca")
    with pytest.raises(InputError, match="factors"):
        walkforward(returns, lookback=20, random_n=0, risk_model="factor", factors=0)
    with pytest.raises(InputError, match="exceeds"):
        walkforward(returns, lookback=20, random_n=0, risk_model="factor", factors=6)
    with pytest.raises(InputError, match="shrinkage"):
        walkforward(returns, lookback=20, random_n=0, risk_model="factor", shrinkage=0.1)
    with pytest.raises(InputError, match="at least 3 days"):
        walkforward(returns, lookback=2, random_n=0, risk_model="factor")
    two_days = walkforward(returns, lookback=2, random_n=0)  # 5 strategies >= 2 days, but no factor model
    assert two_days.settings["risk_model"] == "sample"


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1, 3]), st.sampled_from([None, 0.3]))
def test_auto_is_sample_exactly_when_strategies_are_fewer_than_days(seed, rebalance, target_vol):
    returns = _universe(12, 60 + 30, seed)
    options = dict(lookback=60, rebalance=rebalance, target_vol=target_vol, random_n=16, seed=seed)
    auto = walkforward(returns, **options)
    sample = walkforward(returns, risk_model="sample", **options)
    _same_result(auto, sample)
    assert auto.settings["risk_model"] == sample.settings["risk_model"] == "sample"
    assert auto.settings["factor_fits"] == 0 and auto.settings["factors"] is None


@settings(max_examples=3, deadline=None)
@given(st.integers(0, 10_000))
def test_auto_is_factor_exactly_when_strategies_outnumber_days(seed):
    returns = _universe(70, 40 + 25, seed)
    auto = walkforward(returns, lookback=40, random_n=0)
    factor = walkforward(returns, lookback=40, random_n=0, risk_model="factor")
    _same_result(auto, factor)
    assert auto.settings["risk_model"] == "factor" and auto.settings["factor_fits"] == 25
    assert auto.settings["factors"] == 9  # min(20, min(70, 39) // 4)
    sample = walkforward(returns, lookback=40, random_n=0, risk_model="sample")
    assert sample.settings["risk_model"] == "sample"
    assert not np.allclose(sample.weights, auto.weights)  # the sample path is another model
    assert set(auto.fit_status) == {"optimal"}  # the factor model is positive definite: certified optima


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([(60, 40, 9), (320, 60, 5)]))
def test_factor_fits_equal_optimize_on_the_window(seed, shape):
    """Each fit day's weights are optimize(window, risk_model="factor")'s (the model's unique optimum)
    on that window, on the dense route (N < 300) and the low-rank route (N >= 300)."""
    n, lookback, factors = shape
    extra = 12
    returns = _universe(n, lookback + extra, seed)
    result = walkforward(returns, lookback=lookback, random_n=0, risk_model="factor", factors=factors)
    assert result.face_fits >= extra - 2  # served by the warm start, not optimize
    for k in (0, 1, extra // 2, extra - 1):
        day = lookback + k
        reference = optimize(returns[day - lookback : day], risk_model="factor", factors=factors)
        assert reference.status == result.fit_status[k] == "optimal"
        np.testing.assert_allclose(result.weights[k], reference.weights, rtol=0, atol=1e-8)
        assert result.fit_scores[k] == pytest.approx(reference.score, rel=1e-9)


@settings(max_examples=3, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1, 2, 50]))
def test_factor_path_warm_equals_cold(seed, rebalance):
    returns = _universe(90, 50 + 40, seed)
    warm = walkforward(returns, lookback=50, rebalance=rebalance, random_n=0, risk_model="factor")
    cold = walkforward(returns, lookback=50, rebalance=rebalance, random_n=0, risk_model="factor",
                       incremental=False)
    assert warm.fit_status == cold.fit_status
    np.testing.assert_allclose(warm.weights, cold.weights, rtol=0, atol=1e-8)
    np.testing.assert_allclose(warm.fit_scores, cold.fit_scores, rtol=1e-9)


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 29), st.sampled_from([1, 3]), st.sampled_from([None, 0.3]))
def test_factor_path_has_no_look_ahead(seed, offset, rebalance, target_vol):
    """Changing returns on or after day i never changes the weights (or leverage) used on day i, on a
    universe whose windows switch from sample to factor (strategies start trading mid-way)."""
    lookback = 30
    base = _universe(45, lookback + 30, seed)
    base[: lookback + 10, 20:] = 0.0  # 20 usable strategies at first (sample), then 45 (factor)
    cut = lookback + offset
    changed = base.copy()
    changed[cut:] = np.random.default_rng(seed + 1).normal(-0.01, 0.05, size=changed[cut:].shape)
    options = dict(lookback=lookback, rebalance=rebalance, target_vol=target_vol, random_n=0)
    a, b = walkforward(base, **options), walkforward(changed, **options)
    assert a.settings["risk_model"] == "mixed" and 0 < a.settings["factor_fits"] < len(a.fit_status)
    upto = cut - lookback + 1
    np.testing.assert_array_equal(a.weights[:upto], b.weights[:upto])
    np.testing.assert_array_equal(a.leverage[:upto], b.leverage[:upto])


def test_mixed_universe_fits_each_window_with_its_own_rule():
    lookback = 30
    returns = _universe(45, lookback + 30, 3)
    returns[: lookback + 10, 20:] = 0.0
    result = walkforward(returns, lookback=lookback, random_n=0)
    for k in (0, 5, 12, 29):
        day = lookback + k
        window = returns[day - lookback : day]
        usable = int(np.count_nonzero(np.ptp(window, axis=0) > 0))
        model = resolve_risk_model_auto(usable, lookback)
        reference = optimize(window, risk_model=model)
        np.testing.assert_allclose(result.weights[k], reference.weights, rtol=0, atol=1e-8)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 15))
def test_window_variation_matches_a_direct_check(seed, lookback):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(40, 7)) * (rng.random((40, 7)) < 0.3)  # mostly zeros: constant windows
    data[:, 3] = 0.5  # a constant non-zero column
    ends = list(range(lookback, 41))
    np.testing.assert_array_equal(window_variation(data, lookback, ends), window_variation_np(data, lookback, ends))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 12), min_size=1, max_size=6))
def test_sliding_gram_equals_the_window_gram(seed, steps):
    """Slid by any steps (short slides and jumps past the window), R R' and its centered form equal
    the window's own products to 1e-12 relative."""
    lookback = 8
    data = _universe(25, lookback + sum(steps), seed)
    gram = SlidingGram(data, lookback)
    end = lookback
    gram.move_to(end)
    for step in steps:
        end += step
        gram.move_to(end)
        window = data[end - lookback : end]
        scale = float(np.abs(window @ window.T).max())
        np.testing.assert_allclose(gram.matrix, window @ window.T, rtol=0, atol=1e-12 * scale)
        centered = window - window.mean(axis=0)
        np.testing.assert_allclose(gram.centered(), centered @ centered.T, rtol=0, atol=1e-12 * scale)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_factor_model_from_the_raw_window_is_optimizes_model(seed, factors):
    from fastopt.optimize.risk_model import factor_model

    data = _universe(40, 20, seed)
    centered = data - data.mean(axis=0)
    expected = factor_model(centered, factors, centered @ centered.T)
    # the walk-forward's form: the raw window and its mean, never the centered window
    got = factor_model_from_gram(centered @ centered.T, data, factors, variances=centered.var(axis=0, ddof=1),
                                 mean=data.mean(axis=0))
    scale = float(np.abs(expected.dense()).max())
    np.testing.assert_allclose(got.dense(), expected.dense(), rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(got.specific, expected.specific, rtol=1e-9)


def test_usable_columns_follow_the_constant_rule():
    from fastopt.optimize.constant import constant_columns

    data = _universe(6, 30, 1)
    data[:, 2] = 0.0
    data[:, 4] = 0.01
    data[:, 5] = 0.01 + 1e-16 * np.arange(30)  # numerically constant
    varies = np.ptp(data, axis=0) > 0
    usable = usable_columns(varies, data.mean(axis=0), data.var(axis=0, ddof=1), 30)
    np.testing.assert_array_equal(usable, ~constant_columns(data))


def _write_strategies(folder, n: int, days: int, seed: int):
    from fastopt.files.stats import write_stats

    returns = _universe(n, days, seed)
    dates = np.arange(np.datetime64("2023-01-01"), np.datetime64("2023-01-01") + days)
    for k in range(n):
        write_stats(folder / f"strat_{k:02d}" / "stats.json", strategy=f"strat_{k:02d}", symbol="BTC/USDT",
                    dates=dates, returns=returns[:, k])
    return returns


@pytest.mark.parametrize("argv, expected", [([], "factor"), (["--risk-model", "sample"], "sample"),
                                            (["--risk-model", "factor", "--factors", "3"], "factor")])
def test_walkforward_cli_risk_model_options(tmp_path, capsys, argv, expected):
    """35 strategies on 30-day windows: the default (auto) fits the factor model, as the API does."""
    import json

    from fastopt.cli import main

    returns = _write_strategies(tmp_path / "strategies", 35, 50, 4)
    out = tmp_path / "wf"
    code = main(["walkforward", "--strategies", str(tmp_path / "strategies"), "--lookback", "30", "--random-n", "0",
                 "--no-plot", "--output", str(out), "--json", *argv])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "stats.json").read_text())
    assert doc["settings"]["risk_model"] == expected
    factors = 3 if "--factors" in argv else None
    api = walkforward(returns, lookback=30, random_n=0, risk_model=expected, factors=factors)
    assert doc["settings"]["factors"] == api.settings["factors"]
    np.testing.assert_allclose(doc["managed_returns"], np.round(api.returns, 6), atol=2e-6)


@pytest.mark.parametrize("argv", [["--risk-model", "pca"], ["--factors", "0"], ["--factors", "x"]])
def test_walkforward_cli_bad_risk_model_options_exit_2(argv, capsys):
    from fastopt.cli import main

    assert main(["walkforward", *argv]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("incremental", [True, False])
def test_in_sample_leverage_on_factor_fits_uses_the_window_sample_covariance(incremental):
    lookback = 30
    returns = _universe(45, lookback + 20, 5)
    returns[: lookback + 5, 20:] = 0.0  # mixed: sample fits first, then factor fits
    result = walkforward(returns, lookback=lookback, random_n=0, target_vol=0.3, max_leverage=50.0,
                         vol_estimator="in_sample", incremental=incremental)
    assert result.settings["risk_model"] == "mixed"
    for k in range(20):
        window = returns[k : k + lookback]
        w = result.weights[k]
        ann_vol = float(np.sqrt(w @ np.cov(window, rowvar=False) @ w * 365))
        assert result.leverage[k] == pytest.approx(min(0.3 / ann_vol, 50.0), rel=1e-9)
