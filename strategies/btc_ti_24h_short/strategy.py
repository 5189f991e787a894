"""btc_ti_24h_short: BTC trend intensity, short only (the mirror of btc_ti_24h).

Rules (decided at each daily close, held the next day):
- short (-1) when the close is below its 24-day EMA *and* the 24-day return is negative;
- flat (0) when the close rises above the 24-day EMA;
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
from fastopt.backtest.strategy import run_strategy, trend_intensity

NAME = "btc_ti_24h_short"
SYMBOL = "BTC/USDT:USDT"
LOOKBACK_DAYS = 24


def signal(prices: PriceHistory) -> np.ndarray:
    return trend_intensity(prices.close, lookback_days=LOOKBACK_DAYS, direction=-1)


if __name__ == "__main__":
    sys.exit(run_strategy(name=NAME, symbol=SYMBOL, signal=signal, here=__file__, description=__doc__.splitlines()[0]))
