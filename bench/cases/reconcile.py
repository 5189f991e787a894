"""Case 5 — reconcile: one cycle (500 strategies × 50 symbols), journal load, loop memory; paper exchange.

Cycle. Workspace from ``bench.reconcile_workspace.build_bench_workspace`` (config, state files, a
price file). The first cycle (every state file parsed, every position opened) is
the warm-up and is reported apart; then, before each timed cycle, every strategy's
position is rewritten (untimed) so each timed cycle reads changed files and trades.
Parity (after the last cycle, the bench's own arithmetic from the files on disk):
target notional per symbol = Σ account_value × leverage × weight × position must
equal the cycle's targets, and the paper exchange's positions × price must sit
within one amount step (or the venue's minimum order cost) of it.

Journal load. ``orders.jsonl`` of 100,000 records (50,000 intents, 50,000 outcomes; 100
intents left unfinished, the 100 spare outcomes are second outcomes of finished orders)
written by the journal's own API (``bench.reconcile_workspace.write_bench_journal``); then
``OrderJournal(path)`` is timed: one untimed warm-up, median of the timed loads. Parity
(before timing): the loaded unfinished intents are exactly the ones written without an
outcome, oldest first; and no load changed the file.

Loop memory. A ``PollingLoop`` (interval 0, full cycle every 0 s: every poll is a cycle)
runs 10,000 cycles on a 50 strategies × 10 symbols paper workspace in a fresh
interpreter (the RSS is the loop's own); every 250 cycles every position changes so
orders are sent. RSS (/proc/self/statm) after cycle 1,000 and 10,000; target: the
second within 10 % of the first. Parity: every cycle ok, orders sent and filled, no
unfinished intent left. ``--quick`` shrinks all three parts.
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
from bench.runner import CaseResult, Table, fmt_time, run_python

NAME = "reconcile"
TITLE = ("5. reconcile: one cycle (500 strategies × 50 symbols), journal load (100k records), "
         "loop memory (10,000 cycles); paper exchange")

N_STRATEGIES = 500
N_SYMBOLS = 50

#: journal load: (intents, outcomes, unfinished, timed loads), full and --quick
JOURNAL = {"full": (50_000, 50_000, 100, 5), "quick": (2_500, 2_500, 10, 3)}
JOURNAL_TARGET_S = 0.3  # for 100k records
#: loop memory: (strategies, symbols, cycles, RSS sample cycles, rewrite every), full and --quick
LOOP = {"full": (50, 10, 10_000, (1_000, 10_000), 250), "quick": (10, 5, 300, (100, 300), 50)}
LOOP_RSS_TARGET = 1.10  # last sample / first sample
LOOP_TIMEOUT_S = 300.0


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
    build_workspace = require("bench.reconcile_workspace", "build_bench_workspace")
    build_reconciler = require("reconciler.cli", "build_reconciler")
    configure = require("reconciler.cli", "configure")
    write_state = require("fastopt.files.state", "write_state")
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
    record = {"n_strategies": N_STRATEGIES, "n_symbols": N_SYMBOLS, "first_cycle_s": first_s,
              "cycle_median_s": median_s, "cycle_times_s": times, "orders": orders,
              "target_max_rel_diff": target_diff, "symbols_off_target": len(off_by_more_than_a_step)}
    result.records.append(record)
    result.notes.append("Cycle = reconciler.run_cycle() built by reconciler.cli.build_reconciler with --prices "
                        "(offline); the state rewrites between cycles are not timed.")
    _journal_part(ctx, result, record)
    _loop_part(ctx, result, record)
    return result


def _journal_part(ctx: BenchContext, result: CaseResult, record: dict) -> None:
    """Time OrderJournal(path) on a journal written by the journal's own API (see the module docstring)."""
    write_journal = require("bench.reconcile_workspace", "write_bench_journal")
    load_journal = require("bench.reconcile_workspace", "bench_journal_load")
    n_intents, n_outcomes, n_unfinished, repeats = JOURNAL["quick" if ctx.quick else "full"]
    path = ctx.scratch / "journal" / "orders.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    expected = write_journal(path, n_intents=n_intents, n_outcomes=n_outcomes, n_unfinished=n_unfinished,
                             seed=ctx.seed)
    write_s = time.perf_counter() - start
    got = load_journal(path, expected, repeats=repeats)
    path.unlink()
    ok = got["parity_ok"] and got["file_unchanged"] and got["records"] == n_intents + n_outcomes
    if not ok:
        result.parity_failures.append(
            f"journal: {got['records']} records (wrote {n_intents + n_outcomes}), unfinished ids "
            f"{'match' if got['parity_ok'] else 'DIFFER'}, file {'unchanged' if got['file_unchanged'] else 'CHANGED'} "
            "by loading")
    median_s = statistics.median(got["load_s"])
    full_size = got["records"] >= 100_000
    target = (f"< {fmt_time(JOURNAL_TARGET_S)}: " + ("met" if median_s < JOURNAL_TARGET_S else "**not met**")
              if full_size else "(target is for 100k records)")
    table = Table(title="order journal load: OrderJournal(path) on orders.jsonl",
                  columns=["records", "file", "load (median)", "target", "parity"])
    table.rows.append([f"{got['records']:,} ({n_intents:,} intents, {n_outcomes:,} outcomes)",
                       f"{got['bytes'] / 2**20:.1f} MiB", f"{fmt_time(median_s)} (of {repeats})", target,
                       ("ok" if ok else "**wrong**") + f": {got['unfinished']} unfinished = the {len(expected)} "
                       "written without an outcome, oldest first; file unchanged by the loads"])
    result.tables.append(table)
    result.notes.append(f"Journal written with record_intents (batches of 500, one fsync each) and record_outcome "
                        f"in {write_s:.1f} s (not timed); one untimed load first (warm-up + parity).")
    record.update({"journal_records": got["records"], "journal_bytes": got["bytes"],
                   "journal_load_median_s": median_s, "journal_load_times_s": got["load_s"],
                   "journal_parity_ok": ok})


