"""`fastopt optimize`: weights maximizing slope/std, vol-targeted leverage, portfolio_config.json.

Loads every strategies/<name>/stats.json (``fastopt.files.loader.load_panel``), takes
the last ``--lookback`` days, finds the weights (default: the certified
slope/std optimum; or ``--allocator``), estimates the portfolio's annual vol over
``--vol-window`` days (``--vol-estimator``, default the one-factor model: the in-sample vol of
weights optimized on the same window is biased low; docs/objective.md, "Sizing"), sets
leverage = target_vol / ann_vol (capped by ``--max-leverage``) and merge-writes portfolio_config.json atomically: the
optimizer's keys are replaced, every other key is kept, ``account_value``
changes only with ``--account-value``. A failed run leaves the file untouched.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fastopt.commands.screening import add_screen_options, load_screened, report_skips, warn_lookback
from fastopt.errors import EXIT_CODES, InputError, NothingToDo
from fastopt.files.screen import SYNTHETIC_MARK, Skip, stats_file
from fastopt.optimize.plausible import DEFAULT_MAX_SHARPE, DEFAULT_MIN_ANN_VOL
from fastopt.optimize.vol_estimate import DEFAULT_VOL_ESTIMATOR, VOL_ESTIMATORS
from fastopt.options import (finite_number, lookback, max_leverage, non_negative_int, non_negative_number,
                             periods_per_year, positive_int, shrinkage, target_vol)

SUMMARY = "find the weights maximizing slope/std and write portfolio_config.json"

EPILOG = """examples:
  fastopt optimize --target-vol 0.30
  fastopt optimize --strategies strategies --config portfolio_config.json --target-vol 0.30 --dry-run
  fastopt optimize --target-vol 0.25 --lookback 180 --max-weight 0.2 --min-weight 0.02
  fastopt optimize --target-vol 0.30 --max-weight 0.25 --max-weight sol_trend=0.1   # per-strategy cap
  fastopt optimize --target-vol 0.30 --max-strategies 10 --seed 3
  fastopt optimize --target-vol 0.30 --risk-model factor       # force the factor model (auto: when N >= days)
  fastopt optimize --target-vol 0.30 --vol-estimator in_sample # size on the in-sample vol (old default)
  fastopt optimize --target-vol 0.30 --allocator inverse_vol   # or a .py path / allocators/<name>/
  fastopt optimize --target-vol 0.30 --json | jq .weights
  fastopt optimize --target-vol 0.30 --strict              # any skipped stats.json is an error (exit 2)
  fastopt optimize --target-vol 0.30 --periods-per-year 252 --max-stale-days 5   # stock days
  fastopt optimize --target-vol 0.30 --max-sharpe 4 --min-ann-vol 0.02          # stricter sanity

score = OLS slope (per day) of the cumulative-sum curve / daily std (ddof=1) * sqrt(periods per year);
see docs/objective.md.
here: 2 bad input (also an allocator module without allocate); 3 nothing to do (no valid strategy; no
allocation has a rising curve: --allow-negative writes the least-bad one anyway; slope/std unbounded
on the window (status unbounded, N >= T or near-duplicates): --allow-unbounded writes the
best-effort weights anyway, --risk-model factor makes the problem well-posed; an implausible
in-sample result: annual vol under --min-ann-vol or Sharpe above --max-sharpe, --allow-implausible
writes it anyway). Nothing is written when the command fails.
skipped strategies (invalid stats.json, too little history, stale, synthetic prices, constant) are
listed on stderr grouped by reason and in --json "skipped"; the change against the previous config's
weights (turnover = sum |new - old|) is printed on stderr before writing and in --json "changes".

