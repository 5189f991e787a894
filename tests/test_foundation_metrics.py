"""fastopt.metrics against straightforward per-element loops."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastopt import metrics

PPY = 365

returns_1d = arrays(
    np.float64,
    st.integers(min_value=0, max_value=60),
    elements=st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, width=64),
)
returns_2d = arrays(
    np.float64,
    st.tuples(st.integers(min_value=0, max_value=30), st.integers(min_value=1, max_value=5)),
    elements=st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, width=64),
)


def loop_total_return(r):
    equity = 1.0
    for x in r:
        equity *= 1.0 + x
    return equity - 1.0


def loop_cagr(r, ppy=PPY):
    if len(r) == 0:
        return 0.0
    growth = 1.0 + loop_total_return(r)
    if growth <= 0:
        return -1.0
    return growth ** (ppy / len(r)) - 1.0


def loop_std(r):
    n = len(r)
    if all(x == r[0] for x in r):
        return 0.0
    mean = sum(r) / n
    return math.sqrt(sum((x - mean) ** 2 for x in r) / (n - 1))


def loop_ann_vol(r, ppy=PPY):
    return 0.0 if len(r) < 2 else loop_std(r) * math.sqrt(ppy)


def loop_sharpe(r, ppy=PPY):
    if len(r) < 2:
        return 0.0
    std = loop_std(r)
    return 0.0 if std == 0 else (sum(r) / len(r)) / std * math.sqrt(ppy)


def loop_sortino(r, ppy=PPY):
    if len(r) == 0:
        return 0.0
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    return 0.0 if down == 0 else (sum(r) / len(r)) / down * math.sqrt(ppy)


def loop_max_drawdown(r):
    equity, peak, worst = 1.0, 1.0, 0.0
    for x in r:
        equity *= 1.0 + x
        peak = max(peak, equity)
        worst = max(worst, 1.0 - equity / peak)
    return worst


def loop_win_rate(r):
    active = [x for x in r if x != 0]
    return 0.0 if not active else sum(1 for x in active if x > 0) / len(active)


LOOPS = {
    "total_return": loop_total_return,
    "cagr": loop_cagr,
    "ann_vol": loop_ann_vol,
    "sharpe": loop_sharpe,
    "sortino": loop_sortino,
    "max_drawdown": loop_max_drawdown,
    "win_rate": loop_win_rate,
}


def _close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@given(returns_1d)
def test_1d_metrics_match_loops(r):
    for name, loop in LOOPS.items():
        got = getattr(metrics, name)(r)
        assert isinstance(got, float), name
        assert _close(got, loop(list(r))), (name, got, loop(list(r)))


@given(returns_2d)
def test_2d_metrics_are_per_column(r):
    for name, loop in LOOPS.items():
        got = getattr(metrics, name)(r)
        assert isinstance(got, np.ndarray) and got.shape == (r.shape[1],), name
        for k in range(r.shape[1]):
            assert _close(got[k], loop(list(r[:, k]))), (name, k)


def test_known_values():
    r = np.array([0.10, -0.20, 0.05, 0.0])
    assert metrics.total_return(r) == pytest.approx(1.1 * 0.8 * 1.05 - 1)
    # peak 1.10 -> trough 0.88: a 20 % drawdown
    assert metrics.max_drawdown(r) == pytest.approx(0.20)
    assert metrics.win_rate(r) == pytest.approx(2 / 3)
    assert metrics.max_drawdown(np.array([-0.25, 0.1])) == pytest.approx(0.25)
    assert metrics.sharpe(np.full(10, 0.01)) == 0.0
    assert metrics.sortino(np.full(10, 0.01)) == 0.0
    # one year of +0.1 % a day
    daily = np.full(365, 0.001)
    assert metrics.cagr(daily) == pytest.approx(1.001**365 - 1)
    assert metrics.ann_vol(np.array([0.01, -0.01])) == pytest.approx(math.sqrt(2e-4) * math.sqrt(365))
    assert metrics.ann_vol(np.array([0.01, -0.01]), periods_per_year=252) == pytest.approx(
        math.sqrt(2e-4) * math.sqrt(252)
    )


def test_total_loss_and_bad_inputs():
    assert metrics.cagr(np.array([0.5, -1.0])) == -1.0
    assert metrics.max_drawdown(np.array([0.5, -1.0])) == 1.0
    with pytest.raises(ValueError):
        metrics.sharpe(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        metrics.ann_vol(np.zeros(5), periods_per_year=0)


@given(returns_1d)
def test_drawdown_bounds_and_summary(r):
    dd = metrics.max_drawdown(r)
    assert 0.0 <= dd <= 1.0
    assert 0.0 <= metrics.win_rate(r) <= 1.0
    summary = metrics.summary(r)
    assert summary["max_drawdown"] == dd
    assert all(math.isfinite(v) for v in summary.values())
    curve = metrics.drawdown_curve(r)
    assert curve.shape == r.shape
    if len(r):
        assert curve.max() == dd
