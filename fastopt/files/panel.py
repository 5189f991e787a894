"""`Panel`: the aligned daily-return matrix of many strategies (what the optimizer eats).

Conventions:

- ``dates`` (T) are sorted unique UTC calendar days (``datetime64[D]``): the union
  of the days present in any loaded strategy inside the window.
- ``names`` (N) are sorted strategy names (folder names under the strategies dir).
- ``returns`` is ``T x N`` float64, C-contiguous: simple daily returns as
  fractions; a day outside a strategy's own history, or missing inside it, is 0.0
  (the strategy held cash that day).
- ``first_date`` / ``last_date`` (N, ``datetime64[D]``) are each strategy's own
  first/last day in its stats.json (its whole history, not clipped to the window).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Panel:
    """Aligned daily returns of N strategies over T days. See the module docstring."""

    dates: NDArray[np.datetime64]
    names: list[str]
    returns: NDArray[np.float64]
    first_date: NDArray[np.datetime64]
    last_date: NDArray[np.datetime64]
    skipped: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        dates = np.asarray(self.dates, dtype="datetime64[D]").reshape(-1)
        returns = np.ascontiguousarray(self.returns, dtype=np.float64)
        if returns.ndim != 2:
            raise ValueError(f"returns must be 2-D (T x N), got {returns.ndim}-D")
        n_days, n_strategies = returns.shape
        if dates.size != n_days:
            raise ValueError(f"{dates.size} dates but returns has {n_days} rows")
        if len(self.names) != n_strategies:
            raise ValueError(f"{len(self.names)} names but returns has {n_strategies} columns")
        if len(set(self.names)) != len(self.names):
            raise ValueError("strategy names must be unique")
        if dates.size > 1 and not (dates[1:] > dates[:-1]).all():
            raise ValueError("dates must be sorted and unique")
        first = np.asarray(self.first_date, dtype="datetime64[D]").reshape(-1)
        last = np.asarray(self.last_date, dtype="datetime64[D]").reshape(-1)
        if first.size != n_strategies or last.size != n_strategies:
            raise ValueError("first_date and last_date need one entry per strategy")
        object.__setattr__(self, "dates", dates)
        object.__setattr__(self, "returns", returns)
        object.__setattr__(self, "names", list(self.names))
        object.__setattr__(self, "first_date", first)
        object.__setattr__(self, "last_date", last)

    # ------------------------------------------------------------------ shape

    @property
    def n_days(self) -> int:
        """T: number of days (rows)."""
        return int(self.returns.shape[0])

    @property
    def n_strategies(self) -> int:
        """N: number of strategies (columns)."""
        return int(self.returns.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_days, self.n_strategies

    @property
    def start(self) -> np.datetime64 | None:
        """First day of the window (None for an empty panel)."""
        return self.dates[0] if self.dates.size else None

    @property
    def end(self) -> np.datetime64 | None:
        """Last day of the window (None for an empty panel)."""
        return self.dates[-1] if self.dates.size else None

    def __len__(self) -> int:
        return self.n_strategies

    # ------------------------------------------------------------------ access

    def column(self, name: str) -> NDArray[np.float64]:
        """The daily returns (T) of one strategy (a copy)."""
        try:
            index = self.names.index(name)
        except ValueError:
            raise KeyError(f"no strategy named {name!r} in the panel") from None
        return self.returns[:, index].copy()

    def active_mask(self) -> NDArray[np.bool_]:
        """T x N booleans: True where the day lies inside the strategy's own history."""
        return (self.dates[:, None] >= self.first_date[None, :]) & (
            self.dates[:, None] <= self.last_date[None, :]
        )

    def select(self, names: Sequence[str]) -> Panel:
        """A panel restricted to ``names`` (in the given order); same dates."""
        index = [self.names.index(n) for n in names]
        return Panel(
            dates=self.dates,
            names=list(names),
            returns=self.returns[:, index],
            first_date=self.first_date[index],
            last_date=self.last_date[index],
            skipped=dict(self.skipped),
            metadata={n: self.metadata.get(n, {}) for n in names},
            warnings=list(self.warnings),
        )

    def to_polars(self):  # -> polars.DataFrame (imported lazily)
        """Wide Polars frame: a ``date`` column then one column of returns per strategy."""
        import polars as pl

        frame = pl.DataFrame({"date": self.dates})
        if self.n_strategies:
            frame = frame.with_columns(
                pl.DataFrame(self.returns, schema=self.names, orient="row").get_columns()
            )
        return frame


# --------------------------------------------------------------------------- inputs of the Python API

#: Window of ``fastopt.optimize`` on dated input, in calendar days: the default of ``fastopt optimize --lookback``.
DEFAULT_LOOKBACK_DAYS = 365
#: Column names read as the dates of a returns frame (never optimized as a strategy).
DATE_COLUMNS = ("Date", "date")


@dataclass(frozen=True)
class NamedReturns:
    """A T x N float64 return matrix with its strategy names (None: unnamed) and days (None: undated)."""

    values: NDArray[np.float64]
    names: list[str] | None
    dates: NDArray[np.datetime64] | None
    panel: Panel | None = None


def _frame_error(message: str) -> Exception:
    from fastopt.errors import InputError

    return InputError(message)


def _as_days(values: Any, what: str) -> NDArray[np.datetime64]:
    try:
        days = np.asarray(values, dtype="datetime64[D]").reshape(-1)
    except (TypeError, ValueError) as exc:
        raise _frame_error(f"{what} cannot be read as dates ({exc})") from None
    if np.isnat(days).any():
        raise _frame_error(f"{what} has a missing date at row {int(np.flatnonzero(np.isnat(days))[0])}")
    return days


