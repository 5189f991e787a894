"""Load every `<strategies_dir>/*/stats.json` into one aligned :class:`~fastopt.files.panel.Panel`.

Discovery: one level under ``strategies_dir``; a folder without a stats.json is
ignored silently, a malformed stats.json is skipped with a one-line warning on
stderr (logger ``fastopt.files.loader``) naming the file and the reason, and recorded
in ``Panel.skipped``. With ``strict=True`` any skip raises InputError instead.

Alignment: each file's days are cut into runs of consecutive days (one run for
the usual file with one return per day). Polars cuts the runs to the window,
merges them into the union calendar (the sorted days present in any strategy
inside the window: an interval union) and gives each run its first row; numpy
copies each run's returns down its column of the T x N matrix. Missing cells
are 0.0 returns.

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
from fastopt.files.panel import Panel
from fastopt.files.stats import StatsBatch, StatsSeries

logger = logging.getLogger("fastopt.files.loader")

#: Default minimum number of dated entries a strategy needs inside the window.
DEFAULT_MIN_HISTORY_DAYS = 30
STATS_FILENAME = "stats.json"

__all__ = ["load_panel", "discover_stats", "DEFAULT_MIN_HISTORY_DAYS"]


def discover_stats(strategies_dir: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """Sorted (name, path) of every ``<strategies_dir>/<name>/stats.json``; InputError if no folder."""
    return [(name, Path(path)) for name, path in _discover(strategies_dir)]


def _discover(strategies_dir: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """:func:`discover_stats` with plain string paths (no pathlib cost per file)."""
    root = Path(strategies_dir)
    if not root.exists():
        raise InputError("strategies folder not found", path=root)
    if not root.is_dir():
        raise InputError("not a folder", path=root)
    found: list[tuple[str, str]] = []
    isfile = os.path.isfile
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            candidate = os.path.join(entry.path, STATS_FILENAME)
            if isfile(candidate):
                found.append((entry.name, candidate))
    found.sort(key=lambda item: item[0])
    return found


def _read_bytes(path: str) -> bytes:
    with open(path, "rb", buffering=0) as handle:
        return handle.read()


def _to_day(value: str | date | np.datetime64 | None, what: str) -> np.datetime64 | None:
    if value is None:
        return None
    try:
        day = np.datetime64(value, "D")
    except (ValueError, TypeError, OverflowError):
        day = np.datetime64("NaT")
    if np.isnat(day):  # '' and 'NaT' parse to NaT without an error
        raise InputError(f"{what} {value!r} is not a valid date (YYYY-MM-DD)")
    return day


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
    files = _discover(strategies_dir)

    skipped: dict[str, str] = {}
    warnings: list[str] = []
    loaded: list[tuple[str, StatsSeries]] = []

    def skip(name: str, path: str, reason: str) -> None:
        if strict:
            raise InputError(reason, path=path)
        skipped[name] = reason
        message = f"skipped {path}: {reason}"
        warnings.append(message)
        logger.warning(message)

    # Read and parse file by file: a fast-path file's bytes are dropped as soon as it is parsed.
    batch = StatsBatch()
    readable: list[tuple[str, str]] = []
    for name, path in files:
        try:
            content = _read_bytes(path)
        except OSError as exc:
            skip(name, path, f"cannot read: {exc.strerror or exc}")
            continue
        batch.add(content)
        readable.append((name, path))
    for (name, path), parsed in zip(readable, batch.finish()):
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

    runs, first_day, last_day = _day_runs(loaded)
    window_end = int(end_day.astype(np.int64)) if end_day is not None else last_day
    # No data lies before first_day: starting the window there holds the same days, and keeps a
    # huge lookback (say 10**20 days) inside the 64-bit day numbers Polars works with.
    window_start = max(window_end - (int(lookback) - 1), first_day) if lookback is not None else first_day
    # A window shorter than the minimum cannot hold it: the window length is then the minimum.
    required = min_history_days if lookback is None else min(min_history_days, int(lookback))
    clipped = _clip_runs(runs, window_start, window_end)
    counts = np.bincount(clipped["k"].to_numpy(), weights=clipped["len"].to_numpy(), minlength=len(loaded))
    keep: list[int] = []
    paths = dict(readable)
    for k, (name, series) in enumerate(loaded):
        path = paths[name]
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

    kept = clipped.filter(pl.Series(np.isin(clipped["k"].to_numpy(), keep))) if len(keep) < len(loaded) else clipped
    calendar, kept = _calendar_of(_align_runs(kept))
    column_of = np.full(len(loaded), -1, dtype=np.int64)
    column_of[keep] = np.arange(len(keep))
    values = np.concatenate([series.returns for _, series in loaded])
    returns = _scatter(
        values,
        n_days=calendar.size,
        n_columns=len(keep),
        run_row=kept["row"].to_numpy(),
        run_column=column_of[kept["k"].to_numpy()],
        run_at=kept["at"].to_numpy(),
        run_len=kept["len"].to_numpy(),
    )
    dates = calendar.astype("datetime64[D]")
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


def _day_runs(loaded: list[tuple[str, StatsSeries]]) -> tuple[pl.DataFrame, int, int]:
    """Runs of consecutive days, one row each: k (file), start (day number), at (index in the
    concatenated returns), len (days); and the first and last day of all. Each file's dates are
    sorted and unique, so a file whose last day is first day + (count - 1) is one run; only the
    others are cut where a day is missing."""
    n_files = len(loaded)
    lengths = np.fromiter((s.dates.size for _, s in loaded), dtype=np.int64, count=n_files)
    first = np.fromiter((s.dates[0] for _, s in loaded), dtype="datetime64[D]", count=n_files).astype(np.int64)
    last = np.fromiter((s.dates[-1] for _, s in loaded), dtype="datetime64[D]", count=n_files).astype(np.int64)
    at = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    gappy = np.flatnonzero(last - first + 1 != lengths)
    k, start, run_at, run_len = np.arange(n_files, dtype=np.int32), first, at, lengths
    if gappy.size:
        day = np.concatenate([loaded[j][1].dates for j in gappy.tolist()]).astype(np.int64)
        file_of = np.repeat(gappy, lengths[gappy])
        offset = np.concatenate([[0], np.cumsum(lengths[gappy])])
        opens_run = np.ones(day.size, dtype=bool)
        opens_run[1:] = day[1:] != day[:-1] + 1
        opens_run[offset[:-1]] = True
        where = np.flatnonzero(opens_run)
        single = np.flatnonzero(last - first + 1 == lengths)
        k = np.concatenate([single, file_of[where]]).astype(np.int32)
        start = np.concatenate([first[single], day[where]])
        # index in the concatenation of all files = the file's offset there + index inside the file
        inside = where - np.repeat(offset[:-1], np.diff(np.searchsorted(where, offset)))
        run_at = np.concatenate([at[single], at[file_of[where]] + inside])
        run_len = np.concatenate([lengths[single], np.diff(np.append(where, day.size))])
    frame = pl.DataFrame({"k": k, "start": start, "at": run_at, "len": run_len})
    return frame, int(first.min()), int(last.max())


# The run tables hold one row per run (about one per strategy): Polars works on them with
# eager Series operations, which skip the lazy engine's planning and thread hand-offs that
# would cost more than the work itself at this size.


def _larger(a: pl.Series, b: pl.Series) -> pl.Series:
    """Element-wise maximum of two Series."""
    return a.zip_with(a >= b, b)


def _clip_runs(runs: pl.DataFrame, window_start: int, window_end: int) -> pl.DataFrame:
    """The runs cut to the window [window_start, window_end] (day numbers, inclusive); empty ones dropped."""
    start = runs["start"]
    first = start.clip(lower_bound=window_start)
    last = (start + runs["len"] - 1).clip(upper_bound=window_end)
    clipped = pl.DataFrame(
        {"k": runs["k"], "start": first, "at": runs["at"] + (first - start), "len": last - first + 1}
    )
    return clipped.filter(first <= last)


def _align_runs(runs: pl.DataFrame) -> pl.DataFrame:
    """Each run's first row in the union calendar (sorted day numbers present in any run),
    and the days it adds to that calendar (see :func:`_calendar_of`).

    With the runs sorted by first day, ``reach`` is the last day covered by the
    runs before a run. Every day from the run's first day up to ``reach`` is
    already covered (the run reaching it started no later), so a run adds the
    days after ``max(start - 1, reach)`` up to its last day, and its first row is
    the number of days added before it minus the covered days at or after its start.
    """
    runs = runs.sort("start")
    start = runs["start"]
    last = start + runs["len"] - 1
    reach = last.cum_max().shift(1, fill_value=-(2**62))
    added = (last - _larger(start - 1, reach)).clip(lower_bound=0)
    added_before = added.cum_sum() - added
    return runs.with_columns(
        row=added_before - (reach - start + 1).clip(lower_bound=0),
        added_first=_larger(start, reach + 1),
        added=added,
        added_before=added_before,
    )


def _calendar_of(aligned: pl.DataFrame) -> tuple[np.ndarray, pl.DataFrame]:
    """(union calendar as day numbers, aligned runs): each run adds ``added`` days from ``added_first``."""
    added = aligned["added"].to_numpy()
    calendar = np.arange(int(added.sum()), dtype=np.int64) + np.repeat(
        aligned["added_first"].to_numpy() - aligned["added_before"].to_numpy(), added
    )
    return calendar, aligned


#: Above this many runs, the scatter is one vectorized assignment instead of a slice per run.
_LOOP_RUNS_MAX = 20_000


def _scatter(
    values: np.ndarray,
    *,
    n_days: int,
    n_columns: int,
    run_row: np.ndarray,
    run_column: np.ndarray,
    run_at: np.ndarray,
    run_len: np.ndarray,
) -> np.ndarray:
    """T x N zeros with each run's values written down its column from its first row."""
    out = np.zeros((n_days, n_columns), dtype=np.float64)
    if run_row.size <= _LOOP_RUNS_MAX:
        for row, column, at, length in zip(run_row.tolist(), run_column.tolist(), run_at.tolist(), run_len.tolist()):
            out[row:row + length, column] = values[at:at + length]
        return out
    total = int(run_len.sum())
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(run_len) - run_len, run_len)
    source = np.repeat(run_at, run_len) + offset
    target = (np.repeat(run_row, run_len) + offset) * n_columns + np.repeat(run_column, run_len)
    out.reshape(-1)[target] = values[source]
    return out


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
