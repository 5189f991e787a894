"""Case 4 — walk-forward: daily re-optimization, lookback 365, 4 years of out-of-sample days.

- N = 20: fastopt (incremental) vs today's method (BlaveClaw's 11-start SLSQP every
  day), the latter timed on a few evenly spaced days and extrapolated to all days.
- N = 500: the incremental/warm-started path vs cold daily fits (``incremental=False``),
  both timed over the whole walk-forward (the same days).
- N = 2000: time and peak memory (``ru_maxrss``) in a fresh subprocess.

Re-optimization only: ``random_n=0`` (the Dirichlet benchmark is not part of the timed work), on the
sample covariance (``risk_model="sample"``: the objective of the parity check; the default ``auto``
fits the factor model on these N >= T windows, timed by the scale case).
Parity: on sampled days the weights fastopt applied must score within 1e-6 of the
bench's exact solve (cvxpy + Clarabel) on the same trailing window
``returns[day - lookback : day]``; the cold path must agree with the incremental one.
"""
from __future__ import annotations

import time

import numpy as np

from bench.baselines.exact_cvxpy import exact_cvxpy
from bench.baselines.legacy import legacy_optimize
from bench.baselines.reference import ratio_score, ratio_stats
from bench.cases import BenchContext, require, universe
from bench.runner import CaseResult, Table, fmt_ratio, fmt_time, measure, relative_gap, run_python

NAME = "walkforward"
TITLE = "4. walk-forward: daily re-optimization, lookback 365, 4 years out of sample"

LOOKBACK = 365
OOS_DAYS = 4 * 365
QUICK_OOS_DAYS = 60
PARITY_TOLERANCE = 1e-6


def _sample_days(n_oos: int, count: int) -> list[int]:
    return sorted({int(x) for x in np.linspace(0, n_oos - 1, count)})


def check_days(returns: np.ndarray, weights: np.ndarray, days: list[int], lookback: int) -> tuple[float, int]:
    """(worst relative gap vs the exact optimum, days checked) over OOS ``days`` with a rising curve."""
    worst = 0.0
    checked = 0
    for d in days:
        window = returns[d: d + lookback]
        stats = ratio_stats(window)
        if not np.any(stats.g > 0) or weights[d].sum() == 0.0:
            continue
        best = ratio_score(stats, exact_cvxpy(window))
        got = ratio_score(stats, weights[d])
        worst = max(worst, relative_gap(max(best, got), got))
        checked += 1
    return worst, checked


MEMORY_SNIPPET = """
import json, resource, time
import numpy as np
from fastopt.walkforward.core import walkforward
returns = np.ascontiguousarray(np.load({path!r}), dtype=np.float64)  # written by the parent: no generator peak here
walkforward(returns[: {lookback} + 5, :50], lookback={lookback}, random_n=0, risk_model="sample")  # compile
base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
class OverBudget(Exception):
    pass
state = {{"done": 0, "total": 0}}
start = time.perf_counter()
def progress(done, total):
    state["done"], state["total"] = done, total
    if time.perf_counter() - start > {budget_s}:
        raise OverBudget()
completed = True
try:
    walkforward(returns, lookback={lookback}, rebalance=1, random_n=0, progress=progress, risk_model="sample")
except OverBudget:
    completed = False
elapsed = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"elapsed_s": elapsed, "completed": completed, "fits_done": state["done"],
                  "fits_total": state["total"], "base_kib": base_kib, "peak_kib": peak_kib,
                  "data_mib": returns.nbytes / 2**20}}))
"""

#: Wall-time cap of the N = 2000 walk-forward; past it the run stops and the rest is extrapolated.
BIG_BUDGET_S = 150.0


