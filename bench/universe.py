"""Seeded generator of realistic strategy universes, in the stats.json format.

``python -m bench.universe --n 1000 --days 1825 --seed 0 --out DIR [--no-market-factor]``

What a generated universe contains (all vectorized, deterministic for a seed):

- a common **market factor** (fat-tailed daily returns, ~60 % annual vol, with
  calm/stormy volatility regimes), unless ``market_factor=False``;
- **sector factors** (one per ~40 strategies, at least 3);
- each strategy trades its exposure to the market and its sector through
  on/off regimes (**flat stretches**: days of exactly 0 return), plus its own
  noise and a drift giving an annual Sharpe ratio spread from losing to good;
- **near-duplicates** (a copy of another strategy plus tiny noise);
- **mirrored long/short twins** (minus the copy, minus a fee drag);
- **late starters** (history begins well after the first day; 0 before);
- a few clear **losers** (negative drift).

Without the market factor and with N > T, the sample covariance is singular and
near-zero-variance long-only portfolios exist: the ill-posed case optimizers
must survive.

Python API: :func:`generate_universe` (arrays) and :func:`write_universe` (files).
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from numpy.typing import NDArray

from fastopt.files.atomic import atomic_write_bytes

#: Last day of every generated universe (fixed so outputs are reproducible).
UNIVERSE_END = np.datetime64("2024-12-31", "D")
PERIODS_PER_YEAR = 365

KIND_TREND = "trend"
KIND_DUPLICATE = "dup"
KIND_TWIN = "short"
KIND_LOSER = "loser"
KIND_LATE = "late"


@dataclass(frozen=True)
class Universe:
    """A generated universe. ``returns`` is T x N (0.0 before ``first_index``)."""

    dates: NDArray[np.datetime64]
    names: list[str]
    returns: NDArray[np.float64]
    first_index: NDArray[np.int64]
    kinds: list[str]


def _regimes(rng: np.random.Generator, n_days: int, n_series: int, mean_run: float, p_on: float) -> NDArray[np.bool_]:
    """T x K on/off regimes with geometric run lengths (mean ``mean_run`` days)."""
    switch = rng.random((n_days, n_series)) < 1.0 / mean_run
    start_on = rng.random(n_series) < p_on
    flips = np.cumsum(switch, axis=0) % 2 == 1
    return flips ^ start_on[None, :]


def build_universe(n: int, days: int, seed: int, *, market_factor: bool = True) -> Universe:
    """Generate the full universe description (see the module docstring)."""
    if n < 1 or days < 2:
        raise ValueError(f"need n >= 1 and days >= 2, got n={n}, days={days}")
    rng = np.random.default_rng(seed)
    n_days = int(days)
    dates = UNIVERSE_END - np.arange(n_days - 1, -1, -1).astype("timedelta64[D]")

    # Common factors: volatility regimes (calm 2 %, stormy 5.5 % a day) and Student-t shocks.
    storm = _regimes(rng, n_days, 1, mean_run=90.0, p_on=0.3)[:, 0]
    market_vol = np.where(storm, 0.055, 0.025)
    market = market_vol * rng.standard_t(df=4, size=n_days) / np.sqrt(2.0) + 0.0008
    if not market_factor:
        market = np.zeros(n_days)
    n_sectors = max(3, n // 40)
    sectors = 0.015 * rng.standard_t(df=5, size=(n_days, n_sectors)) / np.sqrt(5.0 / 3.0)

    # Base strategies: timed exposure to market + sector, own noise, drift.
    sector_of = rng.integers(0, n_sectors, size=n)
    beta = rng.uniform(0.2, 1.0, size=n)
    sector_loading = rng.uniform(0.3, 0.9, size=n)
    idio_vol = rng.uniform(0.004, 0.02, size=n)
    target_sharpe = rng.uniform(-0.3, 1.8, size=n)
    kinds = [KIND_TREND] * n
    # Losers (~4 %): a clearly negative drift.
    n_losers = max(1, n // 25) if n >= 5 else 0
    for j in rng.choice(n, size=n_losers, replace=False):
        target_sharpe[j] = rng.uniform(-1.5, -0.8)
        kinds[j] = KIND_LOSER
    exposure = _regimes(rng, n_days, n, mean_run=25.0, p_on=0.6).astype(np.float64)
    systematic = beta[None, :] * market[:, None] + sector_loading[None, :] * sectors[:, sector_of]
    noise = idio_vol[None, :] * rng.standard_normal((n_days, n))
    gross = exposure * (systematic + noise)
    daily_sd = np.maximum(gross.std(axis=0), 1e-4)
    drift = target_sharpe * daily_sd / np.sqrt(PERIODS_PER_YEAR)
    returns = gross + exposure * drift[None, :] * (1.0 / np.maximum(exposure.mean(axis=0), 0.05))[None, :]

    # Near-duplicates (~10 %) and mirrored short twins (~6 %) of earlier base strategies.
    order = rng.permutation(n)
    n_dups = n // 10
    n_twins = n // 16
    dup_targets = order[:n_dups]
    twin_targets = order[n_dups : n_dups + n_twins]
    sources_pool = order[n_dups + n_twins :]
    if sources_pool.size:
        dup_sources = rng.choice(sources_pool, size=dup_targets.size)
        returns[:, dup_targets] = returns[:, dup_sources] + 2e-4 * rng.standard_normal((n_days, dup_targets.size)) * (
            returns[:, dup_sources] != 0
        )
        for j in dup_targets:
            kinds[j] = KIND_DUPLICATE
        twin_sources = rng.choice(sources_pool, size=twin_targets.size)
        fee_drag = 0.0004 * (returns[:, twin_sources] != 0)
        returns[:, twin_targets] = -returns[:, twin_sources] - fee_drag
        for j in twin_targets:
            kinds[j] = KIND_TWIN

    # Late starters (~20 %): history starts between 25 % and 75 % of the span.
    first_index = np.zeros(n, dtype=np.int64)
    n_late = n // 5
    if n_late and n_days >= 8:
        late = rng.choice(n, size=n_late, replace=False)
        first_index[late] = rng.integers(n_days // 4, (3 * n_days) // 4, size=n_late)
        for j in late:
            kinds[j] = f"{kinds[j]}_{KIND_LATE}"
    before_start = np.arange(n_days)[:, None] < first_index[None, :]
    returns[before_start] = 0.0
    # No loss of 100 % or more (stats.json refuses r <= -1).
    np.clip(returns, -0.9, 3.0, out=returns)
    width = len(str(n - 1))
    names = [f"s{j:0{width}d}_{kinds[j]}" for j in range(n)]
    return Universe(
        dates=dates,
        names=names,
        returns=np.ascontiguousarray(returns),
        first_index=first_index,
        kinds=kinds,
    )


def generate_universe(
    n: int, days: int, seed: int, market_factor: bool = True
) -> tuple[NDArray[np.datetime64], list[str], NDArray[np.float64]]:
    """``(dates (T, datetime64[D]), names (N, sorted), returns (T x N float64))``.

    Returns are simple daily returns as fractions; 0.0 before a late starter's
    first day. ``load_panel(write_universe(...), min_history_days=0)`` gives
    exactly these arrays back.
    """
    universe = build_universe(n, days, seed, market_factor=market_factor)
    return universe.dates, universe.names, universe.returns


def write_universe(
    out_dir: str | os.PathLike[str],
    n: int,
    days: int,
    seed: int,
    market_factor: bool = True,
) -> Path:
    """Write ``<out_dir>/<name>/stats.json`` for every strategy (atomic writes); returns out_dir.

    Each file holds the strategy's own history (from its first day), in the
    ``daily_dates`` + ``daily_returns`` list shape, with symbol/interval metadata.
    """
    universe = build_universe(n, days, seed, market_factor=market_factor)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    day_strings = np.datetime_as_string(universe.dates, unit="D").tolist()
    columns = universe.returns.T.tolist()
    for j, name in enumerate(universe.names):
        start = int(universe.first_index[j])
        obj = {
            "strategy": name,
            "symbol": "BTC/USDT:USDT",
            "interval": "1d",
            "kind": universe.kinds[j],
            "start": day_strings[start],
            "end": day_strings[-1],
            "daily_dates": day_strings[start:],
            "daily_returns": columns[j][start:],
        }
        atomic_write_bytes(root / name / "stats.json", orjson.dumps(obj))
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.universe",
        description="Write a seeded synthetic strategy universe as <out>/<name>/stats.json files.",
        epilog="example:\n  python -m bench.universe --n 1000 --days 1825 --seed 0 --out /tmp/universe",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=1000, help="number of strategies (default 1000)")
    parser.add_argument("--days", type=int, default=1825, help="calendar days of history (default 1825)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument(
        "--no-market-factor",
        action="store_true",
        help="drop the common market factor (with n > days: the ill-posed case)",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.days < 2:
        print("bench.universe: error: need --n >= 1 and --days >= 2", file=sys.stderr)
        return 2
    out = write_universe(args.out, args.n, args.days, args.seed, market_factor=not args.no_market_factor)
    print(f"wrote {args.n} strategies x {args.days} days to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
