"""The bench's baselines and reference statistics are correct (they judge fastopt, so they must be)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.baselines import reference as ref  # noqa: E402
from bench.baselines.exact_cvxpy import exact_cvxpy  # noqa: E402
from bench.baselines.greedy_cardinality import greedy_cardinality, greedy_select  # noqa: E402
from bench.baselines.legacy import legacy_optimize, legacy_slope_std, legacy_starts  # noqa: E402
from bench.baselines.pandas_loader import pandas_load  # noqa: E402
from bench.baselines.pypfopt_maxsharpe import pypfopt_max_sharpe  # noqa: E402
from bench.baselines.random_search import dirichlet_block, random_search  # noqa: E402
from bench.baselines.scipy_slsqp import slsqp_analytic  # noqa: E402


def make_returns(seed: int, n_days: int, n: int, *, drift: float = 5e-4) -> np.ndarray:
    """Correlated daily returns with positive drift on most columns (a rising curve exists)."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, 0.01, (n_days, 1))
    own = rng.normal(0.0, 0.015, (n_days, n))
    mean = rng.uniform(-0.5 * drift, 2 * drift, n)
    return np.ascontiguousarray(mean + 0.6 * market + own)


seeds = st.integers(0, 2**31 - 1)


# ------------------------------------------------------------------ reference statistics

@given(seed=seeds, n_days=st.integers(10, 400), n=st.integers(1, 12))
def test_curve_slopes_match_polyfit_per_column(seed, n_days, n):
    r = make_returns(seed, n_days, n)
    t = np.arange(n_days, dtype=float)
    expected = np.array([np.polyfit(t, np.cumsum(r[:, j]), 1)[0] for j in range(n)])
    np.testing.assert_allclose(ref.curve_slopes(r), expected, rtol=1e-9, atol=1e-15)


@given(seed=seeds, n_days=st.integers(10, 400), n=st.integers(1, 12))
def test_ratio_score_from_stats_equals_score_from_returns(seed, n_days, n):
    r = make_returns(seed, n_days, n)
    w = np.random.default_rng(seed).dirichlet(np.ones(n))
    stats = ref.ratio_stats(r)
    assert ref.ratio_score(stats, w) == pytest.approx(ref.slope_std_score(r, w), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(r, rowvar=False, ddof=1).reshape(n, n), rtol=1e-12, atol=1e-18)


def test_slope_std_score_by_hand():
    # r = 1, 2, 3 per day -> C = 1, 3, 6; OLS slope of C vs t = 0,1,2 is 2.5; std(ddof=1) of r is 1.
    r = np.array([[1.0], [2.0], [3.0]])
    assert ref.slope_std_score(r, np.array([1.0]), periods_per_year=4) == pytest.approx(2.5 * 2.0)
    assert ref.slope_std_score(np.zeros((5, 1)), np.array([1.0])) == 0.0


@given(seed=seeds, n=st.integers(2, 10))
def test_kkt_residual_small_at_exact_optimum_and_large_elsewhere(seed, n):
    r = make_returns(seed, 200, n)
    stats = ref.ratio_stats(r)
    if not np.any(stats.g > 0):
        return
    w = exact_cvxpy(r)
    assert ref.kkt_residual(stats, w) < 1e-5
    equal = np.full(n, 1.0 / n)
    if ref.ratio_score(stats, w) - ref.ratio_score(stats, equal) > 1e-3:
        assert ref.kkt_residual(stats, equal) > 1e-4


def test_simplex_violation_and_count_nonzero():
    assert ref.simplex_violation(np.array([0.5, 0.5])) == 0.0
    assert ref.simplex_violation(np.array([0.7, 0.5])) == pytest.approx(0.2)
    assert ref.simplex_violation(np.array([1.1, -0.1])) == pytest.approx(0.1)
    assert ref.simplex_violation(np.array([np.nan, 1.0])) == float("inf")
    assert ref.count_nonzero(np.array([0.0, 1e-9, 0.3, 0.7])) == 2


# ------------------------------------------------------------------ today's method (BlaveClaw)

def _ols_slope_by_loop(y: np.ndarray) -> float:
    n = len(y)
    mean_t = (n - 1) / 2.0
    mean_y = sum(y) / n
    num = sum((t - mean_t) * (y[t] - mean_y) for t in range(n))
    den = sum((t - mean_t) ** 2 for t in range(n))
    return num / den


