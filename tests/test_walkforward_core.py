"""Walk-forward invariants: no look-ahead, rebalance schedule, warm == cold, benchmarks, costs, leverage."""
from __future__ import annotations

import math

import numpy as np
import pytest
from fakes.allocators import write_blaveclaw_allocator
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.universe import generate_universe
from fastopt import metrics
from fastopt.errors import InputError, NothingToDo
from fastopt.optimize.objective import window_stats
from fastopt.walkforward.random_portfolios import dirichlet_weights, random_benchmark, random_portfolio_returns
from fastopt.walkforward.core import walkforward


def _universe(n: int, days: int, seed: int) -> np.ndarray:
    """Market factor + idiosyncratic noise + per-strategy drift (every strategy trades every day)."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, 0.02, size=(days, 1))
    beta = rng.uniform(-0.5, 1.0, size=(1, n))
    drift = rng.normal(0.0005, 0.0015, size=(1, n))
    noise = rng.normal(0.0, 0.015, size=(days, n)) * rng.uniform(0.5, 2.0, size=(1, n))
    return np.ascontiguousarray(drift + beta * market + noise)


def test_flat_strategies_are_handled_identically_warm_and_cold():
    """The bench universe has strategies switched off for a while (exact 0 returns)."""
    _, _, returns = generate_universe(40, 200, 3)
    returns = np.ascontiguousarray(returns, dtype=np.float64)
    assert (np.abs(returns[:60]).sum(axis=0) == 0).any() or (returns == 0).mean() > 0.05
    warm = walkforward(returns, lookback=60, random_n=0)
    cold = walkforward(returns, lookback=60, random_n=0, incremental=False)
    assert warm.fit_status == cold.fit_status
    assert _relative(warm.fit_scores, cold.fit_scores) <= 1e-9


@st.composite
def look_ahead_case(draw):
    n = draw(st.integers(8, 12))
    lookback = draw(st.integers(20, 40))
    extra = draw(st.integers(5, 30))
    cut = draw(st.integers(lookback, lookback + extra - 1))
    seed = draw(st.integers(0, 10_000))
    allocator = draw(st.sampled_from(["slope_std", "inverse_vol", "max_sharpe"]))
    target_vol = draw(st.sampled_from([None, 0.2]))
    rebalance = draw(st.integers(1, 4))
    return n, lookback, extra, cut, seed, allocator, target_vol, rebalance


@settings(max_examples=25)
@given(look_ahead_case())
def test_no_look_ahead(case):
    """Changing returns on or after day i never changes the weights (or leverage) used on day i."""
    n, lookback, extra, cut, seed, allocator, target_vol, rebalance = case
    base = _universe(n, lookback + extra, seed)
    changed = base.copy()
    rng = np.random.default_rng(seed + 1)
    changed[cut:] = rng.normal(-0.01, 0.05, size=changed[cut:].shape)
    options = dict(lookback=lookback, rebalance=rebalance, allocator=allocator, target_vol=target_vol, random_n=0)
    a = walkforward(base, **options)
    b = walkforward(changed, **options)
    upto = cut - lookback + 1  # out-of-sample rows of days lookback..cut
    np.testing.assert_array_equal(a.weights[:upto], b.weights[:upto])
    np.testing.assert_array_equal(a.leverage[:upto], b.leverage[:upto])
    np.testing.assert_array_equal(a.returns[: upto - 1], b.returns[: upto - 1])


@settings(max_examples=20)
@given(st.integers(1, 9), st.integers(0, 10_000), st.sampled_from(["slope_std", "inverse_vol"]))
def test_weights_change_only_on_rebalance_days(rebalance, seed, allocator):
    returns = _universe(10, 90, seed)
    result = walkforward(returns, lookback=40, rebalance=rebalance, allocator=allocator, random_n=0,
                         target_vol=0.3, cost_bps=3.0)
    days = np.arange(result.n_days)
    np.testing.assert_array_equal(result.rebalance_mask, days % rebalance == 0)
    moved = np.zeros(result.n_days, dtype=bool)
    moved[0] = True
    moved[1:] = (np.abs(np.diff(result.exposures, axis=0)).sum(axis=1) > 0)
    assert not (moved & ~result.rebalance_mask).any()
    assert (result.turnover[~result.rebalance_mask] == 0).all()
    assert len(result.fit_status) == int(result.rebalance_mask.sum())


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def test_incremental_warm_path_equals_cold_fits_every_day():
    returns = _universe(40, 60 + 140, 7)
    warm = walkforward(returns, lookback=60, random_n=0, recompute_every=50)
    cold = walkforward(returns, lookback=60, random_n=0, incremental=False)
    assert warm.settings["incremental"] and not cold.settings["incremental"]
    assert np.isfinite(cold.fit_scores).all()
    assert _relative(warm.fit_scores, cold.fit_scores) <= 1e-9
    np.testing.assert_allclose(warm.weights, cold.weights, atol=1e-6)
    np.testing.assert_allclose(warm.returns, cold.returns, rtol=0, atol=1e-8)


@settings(max_examples=8)
@given(st.integers(0, 10_000), st.integers(1, 5), st.sampled_from([None, 0.25]))
def test_incremental_equals_cold_property(seed, rebalance, target_vol):
    returns = _universe(12, 110, seed)
    options = dict(lookback=45, rebalance=rebalance, random_n=0, target_vol=target_vol)
    warm = walkforward(returns, recompute_every=17, **options)
    cold = walkforward(returns, incremental=False, **options)
    assert warm.fit_status == cold.fit_status
    assert _relative(warm.fit_scores, cold.fit_scores) <= 1e-9
    np.testing.assert_allclose(warm.leverage, cold.leverage, rtol=1e-6)


def test_equal_allocator_reproduces_the_equal_weight_benchmark_exactly():
    returns = _universe(9, 120, 3)
    result = walkforward(returns, lookback=30, allocator="equal", random_n=0, cost_bps=10.0)
    np.testing.assert_array_equal(result.returns, result.benchmark_returns["equal_weight"])
    assert result.managed == result.benchmarks["equal_weight"]
    assert result.turnover[0] == pytest.approx(1.0) and (result.turnover[1:] == 0).all()


def test_turnover_and_costs_follow_the_drift_free_convention():
    returns = _universe(10, 100, 5)
    result = walkforward(returns, lookback=30, random_n=0, cost_bps=25.0, target_vol=0.3, rebalance=2)
    exposures = result.exposures
    expected_turnover = np.abs(np.diff(np.vstack([np.zeros(10), exposures]), axis=0)).sum(axis=1)
    np.testing.assert_allclose(result.turnover, expected_turnover, rtol=1e-12, atol=1e-15)
    oos = returns[30:]
    np.testing.assert_allclose(result.gross_returns, (oos * exposures).sum(axis=1), rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(result.returns, result.gross_returns - result.turnover * 25e-4, rtol=1e-12,
                               atol=1e-16)
    assert result.managed.avg_turnover == pytest.approx(result.turnover.mean())


def test_target_vol_leverage_uses_the_trailing_window_and_the_cap():
    returns = _universe(10, 120, 9)
    lookback, target, cap = 50, 0.25, 1.5
    result = walkforward(returns, lookback=lookback, random_n=0, target_vol=target, max_leverage=cap,
                         vol_estimator="in_sample")
    for k in range(result.n_days):
        w = result.weights[k]
        if not w.any():
            assert result.leverage[k] == 0.0
            continue
        cov = np.cov(returns[k : k + lookback], rowvar=False, ddof=1)
        ann = math.sqrt(float(w @ cov @ w) * 365)
        assert result.leverage[k] == pytest.approx(min(target / ann, cap), rel=1e-9)
    assert (result.leverage <= cap).all()
    unlevered = walkforward(returns, lookback=lookback, random_n=0)
    assert (unlevered.leverage == 1.0).all()


def _falling_universe() -> np.ndarray:
    rng = np.random.default_rng(0)
    up = rng.normal(0.004, 0.01, size=(60, 8))
    down = rng.normal(-0.006, 0.01, size=(80, 8))
    return np.vstack([up, down])


@pytest.mark.parametrize("policy", ["cash", "previous", "least-bad"])
def test_when_no_curve_rises_the_policy_decides(policy):
    returns = _falling_universe()
    result = walkforward(returns, lookback=40, random_n=0, when_negative=policy)
    flagged = result.no_rising
    assert result.no_rising_days == int(flagged.sum()) > 10
    assert not flagged[0]  # the first windows still rise
    for k in range(returns.shape[0] - 40):
        g = window_stats(returns[k : k + 40]).g
        assert flagged[k] == (not (g > 0).any())
    sums = result.weights.sum(axis=1)
    if policy == "cash":
        assert (result.weights[flagged] == 0).all()
        assert result.cash_days == result.no_rising_days
        assert (result.returns[flagged] == 0).all()
    elif policy == "previous":
        first = int(np.argmax(flagged))
        np.testing.assert_array_equal(result.weights[flagged], np.broadcast_to(
            result.weights[first - 1], result.weights[flagged].shape))
        assert result.cash_days == 0
    else:
        np.testing.assert_allclose(sums[flagged], 1.0)
        assert result.cash_days == 0


def test_random_benchmark_is_reproducible_from_the_seed_and_matches_a_loop():
    oos = _universe(6, 80, 2)
    a = random_benchmark(oos, n=50, seed=11, cost_bps=5.0, managed_sharpe=1.0, chunk=7)
    b = random_benchmark(oos, n=50, seed=11, cost_bps=5.0, managed_sharpe=1.0, chunk=7)
    c = random_benchmark(oos, n=50, seed=12, cost_bps=5.0, managed_sharpe=1.0)
    unchunked = random_benchmark(oos, n=50, seed=11, cost_bps=5.0, managed_sharpe=1.0)
    np.testing.assert_array_equal(a.sharpes, b.sharpes)
    np.testing.assert_array_equal(a.band, b.band)
    np.testing.assert_allclose(a.sharpes, unchunked.sharpes, rtol=1e-12)
    assert not np.array_equal(a.sharpes, c.sharpes)
    weights = dirichlet_weights(50, 6, 11)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    assert (weights >= 0).all()
    for j in range(50):
        path = oos @ weights[j]
        path[0] -= 5e-4
        assert a.sharpes[j] == pytest.approx(metrics.sharpe(path), rel=1e-10)
        assert a.total_returns[j] == pytest.approx(metrics.total_return(path), rel=1e-10, abs=1e-14)
    assert a.managed_beats_pct_sharpe == pytest.approx(100.0 * np.mean(a.sharpes < 1.0))
    paths = random_portfolio_returns(oos, weights)
    cumulative = np.cumprod(1 + paths, axis=0) - 1
    np.testing.assert_allclose(a.band[1], np.percentile(
        np.cumprod(1 + random_portfolio_returns(oos, weights, cost_bps=5.0), axis=0) - 1, 50, axis=1))
    assert cumulative.shape == (80, 50)


@given(st.integers(1, 40), st.integers(1, 30), st.integers(0, 2**31))
def test_dirichlet_rows_live_on_the_simplex(n, n_strategies, seed):
    weights = dirichlet_weights(n, n_strategies, seed)
    assert weights.shape == (n, n_strategies)
    assert (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(weights, dirichlet_weights(n, n_strategies, seed))


def test_walkforward_reports_random_percentile_and_benchmarks():
    returns = _universe(10, 100, 4)
    result = walkforward(returns, lookback=40, random_n=64, seed=5)
    assert result.random is not None and result.random.n == 64
    expected = 100.0 * np.mean(result.random.sharpes < result.managed.sharpe)
    assert result.random.managed_beats_pct_sharpe == pytest.approx(expected)
    assert set(result.benchmarks) == {"equal_weight", "inverse_vol"}
    again = walkforward(returns, lookback=40, random_n=64, seed=5)
    np.testing.assert_array_equal(result.random.sharpes, again.random.sharpes)
    inv = result.benchmark_returns["inverse_vol"]
    std = returns[:40].std(axis=0, ddof=1)
    w0 = (1 / std) / (1 / std).sum()
    assert inv[0] == pytest.approx(float(returns[40] @ w0), rel=1e-10)


def test_input_errors_and_nothing_to_do():
    returns = _universe(8, 50, 1)
    with pytest.raises(NothingToDo, match="lookback \\+ 1 = 51"):
        walkforward(returns, lookback=50, random_n=0)
    with pytest.raises(InputError, match="allocator"):
        walkforward(returns, lookback=20, allocator="no_such_allocator_xyz", random_n=0)
    for bad in (dict(lookback=1), dict(rebalance=0), dict(target_vol=-0.1), dict(cost_bps=-1.0),
                dict(when_negative="panic"), dict(random_n=-3), dict(max_leverage=0.0)):
        options = {"lookback": 20, "random_n": 0, **bad}
        with pytest.raises(InputError):
            walkforward(returns, **options)
    bad_returns = returns.copy()
    bad_returns[3, 2] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        walkforward(bad_returns, lookback=20, random_n=0)


def test_panel_input_keeps_names_and_dates():
    from fastopt.files.panel import Panel

    returns = _universe(8, 60, 2)
    dates = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-01") + 60)
    names = [f"strat_{k}" for k in range(8)]
    panel = Panel(dates=dates, names=names, returns=returns, first_date=np.repeat(dates[0], 8),
                  last_date=np.repeat(dates[-1], 8))
    result = walkforward(panel, lookback=30, random_n=0)
    assert result.names == names
    assert result.dates[0] == dates[30] and result.dates.size == 30


@settings(max_examples=30)
@given(st.integers(0, 2**31), st.integers(6, 30), st.integers(30, 90), st.sampled_from([1.0, 0.5, 0.3]))
def test_face_warm_start_is_certified_equal_to_a_cold_solve(seed, n, lookback, max_weight):
    """Whenever the same-face warm start answers, it is the solver's optimum (score within 1e-9)."""
    from fastopt.optimize.solver import solve_ratio
    from fastopt.walkforward.core import face_warm_start

    returns = _universe(n, lookback + 1, seed)
    yesterday = window_stats(returns[:lookback])
    today = window_stats(returns[1:])
    try:
        previous = np.asarray(solve_ratio(yesterday.g, yesterday.cov, max_weight=max_weight).weights)
    except InputError:  # infeasible bounds for this n and max_weight
        return
    fit = face_warm_start(today.g, today.cov, previous, max_weight=max_weight, periods_per_year=365)
    cold = solve_ratio(today.g, today.cov, max_weight=max_weight)
    if fit is None:
        return
    assert fit.status == "optimal"
    assert fit.score == pytest.approx(cold.score, rel=1e-9)
    np.testing.assert_allclose(fit.weights.sum(), 1.0, rtol=1e-15)
    assert (fit.weights >= 0).all() and (fit.weights <= max_weight + 1e-12).all()


