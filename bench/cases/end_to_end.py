"""Case 3 — end to end: ``fastopt optimize --dry-run --json`` as a process, 500 strategies × 365 days.

Cold = a fresh ``NUMBA_CACHE_DIR`` (empty temp dir: every kernel compiles), warm = the
same dir on later runs (median of several). The process-start floor
(``python -c "import fastopt"``) is shown for scale. Parity: exit 0, JSON on stdout,
weights on the simplex scoring within 1e-6 of the bench's exact optimum on the window.
"""
from __future__ import annotations

import json
import statistics
import sys

import numpy as np

from bench.baselines.exact_cvxpy import exact_cvxpy
from bench.baselines.reference import slope_std_score
from bench.cases import BenchContext, Unavailable, require, universe
from bench.runner import REPO_ROOT, CaseResult, Table, fmt_time, relative_gap, run_command

NAME = "end_to_end"
TITLE = "3. end to end: `fastopt optimize --dry-run --json` process, 500 strategies × 365 days"

N_STRATEGIES = 500
N_DAYS = 365
TOLERANCE = 1e-6


def _find_weights(obj) -> dict | None:
    """The first ``weights`` mapping name → number anywhere in the JSON output."""
    if isinstance(obj, dict):
        candidate = obj.get("weights")
        if isinstance(candidate, dict) and candidate and all(isinstance(v, (int, float)) for v in candidate.values()):
            return candidate
        for value in obj.values():
            found = _find_weights(value)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for value in obj:
            found = _find_weights(value)
            if found is not None:
                return found
    return None


def run(ctx: BenchContext) -> CaseResult:
    require("fastopt.commands.optimize", "run")
    write_universe = require("bench.universe", "write_universe")
    folder = ctx.scratch / "e2e" / "strategies"
    write_universe(folder, N_STRATEGIES, N_DAYS, ctx.seed)
    _, names, returns = universe(N_STRATEGIES, N_DAYS, seed=ctx.seed)
    cache = ctx.scratch / "e2e" / "numba-cache"
    cache.mkdir(parents=True)
    argv = [sys.executable, "-m", "fastopt", "optimize", "--strategies", str(folder),
            "--config", str(ctx.scratch / "e2e" / "portfolio_config.json"), "--target-vol", "0.30",
            "--lookback", str(N_DAYS), "--dry-run", "--json",
            "--allow-implausible",  # a seeded synthetic universe fits an in-sample Sharpe above 5: timed, not judged
            "--risk-model", "sample"]  # the objective the parity reference solves (N >= T: auto would pick factor)
    env = {"NUMBA_CACHE_DIR": str(cache)}
    ctx.log("end_to_end: cold numba cache")
    cold_s, proc = run_command(argv, env=env, timeout_s=900)
    if proc.returncode != 0:
        raise Unavailable(f"`fastopt optimize` exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    warm_runs = 2 if ctx.quick else 5
    warm_times = []
    for _ in range(warm_runs):
        elapsed, proc = run_command(argv, env=env, timeout_s=300)
        warm_times.append(elapsed)
    floor_times = [run_command([sys.executable, "-c", "import fastopt, numpy"], cwd=REPO_ROOT)[0] for _ in range(3)]

    weights_map = _find_weights(json.loads(proc.stdout))
    problems = []
    if weights_map is None:
        problems.append("no weights mapping in the JSON output")
        gap = float("inf")
    else:
        unknown = set(weights_map) - set(names)
        if unknown:
            problems.append(f"{len(unknown)} unknown names in weights")
        w = np.array([float(weights_map.get(name, 0.0)) for name in names])
        if abs(w.sum() - 1.0) > 1e-9 or w.min() < 0:
            problems.append(f"weights sum to {w.sum():.12f}")
        best = slope_std_score(returns, exact_cvxpy(returns))
        got = slope_std_score(returns, w)
        gap = relative_gap(max(best, got), got)
        if gap > TOLERANCE:
            problems.append(f"score {gap:.1e} below the exact optimum")
    result = CaseResult(name=NAME, title=TITLE)
    if problems:
        result.parity_failures.append("end to end: " + "; ".join(problems))
    table = Table(title=f"{N_STRATEGIES} stats.json files × {N_DAYS} days, wall time of the whole process",
                  columns=["run", "time", "parity"])
    table.rows.append(["cold numba cache (empty NUMBA_CACHE_DIR: compiles every kernel it uses)", fmt_time(cold_s), "–"])
    table.rows.append([f"warm numba cache (median of {warm_runs})", fmt_time(statistics.median(warm_times)),
                       ("ok" if not problems else "**wrong**: " + "; ".join(problems)) + f" (gap {gap:.1e})"])
    table.rows.append(["process floor: python -c 'import fastopt, numpy' (median of 3)",
                       fmt_time(statistics.median(floor_times)), "–"])
    result.tables.append(table)
    result.records.append({"n_strategies": N_STRATEGIES, "n_days": N_DAYS, "cold_s": cold_s,
                           "warm_median_s": statistics.median(warm_times), "warm_times_s": warm_times,
                           "process_floor_s": statistics.median(floor_times), "gap_to_exact": gap})
    result.notes.append("Command: " + " ".join(["fastopt", *argv[3:]]).replace(str(ctx.scratch), "$TMP"))
    return result