def _refuse_non_numeric(bad: list[tuple[str, str]]) -> None:
    if bad:
        listed = ", ".join(f"{name!r} ({dtype})" for name, dtype in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise _frame_error(
            f"non-numeric column {listed}{more}: a returns frame holds one numeric column of daily "
            f"returns per strategy, plus an optional 'Date' or 'date' column"
        )


def _date_column(columns: list[str]) -> str | None:
    found = [c for c in columns if c in DATE_COLUMNS]
    if len(found) > 1:
        raise _frame_error(f"both {found[0]!r} and {found[1]!r} columns: keep one column of dates")
    return found[0] if found else None


def _from_polars(frame: Any) -> NamedReturns:
    import polars as pl

    columns = [str(c) for c in frame.columns]
    date_col = _date_column(columns)
    dates = None
    if date_col is not None:
        col = frame.get_column(date_col)
        if col.dtype == pl.Datetime and getattr(col.dtype, "time_zone", None):
            col = col.dt.replace_time_zone(None)  # the wall-clock day of each timestamp
        dates = _as_days(col.to_numpy(), f"column {date_col!r}")
    names = [c for c in columns if c != date_col]
    _refuse_non_numeric([(c, str(frame.schema[c])) for c in names
                         if not (frame.schema[c].is_numeric() and frame.schema[c] != pl.Boolean)])
    if names:
        values = frame.select(names).cast(pl.Float64).to_numpy()
    else:
        values = np.zeros((frame.height, 0))
    return NamedReturns(np.asarray(values, dtype=np.float64), names, dates)


def _from_pandas(frame: Any) -> NamedReturns:
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        raise _frame_error("duplicate column names: each strategy needs its own column")
    date_col = _date_column(columns)
    dates = None
    if date_col is not None:
        col = frame.iloc[:, columns.index(date_col)]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            col = col.dt.tz_localize(None)  # the wall-clock day of each timestamp
        dates = _as_days(col.to_numpy(), f"column {date_col!r}")
    elif isinstance(frame.index, pd.DatetimeIndex):
        index = frame.index
        if index.tz is not None:
            index = index.tz_localize(None)
        dates = _as_days(index.to_numpy(), "the index")
    keep = [k for k, c in enumerate(columns) if c != date_col]
    bad = []
    for k in keep:
        dtype = frame.dtypes.iloc[k]
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            bad.append((columns[k], str(dtype)))
    _refuse_non_numeric(bad)
    values = frame.iloc[:, keep].to_numpy(dtype=np.float64, na_value=np.nan)
    return NamedReturns(np.asarray(values, dtype=np.float64).reshape(len(frame), len(keep)),
                        [columns[k] for k in keep], dates)


def as_named_returns(data: Any, *, names: Sequence[str] | None = None, dates: Any = None) -> NamedReturns:
    """Read what the Python API accepts as returns: a T x N array, a pandas or polars DataFrame, or a Panel.

    Frames: one numeric column of daily returns per strategy (its name is the strategy's name);
    the dates come from a ``Date`` or ``date`` column, else (pandas) from a DatetimeIndex; any other
    non-numeric column is refused (InputError naming it). A Panel gives its names and dates.
    ``names`` / ``dates`` given explicitly replace those of the input. Dates, when known, must be
    sorted and unique. The values are not yet checked for finiteness (the callers do that).
    """
    module = type(data).__module__ or ""
    if isinstance(data, Panel) or (hasattr(data, "returns") and hasattr(data, "names")):
        panel = data if isinstance(data, Panel) else None  # or a Panel-like object (dates optional)
        own_dates = getattr(data, "dates", None)
        read = NamedReturns(np.asarray(data.returns, dtype=np.float64), list(data.names),
                            None if own_dates is None else _as_days(own_dates, "dates"), panel)
    elif module.startswith("polars") and type(data).__name__ == "DataFrame":
        read = _from_polars(data)
    elif module.startswith("pandas") and type(data).__name__ == "DataFrame":
        read = _from_pandas(data)
    elif module.startswith(("pandas", "polars")) and type(data).__name__ in ("Series", "LazyFrame"):
        kind = type(data).__name__
        hint = "call .collect() first" if kind == "LazyFrame" else "pass a DataFrame (one column per strategy)"
        raise _frame_error(f"returns is a {module.split('.')[0]} {kind}: {hint}")
    else:
        read = NamedReturns(data, None, None)  # arrays: validated (and converted) by the callers
    out_names = read.names if names is None else [str(n) for n in names]
    out_dates = read.dates if dates is None else _as_days(dates, "dates")
    if out_dates is not None:
        n_rows = np.shape(read.values)[0] if np.ndim(read.values) else 0
        if out_dates.size != n_rows:
            raise _frame_error(f"{out_dates.size} dates for {n_rows} days of returns")
        if out_dates.size > 1 and not (out_dates[1:] > out_dates[:-1]).all():
            k = int(np.flatnonzero(out_dates[1:] <= out_dates[:-1])[0]) + 1
            raise _frame_error(f"dates must be sorted and unique: {out_dates[k]} at row {k} "
                               f"follows {out_dates[k - 1]}")
    if out_names is not None and len(set(out_names)) != len(out_names):
        raise _frame_error("strategy names must be unique")
    return NamedReturns(read.values, out_names, out_dates, read.panel)


def last_days_mask(dates: NDArray[np.datetime64], days: int) -> NDArray[np.bool_]:
    """Rows of ``dates`` (sorted datetime64[D]) within the last ``days`` calendar days up to the last one.

    The rule of ``fastopt optimize --lookback``; ``days`` beyond the span selects every row.
    """
    if dates.size == 0:
        return np.zeros(0, dtype=bool)
    span = int((dates[-1] - dates[0]).astype(np.int64)) + 1
    return dates > dates[-1] - np.timedelta64(min(int(days), span), "D")
