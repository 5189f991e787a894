"""Helpers that keep each ``strategies/<name>/strategy.py`` short and honest.

Timing convention (no look-ahead): a position is *decided at the close of day t*
from data up to and including day t, traded at that close, and *held over day
t+1*. So the net return of day t is::

    net[t] = position[t-1] * (close[t] / close[t-1] - 1) - fee * |position[t] - position[t-1]|

with ``position[-1] = 0`` and ``fee = (fee_bps + slippage_bps) / 10_000`` per unit
of turnover. Nothing on day t depends on a price after day t.

Position values: signed fraction of the strategy's capital (+1 long, -1 short,
0 flat, fractions when vol-scaled); NaN means *hold the previous position*
(BlaveClaw's signal contract), and a leading NaN means flat.

A strategy file declares its rules as a function ``signal(prices) -> positions``
and calls :func:`run_strategy`, which parses the command line, loads prices
(:mod:`fastopt.backtest.prices`), and either backtests (stats.json + pnl.png) or, with
``--live``, writes today's position (state.json).
"""
from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastopt import metrics
from fastopt.files.atomic import atomic_write_bytes
from fastopt.options import non_negative_number
from fastopt.errors import EXIT_USAGE, FastoptError, InputError
from fastopt.backtest.prices import PriceHistory, load_prices
from fastopt.files.state import write_state as _write_state_file
from fastopt.files.stats import write_stats as _write_stats_file

DEFAULT_FEE_BPS = 5.0

Signal = Callable[[PriceHistory], NDArray[np.float64]]


# --------------------------------------------------------------------------- backtest


@dataclass(frozen=True)
class BacktestResult:
    """Output of :func:`backtest`; arrays have length T (one per day)."""

    returns: NDArray[np.float64]  # net daily returns, fractions
    gross_returns: NDArray[np.float64]  # before fees
    position: NDArray[np.float64]  # held position decided at each close (NaN resolved)
    turnover: NDArray[np.float64]  # |position[t] - position[t-1]|
    n_trades: int  # number of days the position changed
    summary: dict[str, float] = field(default_factory=dict)  # fastopt.metrics.summary of returns


def resolve_positions(position: ArrayLike) -> NDArray[np.float64]:
    """Forward-fill NaN ('hold') and make a leading NaN flat (0). Refuses inf."""
    raw = np.asarray(position, dtype=np.float64).reshape(-1)
    if np.isinf(raw).any():
        raise ValueError("positions must be finite (or NaN for 'hold')")
    valid = ~np.isnan(raw)
    last_valid = np.maximum.accumulate(np.where(valid, np.arange(raw.size), -1))
    out = np.where(last_valid >= 0, raw[np.maximum(last_valid, 0)], 0.0)
    return np.ascontiguousarray(out)


def backtest(
    close: ArrayLike,
    position: ArrayLike,
    *,
    fee_bps: float = DEFAULT_FEE_BPS,
    slippage_bps: float = 0.0,
    periods_per_year: float = 365,
) -> BacktestResult:
    """Vectorized daily backtest of signed positions on one price series.

    ``close``: T positive closes; ``position``: T positions decided at each close
    (see the module docstring for timing, NaN and fee conventions). Fees and
    slippage are in basis points per unit of turnover (1 bp = 0.01 %).
    """
    prices = np.asarray(close, dtype=np.float64).reshape(-1)
    if prices.size < 2:
        raise ValueError("need at least 2 closes")
    if not (np.isfinite(prices).all() and (prices > 0).all()):
        raise ValueError("closes must be positive finite numbers")
    held = resolve_positions(position)
    if held.size != prices.size:
        raise ValueError(f"{prices.size} closes but {held.size} positions")
    if fee_bps < 0 or slippage_bps < 0:
        raise ValueError("fee_bps and slippage_bps must be >= 0")
    asset = np.empty_like(prices)
    asset[0] = 0.0
    asset[1:] = prices[1:] / prices[:-1] - 1.0
    previous = np.empty_like(held)
    previous[0] = 0.0
    previous[1:] = held[:-1]
    gross = previous * asset
    turnover = np.abs(held - previous)
    net = gross - turnover * (fee_bps + slippage_bps) / 10_000.0
    # A leveraged position can lose more than everything in theory; cap at -100 %.
    net = np.maximum(net, -0.999999)
    return BacktestResult(
        returns=net,
        gross_returns=gross,
        position=held,
        turnover=turnover,
        n_trades=int(np.count_nonzero(turnover)),
        summary=metrics.summary(net, periods_per_year),
    )


