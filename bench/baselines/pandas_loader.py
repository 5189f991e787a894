"""What a user writes without fastopt: a json + pandas loop over ``*/stats.json``.

Same alignment as BlaveClaw's manager (union of dates, sorted, missing = 0 return),
strategies sorted by folder name, optional window of the last ``lookback`` rows.
Accepts the three stats.json shapes of daily returns (parallel lists with
``daily_dates``, a date→return mapping, a list of {date, return} records).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def _series(data: dict) -> pd.Series:
    daily = data["daily_returns"]
    if isinstance(daily, dict):
        dates, values = list(daily.keys()), list(daily.values())
    elif daily and isinstance(daily[0], dict):
        dates = [row["date"] for row in daily]
        values = [row["return"] for row in daily]
    else:
        dates, values = data["daily_dates"], daily
    return pd.Series(values, index=pd.to_datetime(dates), dtype=float)


def pandas_load(strategies_dir: Path, *, lookback: int | None = None) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(dates datetime64[D] T, names N sorted, returns T×N float64) from every ``*/stats.json``."""
    series_by_name: dict[str, pd.Series] = {}
    for path in sorted(Path(strategies_dir).glob("*/stats.json")):
        with open(path, encoding="utf-8") as handle:
            series_by_name[path.parent.name] = _series(json.load(handle))
    frame = pd.DataFrame(series_by_name).sort_index().fillna(0.0)
    frame = frame[sorted(frame.columns)]
    if lookback is not None:
        frame = frame.iloc[-lookback:]
    dates = frame.index.values.astype("datetime64[D]")
    return dates, list(frame.columns), np.ascontiguousarray(frame.to_numpy(dtype=np.float64))