""" + EXIT_CODES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    add = parser.add_argument
    add("--strategies", default="strategies", help="folder of <name>/stats.json (default: strategies)")
    add("--config", default="portfolio_config.json", help="config to merge-write (default: portfolio_config.json)")
    add("--target-vol", type=target_vol, required=True,
        help="target annual volatility as a fraction in (0, 10] (0.30 = 30%%/yr; 30 looks like a percent)")
    add("--lookback", type=lookback, default=365,
        help="window in calendar days, >= 2 (default 365; under 60 warns: it fits noise)")
    add("--end", default=None, help="last day of the window, YYYY-MM-DD (default: latest data)")
    add("--vol-window", type=positive_int, default=None,
        help="days of history for the annual vol (default: the lookback)")
    add("--allocator", default="slope_std",
        help="slope_std (default), slope_std_compound, equal, inverse_vol, max_sharpe, a .py path, "
             "a module, or a BlaveClaw allocators/<name>/allocator.py name")
    add("--max-leverage", type=max_leverage, default=5.0, help="leverage cap, > 0 (default 5)")
    add("--max-weight", action="append", default=None, metavar="W|NAME=W",
        help="max weight per strategy, a fraction (default 1); repeat NAME=W to cap one strategy")
    add("--min-weight", type=finite_number, default=0.0,
        help="weights below this go to 0 and the rest is re-optimized (default 0)")
    add("--max-strategies", type=positive_int, default=None, help="at most K strategies (heuristic)")
    add("--seed", type=non_negative_int, default=0, help="random search seed, a whole number >= 0 (default 0)")
    add("--solver", choices=("search", "exact"), default="search",
        help="search (fast, KKT-certified) or exact (cvxpy + Clarabel reference)")
    add("--shrinkage", type=shrinkage, default=0.0,
        help="covariance shrinkage toward its diagonal: 0..1 or 'auto' (Ledoit-Wolf) (default 0)")
    add("--risk-model", choices=("auto", "sample", "factor"), default="auto",
        help="auto (default): the sample covariance (exactly slope/std) when fewer usable strategies "
             "than days, else a statistical factor model (k principal components + specific variances, "
             "well-posed when strategies outnumber the days); or force sample / factor")
    add("--factors", type=positive_int, default=None,
        help="factors of --risk-model factor (default min(20, min(N, days - 1) // 4))")
    add("--vol-estimator", choices=VOL_ESTIMATORS, default=DEFAULT_VOL_ESTIMATOR,
        help=f"the vol the leverage divides the target by (default {DEFAULT_VOL_ESTIMATOR}: one principal "
             "component + specific variances; in_sample: the weights' sample vol on the window, biased "
             "low; docs/objective.md 'Sizing')")
    add("--allow-negative", action="store_true",
        help="write the least-bad allocation even when no allocation has a rising curve")
    add("--allow-unbounded", action="store_true",
        help="write the best-effort weights even when slope/std is unbounded on the window "
             "(status unbounded: they fit noise and the near-zero in-sample vol inflates the leverage)")
    add("--periods-per-year", type=periods_per_year, default=365.0,
        help="annualization: 365 for daily crypto, 252 for stock trading days (default 365)")
    add("--min-ann-vol", type=non_negative_number, default=DEFAULT_MIN_ANN_VOL,
        help=f"refuse (exit 3) an in-sample annual vol below this fraction (default {DEFAULT_MIN_ANN_VOL:g} = 1%%)")
    add("--max-sharpe", type=positive_number_or_inf, default=DEFAULT_MAX_SHARPE,
        help=f"refuse (exit 3) an in-sample annualized Sharpe above this (default {DEFAULT_MAX_SHARPE:g})")
    add("--allow-implausible", action="store_true",
        help="write a result even when it fails --min-ann-vol / --max-sharpe")
    add_screen_options(parser)
    add("--account-value", type=finite_number, default=None,
        help="set account_value (otherwise kept; 10000 for a new config)")
    add("--dry-run", action="store_true", help="compute and print, do not write the config")
    add("--json", action="store_true", help="print the result as JSON on stdout")


def positive_number_or_inf(text: str) -> float:
    """A number > 0 ('inf' turns the check off)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _parse_max_weight(values: list[str]) -> tuple[float, dict[str, float]]:
    """``--max-weight`` values -> (default cap, name -> cap); InputError on bad values."""
    default = 1.0
    by_name: dict[str, float] = {}
    for text in values:
        name, sep, number = text.rpartition("=")
        try:
            value = float(number)
        except ValueError:
            raise InputError(f"--max-weight expects W or NAME=W with W a fraction, got {text!r}") from None
        if not 0 <= value <= 1 or (not sep and value == 0):
            raise InputError(f"--max-weight must be in (0, 1] (NAME=0 excludes a strategy), got {text!r}")
        if sep:
            if not name:
                raise InputError(f"--max-weight NAME=W needs a name, got {text!r}")
            by_name[name] = value
        else:
            default = value
    return default, by_name