# --------------------------------------------------------------------------- indicators (trailing only)


def sma(values: ArrayLike, window: int) -> NDArray[np.float64]:
    """Trailing simple moving average; NaN for the first ``window - 1`` days."""
    x = np.asarray(values, dtype=np.float64)
    out = np.full_like(x, np.nan)
    if window < 1:
        raise ValueError("window must be >= 1")
    if x.size >= window:
        csum = np.cumsum(np.concatenate([[0.0], x]))
        out[window - 1 :] = (csum[window:] - csum[:-window]) / window
    return out


def ema(values: ArrayLike, span: int) -> NDArray[np.float64]:
    """Trailing exponential moving average (alpha = 2 / (span + 1)), seeded with the first value."""
    x = np.asarray(values, dtype=np.float64)
    alpha = 2.0 / (span + 1.0)
    out = np.empty_like(x)
    if x.size:
        out[0] = x[0]
    for i in range(1, x.size):
        out[i] = alpha * x[i] + (1.0 - alpha) * out[i - 1]
    return out


def rolling_max(values: ArrayLike, window: int) -> NDArray[np.float64]:
    """Trailing max over the last ``window`` days (including today); NaN before."""
    x = np.asarray(values, dtype=np.float64)
    out = np.full_like(x, np.nan)
    if x.size >= window:
        out[window - 1 :] = np.lib.stride_tricks.sliding_window_view(x, window).max(axis=1)
    return out


def rolling_min(values: ArrayLike, window: int) -> NDArray[np.float64]:
    """Trailing min over the last ``window`` days (including today); NaN before."""
    return -rolling_max(-np.asarray(values, dtype=np.float64), window)


def rolling_std(values: ArrayLike, window: int) -> NDArray[np.float64]:
    """Trailing sample std (ddof=1) over ``window`` days; NaN before."""
    x = np.asarray(values, dtype=np.float64)
    out = np.full_like(x, np.nan)
    if x.size >= window:
        out[window - 1 :] = np.lib.stride_tricks.sliding_window_view(x, window).std(axis=1, ddof=1)
    return out


def pct_change(values: ArrayLike, periods: int = 1) -> NDArray[np.float64]:
    """``x[t] / x[t - periods] - 1``; NaN for the first ``periods`` days."""
    x = np.asarray(values, dtype=np.float64)
    out = np.full_like(x, np.nan)
    out[periods:] = x[periods:] / x[:-periods] - 1.0
    return out


def rsi(close: ArrayLike, window: int = 14) -> NDArray[np.float64]:
    """Relative strength index (Wilder smoothing), 0..100; NaN for the first ``window`` days."""
    x = np.asarray(close, dtype=np.float64)
    out = np.full_like(x, np.nan)
    if x.size <= window:
        return out
    change = np.diff(x)
    gain = np.maximum(change, 0.0)
    loss = np.maximum(-change, 0.0)
    avg_gain = gain[:window].mean()
    avg_loss = loss[:window].mean()
    for t in range(window, x.size):
        if t > window:
            avg_gain = (avg_gain * (window - 1) + gain[t - 1]) / window
            avg_loss = (avg_loss * (window - 1) + loss[t - 1]) / window
        out[t] = 100.0 if avg_loss == 0 else 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    return out


