"""Case 5 — reconcile: one cycle, 500 strategies over 50 symbols, the built-in paper exchange.

Workspace from ``reconciler.bench.build_bench_workspace`` (config, state files, a
price file). The first cycle (every state file parsed, every position opened) is
the warm-up and is reported apart; then, before each timed cycle, every strategy's
position is rewritten (untimed) so each timed cycle reads changed files and trades.
Parity (after the last cycle, the bench's own arithmetic from the files on disk):
target notional per symbol = Σ account_value × leverage × weight × position must
equal the cycle's targets, and the paper exchange's positions × price must sit
within one amount step (or the venue's minimum order cost) of it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import time
from pathlib import Path

from bench.cases import BenchContext, require
from bench.runner import CaseResult, Table, fmt_time

NAME = "reconcile"
TITLE = "5. reconcile: one cycle, 500 strategies × 50 symbols, paper exchange"

N_STRATEGIES = 500
N_SYMBOLS = 50


def _targets_from_files(folder: Path) -> dict[str, float]:
    config = json.loads((folder / "portfolio_config.json").read_text())
    scale = float(config["account_value"]) * float(config["leverage"])
    per_symbol: dict[str, list[float]] = {}
    for name, weight in config["weights"].items():
        state = json.loads((folder / "strategies" / name / "state.json").read_text())
        positions = state.get("positions") or {state["symbol"]: state["position"]}
        for symbol, position in positions.items():
            per_symbol.setdefault(symbol, []).append(scale * float(weight) * float(position))
    return {symbol: math.fsum(parts) for symbol, parts in per_symbol.items()}


def run(ctx: BenchContext) -> CaseResult:
    build_workspace = require("reconciler.bench", "build_bench_workspace")
    build_reconciler = require("reconciler.cli", "build_reconciler")
    configure = require("reconciler.cli", "configure")
    write_state = require("fastopt.state_file", "write_state")
    os.environ["FASTOPT_OFFLINE"] = "1"
    folder = ctx.scratch / "reconcile"
    config = build_workspace(folder, n_strategies=N_STRATEGIES, n_symbols=N_SYMBOLS, seed=ctx.seed)
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--config", str(config), "--strategies", str(folder / "strategies"),
                              "--prices", str(folder / "prices.json"), "--quiet"])
    reconciler = build_reconciler(args)
    states = {p.parent.name: json.loads(p.read_text()) for p in sorted((folder / "strategies").glob("*/state.json"))}
    rng = random.Random(ctx.seed + 1)

    start = time.perf_counter()
    first = reconciler.run_cycle()
    first_s = time.perf_counter() - start
    if first.status != "ok":
        raise RuntimeError(f"first cycle ended {first.status}: {first.message}")
    repeats = 5 if ctx.quick else 15
    times, orders = [], []
    report = first
    for _ in range(repeats):
        for name, state in states.items():
            write_state(folder / "strategies" / name / "state.json", symbol=state["symbol"],
                        position=rng.choice([-1.0, -0.5, 0.5, 1.0]))
        start = time.perf_counter()
        report = reconciler.run_cycle()
        times.append(time.perf_counter() - start)
        orders.append(len(report.plan.orders))
        if report.status != "ok":
            raise RuntimeError(f"cycle ended {report.status}: {report.message}")

    expected = _targets_from_files(folder)
    got_targets: dict[str, float] = {}
    for (_, symbol), value in report.target_notional.items():
        got_targets[symbol] = got_targets.get(symbol, 0.0) + value
    target_diff = max(abs(got_targets.get(s, 0.0) - v) / max(abs(v), 1.0) for s, v in expected.items())
    prices = json.loads((folder / "prices.json").read_text())
    venue = reconciler.venue(reconciler.settings.default_exchange)
    live = venue.fetch_positions()
    markets = venue.load_markets(list(expected), prices)
    off_by_more_than_a_step = []
    for symbol, target in expected.items():
        market = markets[symbol]
        # One amount step, or an order the venue would refuse (under its minimum cost), stays unfilled.
        tolerance = max(float(market.amount_step) * prices[symbol], float(market.min_cost)) * (1 + 1e-9) + 1e-9
        if abs(live.get(symbol, 0.0) * prices[symbol] - target) > tolerance:
            off_by_more_than_a_step.append(symbol)
    ok = target_diff <= 1e-9 and not off_by_more_than_a_step
    result = CaseResult(name=NAME, title=TITLE)
    if not ok:
        result.parity_failures.append(f"reconcile: target relative diff {target_diff:.1e}; "
                                      f"{len(off_by_more_than_a_step)} symbols off target after the cycle")
    median_s = statistics.median(times)
    table = Table(title=f"{N_STRATEGIES} strategies over {N_SYMBOLS} symbols, paper exchange (offline)",
                  columns=["cycle", "time", "orders", "parity"])
    table.rows.append(["first (cold: every state parsed, all positions opened)", fmt_time(first_s),
                       str(len(first.plan.orders)), "–"])
    table.rows.append([f"steady (median of {repeats}; every position changed before each)", fmt_time(median_s),
                       f"{statistics.median(orders):.0f}",
                       ("ok" if ok else "**wrong**") + f": targets vs own arithmetic {target_diff:.1e}, "
                       f"{len(off_by_more_than_a_step)} of {len(expected)} symbols off target after the cycle"])
    result.tables.append(table)
    result.records.append({"n_strategies": N_STRATEGIES, "n_symbols": N_SYMBOLS, "first_cycle_s": first_s,
                           "cycle_median_s": median_s, "cycle_times_s": times, "orders": orders,
                           "target_max_rel_diff": target_diff, "symbols_off_target": len(off_by_more_than_a_step)})
    result.notes.append("Cycle = reconciler.run_cycle() built by reconciler.cli.build_reconciler with --prices "
                        "(offline); the state rewrites between cycles are not timed.")
    return result