def run(ctx: BenchContext) -> CaseResult:
    walkforward = require("fastopt.walkforward", "walkforward")
    require("fastopt.optimize.solver", "solve_ratio")
    oos = QUICK_OOS_DAYS if ctx.quick else OOS_DAYS
    n_days = LOOKBACK + oos
    result = CaseResult(name=NAME, title=TITLE)
    table = Table(title=f"lookback {LOOKBACK}, rebalance daily, {oos} out-of-sample days",
                  columns=["N", "method", "time (whole walk-forward)", "per day", "ratio", "parity", "how"])

    def wf(returns: np.ndarray, incremental: bool = True):
        return walkforward(returns, lookback=LOOKBACK, rebalance=1, allocator="slope_std", random_n=0,
                           incremental=incremental, risk_model="sample")  # the sample objective of the parity check

    # ---- N = 20: fastopt vs today's 11-start SLSQP per day
    _, _, r20 = universe(20, n_days, seed=ctx.seed)
    ctx.log(f"walkforward: N=20, {oos} days")
    res20, t20 = measure(lambda: wf(r20), max_repeats=3, budget_s=2.0 if ctx.quick else 10.0)
    gap20, checked20 = check_days(r20, res20.weights, _sample_days(oos, 3 if ctx.quick else 8), LOOKBACK)
    ok20 = gap20 <= PARITY_TOLERANCE
    table.rows.append(["20", "fastopt walkforward (incremental)", fmt_time(t20.median_s), fmt_time(t20.median_s / oos),
                       "1×", f"{'ok' if ok20 else '**wrong**'}: worst gap {gap20:.1e} on {checked20} days",
                       f"median of {t20.repeats}"])
    legacy_days = _sample_days(oos, 2 if ctx.quick else 5)
    legacy_times = []
    for d in legacy_days:
        start = time.perf_counter()
        legacy_optimize(r20[d: d + LOOKBACK], lookback=LOOKBACK, seed=42)
        legacy_times.append(time.perf_counter() - start)
    legacy_per_day = float(np.median(legacy_times))
    table.rows.append(["20", "today: BlaveClaw 11-start SLSQP each day", f"~{fmt_time(legacy_per_day * oos)} (extrapolated)",
                       fmt_time(legacy_per_day), fmt_ratio(legacy_per_day * oos / t20.median_s), "–",
                       f"median of {len(legacy_days)} sampled days × {oos} days"])
    result.records.append({"n_strategies": 20, "oos_days": oos, "fastopt_s": t20.median_s, "fastopt_repeats": t20.repeats,
                           "parity_worst_gap": gap20, "parity_days": checked20,
                           "legacy_per_day_s": legacy_per_day, "legacy_sampled_days": len(legacy_days),
                           "legacy_extrapolated_s": legacy_per_day * oos})
    if not ok20:
        result.parity_failures.append(f"walk-forward N=20: fastopt weights {gap20:.1e} below the exact optimum")

    if not ctx.quick:
        # ---- N = 500: incremental vs cold daily fits
        _, _, r500 = universe(500, n_days, seed=ctx.seed)
        ctx.log("walkforward: N=500 incremental")
        res500, t500 = measure(lambda: wf(r500), max_repeats=3, budget_s=15.0)
        gap500, checked500 = check_days(r500, res500.weights, _sample_days(oos, 4), LOOKBACK)
        ctx.log(f"walkforward: N=500 cold daily fits, all {oos} days")
        res_cold, t_cold = measure(lambda: wf(r500, incremental=False), max_repeats=2, budget_s=0.0)
        agree_days = _sample_days(oos, 12)
        agree = max(relative_gap(
            max(ratio_score(ratio_stats(r500[d: d + LOOKBACK]), res_cold.weights[d]),
                ratio_score(ratio_stats(r500[d: d + LOOKBACK]), res500.weights[d])),
            ratio_score(ratio_stats(r500[d: d + LOOKBACK]), w[d]))
            for d in agree_days for w in (res_cold.weights, res500.weights)
            if res_cold.weights[d].sum() > 0 and res500.weights[d].sum() > 0)
        ok500 = gap500 <= PARITY_TOLERANCE and agree <= PARITY_TOLERANCE
        table.rows.append(["500", "fastopt walkforward (incremental)", fmt_time(t500.median_s), fmt_time(t500.median_s / oos),
                           "1×", f"{'ok' if ok500 else '**wrong**'}: worst gap {gap500:.1e} on {checked500} days; "
                                 f"cold vs incremental {agree:.1e} on {len(agree_days)} days", f"median of {t500.repeats}"])
        table.rows.append(["500", "fastopt walkforward (cold daily fits, incremental=False)",
                           fmt_time(t_cold.median_s), fmt_time(t_cold.median_s / oos),
                           fmt_ratio(t_cold.median_s / t500.median_s),
                           "–", f"whole run, same days; median of {t_cold.repeats}"])
        result.records.append({"n_strategies": 500, "oos_days": oos, "fastopt_s": t500.median_s,
                               "fastopt_repeats": t500.repeats, "parity_worst_gap": gap500, "parity_days": checked500,
                               "cold_s": t_cold.median_s, "cold_repeats": t_cold.repeats,
                               "cold_vs_incremental_worst_gap": agree})
        if not ok500:
            result.parity_failures.append(f"walk-forward N=500: worst gap {gap500:.1e}, cold vs incremental {agree:.1e}")

        # ---- N = 2000: time and peak memory in a fresh process
        ctx.log("walkforward: N=2000 in a subprocess")
        try:
            _, _, r2000 = universe(2000, n_days, seed=ctx.seed)
            path = ctx.scratch / "walkforward-2000.npy"
            np.save(path, r2000)
            del r2000
            out = run_python(MEMORY_SNIPPET.format(path=str(path), lookback=LOOKBACK, budget_s=BIG_BUDGET_S),
                             timeout_s=BIG_BUDGET_S + 300)
            per_fit = out["elapsed_s"] / max(out["fits_done"], 1)
            if out["completed"]:
                time_cell, how = fmt_time(out["elapsed_s"]), "whole run"
                total_s = out["elapsed_s"]
            else:
                total_s = per_fit * out["fits_total"]
                time_cell = f"~{fmt_time(total_s)} (extrapolated)"
                how = (f"stopped at the {BIG_BUDGET_S:g} s cap after {out['fits_done']} of {out['fits_total']} "
                       f"daily fits; mean time per fit so far × all fits")
            table.rows.append(["2000", "fastopt walkforward (incremental), fresh process", time_cell,
                               fmt_time(per_fit), "–", "not checked (cost)",
                               f"{how}; peak RSS {out['peak_kib'] / 1024:.0f} MiB (before the call, with the "
                               f"{out['data_mib']:.0f} MiB returns loaded and kernels compiled: "
                               f"{out['base_kib'] / 1024:.0f} MiB)"])
            result.records.append({"n_strategies": 2000, "oos_days": oos, "fastopt_s": total_s,
                                   "completed": out["completed"], "fits_done": out["fits_done"],
                                   "fits_total": out["fits_total"], "measured_s": out["elapsed_s"],
                                   "peak_rss_mib": out["peak_kib"] / 1024,
                                   "rss_before_call_mib": out["base_kib"] / 1024})
        except Exception as exc:
            table.rows.append(["2000", "fastopt walkforward", "–", "–", "–", "–", f"failed: {exc}"[:200]])
            result.notes.append(f"N=2000 walk-forward failed in its subprocess: {exc}")
    else:
        result.notes.append(f"--quick: N=20 only, {QUICK_OOS_DAYS} out-of-sample days; N=500 and N=2000 run in the full suite.")
    result.tables.append(table)
    result.notes.append("Walk-forward call: fastopt.walkforward(returns, lookback=365, rebalance=1, allocator='slope_std', "
                        "random_n=0, incremental=True|False). Data: generate_universe(N, 365 + out-of-sample days).")
    return result
