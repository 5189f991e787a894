"""sol_trend: SOL time-series momentum with a dead zone, long/short.

Rules (decided at each daily close, held the next day):
- long (+1) when the 30-day return is above +10 %, short (-1) when below -10 %;
- flat (0) when the 30-day return is back inside +/-2 %;
- otherwise (between 2 % and 10 % either way) hold the current position.
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
from fastopt.backtest.strategy import pct_change, run_strategy

NAME = "sol_trend"
SYMBOL = "SOL/USDT:USDT"
LOOKBACK_DAYS = 30
ENTRY, EXIT = 0.10, 0.02


def signal(prices: PriceHistory) -> np.ndarray:
    momentum = pct_change(prices.close, LOOKBACK_DAYS)
    position = np.full(momentum.size, np.nan)  # NaN = hold
    position[momentum > ENTRY] = 1.0
    position[momentum < -ENTRY] = -1.0
    position[np.abs(momentum) < EXIT] = 0.0
    return position


if __name__ == "__main__":
    sys.exit(run_strategy(name=NAME, symbol=SYMBOL, signal=signal, here=__file__, description=__doc__.splitlines()[0]))