def test_face_warm_start_hands_hard_cases_to_the_solver():
    from fastopt.walkforward.core import face_warm_start

    returns = _universe(8, 60, 1)
    stats = window_stats(returns)
    previous = np.full(8, 1 / 8)
    falling = window_stats(returns - 0.05)
    assert face_warm_start(falling.g, falling.cov, previous, max_weight=1.0, periods_per_year=365) is None
    assert face_warm_start(stats.g, stats.cov, np.zeros(8), max_weight=1.0, periods_per_year=365) is None


def test_face_warm_start_is_used_and_changes_nothing():
    returns = _universe(25, 200, 8)
    with_face = walkforward(returns, lookback=60, random_n=0)
    solver_only = walkforward(returns, lookback=60, random_n=0, warm_face=False)
    assert with_face.face_fits > 0.5 * len(with_face.fit_status)
    assert solver_only.face_fits == 0
    assert _relative(with_face.fit_scores, solver_only.fit_scores) <= 1e-9
    np.testing.assert_allclose(with_face.returns, solver_only.returns, rtol=0, atol=1e-9)


@pytest.mark.parametrize("shrinkage", [0.2, "auto"])
def test_shrinkage_fits_the_shrunk_covariance_warm_and_cold(shrinkage):
    from fastopt.optimize.objective import ledoit_wolf_intensity, shrink_covariance
    from fastopt.optimize.solver import solve_ratio

    returns = _universe(30, 25 + 40, 12)  # N > lookback: the unshrunk problem is degenerate
    warm = walkforward(returns, lookback=25, random_n=0, shrinkage=shrinkage)
    cold = walkforward(returns, lookback=25, random_n=0, shrinkage=shrinkage, incremental=False)
    assert _relative(warm.fit_scores, cold.fit_scores) <= 1e-9
    for k in (0, 17, 39):
        window = returns[k : k + 25]
        stats = window_stats(window)
        intensity = ledoit_wolf_intensity(window) if shrinkage == "auto" else shrinkage
        expected = solve_ratio(stats.g, shrink_covariance(stats.cov, intensity))
        assert warm.fit_scores[k] == pytest.approx(expected.score, rel=1e-9)
    with pytest.raises(InputError, match="shrinkage"):
        walkforward(returns, lookback=25, random_n=0, shrinkage=1.5)


