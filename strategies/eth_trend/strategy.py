"""eth_trend: ETH moving-average trend, long/short, volatility-targeted.

Rules (decided at each daily close, held the next day):
- direction +1 when the 20-day SMA is above the 100-day SMA, -1 when below;
- size = min(40 % / realized annual vol over 30 days, 1): smaller in storms;
- flat until both averages and the volatility exist.
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
from fastopt.backtest.strategy import run_strategy, sma, vol_scale

NAME = "eth_trend"
SYMBOL = "ETH/USDT:USDT"
FAST_DAYS, SLOW_DAYS = 20, 100
TARGET_ANN_VOL = 0.40


def signal(prices: PriceHistory) -> np.ndarray:
    close = prices.close
    direction = np.sign(sma(close, FAST_DAYS) - sma(close, SLOW_DAYS))
    size = vol_scale(close, target_ann_vol=TARGET_ANN_VOL, window=30, cap=1.0)
    position = direction * size
    return np.where(np.isnan(position), 0.0, position)


if __name__ == "__main__":
    sys.exit(run_strategy(name=NAME, symbol=SYMBOL, signal=signal, here=__file__, description=__doc__.splitlines()[0]))