def _max_weights(args: argparse.Namespace, names: list[str]) -> float | list[float]:
    unknown = sorted(set(args.max_weight_by_name) - set(names))
    if unknown:
        raise InputError(f"--max-weight names unknown strategies: {', '.join(unknown)}")
    if not args.max_weight_by_name:
        return args.max_weight_default
    return [args.max_weight_by_name.get(name, args.max_weight_default) for name in names]


def _check_args(args: argparse.Namespace) -> None:
    args.max_weight_default, args.max_weight_by_name = _parse_max_weight(args.max_weight or [])
    if not 0 <= args.min_weight <= 1:
        raise InputError(f"--min-weight must be in [0, 1], got {args.min_weight:g}")
    if args.account_value is not None and not args.account_value > 0:
        raise InputError(f"--account-value must be > 0, got {args.account_value:g}")
    if args.solver == "exact" and args.allocator not in ("slope_std",):
        raise InputError("--solver exact only applies to the slope_std allocator")


def _progress(what: str):
    """A rich spinner on stderr while ``what`` runs (only on a terminal: logs stay clean)."""
    import contextlib

    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(what)


def _warn(message: str) -> None:
    print(f"fastopt optimize: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    _check_args(args)
    strategies = Path(args.strategies)
    if not strategies.is_dir():
        raise InputError("strategies folder not found", path=strategies)
    config_path = Path(args.config)

    from fastopt.files.config import merge_config, read_config, write_config

    existing = read_config(config_path, missing_ok=True)  # a broken config fails here, untouched

    warn_lookback("optimize", args.lookback)
    vol_window = args.vol_window or args.lookback
    with _progress("loading stats.json files"):
        screened = load_screened("optimize", args.strategies, args, lookback=max(args.lookback, vol_window),
                                 end=args.end)
    panel = screened.panel
    if panel.n_strategies == 0:
        reasons = "; ".join(f"{k}: {v}" for k, v in list(panel.skipped.items())[:5])
        raise NothingToDo(f"no valid strategy in {strategies}" + (f" ({reasons})" if reasons else
                          " (no <name>/stats.json found: run `fastopt backtest` first)"))
    end_day = panel.dates[-1]
    opt_rows = _last_days(panel.dates, args.lookback)
    vol_rows = _last_days(panel.dates, vol_window)
    window = np.ascontiguousarray(panel.returns[opt_rows])
    vol_returns = np.ascontiguousarray(panel.returns[vol_rows])
    names = list(panel.names)
    if window.shape[0] < 2:
        raise NothingToDo(f"the {args.lookback}-day window holds {window.shape[0]} day(s) of data: need at least 2")

    from fastopt.optimize.objective import as_returns_matrix, window_slopes_centered

    # slopes and centered returns only: the table needs std and cov @ w, O(N T), never the
    # N x N covariance the large-N optimizer avoids forming
    slopes, _, centered = window_slopes_centered(as_returns_matrix(window))
    with _progress(f"optimizing {len(names)} strategies x {window.shape[0]} days"):
        result = _allocate(args, window, names, rising=bool((slopes > 0).any()))
    weights = np.asarray(result["weights"], dtype=np.float64)
    status = result["status"]
    excluded = [Skip(names[int(k)], stats_file(args.strategies, names[int(k)]), reason)
                for k, reason in result.get("excluded", {}).items()]
    if excluded:  # constant columns (the optimizer's exclusions) are skips like the loader's
        report_skips("optimize", excluded, screened.n_found, strict=args.strict)
    if status == "no_rising_curve" and not args.allow_negative:
        capped = "within the weight bounds" in str(result.get("message", ""))
        reason = ("the strategies whose curve rises are capped too low by --max-weight" if capped else
                  f"every strategy's cumulative return slopes down over the last {args.lookback} days")
        raise NothingToDo(
            f"no allocation has a rising curve: {reason}, so the config was not written "
            "(pass --allow-negative to write the least-bad allocation anyway)"
        )
    if status == "unbounded" and not args.allow_unbounded:
        raise NothingToDo(
            f"slope/std is unbounded on this {window.shape[0]}-day window of {len(names)} strategies "
            "(a long-only mix with almost zero in-sample variance exists): the weights would fit noise "
            "and their near-zero in-sample vol would drive the leverage to the cap, so the config was not "
            "written; use --risk-model factor or a longer --lookback (or pass --allow-unbounded to write "
            "the best-effort weights anyway)"
        )
    if status in ("unbounded", "ill_conditioned"):
        _warn(f"{status}: {result['message']}")
    elif status == "no_rising_curve":
        _warn("no allocation has a rising curve; writing the least-bad allocation (--allow-negative)")

    from fastopt import metrics
    from fastopt.optimize.leverage import portfolio_ann_vol, target_leverage
    from fastopt.optimize.vol_estimate import portfolio_vol

    # the in-sample vol judges plausibility; the estimator's vol sizes the leverage
    if args.vol_estimator == "factor" and vol_returns.shape[0] < 3:
        raise InputError(f"--vol-estimator factor needs at least 3 days of returns, the vol window holds "
                         f"{vol_returns.shape[0]}: use a longer --vol-window / --lookback or --vol-estimator in_sample")
    in_sample_vol = portfolio_ann_vol(vol_returns, weights, periods_per_year=args.periods_per_year)
    ann_vol = portfolio_vol(vol_returns, weights, estimator=args.vol_estimator,
                            periods_per_year=args.periods_per_year)
    decision = target_leverage(ann_vol, args.target_vol, max_leverage=args.max_leverage)
    if decision.capped:
        uncapped = "undefined (zero vol)" if decision.leverage_uncapped is None else f"{decision.leverage_uncapped:.3f}"
        _warn(f"leverage capped at --max-leverage {args.max_leverage:g} (target / vol = {uncapped})")
    port = window @ weights
    port_sharpe = float(metrics.sharpe(port, args.periods_per_year))
    ann = math.sqrt(args.periods_per_year)
    dof = 1.0 / (window.shape[0] - 1)
    std = np.sqrt(np.einsum("ti,ti->i", centered, centered) * dof)
    individual = np.where(std > 0, slopes / np.where(std > 0, std, 1.0) * ann, 0.0)
    cov_w = centered.T @ (centered @ weights) * dof
    var = float(weights @ cov_w)
    vol_share = weights * cov_w / var if var > 0 else np.zeros_like(weights)
    sharpes = np.asarray(metrics.sharpe(window, args.periods_per_year))
    mdds = np.asarray(metrics.max_drawdown(window))

    from fastopt.optimize.plausible import implausible_reason

    implausible = implausible_reason(in_sample_vol, port_sharpe, min_ann_vol=args.min_ann_vol,
                                     max_sharpe=args.max_sharpe)
    if implausible and not args.allow_implausible:
        raise NothingToDo(
            f"implausible in-sample result: {implausible} (leverage would be {decision.leverage:.3g}x, status "
            f"{status}); it fits the window, not the future, so the config was not written (check for stale, "
            "constant or duplicate strategies, lengthen --lookback, or pass --allow-implausible)"
        )
    if implausible:
        _warn(f"implausible in-sample result written anyway (--allow-implausible): {implausible}")

    skipped = {s.strategy: s.reason for s in screened.skips}
    for skip in excluded:
        skipped[skip.strategy] = skip.reason
    weight_map = {names[k]: float(weights[k]) for k in np.flatnonzero(weights > 0)}
    updates: dict[str, Any] = {
        "weights": weight_map,
        "ann_volatility_pct": ann_vol * 100.0,
        "ann_volatility_in_sample_pct": in_sample_vol * 100.0,
        "vol_estimator": args.vol_estimator,
        "target_vol_pct": args.target_vol * 100.0,
        "leverage": decision.leverage,
        "sharpe_ratio": port_sharpe,
        "score": _finite_or_none(result["score"]),
        "objective": result["objective"],
        "allocator": args.allocator,
        "lookback_days": int(args.lookback),
        "window_start": str(panel.dates[opt_rows][0]),
        "window_end": str(end_day),
        "leverage_uncapped": decision.leverage_uncapped,
        "max_leverage": args.max_leverage,
        "strategies_used": names,
        "skipped": skipped,
        "generated_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "seed": args.seed,
        "synthetic": [n for n in screened.synthetic if n in weight_map],
        "options": _audit_options(args, vol_window, result),
    }
    from fastopt.files.changes import change_lines, weight_changes

    changes = weight_changes(existing, weight_map, decision.leverage)
    for line in change_lines(changes):
        print(f"fastopt optimize: {line}", file=sys.stderr)
    merged = merge_config(existing, updates, account_value=args.account_value)
    written = False
    if not args.dry_run:
        try:
            write_config(config_path, merged)
        except OSError as exc:
            raise InputError(f"cannot write the config: {exc.strerror or exc}", path=config_path) from None
        written = True
    seconds = time.perf_counter() - started
    rows = [
        {
            "name": names[k],
            "weight": float(weights[k]),
            "score": float(individual[k]),
            "vol_contribution": float(vol_share[k]),
            "sharpe": float(sharpes[k]),
            "max_drawdown": float(mdds[k]),
        }
        for k in np.argsort(-weights, kind="stable")
    ]
    summary = {
        "config": str(config_path),
        "written": written,
        "status": status,
        "message": result["message"],
        "solver": result["solver"],
        "score": _finite_or_none(result["score"]),
        "ann_vol": ann_vol,
        "ann_vol_in_sample": in_sample_vol,
        "vol_estimator": args.vol_estimator,
        "target_vol": args.target_vol,
        "leverage": decision.leverage,
        "leverage_uncapped": decision.leverage_uncapped,
        "leverage_capped": decision.capped,
        "sharpe_ratio": port_sharpe,
        "account_value": merged["account_value"],
        "weights": weight_map,
        "strategies": rows,
        "skipped": [s.as_dict() for s in [*screened.skips, *excluded]],
        "synthetic": list(screened.synthetic),
        "changes": changes,
        "options": updates["options"],
        "window_start": updates["window_start"],
        "window_end": updates["window_end"],
        "n_days": int(window.shape[0]),
        "seconds": seconds,
        "diagnostics": _jsonable(result.get("diagnostics", {})),
    }
    if args.json:
        from fastopt.files.atomic import dumps_json

        sys.stdout.write(dumps_json(summary))
    else:
        _print_table(summary, args)
    return 0


def _last_days(dates: np.ndarray, days: int) -> np.ndarray:
    """Mask of the ``dates`` (sorted datetime64[D]) within the last ``days`` calendar days up to the last one.

    ``days`` beyond the span of ``dates`` selects them all (and cannot overflow datetime64).
    """
    span = int((dates[-1] - dates[0]).astype(np.int64)) + 1
    return dates > dates[-1] - np.timedelta64(min(days, span), "D")


def _allocate(args: argparse.Namespace, window: np.ndarray, names: list[str], *, rising: bool) -> dict[str, Any]:
    """Weights and how they were found, for the built-in optimizer or any allocator.

    ``rising``: some strategy's cumulative-sum curve has a positive slope over the window
    (an allocator's result is reported as "no_rising_curve" otherwise).
    """
    options = dict(max_weight=_max_weights(args, names), min_weight=args.min_weight,
                   max_strategies=args.max_strategies, seed=args.seed,
                   periods_per_year=args.periods_per_year, names=names)
    if args.allocator in ("slope_std", "slope_std_compound"):
        from fastopt.optimize.solver import optimize

        alloc = optimize(window, args.allocator, solver=args.solver, shrinkage=args.shrinkage,
                         risk_model=args.risk_model, factors=args.factors, **options)
        return {
            "weights": np.asarray(alloc.weights),
            "score": alloc.score,
            "status": alloc.status,
            "message": alloc.message,
            "solver": alloc.solver,
            "objective": args.allocator,
            "excluded": alloc.diagnostics.get("excluded", {}),
            "diagnostics": alloc.diagnostics,
        }
    from fastopt.optimize.allocators import get_allocator
    from fastopt.optimize.objective import score

    ignored = [flag for flag, active in (
        ("--max-weight", bool(args.max_weight)), ("--min-weight", args.min_weight != 0.0),
        ("--max-strategies", args.max_strategies is not None), ("--shrinkage", args.shrinkage not in (0, 0.0)),
        ("--risk-model", args.risk_model != "auto"), ("--factors", args.factors is not None),
    ) if active]
    if args.allocator == "max_sharpe":
        ignored = [flag for flag in ignored if flag == "--shrinkage"]
    if ignored:
        _warn(f"{', '.join(ignored)} ignored: allocator {args.allocator!r} does not take optimizer options")

    allocator = get_allocator(args.allocator, lookback=args.lookback,
                              **({k: v for k, v in options.items() if k != "names"}
                                 if args.allocator == "max_sharpe" else {}))
    weights = allocator.allocate(window, names)
    value = score(window, weights, "slope_std", args.periods_per_year)
    return {
        "weights": weights,
        "score": value,
        "status": "allocator" if rising else "no_rising_curve",
        "message": f"weights from allocator {allocator.name!r}",
        "solver": allocator.name,
        "objective": "slope_std",
        "excluded": {},
        "diagnostics": {},
    }


def _audit_options(args: argparse.Namespace, vol_window: int, result: dict[str, Any]) -> dict[str, Any]:
    """Every option that shaped the config (the config's "options" key; docs/formats.md)."""
    from fastopt import __version__

    diagnostics = result.get("diagnostics", {})
    resolved = diagnostics.get("shrinkage")
    return {
        "fastopt_version": __version__,
        "allocator": args.allocator,
        "objective": result["objective"],
        "solver": args.solver,
        "lookback_days": int(args.lookback),
        "vol_window_days": int(vol_window),
        "end": args.end,
        "periods_per_year": float(args.periods_per_year),
        "target_vol": float(args.target_vol),
        "max_leverage": float(args.max_leverage),
        "max_weight": args.max_weight_default,
        "max_weight_by_name": dict(args.max_weight_by_name),
        "min_weight": float(args.min_weight),
        "max_strategies": args.max_strategies,
        "seed": int(args.seed),
        "shrinkage": args.shrinkage,
        "shrinkage_intensity": float(resolved) if isinstance(resolved, (int, float)) else None,
        "risk_model": diagnostics.get("risk_model", args.risk_model),
        "risk_model_option": args.risk_model,
        "factors": diagnostics.get("factors", args.factors),
        "vol_estimator": args.vol_estimator,
        "max_stale_days": int(args.max_stale_days),
        "min_ann_vol": float(args.min_ann_vol),
        "max_sharpe": float(args.max_sharpe) if math.isfinite(args.max_sharpe) else None,
        "strict": bool(args.strict),
        "allow_synthetic": bool(args.allow_synthetic),
        "allow_negative": bool(args.allow_negative),
        "allow_unbounded": bool(args.allow_unbounded),
        "allow_implausible": bool(args.allow_implausible),
        "strategies": str(args.strategies),
    }


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, str, bool)) or obj is None:
        return obj
    return str(obj)


