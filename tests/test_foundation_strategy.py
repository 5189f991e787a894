"""Strategy helpers: backtest timing/fees, indicators, outputs, prices sources."""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastopt.backtest import prices as prices_mod
from fastopt.backtest import strategy as strat
from fastopt.errors import InputError
from fastopt.files.state import read_state
from fastopt.files.stats import read_stats

closes = arrays(np.float64, st.integers(3, 60), elements=st.floats(1.0, 1000.0, allow_nan=False))


def _positions_for(close: np.ndarray) -> np.ndarray:
    """A causal rule (uses data up to t only) with holds: long above the 3-day SMA, flat below."""
    trend = strat.sma(close, 3)
    position = np.full(close.size, np.nan)
    position[close > trend * 1.01] = 1.0
    position[close < trend * 0.99] = -0.5
    return position


@given(closes, st.data())
def test_no_look_ahead(close, data):
    """Changing prices after day t never changes returns up to day t."""
    t = data.draw(st.integers(0, close.size - 2))
    future = data.draw(arrays(np.float64, close.size - t - 1, elements=st.floats(1.0, 1000.0, allow_nan=False)))
    changed = close.copy()
    changed[t + 1 :] = future
    a = strat.backtest(close, _positions_for(close), fee_bps=7.0)
    b = strat.backtest(changed, _positions_for(changed), fee_bps=7.0)
    assert a.returns[: t + 1].tobytes() == b.returns[: t + 1].tobytes()


@given(closes, st.data(), st.floats(0.0, 50.0))
def test_backtest_matches_loop(close, data, fee_bps):
    raw = data.draw(
        arrays(np.float64, close.size, elements=st.one_of(st.just(np.nan), st.floats(-2.0, 2.0, allow_nan=False)))
    )
    result = strat.backtest(close, raw, fee_bps=fee_bps)
    held, previous = 0.0, 0.0
    trades = 0
    for t in range(close.size):
        held = held if np.isnan(raw[t]) else raw[t]
        gross = 0.0 if t == 0 else previous * (close[t] / close[t - 1] - 1.0)
        cost = abs(held - previous) * fee_bps / 10_000.0
        trades += held != previous
        expected = max(gross - cost, -0.999999)
        assert result.returns[t] == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert result.position[t] == held
        previous = held
    assert result.n_trades == trades