@given(seed=seeds, n_days=st.integers(10, 120), n=st.integers(1, 6), lookback=st.integers(5, 150))
def test_legacy_objective_is_blaveclaw_formula(seed, n_days, n, lookback):
    r = make_returns(seed, n_days, n)
    w = np.random.default_rng(seed + 1).dirichlet(np.ones(n))
    recent = (r @ w)[-lookback:]
    if len(recent) < 10:
        assert legacy_slope_std(w, r, lookback) == 0.0
        return
    population_std = float(np.sqrt(np.mean((recent - recent.mean()) ** 2)))
    expected = _ols_slope_by_loop(np.cumsum(recent)) * 252 / population_std
    assert legacy_slope_std(w, r, lookback) == pytest.approx(expected, rel=1e-9)
    # Same direction as fastopt's score: a constant factor apart on the same window.
    if lookback >= n_days:
        factor = 252 / np.sqrt(365) / np.sqrt((n_days - 1) / n_days)
        assert legacy_slope_std(w, r, lookback) == pytest.approx(ref.slope_std_score(r, w) * factor, rel=1e-9)


def test_legacy_starts_are_equal_then_seeded_dirichlet():
    starts = legacy_starts(5, seed=42)
    assert len(starts) == 11
    np.testing.assert_array_equal(starts[0], np.full(5, 0.2))
    again = legacy_starts(5, seed=42)
    for a, b in zip(starts, again):
        np.testing.assert_array_equal(a, b)
    for w in starts:
        assert ref.simplex_violation(w) < 1e-12


# ------------------------------------------------------------------ optimizers return simplex weights

@settings(max_examples=8)
@given(seed=seeds, n=st.integers(2, 8))
def test_legacy_optimize_returns_simplex_weights_near_optimum(seed, n):
    r = make_returns(seed, 150, n)
    w = legacy_optimize(r, lookback=150, seed=42)
    assert ref.simplex_violation(w) < 1e-12
    rounded = legacy_optimize(r, lookback=150, seed=42, round_decimals=4)
    np.testing.assert_array_equal(rounded, np.round(w, 4))


@settings(max_examples=20)
@given(seed=seeds, n=st.integers(2, 15))
def test_optimizers_return_simplex_weights_and_exact_methods_agree(seed, n):
    r = make_returns(seed, 250, n)
    stats = ref.ratio_stats(r)
    if not np.any(stats.g > 0):
        return
    exact = exact_cvxpy(r)
    best = ref.ratio_score(stats, exact)
    for solve in (slsqp_analytic, pypfopt_max_sharpe):
        w = solve(r)
        assert ref.simplex_violation(w) < 1e-9
        assert ref.ratio_score(stats, w) == pytest.approx(best, rel=1e-4)
    w = random_search(r, n_samples=3000, block=700, seed=seed)
    assert ref.simplex_violation(w) < 1e-9
    assert ref.ratio_score(stats, w) <= best * (1 + 1e-7)


@settings(max_examples=20)
@given(seed=seeds, n=st.integers(2, 12))
def test_exact_beats_every_random_portfolio(seed, n):
    r = make_returns(seed, 120, n)
    stats = ref.ratio_stats(r)
    if not np.any(stats.g > 0):
        return
    best = ref.ratio_score(stats, exact_cvxpy(r))
    for w in dirichlet_block(np.random.default_rng(seed), 200, n):
        assert ref.ratio_score(stats, w) <= best + 1e-7 * abs(best)


def test_random_search_is_seeded_and_picks_its_best_sample():
    r = make_returns(3, 100, 6)
    a = random_search(r, n_samples=500, block=128, seed=7)
    b = random_search(r, n_samples=500, block=128, seed=7)
    np.testing.assert_array_equal(a, b)
    stats = ref.ratio_stats(r)
    rng = np.random.default_rng(7)
    samples = np.vstack([dirichlet_block(rng, size, 6) for size in (128, 128, 128, 116)])
    scores = [ref.ratio_score(stats, w) for w in samples]
    assert ref.ratio_score(stats, a) == pytest.approx(max(scores), rel=1e-12)


def test_random_search_returns_path_equals_covariance_path():
    wide = make_returns(5, 30, 60)  # T < N: variance through the centered returns
    w = random_search(wide, n_samples=400, block=100, seed=1)
    stats = ref.ratio_stats(wide)
    rng = np.random.default_rng(1)
    samples = np.vstack([dirichlet_block(rng, 100, 60) for _ in range(4)])
    assert ref.ratio_score(stats, w) == pytest.approx(max(ref.ratio_score(stats, s) for s in samples), rel=1e-9)


