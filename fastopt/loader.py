"""Load every `<strategies_dir>/*/stats.json` into one aligned :class:`~fastopt.panel.Panel`.

Discovery: one level under ``strategies_dir``; a folder without a stats.json is
ignored silently, a malformed stats.json is skipped with a one-line warning on
stderr (logger ``fastopt.loader``) naming the file and the reason, and recorded
in ``Panel.skipped``. With ``strict=True`` any skip raises InputError instead.

Alignment: one long Polars frame (strategy, date, return) is built from all
files in one go and cut to the window; Polars computes the union calendar (the
sorted unique days present in the window) and each row's position in it; numpy
scatters the returns into the T x N matrix. Missing cells are 0.0 returns.

Window: it ends at ``end`` (inclusive; default: the latest day of any file) and,
with ``lookback``, spans the last ``lookback`` *calendar days* ending there.
A strategy with fewer than ``min_history_days`` of its own dated entries inside
the window is skipped with the reason (default 30 days; capped at ``lookback``
when the window is shorter than that).
"""
from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from fastopt.errors import InputError
from fastopt.panel import Panel
from fastopt.stats_file import StatsSeries, loads_many

logger = logging.getLogger("fastopt.loader")

#: Default minimum number of dated entries a strategy needs inside the window.
DEFAULT_MIN_HISTORY_DAYS = 30
STATS_FILENAME = "stats.json"

__all__ = ["load_panel", "discover_stats", "DEFAULT_MIN_HISTORY_DAYS"]


def discover_stats(strategies_dir: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """Sorted (name, path) of every ``<strategies_dir>/<name>/stats.json``; InputError if no folder."""
    root = Path(strategies_dir)
    if not root.exists():
        raise InputError("strategies folder not found", path=root)
    if not root.is_dir():
        raise InputError("not a folder", path=root)
    found: list[tuple[str, Path]] = []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            candidate = Path(entry.path) / STATS_FILENAME
            if candidate.is_file():
                found.append((entry.name, candidate))
    found.sort(key=lambda item: item[0])
    return found


def _to_day(value: str | date | np.datetime64 | None, what: str) -> np.datetime64 | None:
    if value is None:
        return None
    try:
        return np.datetime64(value, "D")
    except (ValueError, TypeError):
        raise InputError(f"{what} {value!r} is not a valid date (YYYY-MM-DD)") from None


def load_panel(
    strategies_dir: str | os.PathLike[str],
    lookback: int | None = None,
    end: str | date | np.datetime64 | None = None,
    strict: bool = False,
    min_history_days: int = DEFAULT_MIN_HISTORY_DAYS,
) -> Panel:
    """Load and align all strategies' daily returns (see the module docstring).

    ``lookback``: window length in calendar days (None: all history);
    ``end``: last day of the window, inclusive (None: latest day of any file);
    ``strict``: raise InputError on the first skipped strategy instead of warning;
    ``min_history_days``: minimum own dated entries inside the window (capped at ``lookback``).
    Returns a Panel (possibly with N = 0: deciding what that means is the caller's job).
    """
    if lookback is not None and (isinstance(lookback, bool) or int(lookback) != lookback or lookback < 1):
        raise InputError(f"lookback must be a positive whole number of days, got {lookback!r}")
    if isinstance(min_history_days, bool) or min_history_days < 0:
        raise InputError(f"min_history_days must be >= 0, got {min_history_days!r}")
    end_day = _to_day(end, "end")
    files = discover_stats(strategies_dir)

    skipped: dict[str, str] = {}
    warnings: list[str] = []
    loaded: list[tuple[str, StatsSeries]] = []

    def skip(name: str, path: Path, reason: str) -> None:
        if strict:
            raise InputError(reason, path=path)
        skipped[name] = reason
        message = f"skipped {path}: {reason}"
        warnings.append(message)
        logger.warning(message)

    contents: list[bytes] = []
    readable: list[tuple[str, Path]] = []
    for name, path in files:
        try:
            contents.append(path.read_bytes())
            readable.append((name, path))
        except OSError as exc:
            skip(name, path, f"cannot read: {exc.strerror or exc}")
    for (name, path), parsed in zip(readable, loads_many(contents)):
        if isinstance(parsed, ValueError):
            skip(name, path, str(parsed))
            continue
        for remark in parsed.warnings:
            message = f"{path}: {remark}"
            warnings.append(message)
            logger.warning(message)
        loaded.append((name, parsed))

    if not loaded:
        return _empty_panel(skipped, warnings)

    lengths = np.fromiter((s.dates.size for _, s in loaded), dtype=np.int64, count=len(loaded))
    long = pl.DataFrame(
        {
            "k": np.repeat(np.arange(len(loaded), dtype=np.int32), lengths),
            "date": np.concatenate([s.dates for _, s in loaded]),
            "r": np.concatenate([s.returns for _, s in loaded]),
        }
    )
    window_end = end_day if end_day is not None else long["date"].max()
    window_end = np.datetime64(window_end, "D")
    condition = pl.col("date") <= window_end.astype(date)
    if lookback is not None:
        window_start = window_end - np.timedelta64(int(lookback) - 1, "D")
        condition = condition & (pl.col("date") >= window_start.astype(date))
    window = long.filter(condition)

    counts = np.bincount(window["k"].to_numpy(), minlength=len(loaded))
    # A window shorter than the minimum cannot hold it: the window length is then the minimum.
    required = min_history_days if lookback is None else min(min_history_days, int(lookback))
    keep: list[int] = []
    for k, (name, series) in enumerate(loaded):
        path = Path(strategies_dir) / name / STATS_FILENAME
        if counts[k] == 0:
            skip(name, path, "no daily return inside the window")
        elif counts[k] < required:
            skip(
                name,
                path,
                f"only {int(counts[k])} day(s) of history in the window (minimum {required})",
            )
        else:
            keep.append(k)
    if not keep:
        return _empty_panel(skipped, warnings)

    kept = window.filter(pl.col("k").is_in(keep)) if len(keep) < len(loaded) else window
    # Union calendar (sorted unique days in the window) and each row's position in it: Polars.
    calendar = kept["date"].unique().sort()
    row_of = calendar.search_sorted(kept["date"]).to_numpy()
    column_of = np.full(len(loaded), -1, dtype=np.int64)
    column_of[keep] = np.arange(len(keep))
    returns = np.zeros((calendar.len(), len(keep)), dtype=np.float64)
    returns[row_of, column_of[kept["k"].to_numpy()]] = kept["r"].to_numpy()
    dates = calendar.to_numpy().astype("datetime64[D]")
    names = [loaded[k][0] for k in keep]
    return Panel(
        dates=dates,
        names=names,
        returns=returns,
        first_date=np.array([loaded[k][1].first_date for k in keep], dtype="datetime64[D]"),
        last_date=np.array([loaded[k][1].last_date for k in keep], dtype="datetime64[D]"),
        skipped=skipped,
        metadata={loaded[k][0]: loaded[k][1].metadata for k in keep},
        warnings=warnings,
    )


def _empty_panel(skipped: dict[str, str], warnings: list[str]) -> Panel:
    return Panel(
        dates=np.array([], dtype="datetime64[D]"),
        names=[],
        returns=np.zeros((0, 0)),
        first_date=np.array([], dtype="datetime64[D]"),
        last_date=np.array([], dtype="datetime64[D]"),
        skipped=skipped,
        metadata={},
        warnings=warnings,
    )
