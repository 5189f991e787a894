"""`fastopt sweep`: a grid of walk-forwards run as Dask tasks, gathered into one table."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fastopt.commands.screening import load_screened, warn_lookback
from fastopt.commands.walkforward import add_walkforward_options
from fastopt.errors import EXIT_CODES, InputError, NothingToDo
from fastopt.options import lookback_problem, target_vol_problem

SUMMARY = "run a grid of walk-forwards (lookbacks x allocators x target vols x rebalance x universes) on Dask"

EPILOG = """examples:
  fastopt sweep --lookbacks 90,180,365 --allocators slope_std,inverse_vol,equal
  fastopt sweep --universes strategies,other_strategies --target-vols none,0.2,0.3 --rebalances 1,7
  fastopt sweep --workers 2 --random-n 200 --output sweep --json
  fastopt sweep --scheduler tcp://10.0.0.5:8786 --lookbacks 365
  fastopt sweep --periods-per-year 252 --strict     # stock days; any skipped stats.json is an error

grid values are comma-separated; "none" in --target-vols means unlevered.
outputs (in --output): sweep.csv and sweep.json, rows sorted by out-of-sample Sharpe.
each value follows the rule of the same option in optimize and walkforward (a target vol is a fraction
in (0, 10]; a lookback >= 2 days, under 60 warns).
skipped strategies of each universe are listed on stderr grouped by reason and in "skipped" of
sweep.json and of --json (which prints the sweep.json document: grid, settings, skipped, synthetic, rows).
here: 2 bad input (with --strict, any skipped strategy); 3 nothing to do means no strategies, or every
run failed.