# ------------------------------------------------------------------ cardinality baseline

@settings(max_examples=20)
@given(seed=seeds, n=st.integers(3, 30), k=st.integers(1, 6))
def test_greedy_respects_cardinality_and_simplex(seed, n, k):
    r = make_returns(seed, 200, n)
    stats = ref.ratio_stats(r)
    if not np.any(stats.g > 0):
        with pytest.raises(ValueError):
            greedy_cardinality(r, max_strategies=k)
        return
    w = greedy_cardinality(r, max_strategies=k)
    assert ref.simplex_violation(w) < 1e-9
    assert ref.count_nonzero(w) <= k
    chosen = greedy_select(stats, k)
    assert len(set(chosen)) == len(chosen) <= k
    assert set(np.flatnonzero(w > 1e-6)) <= set(chosen)
    # The first pick is the best single strategy: the greedy result is never worse than it.
    first = np.zeros(n)
    first[chosen[0]] = 1.0
    assert ref.ratio_score(stats, w) >= ref.ratio_score(stats, first) * (1 - 1e-6)


def test_greedy_with_room_for_everything_matches_exact_when_all_weights_positive():
    rng = np.random.default_rng(11)
    r = np.ascontiguousarray(rng.normal(0.002, 0.01, (400, 4)) + rng.normal(0, 0.004, (400, 1)))
    stats = ref.ratio_stats(r)
    tangent = np.linalg.solve(stats.cov, stats.g)
    assert np.all(tangent > 0)  # the long-only optimum is the tangent portfolio
    w = greedy_cardinality(r, max_strategies=4)
    np.testing.assert_allclose(w, tangent / tangent.sum(), atol=1e-6)


# ------------------------------------------------------------------ json + pandas loader

def _write(folder: Path, name: str, payload: dict) -> None:
    (folder / name).mkdir(parents=True)
    (folder / name / "stats.json").write_text(json.dumps(payload))


def test_pandas_loader_aligns_union_calendar_with_zero_fill_in_every_shape(tmp_path):
    _write(tmp_path, "b_lists", {"daily_dates": ["2024-01-02", "2024-01-03"], "daily_returns": [0.01, -0.02]})
    _write(tmp_path, "a_mapping", {"daily_returns": {"2024-01-01": 0.03, "2024-01-03": 0.04}})
    _write(tmp_path, "c_records", {"daily_returns": [{"date": "2024-01-01", "return": 0.05}]})
    (tmp_path / "no_stats").mkdir()
    dates, names, returns = pandas_load(tmp_path)
    assert names == ["a_mapping", "b_lists", "c_records"]
    np.testing.assert_array_equal(dates, np.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="datetime64[D]"))
    np.testing.assert_array_equal(returns, [[0.03, 0.0, 0.05], [0.0, 0.01, 0.0], [0.04, -0.02, 0.0]])
    assert returns.flags.c_contiguous
    _, _, last_two = pandas_load(tmp_path, lookback=2)
    np.testing.assert_array_equal(last_two, returns[-2:])


def test_pandas_loader_reads_the_generated_universe_back(tmp_path):
    from bench.universe import generate_universe, write_universe

    write_universe(tmp_path, 12, 90, 4)
    dates, names, returns = generate_universe(12, 90, 4)
    p_dates, p_names, p_returns = pandas_load(tmp_path)
    assert p_names == list(names)
    np.testing.assert_array_equal(p_dates, np.asarray(dates, dtype="datetime64[D]"))
    np.testing.assert_array_equal(p_returns, returns)


def test_iterative_baselines_stop_at_their_time_limit():
    from bench.baselines.limits import TimeLimitExceeded

    r = make_returns(2, 120, 30)
    with pytest.raises(TimeLimitExceeded) as exc:
        slsqp_analytic(r, time_limit_s=0.0)
    assert exc.value.iterations == 1
    with pytest.raises(TimeLimitExceeded):
        legacy_optimize(r, lookback=120, time_limit_s=0.0)
    w = slsqp_analytic(r, time_limit_s=60.0)  # a generous limit changes nothing
    np.testing.assert_array_equal(w, slsqp_analytic(r))
