"""Risk models as low rank + diagonal (``fastopt.optimize.risk_model``) and their large-N solver (``fastopt.optimize.ratio.low_rank``).

The fast path must reach the optimum of the dense solver (and cvxpy) on the same
explicitly formed covariance, certify it on the whole problem, and never need an
N x N matrix.
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
from fastopt.errors import FastoptError, InputError
from fastopt.optimize.objective import ledoit_wolf_intensity, shrink_covariance, window_stats
from fastopt.optimize.solver import optimize, solve_ratio
from fastopt.optimize.ratio.common import kkt_gap
from fastopt.optimize.ratio.low_rank import face_solve, gradient, low_rank_active_set
from fastopt.optimize.risk_model import (
    SPECIFIC_FLOOR,
    default_factors,
    factor_model,
    ledoit_wolf_intensity_gram,
    sample_model,
)


def dense_ledoit_wolf(returns: np.ndarray) -> float:
    """The N x N formula of ``ledoit_wolf_intensity`` (Schafer & Strimmer), as a reference."""
    n_days = returns.shape[0]
    x = returns - returns.mean(axis=0)
    s = x.T @ x / (n_days - 1)
    sq = x * x
    var_s = n_days / (n_days - 1) ** 3 * (sq.T @ sq - n_days * (s * (n_days - 1) / n_days) ** 2)
    off = ~np.eye(returns.shape[1], dtype=bool)
    return float(np.clip(var_s[off].sum() / (s[off] ** 2).sum(), 0.0, 1.0))


@settings(deadline=None, max_examples=60)
@given(seed=st.integers(0, 10_000), n_days=st.integers(5, 80), n_assets=st.integers(2, 120),
       scale=st.sampled_from([1e-3, 1.0]))
def test_gram_ledoit_wolf_equals_the_n_by_n_formula(seed, n_days, n_assets, scale):
    rng = np.random.default_rng(seed)
    returns = (rng.standard_normal((n_days, n_assets)) + 0.5 * rng.standard_normal((n_days, 1))) * scale
    reference = dense_ledoit_wolf(returns)
    assert ledoit_wolf_intensity_gram(returns - returns.mean(axis=0)) == pytest.approx(reference, rel=1e-9, abs=1e-12)
    assert ledoit_wolf_intensity(returns) == pytest.approx(reference, rel=1e-9, abs=1e-12)


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 10_000), n_days=st.integers(6, 60), n_assets=st.integers(2, 90))
def test_factor_model_is_the_rank_k_truncation_plus_specific_variances(seed, n_days, n_assets):
    returns = universe(seed, n_days, n_assets)
    x = returns - returns.mean(axis=0)
    model = factor_model(x)
    k = model.factors
    assert k == default_factors(n_days, n_assets) and 1 <= k <= 20
    cov = x.T @ x / (n_days - 1)
    values, vectors = np.linalg.eigh(cov)
    truncation = (vectors[:, -k:] * values[-k:]) @ vectors[:, -k:].T
    scale = float(np.abs(cov).max())
    np.testing.assert_allclose(model.rows.T @ model.rows, truncation, rtol=0, atol=1e-9 * scale)
    variances = np.diag(cov)
    assert (model.specific >= SPECIFIC_FLOOR * variances * (1 - 1e-12)).all()
    assert (model.specific <= variances * (1 + 1e-12)).all()
    dense = model.dense()
    np.testing.assert_allclose(np.diag(dense), model.variances, rtol=1e-12)
    off = ~np.eye(n_assets, dtype=bool)
    np.testing.assert_allclose(dense[off], truncation[off], rtol=0, atol=1e-9 * scale)
    assert np.linalg.eigvalsh(dense).min() > 0  # positive definite even when N > T
    w = np.random.default_rng(seed).random(n_assets)
    np.testing.assert_allclose(model.times(w), dense @ w, rtol=1e-10, atol=1e-14 * scale)


@settings(deadline=None, max_examples=60)
@given(seed=st.integers(0, 10_000), m=st.integers(1, 30), k=st.integers(1, 60),
       scale=st.sampled_from([0.0, 1e-2, 1.0]))
def test_face_solve_direct_and_woodbury_equal_a_dense_solve(seed, m, k, scale):
    rng = np.random.default_rng(seed)
    y_f = rng.standard_normal((m, k))
    d_f = rng.uniform(0.05, 2.0, k)
    g_f = rng.standard_normal(k)
    matrix = scale * y_f.T @ y_f + np.diag(d_f)
    expected = np.linalg.solve(matrix, g_f)
    np.testing.assert_allclose(face_solve(g_f, y_f, scale, d_f), expected, rtol=1e-9,
                               atol=1e-11 * float(np.abs(expected).max()))


def test_gradient_is_cov_times_y():
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((7, 40))
    diag = rng.uniform(0.1, 1.0, 40)
    y = np.where(rng.random(40) < 0.4, rng.random(40), 0.0)
    face = np.flatnonzero(y)
    dense = 0.3 * rows.T @ rows + np.diag(diag)
    np.testing.assert_allclose(gradient(rows, 0.3, diag, y, face), dense @ y, rtol=1e-12, atol=1e-14)


def low_rank_everywhere():
    """Route every optimize() call through the large-N path (low rank + diagonal solver)."""
    return patch.multiple(optimizer_module, WORKING_SET_MIN_N=2)


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 10_000), n_days=st.integers(20, 120), n_assets=st.integers(3, 160),
       option=st.sampled_from([{"risk_model": "factor"}, {"risk_model": "factor", "factors": 3},
                               {"shrinkage": 0.3}, {"shrinkage": "auto"}]))
def test_fast_path_reaches_the_dense_optimum_of_the_same_covariance(seed, n_days, n_assets, option):
    returns = universe(seed, n_days, n_assets)
    if not (window_stats(returns).g > 0).any():
        return
    dense = optimize(returns, **option)  # N < 300: the dense solver on the formed matrix
    with low_rank_everywhere():
        fast = optimize(returns, **option)
    assert fast.status == dense.status == "optimal"
    assert "fallback" not in fast.diagnostics and fast.diagnostics["kkt_gap"] <= 1e-10
    model_key = "model_score" if "risk_model" in option else "shrunk_score"
    assert fast.diagnostics[model_key] == pytest.approx(dense.diagnostics[model_key], rel=1e-8)
    assert fast.score == pytest.approx(dense.score, rel=1e-6)  # the raw score of (nearly) the same weights
    w = np.asarray(fast.weights)
    assert (w >= 0).all() and abs(math.fsum(w.tolist()) - 1) <= 1e-12


@pytest.mark.parametrize(("seed", "n_days", "n_assets"), [(0, 40, 120), (1, 60, 60), (2, 30, 200)])
def test_factor_model_matches_cvxpy_on_the_explicit_covariance(seed, n_days, n_assets):
    returns = universe(seed, n_days, n_assets)
    with low_rank_everywhere():
        fast = optimize(returns, risk_model="factor")
    try:
        exact = optimize(returns, risk_model="factor", solver="exact")
    except FastoptError:
        pytest.skip("Clarabel gave up on this window")
    stats = window_stats(returns)
    model = factor_model(returns - stats.mean)
    reference = solve_ratio(stats.g, model.dense())
    assert fast.diagnostics["model_score"] == pytest.approx(reference.score, rel=1e-9)
    assert fast.diagnostics["model_score"] >= exact.diagnostics["model_score"] * (1 - 1e-8)
    assert fast.status == "optimal"  # N > T is well-posed with the factor model (not ill_conditioned)
    cov_w = model.times(np.asarray(fast.weights))
    assert kkt_gap(stats.g, cov_w, np.asarray(fast.weights), np.ones(n_assets)) <= 1e-10


@settings(deadline=None, max_examples=20)
@given(seed=st.integers(0, 10_000), factor=st.sampled_from([1e-2, 7.0]))
def test_factor_optimum_is_invariant_to_permutation_and_scale(seed, factor):
    returns = universe(seed, 50, 90)
    if not (window_stats(returns).g > 0).any():
        return
    perm = np.random.default_rng(seed).permutation(90)
    with low_rank_everywhere():
        base = optimize(returns, risk_model="factor")
        permuted = optimize(np.ascontiguousarray(returns[:, perm]), risk_model="factor")
        scaled = optimize(returns * factor, risk_model="factor")
    assert permuted.diagnostics["model_score"] == pytest.approx(base.diagnostics["model_score"], rel=1e-9)
    np.testing.assert_allclose(np.asarray(permuted.weights), np.asarray(base.weights)[perm], atol=1e-7)
    assert scaled.diagnostics["model_score"] == pytest.approx(base.diagnostics["model_score"], rel=1e-9)
    np.testing.assert_allclose(np.asarray(scaled.weights), np.asarray(base.weights), atol=1e-7)


def test_low_rank_active_set_from_a_single_strategy_certifies():
    returns = universe(5, 80, 300)
    x = returns - returns.mean(axis=0)
    model = sample_model(x, 0.4)
    g = window_stats(returns).g
    start = np.zeros(300)
    start[int(np.argmax(g / np.sqrt(model.variances)))] = 1.0
    w, outcome, steps = low_rank_active_set(g, model.rows, model.scale, model.specific, np.ones(300, bool), start,
                                            tol=1e-12)
    assert outcome == "kkt" and steps > 1
    dense = shrink_covariance(window_stats(returns).cov, 0.4)
    assert kkt_gap(g, dense @ w, w, np.ones(300)) <= 1e-10
    assert float(g @ w) / math.sqrt(w @ dense @ w) == pytest.approx(solve_ratio(g, dense).score / math.sqrt(365),
                                                                      rel=1e-9)


def test_bad_risk_model_options_are_refused():
    returns = universe(0, 40, 10)
    with pytest.raises(InputError, match="unknown risk_model"):
        optimize(returns, risk_model="pca")
    with pytest.raises(InputError, match="factors must be"):
        optimize(returns, risk_model="factor", factors=0)
    with pytest.raises(InputError, match="exceeds min"):
        optimize(returns, risk_model="factor", factors=11)


def test_beyond_the_dense_limits_no_n_by_n_is_formed():
    """Above DENSE_FALLBACK_MAX_BYTES the working set's verdict on an ill-posed window stands (no dense
    re-solve); above DENSE_MAX_BYTES the options that need the dense solver are refused."""
    returns = universe(4, 60, 400)  # N > T, sample covariance: the ratio is unbounded
    with patch.object(optimizer_module, "covariance_of_centered", side_effect=AssertionError("N x N formed")), \
            patch.multiple(optimizer_module, DENSE_FALLBACK_MAX_BYTES=1000):
        alloc = optimize(returns, risk_model="sample")
    assert alloc.status == "unbounded" and alloc.diagnostics["fallback"].startswith("none")
    assert alloc.diagnostics["rank_limited"] and np.isfinite(alloc.score)
    dense = optimize(returns, risk_model="sample")
    assert dense.status == "unbounded"
    with patch.multiple(optimizer_module, DENSE_MAX_BYTES=1000):
        with pytest.raises(InputError, match="needs the dense 400 x 400 covariance"):
            optimize(returns, risk_model="factor", max_weight=0.01)
        with pytest.raises(InputError, match="max_strategies or min_weight"):
            optimize(returns, max_strategies=5, risk_model="sample")
        assert optimize(returns, risk_model="factor").status == "optimal"  # the low-rank path needs no N x N


@pytest.mark.parametrize("shrinkage", [0.2, "auto"])
def test_shrinkage_hands_a_full_cache_to_the_low_rank_solver(shrinkage):
    import fastopt.optimize.ratio.working_set as working_set_module

    returns = universe(6, 80, 400)
    with patch.multiple(working_set_module, MAX_CACHE_LOW_RANK=70):
        handed = optimize(returns, shrinkage=shrinkage)
    assert handed.diagnostics["low_rank_steps"] > 0 and handed.diagnostics["working_set"] <= 70
    assert np.count_nonzero(handed.weights) > 70 and "fallback" not in handed.diagnostics
    stats = window_stats(returns)
    intensity = handed.diagnostics["shrinkage"]
    dense = solve_ratio(stats.g, shrink_covariance(stats.cov, intensity))
    assert handed.status == "optimal"
    assert handed.diagnostics["shrunk_score"] == pytest.approx(dense.score, rel=1e-9)
    assert intensity == pytest.approx(dense_ledoit_wolf(returns) if shrinkage == "auto" else 0.2, rel=1e-9)


def test_cli_risk_model_factor_is_well_posed_where_the_sample_covariance_is_not(tmp_path, capsys):
    import json

    from bench.universe import write_universe

    from fastopt.cli import main

    folder = write_universe(tmp_path / "strategies", 120, 90, 0, market_factor=False)  # N > T
    config = tmp_path / "portfolio_config.json"
    argv = ["optimize", "--strategies", str(folder), "--config", str(config), "--target-vol", "0.3",
            "--lookback", "60", "--json"]
    main([*argv, "--risk-model", "sample", "--allow-unbounded", "--allow-implausible", "--dry-run"])  # noise
    sample = json.loads(capsys.readouterr().out)
    assert sample["status"] in ("ill_conditioned", "unbounded")  # N >= T: singular sample covariance
    assert main([*argv, "--risk-model", "factor", "--factors", "4", "--allow-implausible"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "optimal" and config.exists()
    assert summary["diagnostics"]["risk_model"] == "factor" and summary["diagnostics"]["factors"] == 4
    assert abs(sum(json.loads(config.read_text())["weights"].values()) - 1) <= 1e-9


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n_days=st.integers(8, 40), ratio=st.floats(0.2, 3.0))
def test_auto_is_the_sample_fit_below_the_days_and_the_factor_fit_from_them(seed, n_days, ratio):
    """The default risk model: bit-for-bit the sample fit while N < T (the user's slope/std),
    the factor fit once N >= T (the sample covariance is singular there)."""
    from fastopt.optimize.solver import optimize

    n = max(2, int(round(ratio * n_days)))
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.001, 0.01, (n_days, n)) + rng.normal(0, 0.01, (n_days, 1))
    auto = optimize(returns)
    expected = "sample" if n < n_days else "factor"
    explicit = optimize(returns, risk_model=expected)
    assert auto.diagnostics["risk_model"] == expected
    assert auto.diagnostics["risk_model_option"] == "auto"
    np.testing.assert_array_equal(auto.weights, explicit.weights)
    assert auto.status == explicit.status


def test_cli_default_risk_model_is_recorded_as_chosen(tmp_path, capsys):
    import json

    from bench.universe import write_universe

    from fastopt.cli import main

    for n, expected in ((20, "sample"), (120, "factor")):
        folder = write_universe(tmp_path / f"s{n}", n, 90, 1, market_factor=True)
        config = tmp_path / f"pc{n}.json"
        code = main(["optimize", "--strategies", str(folder), "--config", str(config), "--target-vol", "0.3",
                     "--lookback", "60", "--allow-implausible", "--allow-unbounded", "--json"])
        assert code == 0, capsys.readouterr().err
        summary = json.loads(capsys.readouterr().out)
        options = json.loads(config.read_text())["options"]
        assert summary["diagnostics"]["risk_model"] == expected == options["risk_model"]
        assert options["risk_model_option"] == "auto"
