"""`fastopt walkforward`: out-of-sample management backtest vs random portfolios."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fastopt.commands.screening import add_screen_options, load_screened, warn_lookback
from fastopt.options import (lookback, max_leverage, non_negative_int, non_negative_number, periods_per_year,
                             positive_int, positive_number, shrinkage, target_vol)
from fastopt.optimize.vol_estimate import DEFAULT_VOL_ESTIMATOR, VOL_ESTIMATORS
from fastopt.errors import EXIT_CODES, InputError, NothingToDo
from fastopt.files.screen import SYNTHETIC_MARK

SUMMARY = "walk-forward the allocator out of sample (daily re-fit) vs random Dirichlet portfolios"

EPILOG = """examples:
  fastopt walkforward --strategies strategies --lookback 365 --output walkforward
  fastopt walkforward --rebalance 7 --target-vol 0.30 --max-leverage 3 --cost-bps 5
  fastopt walkforward --allocator inverse_vol --random-n 2000 --seed 7 --json
  fastopt walkforward --shrinkage 0.1    # many strategies (N >= lookback): well-posed and fast
  fastopt walkforward --risk-model factor --factors 10   # (default auto: factor when N >= lookback)
  fastopt walkforward --target-vol 0.30 --vol-estimator in_sample   # size on the in-sample vol (default factor)
  fastopt walkforward --allocator allocators/my_method/allocator.py --output allocators/my_method
  fastopt walkforward --periods-per-year 252 --max-stale-days 5   # daily stock data
  fastopt walkforward --strict --json     # any skipped stats.json is an error (exit 2)

outputs (in --output): stats.json (BlaveClaw management_backtest keys + more) and pnl.png.
here: 2 bad input (unknown allocator, bad option; with --strict any skipped strategy), 3 nothing to do
(too little history).
skipped strategies (invalid stats.json, too little history, stale, synthetic prices) are listed on
stderr grouped by reason and in --json "skipped"; --allow-synthetic keeps synthetic-price strategies,
marked "(synthetic)" on the table, the plot and in stats.json settings.synthetic_strategies.