def vol_scale(close: ArrayLike, *, target_ann_vol: float, window: int = 30, cap: float = 1.0) -> NDArray[np.float64]:
    """Position size ``min(target / realized ann. vol, cap)`` from trailing daily returns; NaN before."""
    realized = rolling_std(pct_change(close), window) * np.sqrt(365.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.minimum(target_ann_vol / realized, cap)


def trend_intensity(close: ArrayLike, *, lookback_days: int, direction: int) -> NDArray[np.float64]:
    """Trend-intensity rule on daily closes, one side only; NaN = hold (see ``resolve_positions``).

    ``direction=+1`` (long only): +1 when the close is above its ``lookback_days`` EMA *and*
    the ``lookback_days`` return is positive; 0 when the close falls below the EMA.
    ``direction=-1`` is the mirror (short only): -1 below the EMA with a negative return;
    0 when the close rises above the EMA. Otherwise NaN (hold the current position).
    """
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    x = np.asarray(close, dtype=np.float64)
    side = float(direction)
    trend = ema(x, lookback_days)
    momentum = pct_change(x, lookback_days)
    position = np.full(x.size, np.nan)
    position[(side * (x - trend) > 0) & (side * momentum > 0)] = side
    position[side * (x - trend) < 0] = 0.0
    return position


# --------------------------------------------------------------------------- outputs


def write_stats(
    path: str | os.PathLike[str],
    *,
    strategy: str,
    symbol: str,
    dates: ArrayLike,
    result: BacktestResult,
    interval: str = "1d",
    **extra: Any,
) -> dict[str, Any]:
    """Write a backtest as stats.json (atomic), with the summary keys and the trade count."""
    return _write_stats_file(
        path,
        strategy=strategy,
        symbol=symbol,
        dates=dates,
        returns=result.returns,
        interval=interval,
        **{"Total Trades": result.n_trades, **extra},
    )


def write_state(
    path: str | os.PathLike[str],
    *,
    symbol: str,
    position: float,
    updated_at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write today's position as state.json (atomic; see fastopt.files.state)."""
    return _write_state_file(path, symbol=symbol, position=float(position), updated_at=updated_at, **extra)


def render_pnl_png(dates: ArrayLike, returns: ArrayLike, *, title: str = "") -> bytes:
    """PNG bytes of the equity curve (top) and drawdown in % (bottom)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    days = np.asarray(dates, dtype="datetime64[D]")
    r = np.asarray(returns, dtype=np.float64)
    equity = metrics.equity_curve(r)
    drawdown = metrics.drawdown_curve(r) * 100.0
    figure = Figure(figsize=(10, 6), dpi=100)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    x = days.astype("datetime64[D]").astype(object)
    top.plot(x, equity, color="#1f77b4", linewidth=1.2)
    if equity.size and equity.min() > 0 and equity.max() / equity.min() > 20:
        top.set_yscale("log")
    top.set_ylabel("equity (start = 1)")
    top.grid(alpha=0.3)
    stats = metrics.summary(r) if r.size else {}
    label = (
        f"{title}  total {stats['total_return']:+.1%}  Sharpe {stats['sharpe']:.2f}  max DD {stats['max_drawdown']:.1%}"
        if stats
        else title
    )
    top.set_title(label.strip())
    bottom.fill_between(x, -drawdown, 0.0, color="#d62728", alpha=0.5, linewidth=0)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def plot_pnl(path: str | os.PathLike[str], dates: ArrayLike, returns: ArrayLike, *, title: str = "") -> None:
    """Render the equity + drawdown chart and write it atomically (pnl.png)."""
    atomic_write_bytes(path, render_pnl_png(dates, returns, title=title))


# --------------------------------------------------------------------------- runner


def _parser(name: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{name}/strategy.py",
        description=description or f"strategy {name}",
        epilog=(
            "examples:\n"
            f"  python3 strategies/{name}/strategy.py                 # backtest -> stats.json + pnl.png\n"
            f"  python3 strategies/{name}/strategy.py --live          # today's position -> state.json\n"
            f"  python3 strategies/{name}/strategy.py --prices-dir my_prices   # BTC-USD.csv, ... of your own\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--live", action="store_true", help="write today's position to state.json instead of backtesting")
    parser.add_argument(
        "--prices-dir",
        default=None,
        help="folder of daily CSVs like BTC-USD.csv (else env FASTOPT_PRICES_DIR, ccxt/cache, the embedded real "
        "history; the synthetic market only with FASTOPT_SYNTHETIC=1)",
    )
    parser.add_argument("--out", default=None, help="output folder (default: the strategy's own folder)")
    parser.add_argument("--start", default=None, help="first backtest day, YYYY-MM-DD (default: all history)")
    parser.add_argument("--end", default=None, help="last backtest day, YYYY-MM-DD (default: latest)")
    parser.add_argument("--fee-bps", type=non_negative_number, default=None, help=f"fee per unit turnover in bp (default {DEFAULT_FEE_BPS:g})")
    parser.add_argument("--no-plot", action="store_true", help="do not write pnl.png")
    parser.add_argument(
        "--allow-synthetic",
        action="store_true",
        help="with --live: accept synthetic prices (FASTOPT_SYNTHETIC=1, no real data) for the position (paper demos only)",
    )
    return parser


def _day(text: str | None, what: str) -> np.datetime64 | None:
    if text is None:
        return None
    try:
        return np.datetime64(text, "D")
    except ValueError:
        raise InputError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


def run_strategy(
    *,
    name: str,
    symbol: str,
    signal: Signal,
    here: str | os.PathLike[str],
    argv: Sequence[str] | None = None,
    fee_bps: float = DEFAULT_FEE_BPS,
    description: str = "",
) -> int:
    """Command-line entry point of a strategy file; returns the exit code.

    ``signal(prices)`` returns one position per day of ``prices`` (decided at that
    day's close; NaN = hold). ``here`` is the strategy file's ``__file__``: its
    folder is the default output folder.
    """
    args = _parser(name, description).parse_args(argv)
    try:
        return _run(args, name=name, symbol=symbol, signal=signal, here=Path(here), fee_bps=fee_bps)
    except FastoptError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as exc:  # e.g. an --out folder that cannot be created or written to
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{name}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


def _source_tag(source: str) -> str:
    """What the one-line summary says about non-obvious price sources (`fastopt backtest` shows that line)."""
    if source == "synthetic":
        return " [SYNTHETIC prices, not market data]"
    if source.startswith("embedded:"):
        return " [embedded real prices]"
    return ""


def _run(args: argparse.Namespace, *, name: str, symbol: str, signal: Signal, here: Path, fee_bps: float) -> int:
    out_dir = Path(args.out) if args.out else here.resolve().parent
    prices = load_prices(symbol, prices_dir=args.prices_dir)
    start, end = _day(args.start, "--start"), _day(args.end, "--end")
    keep = np.ones(len(prices), dtype=bool)
    if end is not None:
        keep &= prices.dates <= end
    # Signals use all history up to each day; --start only trims the reported backtest.
    dates = prices.dates[keep]
    if dates.size < 2:
        raise InputError(f"not enough price history for {symbol} (need at least 2 days)")
    trimmed = PriceHistory(
        symbol=prices.symbol,
        dates=dates,
        open=prices.open[keep],
        high=prices.high[keep],
        low=prices.low[keep],
        close=prices.close[keep],
        volume=prices.volume[keep],
        source=prices.source,
    )
    positions = np.asarray(signal(trimmed), dtype=np.float64).reshape(-1)
    if positions.size != dates.size:
        raise FastoptError(f"signal returned {positions.size} positions for {dates.size} days")
    held = resolve_positions(positions)
    if args.live:
        if prices.source == "synthetic" and not args.allow_synthetic:
            raise FastoptError(
                f"refusing to write a live position for {symbol} from synthetic prices (no real price data and "
                "FASTOPT_SYNTHETIC set); fix the data source or pass --allow-synthetic for a paper demo"
            )
        as_of = str(dates[-1])
        if dates[-1] < np.datetime64("today", "D") - np.timedelta64(1, "D") and args.end is None:
            print(f"{name}: warning: latest {symbol} candle is {as_of}, the live position may be stale", file=sys.stderr)
        written = write_state(
            out_dir / "state.json",
            symbol=symbol,
            position=float(held[-1]),
            updated_at=datetime.now(timezone.utc),
            strategy=name,
            as_of=as_of,
            price_source=prices.source,
        )
        print(f"{name}: position {written['position']:+g} {symbol} as of {as_of} -> {out_dir / 'state.json'}"
              f"{_source_tag(prices.source)}")
        return 0
    result = backtest(trimmed.close, positions, fee_bps=fee_bps if args.fee_bps is None else args.fee_bps)
    window = np.ones(dates.size, dtype=bool) if start is None else dates >= start
    if window.sum() < 2:
        raise InputError(f"--start {args.start} leaves fewer than 2 days of backtest")
    # Days before --start still drive the signals; the first reported day carries the
    # position held from the day before (and its trading cost), so there is no free entry.
    report_returns = result.returns[window]
    trades = int(np.count_nonzero(result.turnover[window]))
    report = BacktestResult(
        returns=report_returns,
        gross_returns=result.gross_returns[window],
        position=result.position[window],
        turnover=result.turnover[window],
        n_trades=trades,
        summary=metrics.summary(report_returns),
    )
    write_stats(
        out_dir / "stats.json",
        strategy=name,
        symbol=symbol,
        dates=dates[window],
        result=report,
        price_source=prices.source,
        fee_bps=fee_bps if args.fee_bps is None else args.fee_bps,
    )
    if not args.no_plot:
        plot_pnl(out_dir / "pnl.png", dates[window], report_returns, title=name)
    s = report.summary
    print(
        f"{name}: {dates[window][0]}..{dates[window][-1]} total {s['total_return']:+.1%} "
        f"Sharpe {s['sharpe']:.2f} maxDD {s['max_drawdown']:.1%} trades {trades} -> {out_dir / 'stats.json'}"
        f"{_source_tag(prices.source)}"
    )
    return 0