def test_generic_allocators_get_the_walkforward_options_and_plugins_work(tmp_path, monkeypatch):
    returns = _universe(10, 90, 13)
    capped = walkforward(returns, lookback=40, allocator="max_sharpe", max_weight=0.3, random_n=0)
    assert capped.weights.max() <= 0.3 + 1e-12
    assert np.allclose(capped.weights.sum(axis=1)[capped.weights.sum(axis=1) > 0], 1.0)
    # a BlaveClaw allocator: allocators/<name>/allocator.py with allocate(ret_df, lookback) -> {name: score}
    write_blaveclaw_allocator(tmp_path, "last_day", (
        "def allocate(ret_df, lookback):\n"
        "    assert len(ret_df) == lookback\n"
        "    last = ret_df.iloc[-1]\n"
        "    return {name: float(max(value, 0.0)) + 1e-9 for name, value in last.items()}\n"
    ))
    monkeypatch.chdir(tmp_path)
    result = walkforward(returns, lookback=40, allocator="last_day", random_n=0, names=[f"s{k}" for k in range(10)])
    for k in range(result.n_days):
        raw = np.maximum(returns[40 + k - 1], 0.0) + 1e-9
        np.testing.assert_allclose(result.weights[k], raw / raw.sum(), rtol=1e-9)