""" + EXIT_CODES


def add_walkforward_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `walkforward` (and reused by `sweep` for the fixed settings)."""
    parser.add_argument("--random-n", type=non_negative_int, default=1000,
                        help="number of random Dirichlet portfolios in the benchmark (default 1000; 0 = none)")
    parser.add_argument("--seed", type=non_negative_int, default=42,
                        help="seed of the random portfolios and the solver, a whole number >= 0 (default 42)")
    parser.add_argument("--max-leverage", type=max_leverage, default=5.0,
                        help="cap on the target-vol leverage, > 0 (default 5)")
    parser.add_argument("--periods-per-year", type=periods_per_year, default=365.0,
                        help="annualization: 365 for daily crypto, 252 for stock trading days (default 365)")
    parser.add_argument("--cost-bps", type=non_negative_number, default=0.0,
                        help="trading cost in basis points of turnover, charged on the day it trades (default 0)")
    parser.add_argument("--when-negative", choices=("cash", "previous", "least-bad"), default="cash",
                        help="what to hold when no strategy has a rising curve in the window (default cash)")
    parser.add_argument("--max-weight", type=positive_number, default=1.0,
                        help="largest weight of one strategy, a fraction (default 1.0)")
    parser.add_argument("--shrinkage", type=shrinkage, default=None, metavar="X|auto",
                        help="fit slope_std on (1-X) cov + X diag(cov), X in [0, 1], or 'auto' (Ledoit-Wolf per "
                             "window, slow); recommended when strategies >= lookback days (default none)")
    parser.add_argument("--risk-model", choices=("auto", "sample", "factor"), default="auto",
                        help="covariance of the slope_std fits: sample, factor (k principal components + specific "
                             "variances, no N x N) or auto (default: factor on windows with at least --lookback "
                             "usable strategies, where the sample covariance is singular; sample otherwise)")
    parser.add_argument("--factors", type=positive_int, default=None,
                        help="factors of the factor model (default min(20, min(N, lookback - 1) // 4))")
    parser.add_argument("--vol-estimator", choices=VOL_ESTIMATORS, default=DEFAULT_VOL_ESTIMATOR,
                        help=f"with --target-vol, the vol each fit's leverage divides by (default "
                             f"{DEFAULT_VOL_ESTIMATOR}: one principal component + specific variances of the fit "
                             "window; in_sample: the fitted weights' sample vol, biased low; docs/objective.md)")
    add_screen_options(parser)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--strategies", default="strategies", metavar="DIR",
                        help="folder of <name>/stats.json backtests (default strategies)")
    parser.add_argument("--lookback", type=lookback, default=365,
                        help="trailing fit window in days, >= 2 (default 365; under 60 warns: it fits noise)")
    parser.add_argument("--rebalance", type=positive_int, default=1,
                        help="re-fit every N days, holding the weights in between (default 1 = daily)")
    parser.add_argument("--allocator", default="slope_std", metavar="NAME|PATH",
                        help="slope_std (default, fast path), slope_std_compound, equal, inverse_vol, "
                             "max_sharpe, or a plug-in allocator file/module")
    parser.add_argument("--target-vol", type=target_vol, default=None, metavar="V",
                        help="target annual volatility as a fraction in (0, 10] (0.30 = 30 %%; 30 looks like a "
                             "percent): lever each fit to it")
    add_walkforward_options(parser)
    parser.add_argument("--cold", action="store_true",
                        help="recompute window statistics from scratch and solve cold every day (slow reference)")
    parser.add_argument("--no-plot", action="store_true", help="write stats.json only, no pnl.png")
    parser.add_argument("--output", default=None, metavar="DIR",
                        help="output folder for stats.json and pnl.png (default walkforward, or "
                             "allocators/<name> for a BlaveClaw allocator, as BlaveClaw does)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def _progress_runner(label: str, quiet: bool):
    """A context manager yielding a progress(done, total) callback drawn by rich on stderr."""
    from contextlib import contextmanager

    @contextmanager
    def runner():
        if quiet:
            yield None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task(label, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update

    return runner()


def summary_document(result: Any, paths: dict[str, Path]) -> dict[str, Any]:
    """The small JSON summary printed by --json (no daily arrays)."""
    from fastopt.walkforward.report import build_stats

    doc = build_stats(result)
    small = {k: doc[k] for k in ("lookback", "allocator", "start", "end", "managed", "random_benchmark",
                                 "benchmarks", "rebalance", "n_strategies", "settings", "elapsed_seconds")}
    small["outputs"] = {k: str(v) for k, v in paths.items()}
    small["synthetic"] = list(doc["settings"].get("synthetic_strategies", []))
    return small


def _print_table(small: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 140)
    synthetic = small.get("synthetic") or []
    marker = f"  {len(synthetic)} strategies {SYNTHETIC_MARK}" if synthetic else ""
    table = Table(title=f"walk-forward {small['allocator']}  {small['start']} -> {small['end']}  "
                        f"(lookback {small['lookback']} d, rebalance {small['rebalance']} d){marker}")
    for column in ("portfolio", "total return", "CAGR", "Sharpe", "Sortino", "max DD", "vol", "turnover/day"):
        table.add_column(column, justify="right" if column != "portfolio" else "left")
    rows = [("managed", small["managed"])] + list(small["benchmarks"].items())
    for name, block in rows:
        table.add_row(
            name, f"{block['total_return_%']:+.1f}%", f"{block['cagr_%']:+.1f}%", f"{block['sharpe']:.2f}",
            f"{block['sortino']:.2f}", f"{block['max_drawdown_%']:.1f}%", f"{block['ann_vol_%']:.1f}%",
            f"{block['avg_turnover_%']:.2f}%",
        )
    console.print(table)
    rnd = small["random_benchmark"]
    if rnd.get("n"):
        print(
            f"random n={rnd['n']}: Sharpe median {rnd['median_sharpe']:.2f} "
            f"[p5 {rnd['p5_sharpe']:.2f}, p95 {rnd['p95_sharpe']:.2f}]; managed beats "
            f"{rnd['managed_beats_pct_sharpe']:.1f}% of them on Sharpe"
        )
    managed = small["managed"]
    print(f"cash days: {managed['cash_days']} (no rising curve: {managed['no_rising_days']}), "
                  f"avg leverage {managed['avg_leverage']:.2f}x")
    if synthetic:
        print(f"{SYNTHETIC_MARK} backtested on synthetic prices, not market data: {', '.join(synthetic)}")
    print(f"outputs: {', '.join(small['outputs'].values())}")


def run(args: argparse.Namespace) -> int:
    from fastopt.walkforward.core import resolve_allocator, walkforward
    from fastopt.walkforward.report import write_outputs

    _, allocator_obj = resolve_allocator(args.allocator)  # bad allocator: usage error (exit 2) whatever the data
    output = args.output
    if output is None:
        legacy = Path("allocators") / str(args.allocator)
        is_blaveclaw = getattr(allocator_obj, "kind", None) == "blaveclaw"
        output = str(legacy) if is_blaveclaw and (legacy / "allocator.py").is_file() else "walkforward"
    warn_lookback("walkforward", args.lookback)
    screened = load_screened("walkforward", args.strategies, args)
    panel = screened.panel
    if panel.n_strategies == 0:
        raise NothingToDo("no strategy with daily returns found (run the backtests first)", path=args.strategies)
    if panel.n_days < args.lookback + 1:
        raise NothingToDo(
            f"not enough history: {panel.n_days} days ({panel.start} to {panel.end}), "
            f"the walk-forward needs at least --lookback + 1 = {args.lookback + 1} days",
            path=args.strategies,
        )
    print(f"walk-forward: {panel.n_strategies} strategies, {panel.n_days} days, "
          f"{panel.n_days - args.lookback} out of sample", file=sys.stderr)
    with _progress_runner("fitting", quiet=False) as progress:
        result = walkforward(
            panel, lookback=args.lookback, rebalance=args.rebalance, allocator=args.allocator,
            target_vol=args.target_vol, max_leverage=args.max_leverage, cost_bps=args.cost_bps,
            when_negative=args.when_negative, random_n=args.random_n, seed=args.seed,
            max_weight=args.max_weight, shrinkage=args.shrinkage, incremental=not args.cold, progress=progress,
            periods_per_year=args.periods_per_year, risk_model=args.risk_model, factors=args.factors,
            vol_estimator=args.vol_estimator,
        )
    result.settings.update(max_stale_days=args.max_stale_days, synthetic_strategies=list(screened.synthetic),
                           skipped=[skip.as_dict() for skip in screened.skips])
    try:
        paths = write_outputs(result, output, plot=not args.no_plot)
    except OSError as exc:
        raise InputError(f"cannot write the outputs: {exc.strerror or exc}", path=output) from None
    small = summary_document(result, paths)
    small["skipped"] = [skip.as_dict() for skip in screened.skips]
    if args.json:
        sys.stdout.write(json.dumps(small, indent=2, allow_nan=False) + "\n")
    else:
        _print_table(small)
    return 0
