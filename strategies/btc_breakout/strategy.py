"""btc_breakout: BTC Donchian channel breakout, long/short (turtle style).

Rules (decided at each daily close, held the next day):
- long (+1) when the close breaks above the previous 55-day high;
- short (-1) when the close breaks below the previous 55-day low;
- exit a long (0) below the previous 20-day low, exit a short above the previous 20-day high;
- otherwise hold. Channels use the days *before* today, so today's close can break them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

try:
    import fastopt  # noqa: F401
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fastopt.backtest.prices import PriceHistory
from fastopt.backtest.strategy import rolling_max, rolling_min, run_strategy

NAME = "btc_breakout"
SYMBOL = "BTC/USDT:USDT"
ENTRY_DAYS, EXIT_DAYS = 55, 20


def _previous(values: np.ndarray) -> np.ndarray:
    out = np.full_like(values, np.nan)
    out[1:] = values[:-1]
    return out


def signal(prices: PriceHistory) -> np.ndarray:
    close = prices.close
    entry_high = _previous(rolling_max(prices.high, ENTRY_DAYS))
    entry_low = _previous(rolling_min(prices.low, ENTRY_DAYS))
    exit_high = _previous(rolling_max(prices.high, EXIT_DAYS))
    exit_low = _previous(rolling_min(prices.low, EXIT_DAYS))
    position = np.zeros(close.size)
    held = 0.0
    for t in range(close.size):  # the exit rule depends on the side held: a short state loop
        if close[t] > entry_high[t]:
            held = 1.0
        elif close[t] < entry_low[t]:
            held = -1.0
        elif held > 0 and close[t] < exit_low[t]:
            held = 0.0
        elif held < 0 and close[t] > exit_high[t]:
            held = 0.0
        position[t] = held
    return position


if __name__ == "__main__":
    sys.exit(run_strategy(name=NAME, symbol=SYMBOL, signal=signal, here=__file__, description=__doc__.splitlines()[0]))