def _print_table(summary: dict[str, Any], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"fastopt optimize  {summary['window_start']} .. {summary['window_end']} "
                        f"({summary['n_days']} days, allocator {args.allocator})")
    table.add_column("strategy")
    table.add_column("weight", justify="right")
    table.add_column("score", justify="right")
    table.add_column("vol share", justify="right")
    table.add_column("Sharpe", justify="right")
    table.add_column("max DD", justify="right")
    shown = [r for r in summary["strategies"] if r["weight"] > 0]
    hidden = len(summary["strategies"]) - len(shown)
    synthetic = set(summary["synthetic"])
    for row in shown:
        table.add_row(row["name"] + (f" {SYNTHETIC_MARK}" if row["name"] in synthetic else ""), f"{row['weight']:.2%}", f"{row['score']:.3f}",
                      f"{row['vol_contribution']:.1%}", f"{row['sharpe']:.2f}", f"{row['max_drawdown']:.1%}")
    console.print(table)
    if hidden:
        console.print(f"{hidden} other strategies get weight 0")
    score = summary["score"]
    console.print(
        f"portfolio: score {score:.4f}" if score is not None else "portfolio: score n/a",
        f"| Sharpe {summary['sharpe_ratio']:.3f} | ann. vol {summary['ann_vol']:.2%} ({summary['vol_estimator']}; "
        f"in-sample {summary['ann_vol_in_sample']:.2%}) -> target "
        f"{summary['target_vol']:.0%} | leverage {summary['leverage']:.3f}x"
        + (" (capped)" if summary["leverage_capped"] else "")
        + f" | account {summary['account_value']:,.0f} | status {summary['status']}",
    )
    if summary["written"]:
        console.print(f"wrote {summary['config']} in {summary['seconds']:.2f}s")
    else:
        console.print(f"dry run: {summary['config']} not modified")
