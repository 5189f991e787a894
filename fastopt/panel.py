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
