"""bnb_meanrev: BNB mean reversion on RSI and z-score, long only.

Rules (decided at each daily close, held the next day):
- long (+1) when the 14-day RSI is below 30 *and* the close is more than 1.5
  standard deviations under its 20-day mean (an oversold stretch);
- flat (0) when the RSI recovers above 55 or the close is back over its 20-day mean;
- otherwise hold the current position.
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
from fastopt.backtest.strategy import rolling_std, rsi, run_strategy, sma

NAME = "bnb_meanrev"
SYMBOL = "BNB/USDT:USDT"
RSI_DAYS, Z_DAYS = 14, 20
RSI_ENTRY, RSI_EXIT, Z_ENTRY = 30.0, 55.0, -1.5


def signal(prices: PriceHistory) -> np.ndarray:
    close = prices.close
    strength = rsi(close, RSI_DAYS)
    mean = sma(close, Z_DAYS)
    with np.errstate(divide="ignore", invalid="ignore"):
        zscore = (close - mean) / rolling_std(close, Z_DAYS)
    position = np.full(close.size, np.nan)  # NaN = hold
    position[(strength < RSI_ENTRY) & (zscore < Z_ENTRY)] = 1.0
    position[(strength > RSI_EXIT) | (close > mean)] = 0.0
    return position


if __name__ == "__main__":
    sys.exit(run_strategy(name=NAME, symbol=SYMBOL, signal=signal, here=__file__, description=__doc__.splitlines()[0]))