def _loop_part(ctx: BenchContext, result: CaseResult, record: dict) -> None:
    """PollingLoop RSS over many cycles, in a fresh interpreter (see the module docstring)."""
    require("bench.reconcile_workspace", "bench_loop_memory")
    n_strategies, n_symbols, cycles, sample_at, rewrite_every = LOOP["quick" if ctx.quick else "full"]
    start = time.perf_counter()
    got = run_python(f"""
        import json
        from bench.reconcile_workspace import bench_loop_memory
        print(json.dumps(bench_loop_memory(n_strategies={n_strategies}, n_symbols={n_symbols}, cycles={cycles},
                                           sample_at={sample_at!r}, rewrite_every={rewrite_every},
                                           seed={ctx.seed})))
        """, timeout_s=LOOP_TIMEOUT_S)
    wall_s = time.perf_counter() - start
    rss = {int(k): v for k, v in got["rss_mib"].items()}
    first, last = rss[sample_at[0]], rss[sample_at[-1]]
    ratio = last / first
    ok = (got["cycles"] == cycles and got["status_counts"] == {"ok": cycles} and got["filled"] > 0
          and got["filled"] == got["orders"] and got["unfinished"] == 0)
    if not ok:
        result.parity_failures.append(f"loop: {got['cycles']} cycles {got['status_counts']}, {got['filled']} of "
                                      f"{got['orders']} orders filled, {got['unfinished']} unfinished")
    verdict = "met" if ratio <= LOOP_RSS_TARGET else "**not met**"
    table = Table(title=f"polling loop memory: {n_strategies} strategies × {n_symbols} symbols, every poll a cycle, "
                        f"positions changed every {rewrite_every} cycles (fresh process)",
                  columns=["cycles", f"RSS after cycle {sample_at[0]:,}", f"RSS after cycle {sample_at[-1]:,}",
                           "ratio (target ≤ 1.10×)", "per cycle", "parity"])
    table.rows.append([f"{got['cycles']:,}", f"{first:.1f} MiB", f"{last:.1f} MiB", f"{ratio:.3f}× ({verdict})",
                       fmt_time(got["seconds"] / max(got["cycles"], 1)),
                       ("ok" if ok else "**wrong**") + f": {got['status_counts'].get('ok', 0):,} cycles ok, "
                       f"{got['filled']} orders sent and filled, {got['unfinished']} unfinished"])
    result.tables.append(table)
    result.notes.append(f"Loop memory: peak RSS (getrusage, includes imports and the workspace build) "
                        f"{got['peak_rss_mib']:.1f} MiB; loop {got['seconds']:.1f} s, subprocess {wall_s:.1f} s.")
    record.update({"loop_cycles": got["cycles"], "loop_rss_mib": got["rss_mib"], "loop_rss_ratio": ratio,
                   "loop_peak_rss_mib": got["peak_rss_mib"], "loop_seconds": got["seconds"],
                   "loop_orders": got["orders"], "loop_parity_ok": ok})