@pytest.mark.parametrize("allocator", ["slope_std", "inverse_vol", "equal"])
def test_windows_where_every_strategy_is_flat_are_cash_for_every_allocator(allocator):
    returns = _universe(9, 120, 21)
    returns[30:75] = 0.0  # nobody trades for 45 days: windows of 40 days inside are all flat
    result = walkforward(returns, lookback=40, allocator=allocator, random_n=0)
    flat_days = [k for k in range(result.n_days) if not returns[k : k + 40].any()]
    assert flat_days
    for k in flat_days:
        assert result.fit_status[k] == "no_usable_strategy"
        assert not result.weights[k].any() and result.returns[k] == 0.0
    assert result.cash_days >= len(flat_days)


def test_a_single_strategy_keeps_the_solver_status():
    returns = np.random.default_rng(2).normal(0.01, 0.01, size=(60, 1))  # one steadily rising strategy
    result = walkforward(returns, lookback=30, random_n=4)
    assert set(result.fit_status) == {"single_strategy"}
    assert (result.weights == 1.0).all()


def test_a_single_falling_strategy_is_not_held_under_the_cash_policy():
    rng = np.random.default_rng(4)
    returns = np.concatenate([rng.normal(0.01, 0.01, 50), rng.normal(-0.01, 0.01, 60)])[:, None]
    result = walkforward(returns, lookback=30, random_n=0)
    falling = result.no_rising
    assert falling.any() and not falling[0]
    assert (result.weights[falling] == 0).all()
    least_bad = walkforward(returns, lookback=30, random_n=0, when_negative="least-bad")
    assert (least_bad.weights[falling] == 1.0).all()


