"""Deterministic universe of 80 strategies on the embedded real daily prices (BTC, ETH, BNB, SOL).

Each coin gets the same 20 rules (long-short, positions decided at the close and held the next
day, ``fastopt.backtest.strategy.backtest`` with its default 5 bp fee per unit of turnover):

- moving-average trend: sign(SMA fast - SMA slow) for (5, 20), (10, 50), (20, 100), (50, 200);
  sign(EMA fast - EMA slow) for (12, 26), (20, 60);
- time-series momentum: sign of the trailing 7, 14, 30, 60, 90, 180-day return;
- Donchian breakout: +1 at a new 10/20/55/100-day closing high, -1 at a new low, hold between;
- RSI mean reversion: +1 below 30, -1 above 70 (14 days) and 20/80 (7 days), flat between;
- Bollinger mean reversion: -sign(z) when |z| > 1 with z the close's 20/50-day z-score, else flat.

The panel runs from the first day of BNB/ETH history (2017-11-09) to the last embedded day; SOL
starts on 2020-04-10, and its strategies return 0 before (a late starter, like the synthetic
universe's). Returns are simple daily fractions; no randomness, so the universe is the same on every
machine with the same embedded data.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from fastopt.backtest.prices import load_embedded
from fastopt.backtest.strategy import backtest, ema, pct_change, rolling_max, rolling_min, rolling_std, rsi, sma

COINS = ("BTC", "ETH", "BNB", "SOL")


def _hold_signal(up: NDArray[np.bool_], down: NDArray[np.bool_]) -> NDArray[np.float64]:
    """+1 where ``up``, -1 where ``down``, NaN (hold) elsewhere."""
    out = np.full(up.size, np.nan)
    out[up] = 1.0
    out[down] = -1.0
    return out


def rules(close: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    """Rule name -> positions (T, NaN = hold / not yet defined) of the 20 rules on one close series."""
    out: dict[str, NDArray[np.float64]] = {}
    for fast, slow in ((5, 20), (10, 50), (20, 100), (50, 200)):
        out[f"sma{fast}_{slow}"] = np.sign(sma(close, fast) - sma(close, slow))
    for fast, slow in ((12, 26), (20, 60)):
        direction = np.sign(ema(close, fast) - ema(close, slow))
        direction[:slow] = np.nan  # the EMAs are seeded with the first close: wait for them to settle
        out[f"ema{fast}_{slow}"] = direction
    for days in (7, 14, 30, 60, 90, 180):
        out[f"mom{days}"] = np.sign(pct_change(close, days))
    for days in (10, 20, 55, 100):
        previous_high = np.concatenate([[np.nan], rolling_max(close, days)[:-1]])
        previous_low = np.concatenate([[np.nan], rolling_min(close, days)[:-1]])
        with np.errstate(invalid="ignore"):
            out[f"donchian{days}"] = _hold_signal(close > previous_high, close < previous_low)
    for days, low, high in ((14, 30.0, 70.0), (7, 20.0, 80.0)):
        level = rsi(close, days)
        position = np.where(level < low, 1.0, np.where(level > high, -1.0, 0.0))
        position[np.isnan(level)] = np.nan
        out[f"rsi{days}_{int(low)}"] = position
    for days in (20, 50):
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (close - sma(close, days)) / rolling_std(close, days)
            position = np.where(np.abs(z) > 1.0, -np.sign(z), 0.0)
        position[np.isnan(z)] = np.nan
        out[f"boll{days}"] = position
    return out


def real_price_universe(coins: tuple[str, ...] = COINS) -> tuple[NDArray[np.datetime64], list[str], NDArray[np.float64]]:
    """``(dates (T,), names (N = 20 per coin), returns (T x N float64))`` of the rules above."""
    histories = {}
    for coin in coins:
        history = load_embedded(f"{coin}/USDT")
        if history is None:
            raise FileNotFoundError(f"no embedded price series for {coin}")
        histories[coin] = history
    # start: the latest first day among all coins but the latest starter (SOL joins late)
    firsts = sorted(h.dates[0] for h in histories.values())
    start = firsts[-2] if len(firsts) > 1 else firsts[0]
    end = min(h.dates[-1] for h in histories.values())
    dates = np.arange(start, end + np.timedelta64(1, "D"), dtype="datetime64[D]")
    names: list[str] = []
    columns: list[NDArray[np.float64]] = []
    for coin, history in histories.items():
        keep = (history.dates >= start) & (history.dates <= end)
        days, close = history.dates[keep], history.close[keep]
        if not np.array_equal(days, dates[dates >= days[0]]):
            raise ValueError(f"{coin}: the embedded daily history has gaps between {days[0]} and {end}")
        offset = dates.size - days.size
        for rule, position in rules(close).items():
            result = backtest(close, position)
            column = np.zeros(dates.size)
            column[offset:] = result.returns
            names.append(f"{coin}_{rule}")
            columns.append(column)
    return dates, names, np.ascontiguousarray(np.column_stack(columns))
