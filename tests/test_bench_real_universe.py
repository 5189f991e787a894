"""bench.real_universe: the 80-rule universe on the embedded real prices is deterministic and its
returns are the backtest definition: position(t-1) x price return(t) - fee x turnover."""
from __future__ import annotations

import numpy as np
import pytest

from fastopt.backtest.prices import load_embedded

real_universe = pytest.importorskip("bench.real_universe")


def test_shape_names_and_determinism():
    dates, names, returns = real_universe.real_price_universe()
    assert returns.shape == (dates.size, 80) and len(set(names)) == 80
    assert np.isfinite(returns).all() and returns.flags.c_contiguous
    assert (np.diff(dates) == np.timedelta64(1, "D")).all()
    again = real_universe.real_price_universe()[2]
    np.testing.assert_array_equal(returns, again)
    # SOL's rules are 0 before its first embedded day (a late starter), the others trade from day 0 on
    sol_first = load_embedded("SOL/USDT").dates[0]
    sol = [j for j, n in enumerate(names) if n.startswith("SOL_")]
    assert (returns[dates < sol_first][:, sol] == 0).all()
    assert np.abs(returns[:, sol][dates > sol_first + 250]).sum() > 0


def test_a_rule_matches_the_backtest_definition():
    dates, names, returns = real_universe.real_price_universe(coins=("BTC", "ETH"))
    history = load_embedded("BTC/USDT")
    keep = history.dates >= dates[0]
    close = history.close[keep][: dates.size]
    fast = np.convolve(close, np.ones(20) / 20, mode="full")[: close.size]
    slow = np.convolve(close, np.ones(100) / 100, mode="full")[: close.size]
    position = np.sign(fast - slow)
    position[:99] = 0.0  # undefined before the slow average exists: flat
    asset = np.concatenate([[0.0], close[1:] / close[:-1] - 1.0])
    previous = np.concatenate([[0.0], position[:-1]])
    expected = previous * asset - np.abs(position - previous) * 5.0 / 1e4
    np.testing.assert_allclose(returns[:, names.index("BTC_sma20_100")], expected, rtol=1e-9, atol=1e-12)