@settings(max_examples=30)
@given(st.integers(0, 2**31), st.integers(4, 25), st.sampled_from([1.0, 0.4]), st.sampled_from(["matrix", "sums"]))
def test_face_moves_kernel_matches_its_numpy_twin(seed, n, max_weight, kind):
    """face_moves_nb (numba) and face_moves_np give the same code, face and weights (1e-12), on a
    ready covariance (cross = cov, s0 = 0, L = 2) and on a sliding window's running sums."""
    from fastopt.optimize.objective import shrink_covariance
    from fastopt.walkforward.rolling import CovarianceSums, RollingWindow, face_moves_np
    from fastopt.walkforward.rolling_kernels import face_moves_nb

    if kind == "matrix":
        returns = _universe(n, 60, seed)
        stats = window_stats(returns)
        cov = np.ascontiguousarray(shrink_covariance(stats.cov, 0.05))
        sums = CovarianceSums.of_matrix(cov)
        g = np.ascontiguousarray(stats.g)
    else:  # a window slid 7 days past its exact recomputation
        returns = _universe(n, 67, seed)
        window = RollingWindow(returns, 60)
        window.move_to(60)
        window.move_to(67)
        rolled = window.stats()
        cov, sums, g = rolled.cov, window.sums(), rolled.g
        np.testing.assert_allclose(sums.block(np.arange(n), np.arange(n)), cov, rtol=0,
                                   atol=1e-15 * float(np.abs(cov).max()))
    upper = np.full(n, max_weight)
    rng = np.random.default_rng(seed)
    face = np.sort(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False))
    try:
        first = np.linalg.cholesky(cov[np.ix_(face, face)])
    except np.linalg.LinAlgError:
        return  # (a singular random face: the warm start refuses it before the kernel)
    outputs = []
    for moves in (face_moves_nb, face_moves_np):
        order = np.zeros(n, dtype=np.int64)
        order[: face.size] = face
        chol = np.zeros((n, n))
        chol[: face.size, : face.size] = first
        code, size, w = moves(g, sums.cross, sums.s0, sums.n_days, upper, order, face.size, chol, 20, 1e-10,
                              1e-8)
        outputs.append((code, size, order[:size].copy(), w))
    (code_a, size_a, order_a, w_a), (code_b, size_b, order_b, w_b) = outputs
    assert code_a == code_b and size_a == size_b
    np.testing.assert_array_equal(order_a, order_b)
    np.testing.assert_allclose(w_a, w_b, rtol=1e-12, atol=1e-14)
    if code_a == 1:  # certified: it is the solver's optimum
        from fastopt.optimize.solver import solve_ratio

        expected = solve_ratio(g, cov, max_weight=max_weight)
        score = float(g @ w_a) / math.sqrt(float(w_a @ cov @ w_a)) * math.sqrt(365)
        assert score == pytest.approx(expected.score, rel=1e-9)