def test_resolve_positions_and_errors():
    assert strat.resolve_positions([np.nan, 1, np.nan, 0, np.nan]).tolist() == [0, 1, 1, 0, 0]
    with pytest.raises(ValueError):
        strat.resolve_positions([np.inf])
    with pytest.raises(ValueError):
        strat.backtest([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        strat.backtest([1.0, -2.0], [1.0, 1.0])


@given(arrays(np.float64, st.integers(1, 80), elements=st.floats(1.0, 100.0, allow_nan=False)), st.integers(1, 10))
def test_indicators_match_pandas(x, window):
    s = pd.Series(x)
    np.testing.assert_allclose(strat.sma(x, window), s.rolling(window).mean().to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(strat.rolling_max(x, window), s.rolling(window).max().to_numpy())
    np.testing.assert_allclose(strat.rolling_min(x, window), s.rolling(window).min().to_numpy())
    np.testing.assert_allclose(strat.ema(x, window), s.ewm(span=window, adjust=False).mean().to_numpy(), rtol=1e-12)
    if window >= 2:
        np.testing.assert_allclose(
            strat.rolling_std(x, window), s.rolling(window).std().to_numpy(), rtol=1e-7, atol=1e-9
        )
    np.testing.assert_allclose(strat.pct_change(x, window), s.pct_change(window).to_numpy(), rtol=1e-12)


def test_rsi_bounds_and_known_case():
    rising = np.arange(1.0, 40.0)
    assert np.all(strat.rsi(rising, 14)[14:] == 100.0)
    x = 100 + np.sin(np.arange(200) / 5.0) * 10
    r = strat.rsi(x, 14)
    assert np.isnan(r[:14]).all() and (r[14:] >= 0).all() and (r[14:] <= 100).all()


def test_outputs_are_valid_files(tmp_path):
    dates = np.datetime64("2024-01-01") + np.arange(50).astype("timedelta64[D]")
    close = 100 * np.cumprod(1 + np.sin(np.arange(50)) * 0.01)
    result = strat.backtest(close, _positions_for(close))
    obj = strat.write_stats(tmp_path / "stats.json", strategy="x", symbol="BTC/USDT:USDT", dates=dates, result=result)
    parsed = read_stats(tmp_path / "stats.json")
    assert parsed.returns.tobytes() == result.returns.tobytes()
    assert obj["Total Trades"] == result.n_trades
    strat.write_state(tmp_path / "state.json", symbol="BTC/USDT:USDT", position=-0.5)
    assert read_state(tmp_path / "state.json").positions == {"BTC/USDT:USDT": -0.5}
    strat.plot_pnl(tmp_path / "pnl.png", dates, result.returns, title="x")
    assert (tmp_path / "pnl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- prices


def test_real_csv_and_symbol_mapping(shared_prices):
    history = prices_mod.load_prices("BTC/USDT:USDT", prices_dir=shared_prices)
    assert history.source.endswith("BTC-USD.csv")
    assert history.dates[-1] == np.datetime64("2024-12-31")
    assert (np.diff(history.dates.astype(np.int64)) > 0).all() and (history.close > 0).all()
    reference = pd.read_csv(shared_prices / "BTC-USD.csv")
    assert np.array_equal(history.close, reference["close"].to_numpy())
    assert prices_mod.csv_candidates("SOL/USDT:USDT") == ["SOL-USDT.csv", "SOL-USD.csv"]
    with pytest.raises(InputError, match="no price file for DOGE"):
        prices_mod.load_prices("DOGE/USDT:USDT", prices_dir=shared_prices)


@pytest.mark.parametrize(
    "text,reason",
    [
        ("", "empty"),
        ("date,close\n2024-01-01,1\n", "missing column"),
        ("date,open,high,low,close,volume\n2024-01-01,1,1,1,abc,1\n", "not a number"),
        ("date,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n2024-01-01,1,1,1,1,1\n", "duplicate"),
        ("date,open,high,low,close,volume\n2024-01-01,1,1,1,-5,1\n", "no positive"),
    ],
)
def test_bad_price_csv(tmp_path, text, reason):
    path = tmp_path / "BTC-USD.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=reason) as err:
        prices_mod.load_prices("BTC/USDT:USDT", prices_dir=tmp_path)
    assert str(path) in str(err.value)


def test_offline_synthetic_is_seeded_and_announced(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")
    monkeypatch.setenv("FASTOPT_SYNTHETIC", "1")  # only when asked for (XRP has no embedded history)
    started = time.perf_counter()
    a = prices_mod.load_prices("XRP/USDT:USDT", cache_dir=tmp_path)
    assert time.perf_counter() - started < 30  # generous: proves no network wait, not speed
    b = prices_mod.load_prices("XRP/USDT:USDT", cache_dir=tmp_path)
    err = capsys.readouterr().err
    assert a.source == "synthetic" and np.array_equal(a.close, b.close)
    assert err.count("\n") == 2 and err.count("WARNING: SYNTHETIC PRICES for XRP/USDT:USDT") == 2  # one line per call
    other = prices_mod.synthetic_prices("BTC/USDT:USDT")
    assert not np.array_equal(other.close[:100], a.close[:100])
    assert other.close[-1] == pytest.approx(60_000.0) and a.close[-1] == pytest.approx(0.6)
    assert other.dates[-1] == np.datetime64("today") - 1  # ends yesterday: only closed candles
    assert np.isfinite(a.close).all() and (a.low <= a.high).all()


def test_cache_is_used_fresh_or_stale(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    fresh = prices_mod.synthetic_prices("ETH/USDT:USDT", end=np.datetime64("today") - 1)
    cache_file = tmp_path / "binanceusdm_ETH-USDT_1d.csv"
    cache_file.write_text(fresh.to_csv())
    # fresh cache: no network even when online is allowed, and the values round-trip exactly
    got = prices_mod.load_prices("ETH/USDT:USDT", cache_dir=tmp_path, offline=False)
    assert got.source.startswith("csv:") and np.array_equal(got.close, fresh.close)
    stale = prices_mod.synthetic_prices("ETH/USDT:USDT", end=np.datetime64("2024-06-30"))
    cache_file.write_text(stale.to_csv())
    got = prices_mod.load_prices("ETH/USDT:USDT", cache_dir=tmp_path, offline=True)
    assert got.dates[-1] == np.datetime64("2024-06-30")
    assert "using cached ETH/USDT:USDT prices" in capsys.readouterr().err


def test_env_prices_dir(shared_prices, monkeypatch):
    monkeypatch.setenv("FASTOPT_PRICES_DIR", os.fspath(shared_prices))
    assert prices_mod.load_prices("BNB/USDT:USDT").source.endswith("BNB-USD.csv")


class _FakeExchange:
    """Stands in for a ccxt exchange class: serves daily candles in pages of at most 3."""

    DAY_MS = 86_400_000

    def __init__(self, config):
        assert config["timeout"] <= 10_000  # the network attempt must stay short
        self.calls = 0

    def fetch_ohlcv(self, symbol, timeframe, since, limit):
        assert timeframe == "1d"
        self.calls += 1
        today_ms = int(np.datetime64("today", "ms").astype(np.int64))
        first = int(np.datetime64("today", "D").astype(np.int64) - 6) * self.DAY_MS
        rows = [[t, 10.0, 12.0, 9.0, 11.0 + t / 1e15, 5.0] for t in range(first, today_ms + self.DAY_MS, self.DAY_MS)]
        page = [r for r in rows if r[0] >= since][:3]
        return page + page[-1:]  # a duplicated candle, as some venues send


def test_ccxt_fetch_pages_dedupes_and_drops_todays_candle(monkeypatch):
    import ccxt

    monkeypatch.setattr(ccxt, "fakeexchange", _FakeExchange, raising=False)
    start = np.datetime64("today", "D") - 6
    history = prices_mod.fetch_ccxt_daily("BTC/USDT:USDT", exchange_id="fakeexchange", start=start)
    assert history.source == "ccxt:fakeexchange"
    assert history.dates.tolist() == (start + np.arange(6)).tolist()  # today's forming candle dropped
    assert (history.close > 0).all() and len(set(history.dates.tolist())) == 6


def test_online_fetch_is_cached_then_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    calls = []
    fresh = prices_mod.synthetic_prices("SOL/USDT:USDT", end=np.datetime64("today") - 1)
    fetched = prices_mod.PriceHistory(**{**fresh.__dict__, "source": "ccxt:binanceusdm"})

    def fake_fetch(symbol, **kwargs):
        calls.append(symbol)
        return fetched

    monkeypatch.setattr(prices_mod, "fetch_ccxt_daily", fake_fetch)
    first = prices_mod.load_prices("SOL/USDT:USDT", cache_dir=tmp_path, offline=False)
    assert first.source == "ccxt:binanceusdm" and calls == ["SOL/USDT:USDT"]
    second = prices_mod.load_prices("SOL/USDT:USDT", cache_dir=tmp_path, offline=False)
    assert calls == ["SOL/USDT:USDT"]  # fresh cache: no second fetch
    assert np.array_equal(second.close, fresh.close) and np.array_equal(second.dates, fresh.dates)

    def failing_fetch(symbol, **kwargs):
        raise ConnectionError("network down")

    monkeypatch.setattr(prices_mod, "fetch_ccxt_daily", failing_fetch)
    monkeypatch.delenv("FASTOPT_SYNTHETIC", raising=False)
    got = prices_mod.load_prices("ETH/USDT:USDT", cache_dir=tmp_path, offline=False)
    assert got.source == "embedded:ETH-USD"  # network down, no cache: the real history in the package
    with pytest.raises(InputError, match=r"no price data for ADA/USDT:USDT \(ConnectionError: network down"):
        prices_mod.load_prices("ADA/USDT:USDT", cache_dir=tmp_path, offline=False)
    got = prices_mod.load_prices("ADA/USDT:USDT", cache_dir=tmp_path, offline=False, synthetic=True)
    assert got.source == "synthetic"


def test_run_strategy_in_process(shared_prices, tmp_path, capsys):
    def always_long(prices):
        return np.ones(len(prices))

    args = ["--prices-dir", str(shared_prices), "--out", str(tmp_path), "--start", "2024-01-01", "--no-plot"]
    assert strat.run_strategy(name="hold_btc", symbol="BTC/USDT:USDT", signal=always_long, here=__file__, argv=args) == 0
    stats = read_stats(tmp_path / "stats.json")
    assert stats.first_date == np.datetime64("2024-01-01") and stats.last_date == np.datetime64("2024-12-31")
    frame = pd.read_csv(shared_prices / "BTC-USD.csv", index_col="date")["close"]
    expected = frame.pct_change().loc["2024-01-01":].to_numpy()  # long since 2014: no entry fee in 2024
    np.testing.assert_allclose(stats.returns, expected, rtol=1e-12)
    assert stats.metadata["Total Trades"] == 0 and not (tmp_path / "pnl.png").exists()
    args = ["--prices-dir", str(shared_prices), "--out", str(tmp_path), "--end", "2023-06-30", "--live"]
    assert strat.run_strategy(name="hold_btc", symbol="BTC/USDT:USDT", signal=always_long, here=__file__, argv=args) == 0
    state = read_state(tmp_path / "state.json")
    assert state.positions == {"BTC/USDT:USDT": 1.0} and state.extra["as_of"] == "2023-06-30"
    # user errors: one line, exit 2
    bad = ["--prices-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)]
    assert strat.run_strategy(name="x", symbol="BTC/USDT:USDT", signal=always_long, here=__file__, argv=bad) == 2
    assert "prices folder not found" in capsys.readouterr().err


def test_live_refuses_synthetic_prices_unless_allowed(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")
    monkeypatch.setenv("FASTOPT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FASTOPT_SYNTHETIC", "1")

    def always_long(prices):
        return np.ones(len(prices))

    kwargs = dict(name="x", symbol="XRP/USDT:USDT", signal=always_long, here=__file__)  # no embedded XRP history
    assert strat.run_strategy(argv=["--live", "--out", str(tmp_path)], **kwargs) == 1
    assert "refusing to write a live position" in capsys.readouterr().err
    assert not (tmp_path / "state.json").exists()
    assert strat.run_strategy(argv=["--live", "--allow-synthetic", "--out", str(tmp_path)], **kwargs) == 0
    state = read_state(tmp_path / "state.json")
    assert state.positions == {"XRP/USDT:USDT": 1.0} and state.extra["price_source"] == "synthetic"
    # backtests on synthetic data stay allowed when asked for, and say where the prices came from
    assert strat.run_strategy(argv=["--out", str(tmp_path), "--no-plot"], **kwargs) == 0
    assert read_stats(tmp_path / "stats.json").metadata["price_source"] == "synthetic"
    assert "SYNTHETIC prices" in capsys.readouterr().out
    # the embedded real history is not synthetic: no --allow-synthetic needed (stale warning only)
    btc = dict(kwargs, symbol="BTC/USDT:USDT")
    assert strat.run_strategy(argv=["--live", "--out", str(tmp_path)], **btc) == 0
    state = read_state(tmp_path / "state.json")
    assert state.extra["price_source"] == "embedded:BTC-USD" and state.extra["as_of"] == "2024-12-31"
    # not asked for: no synthetic market, one line and exit 2
    monkeypatch.delenv("FASTOPT_SYNTHETIC")
    capsys.readouterr()
    assert strat.run_strategy(argv=["--out", str(tmp_path), "--no-plot"], **kwargs) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no price data for XRP/USDT:USDT" in err and "FASTOPT_SYNTHETIC=1" in err


@given(
    close=st.lists(st.floats(min_value=1.0, max_value=1e5), min_size=1, max_size=80),
    lookback=st.integers(min_value=1, max_value=30),
)
def test_trend_intensity_is_the_rule_and_its_mirror(close, lookback):
    x = np.asarray(close)
    trend, momentum = strat.ema(x, lookback), strat.pct_change(x, lookback)
    expected_long = np.full(x.size, np.nan)
    expected_long[(x > trend) & (momentum > 0)] = 1.0
    expected_long[x < trend] = 0.0
    expected_short = np.full(x.size, np.nan)
    expected_short[(x < trend) & (momentum < 0)] = -1.0
    expected_short[x > trend] = 0.0
    np.testing.assert_array_equal(strat.trend_intensity(x, lookback_days=lookback, direction=1), expected_long)
    np.testing.assert_array_equal(strat.trend_intensity(x, lookback_days=lookback, direction=-1), expected_short)
    with pytest.raises(ValueError):
        strat.trend_intensity(x, lookback_days=lookback, direction=0)


@pytest.mark.parametrize("fee", ["nan", "inf", "-5", "x"])
def test_run_strategy_rejects_a_bad_fee_in_one_line(shared_prices, tmp_path, capsys, fee):
    args = ["--prices-dir", str(shared_prices), "--out", str(tmp_path), "--no-plot", "--fee-bps", fee]
    with pytest.raises(SystemExit) as info:
        strat.run_strategy(name="x", symbol="BTC/USDT:USDT", signal=lambda p: np.ones(len(p)), here=__file__, argv=args)
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--fee-bps" in err and "Traceback" not in err
    assert not (tmp_path / "stats.json").exists()


def test_run_strategy_unwritable_output_is_one_line(shared_prices, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    args = ["--prices-dir", str(shared_prices), "--out", str(blocker), "--no-plot"]
    code = strat.run_strategy(name="x", symbol="BTC/USDT:USDT", signal=lambda p: np.ones(len(p)), here=__file__, argv=args)
    err = capsys.readouterr().err
    assert code == 2 and str(blocker) in err and err.count("\n") == 1
    assert blocker.read_text() == "not a folder"