""" + EXIT_CODES


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one value")
    return values


def _lookback_list(text: str) -> list[int]:
    values = _int_list(text)
    for value in values:
        reason = lookback_problem(value)
        if reason is not None:
            raise argparse.ArgumentTypeError(reason)
    return values


def _vol_list(text: str) -> list[float | None]:
    values: list[float | None] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.lower() in ("none", "off", "-"):
            values.append(None)
            continue
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected numbers or 'none', got {part!r}") from None
        reason = target_vol_problem(value)
        if reason is not None:
            raise argparse.ArgumentTypeError(reason)
        values.append(value)
    if not values:
        raise argparse.ArgumentTypeError("expected at least one value")
    return values


def _str_list(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected at least one value")
    return values


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--universes", type=_str_list, default=["strategies"], metavar="DIR[,DIR...]",
                        help="strategies folders to sweep over (default strategies)")
    parser.add_argument("--lookbacks", type=_lookback_list, default=[365], metavar="N[,N...]",
                        help="trailing fit windows in days, each >= 2 (default 365; under 60 warns: it fits noise)")
    parser.add_argument("--allocators", type=_str_list, default=["slope_std"], metavar="NAME[,NAME...]",
                        help="allocators (default slope_std)")
    parser.add_argument("--target-vols", type=_vol_list, default=[None], metavar="V[,V...]",
                        help="target annual vols as fractions in (0, 10], 'none' = unlevered (default none)")
    parser.add_argument("--rebalances", type=_int_list, default=[1], metavar="N[,N...]",
                        help="re-fit periods in days (default 1)")
    add_walkforward_options(parser)
    parser.set_defaults(random_n=200)
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--threads", action="store_true",
                        help="run the LocalCluster workers as threads in this process instead of processes")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="use an existing Dask cluster (e.g. tcp://host:8786) instead of a LocalCluster")
    parser.add_argument("--output", default="sweep", metavar="DIR",
                        help="output folder for sweep.csv and sweep.json (default sweep)")
    parser.add_argument("--json", action="store_true",
                        help="print the sweep.json document (grid, settings, skipped, synthetic, rows) on stdout")


def _print_table(rows: list[dict[str, Any]], limit: int = 30) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sweep: {len(rows)} runs, by out-of-sample Sharpe")
    columns = ("universe", "lookback", "allocator", "target vol", "rebalance", "Sharpe", "total return",
               "max DD", "turnover/day", "beats random")
    for column in columns:
        table.add_column(column, justify="left" if column in ("universe", "allocator") else "right")
    for row in rows[:limit]:
        tv = "-" if row["target_vol"] is None else f"{row['target_vol']:.2f}"
        if row["status"] != "ok":
            table.add_row(row["universe"], str(row["lookback"]), row["allocator"], tv, str(row["rebalance"]),
                          "error", (row["error"] or "")[:60], "", "", "")
            continue
        beats = row["managed_beats_pct_sharpe"]
        table.add_row(
            row["universe"], str(row["lookback"]), row["allocator"], tv, str(row["rebalance"]),
            f"{row['sharpe']:.2f}", f"{row['total_return'] * 100:+.1f}%", f"{-row['max_drawdown'] * 100:.1f}%",
            f"{row['avg_turnover'] * 100:.2f}%", "-" if beats is None else f"{beats:.0f}%",
        )
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    if len(rows) > limit:
        console.print(f"... {len(rows) - limit} more rows in the CSV")


def run(args: argparse.Namespace) -> int:
    from fastopt.files.atomic import atomic_write_text, dumps_json
    from fastopt.walkforward.sweep import SweepSpec, rows_to_csv, rows_to_jsonable, run_sweep, sort_rows
    from fastopt.walkforward.core import resolve_allocator

    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    for name in args.allocators:
        resolve_allocator(name)  # unknown allocator: usage error before starting a cluster
    spec = SweepSpec(
        universes=args.universes, lookbacks=args.lookbacks, allocators=args.allocators,
        target_vols=args.target_vols, rebalances=args.rebalances, random_n=args.random_n, seed=args.seed,
        cost_bps=args.cost_bps, max_leverage=args.max_leverage, when_negative=args.when_negative,
        max_weight=args.max_weight, shrinkage=args.shrinkage, extra={"periods_per_year": args.periods_per_year,
                                                                 "risk_model": args.risk_model, "factors": args.factors,
                                                                 "vol_estimator": args.vol_estimator},
    )
    spec.validate()
    for days in sorted(set(spec.lookbacks)):
        warn_lookback("sweep", days)
    data: dict[str, dict[str, Any]] = {}
    skipped: dict[str, list[dict[str, str]]] = {}
    synthetic: dict[str, list[str]] = {}
    for folder in dict.fromkeys(str(u) for u in spec.universes):
        screened = load_screened("sweep", folder, args)
        panel = screened.panel
        data[folder] = {"returns": panel.returns, "names": list(panel.names), "dates": panel.dates}
        skipped[folder] = [skip.as_dict() for skip in screened.skips]
        synthetic[folder] = list(screened.synthetic)
    empty = [name for name, payload in data.items() if not payload["names"]]
    if empty:
        raise NothingToDo("no strategy with daily returns found", path=empty[0])
    total = len(spec.universes) * len(spec.lookbacks) * len(spec.allocators) * len(spec.target_vols) * len(
        spec.rebalances)
    print(f"sweep: {total} walk-forwards on "
          f"{'scheduler ' + args.scheduler if args.scheduler else f'{args.workers} local workers'}", file=sys.stderr)

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("sweep", total=total)
        rows = run_sweep(
            spec, workers=args.workers, scheduler=args.scheduler, processes=not args.threads,
            universes_data=data, progress=lambda done, _total: bar.update(task, completed=done),
        )
    rows = sort_rows(rows)
    clean = rows_to_jsonable(rows)
    folder = Path(args.output)
    csv_text = rows_to_csv(clean)
    json_text = dumps_json({"grid": {"universes": list(spec.universes), "lookbacks": list(spec.lookbacks),
                                     "allocators": list(spec.allocators), "target_vols": list(spec.target_vols),
                                     "rebalances": list(spec.rebalances)},
                            "settings": {"random_n": spec.random_n, "seed": spec.seed, "cost_bps": spec.cost_bps,
                                         "max_leverage": spec.max_leverage, "when_negative": spec.when_negative,
                                         "max_weight": spec.max_weight, "shrinkage": spec.shrinkage,
                                         "risk_model": args.risk_model, "factors": args.factors,
                                         "vol_estimator": args.vol_estimator,
                                         "periods_per_year": args.periods_per_year,
                                         "max_stale_days": args.max_stale_days,
                                         "allow_synthetic": args.allow_synthetic},
                            "skipped": skipped, "synthetic": synthetic,
                            "rows": clean})
    try:
        atomic_write_text(folder / "sweep.csv", csv_text)
        atomic_write_text(folder / "sweep.json", json_text)
    except OSError as exc:
        raise InputError(f"cannot write the outputs: {exc.strerror or exc}", path=folder) from None
    if args.json:
        sys.stdout.write(json_text)
    else:
        _print_table(clean)
        print(f"outputs: {folder / 'sweep.csv'}, {folder / 'sweep.json'}")
    if not any(row["status"] == "ok" for row in clean):
        raise NothingToDo(f"every run failed, first reason: {clean[0]['error']}")
    return 0