def test_face_warm_start_numba_and_numpy_paths_agree():
    from fastopt.walkforward.core import face_warm_start

    returns = _universe(30, 61, 5)
    yesterday, today = window_stats(returns[:60]), window_stats(returns[1:])
    from fastopt.optimize.solver import solve_ratio

    previous = np.asarray(solve_ratio(yesterday.g, yesterday.cov).weights)
    fast = face_warm_start(today.g, today.cov, previous, max_weight=1.0, periods_per_year=365)
    slow = face_warm_start(today.g, today.cov, previous, max_weight=1.0, periods_per_year=365, use_numba=False)
    assert fast is not None and slow is not None
    np.testing.assert_allclose(fast.weights, slow.weights, rtol=1e-12, atol=1e-15)


@settings(max_examples=4)
@given(st.integers(0, 10_000))
def test_ill_posed_windows_warm_equals_cold_in_status_and_validity(seed):
    """N > lookback, no shrinkage: slope/std is unbounded on every window.

    "warm == cold" there means: the same status every day (``unbounded``), valid
    weights (>= 0, summing to 1) on both paths, finite positive in-sample scores,
    and the warm path served by the ill-posed hold (no solver call) on most days.
    Scores are not compared: the supremum is not attained, any finite point is
    a best effort.
    """
    returns = _universe(150, 40 + 50, seed)
    # the sample covariance on purpose ("auto", the default, fits these windows with the factor model)
    warm = walkforward(returns, lookback=40, random_n=0, risk_model="sample")
    cold = walkforward(returns, lookback=40, random_n=0, incremental=False, risk_model="sample")
    assert warm.fit_status == cold.fit_status
    assert set(warm.fit_status) == {"unbounded"}
    for result in (warm, cold):
        assert (result.weights >= 0).all()
        np.testing.assert_allclose(result.weights.sum(axis=1), 1.0, rtol=0, atol=1e-12)
        assert np.isfinite(result.fit_scores).all() and (result.fit_scores > 0).all()
    assert cold.hold_fits == 0
    assert warm.hold_fits >= 50 - 1 - 50 // 20  # first fit + one full re-solve every HOLD_MAX_DAYS


