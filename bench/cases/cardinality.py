"""Case 6 — cardinality: ``max_strategies=10`` at N = 100 and 500 (100 only with --quick) vs greedy forward selection + exact re-solve.

The cardinality-constrained problem is non-convex; fastopt must be at least as good
as the greedy baseline (``bench/baselines/greedy_cardinality.py``). Parity: at most
10 non-zero weights, on the simplex, score >= greedy's × (1 − 1e-9). The unconstrained
optimum (bench's own cvxpy solve) is shown for scale.
"""
from __future__ import annotations

import numpy as np

from bench.baselines.exact_cvxpy import exact_cvxpy
from bench.baselines.greedy_cardinality import greedy_cardinality
from bench.baselines.reference import count_nonzero, simplex_violation, slope_std_score
from bench.cases import BenchContext, require, universe
from bench.runner import CaseResult, Table, fmt_ratio, fmt_time, measure

NAME = "cardinality"
TITLE = "6. cardinality: at most 10 strategies out of N = 100 and 500"

MAX_STRATEGIES = 10
FULL_SIZES = ((100, 365), (500, 365))
QUICK_SIZES = ((100, 365),)


def run(ctx: BenchContext) -> CaseResult:
    optimize = require("fastopt.optimize.solver", "optimize")
    result = CaseResult(name=NAME, title=TITLE)
    for n, n_days in (QUICK_SIZES if ctx.quick else FULL_SIZES):
        _run_size(ctx, optimize, n, n_days, result)
    result.notes.append("Greedy: add the strategy that most raises the ratio while the subset's tangent portfolio stays "
                        "long-only (Schur-complement updates), then re-solve the chosen subset with cvxpy + Clarabel.")
    return result


def _run_size(ctx: BenchContext, optimize, n: int, n_days: int, result: CaseResult) -> None:
    _, _, returns = universe(n, n_days, seed=ctx.seed)
    budget = {"max_repeats": 3 if ctx.quick else 5, "budget_s": 1.0 if ctx.quick else 8.0}
    ctx.log(f"cardinality: N={n}, K={MAX_STRATEGIES}")
    fast_w, fast_t = measure(lambda: np.asarray(optimize(returns, solver="search", max_strategies=MAX_STRATEGIES, risk_model="sample").weights,
                                                dtype=np.float64), **budget)
    greedy_w, greedy_t = measure(lambda: greedy_cardinality(returns, max_strategies=MAX_STRATEGIES), **budget)
    free_score = slope_std_score(returns, exact_cvxpy(returns))
    fast_score = slope_std_score(returns, fast_w)
    greedy_score = slope_std_score(returns, greedy_w)
    problems = []
    if count_nonzero(fast_w, threshold=0.0) > MAX_STRATEGIES:
        problems.append(f"{count_nonzero(fast_w, threshold=0.0)} non-zero weights > {MAX_STRATEGIES}")
    if simplex_violation(fast_w) > 1e-9:
        problems.append("weights off the simplex")
    if fast_score < greedy_score * (1 - 1e-9):
        problems.append(f"score below greedy by {(greedy_score - fast_score) / abs(greedy_score):.1e}")
    if problems:
        result.parity_failures.append(f"cardinality N={n}: " + "; ".join(problems))
    table = Table(title=f"N = {n}, T = {n_days}, max_strategies = {MAX_STRATEGIES}",
                  columns=["method", "median time", "× fastopt", "score", "vs greedy", "non-zero w", "status"])
    table.rows.append(["fastopt optimize(max_strategies=10)", fmt_time(fast_t.median_s), "1×", f"{fast_score:.6f}",
                       f"{(fast_score - greedy_score) / abs(greedy_score):+.2e}", str(count_nonzero(fast_w, threshold=0.0)),
                       "ok" if not problems else "**wrong**: " + "; ".join(problems)])
    table.rows.append(["greedy forward selection + exact re-solve", fmt_time(greedy_t.median_s),
                       fmt_ratio(greedy_t.median_s / fast_t.median_s), f"{greedy_score:.6f}", "0",
                       str(count_nonzero(greedy_w, threshold=0.0)), "ok"])
    table.rows.append(["(unconstrained optimum, for scale)", "–", "–", f"{free_score:.6f}",
                       f"{(free_score - greedy_score) / abs(greedy_score):+.2e}", "–", "–"])
    result.tables.append(table)
    result.records.append({"n_strategies": n, "n_days": n_days, "max_strategies": MAX_STRATEGIES,
                           "fastopt_s": fast_t.median_s, "greedy_s": greedy_t.median_s, "fastopt_score": fast_score,
                           "greedy_score": greedy_score, "unconstrained_score": free_score,
                           "fastopt_nonzero": count_nonzero(fast_w, threshold=0.0),
                           "greedy_nonzero": count_nonzero(greedy_w, threshold=0.0)})