def test_ill_posed_hold_never_lowers_yesterdays_score_and_certifies_honestly():
    from fastopt.optimize.solver import solve_ratio
    from fastopt.walkforward.core import ill_posed_hold

    returns = _universe(120, 41, 3)
    today = window_stats(returns[1:])
    yesterday = window_stats(returns[:-1])
    previous = np.asarray(solve_ratio(yesterday.g, yesterday.cov, n_days=40).weights)
    held = ill_posed_hold(today.g, today.cov, previous, max_weight=1.0, periods_per_year=365)
    assert held is not None and held.status == "unbounded" and held.diagnostics["rank_limited"]
    w = np.asarray(held.weights)
    assert (w >= 0).all() and abs(w.sum() - 1.0) <= 1e-12
    before = float(today.g @ previous) / math.sqrt(float(previous @ today.cov @ previous)) * math.sqrt(365)
    assert held.score >= before * (1 - 1e-12)
    # on a well-posed window the hold reaches the certificate only at the true optimum
    small = _universe(6, 200, 4)
    stats = window_stats(small)
    exact = solve_ratio(stats.g, stats.cov)
    again = ill_posed_hold(stats.g, stats.cov, np.asarray(exact.weights), max_weight=1.0, periods_per_year=365)
    assert again.status == "optimal" and again.score == pytest.approx(exact.score, rel=1e-12)


def test_face_warm_start_handles_a_singular_face_with_the_certificate():
    """Yesterday's support holds two exact duplicates: the face is singular; a ridge factor is used
    and the answer is accepted only with the KKT certificate, at the solver's score."""
    from fastopt.optimize.solver import solve_ratio
    from fastopt.walkforward.core import face_warm_start

    base = _universe(8, 121, 11)
    returns = np.column_stack([base, base[:, [int(np.argmax(window_stats(base).g))]]])
    yesterday = window_stats(returns[:-1])
    previous = np.asarray(solve_ratio(yesterday.g, yesterday.cov).weights)
    twin_a, twin_b = int(np.argmax(window_stats(base).g)), returns.shape[1] - 1
    previous = previous.copy()
    previous[[twin_a, twin_b]] = previous[[twin_a, twin_b]].sum() / 2  # both copies held
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(yesterday.cov[np.ix_(np.flatnonzero(previous), np.flatnonzero(previous))])
    today = window_stats(returns[1:])
    cold = solve_ratio(today.g, today.cov)
    warm = face_warm_start(today.g, today.cov, previous, max_weight=1.0, periods_per_year=365)
    assert warm is not None  # the ridge factor lets the warm start answer (certified) here
    assert warm.status == "optimal" and warm.diagnostics["kkt_gap"] <= 1e-10
    assert warm.score == pytest.approx(cold.score, rel=1e-9)
    assert abs(np.asarray(warm.weights).sum() - 1.0) <= 1e-12
