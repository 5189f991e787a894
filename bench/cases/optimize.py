"""Case 1 — optimize: fastopt's search against the alternatives, on the same T×N window.

Every method's time includes computing Σ and g from the returns. Parity: weights on
the simplex; methods that claim the optimum must reach the best score found by any
method within ``OPTIMAL_TOLERANCE`` (relative), else they are marked "wrong".
"""
from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.baselines.legacy import legacy_optimize
from bench.baselines.limits import TimeLimitExceeded
from bench.baselines.pypfopt_maxsharpe import pypfopt_max_sharpe
from bench.baselines.random_search import random_search
from bench.baselines.reference import (count_nonzero, kkt_residual, ratio_stats, simplex_violation,
                                       slope_std_score)
from bench.baselines.scipy_slsqp import slsqp_analytic
from bench.cases import BenchContext, Unavailable, require, universe
from bench.runner import (STATUS_ERROR, STATUS_OK, STATUS_SKIPPED, STATUS_WRONG, CaseResult, Table,
                          REPO_ROOT, extrapolate_power_law, fmt_gap, fmt_ratio, fmt_time, measure, relative_gap,
                          run_command, run_python)

NAME = "optimize"
TITLE = "1. optimize: one solve of max slope/std (Σ and g included)"

OPTIMAL_TOLERANCE = 1e-6
SIMPLEX_TOLERANCE = 1e-9
RANDOM_SAMPLES = 100_000
RANDOM_BLOCK = 2_000
#: A probe (one timed block / start) runs unless the power law already predicts over PROBE_MARGIN × the budget.
PROBE_MARGIN = 10.0
#: fastopt statuses meaning "the ratio is unbounded on this window" (N > T, near-zero-variance mixes).
ILL_POSED = ("unbounded", "ill_conditioned")

FULL_SIZES = {"n_strategies": (10, 100, 500, 1000, 2000), "n_days": (365, 1825)}
QUICK_SIZES = {"n_strategies": (10, 100, 500), "n_days": (365,)}


@dataclass
class Method:
    """One contender: ``solve(returns) -> weights``; ``probe(returns) -> (predicted seconds, how)`` (optional)."""

    key: str
    label: str
    solve: Callable[[np.ndarray], np.ndarray] | None
    claims_optimum: bool
    unavailable: str | None = None
    probe: Callable[[np.ndarray], tuple[float, str]] | None = None
    note: str = ""
    #: ``solve`` accepts ``time_limit_s`` and raises TimeLimitExceeded past it (iterative scipy baselines).
    time_limited: bool = False
    #: this method's per-call budget = the case budget × ``limit_scale``.
    limit_scale: float = 1.0


def _fastopt_methods() -> list[Method]:
    try:
        optimize = require("fastopt.optimize.solver", "optimize")
    except Unavailable as exc:
        reason = str(exc)
        return [Method("fastopt_search", "fastopt search", None, True, unavailable=reason),
                Method("fastopt_exact", "fastopt exact (cvxpy+Clarabel)", None, True, unavailable=reason)]

    def search(returns: np.ndarray) -> tuple[np.ndarray, str]:
        allocation = optimize(returns, solver="search", risk_model="sample")  # the sample objective the references solve
        return np.asarray(allocation.weights, dtype=np.float64), str(allocation.status)

    def exact(returns: np.ndarray) -> tuple[np.ndarray, str]:
        allocation = optimize(returns, solver="exact", risk_model="sample")
        return np.asarray(allocation.weights, dtype=np.float64), str(allocation.status)

    # The exact solve is the parity anchor: it gets four times the per-call budget of the others.
    return [Method("fastopt_search", "fastopt search", search, True),
            Method("fastopt_exact", "fastopt exact (cvxpy+Clarabel)", exact, True, limit_scale=4.0)]


def _random_probe(returns: np.ndarray, time_limit_s: float) -> tuple[float, str]:
    start = time.perf_counter()
    random_search(returns, n_samples=RANDOM_SAMPLES, block=RANDOM_BLOCK, max_blocks=1)
    return (time.perf_counter() - start) * RANDOM_SAMPLES / RANDOM_BLOCK, "one timed block × number of blocks"


def _legacy_probe(returns: np.ndarray, time_limit_s: float) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        legacy_optimize(returns, lookback=returns.shape[0], seed=42, n_starts=1, time_limit_s=time_limit_s)
    except TimeLimitExceeded as exc:
        return exc.elapsed_s * 11, f"one start stopped at {exc.elapsed_s:.0f} s (iteration {exc.iterations}) × 11 starts; a lower bound"
    return (time.perf_counter() - start) * 11, "one timed start (equal weights) × 11 starts"


def _quiet(solve: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``solve`` with library warnings silenced (an inexact result shows in the gap column instead)."""
    def wrapped(returns: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return solve(returns)
    return wrapped


def methods() -> list[Method]:
    """fastopt first (the ratio column divides by its time), then the alternatives."""
    lookback_note = "lookback = all T rows"
    return [
        *_fastopt_methods(),
        Method("slsqp_analytic", "scipy SLSQP, analytic gradient, from equal weights", slsqp_analytic, True,
               time_limited=True),
        Method("legacy", "today: BlaveClaw SLSQP, numeric gradient, 11 starts",
               lambda r, time_limit_s=None: legacy_optimize(r, lookback=r.shape[0], seed=42,
                                                            time_limit_s=time_limit_s),
               False, note=lookback_note, probe=_legacy_probe, time_limited=True, limit_scale=2.0),
        Method("random", f"Dirichlet random search, {RANDOM_SAMPLES // 1000}k samples",
               lambda r: random_search(r, n_samples=RANDOM_SAMPLES, block=RANDOM_BLOCK, seed=0), False,
               probe=_random_probe, limit_scale=3.0),
        Method("pypfopt", "PyPortfolioOpt max_sharpe(mu=g, cov=Σ)", _quiet(pypfopt_max_sharpe), True,
               note="default solver settings"),
    ]


def _budgets(quick: bool) -> dict:
    if quick:
        return {"call_limit_s": 1.5, "repeat_budget_s": 0.5, "max_repeats": 3}
    return {"call_limit_s": 10.0, "repeat_budget_s": 3.0, "max_repeats": 7}


def _floor_record(returns: np.ndarray, budgets: dict) -> dict:
    _, timing = measure(lambda: ratio_stats(returns), max_repeats=budgets["max_repeats"] * 2,
                        budget_s=budgets["repeat_budget_s"])
    return {"method": "numpy Σ and g only (floor)", "key": "floor", "status": STATUS_OK,
            "median_s": timing.median_s, "repeats": timing.repeats}


def run_config(returns: np.ndarray, contenders: list[Method], budgets: dict,
               history: dict[str, list[tuple[int, float]]], skipped_from: dict[str, dict]) -> list[dict]:
    """All methods on one window; ``history`` (key → [(N, seconds)]) feeds extrapolation."""
    n_days, n = returns.shape
    stats = ratio_stats(returns)
    records: list[dict] = []
    for method in contenders:
        base = {"method": method.label, "key": method.key, "n_strategies": n, "n_days": n_days,
                "median_s": None, "extrapolated_s": None, "note": method.note}
        if method.solve is None:
            records.append({**base, "status": STATUS_SKIPPED, "note": f"not measured: {method.unavailable}"})
            continue
        points = history.setdefault(method.key, [])
        limit = budgets["call_limit_s"] * method.limit_scale
        predicted = None
        exponent = 2.0
        how = ""
        if points:
            predicted, exponent = extrapolate_power_law([p[0] for p in points], [p[1] for p in points], n)
            how = f"power law N^{exponent:.2f} from N={points[-1][0]}"
        if method.key in skipped_from:
            prev = skipped_from[method.key]
            exponent = prev["exponent"]
            predicted = prev["seconds"] * (n / prev["n"]) ** exponent
            how = f"power law N^{exponent:.2f} from the N={prev['n']} estimate"
        probed = False
        if method.key not in skipped_from and method.probe is not None and (
                predicted is None or predicted <= PROBE_MARGIN * limit):
            predicted, how = method.probe(returns, limit)
            probed = True
        if probed and points and n > points[-1][0] and predicted > 0:
            # Growth between the last size that ran and this probe's estimate: used for larger N.
            exponent = min(3.0, max(1.0, math.log(predicted / points[-1][1]) / math.log(n / points[-1][0])))
        if predicted is not None and predicted > limit:
            skipped_from.setdefault(method.key, {"seconds": predicted, "n": n, "exponent": exponent})
            records.append({**base, "status": STATUS_SKIPPED, "extrapolated_s": predicted,
                            "note": f"over the {limit:g} s per-call budget; extrapolated ({how})"})
            continue
        if method.time_limited:
            timed_limit = {"time_limit_s": limit}

            def call(m: Method = method) -> np.ndarray:
                result = m.solve(returns, **timed_limit)
                timed_limit["time_limit_s"] = 3 * limit  # finished once: do not cut timed repeats on noise
                return result
        else:
            def call(m: Method = method) -> np.ndarray:
                return m.solve(returns)
        try:
            # A probe already ran this code on this data: it was the warm-up.
            output, timing = measure(call, max_repeats=budgets["max_repeats"], budget_s=budgets["repeat_budget_s"],
                                     warmed_up=probed)
        except TimeLimitExceeded as exc:
            skipped_from.setdefault(method.key, {"seconds": exc.elapsed_s, "n": n, "exponent": exponent})
            records.append({**base, "status": STATUS_SKIPPED, "extrapolated_s": exc.elapsed_s, "lower_bound": True,
                            "note": f"over the {limit:g} s per-call budget: stopped after "
                                    f"{exc.elapsed_s:.1f} s at iteration {exc.iterations} (time is a lower bound)"})
            continue
        except Exception as exc:  # a baseline library failing is a result to report, not a crash
            records.append({**base, "status": STATUS_ERROR, "note": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        fastopt_status = None
        if isinstance(output, tuple):
            output, fastopt_status = output
        weights = np.asarray(output, dtype=np.float64)
        points.append((n, timing.median_s))
        records.append({**base, "status": STATUS_OK, "median_s": timing.median_s, "repeats": timing.repeats,
                        "warmup_s": timing.warmup_s, "score": slope_std_score(returns, weights),
                        "nonzero": count_nonzero(weights), "kkt_residual": kkt_residual(stats, weights),
                        "simplex_violation": simplex_violation(weights), "claims_optimum": method.claims_optimum,
                        "fastopt_status": fastopt_status})
    _parity(records)
    return records


def _parity(records: list[dict]) -> None:
    """Gap to the best score of any valid method; mark wrong results.

    fastopt's results must be on the simplex, within OPTIMAL_TOLERANCE of the best score
    found and certified by the bench's KKT residual (<= OPTIMAL_TOLERANCE) — unless fastopt
    itself flags the window ill-posed (ratio unbounded), where no optimum exists to compare to.
    """
    valid = [r for r in records if r["status"] == STATUS_OK and r["simplex_violation"] <= SIMPLEX_TOLERANCE]
    best = max((r["score"] for r in valid), default=None)
    for r in records:
        if r["status"] != STATUS_OK:
            continue
        problems = []
        notes = [r["note"]] if r["note"] else []
        if r["simplex_violation"] > SIMPLEX_TOLERANCE:
            problems.append(f"weights off the simplex by {r['simplex_violation']:.1e}")
        if best is not None:
            r["gap"] = relative_gap(best, r["score"])
        is_fastopt = r["key"].startswith("fastopt")
        if is_fastopt and r.get("fastopt_status") in ILL_POSED:
            notes.append(f"fastopt status {r['fastopt_status']}: fastopt flags the window ill-posed (N > T, "
                         "near-zero-variance long-only mixes, ratio possibly unbounded): gap shown, not enforced")
        elif is_fastopt:
            if r.get("gap", 0.0) > OPTIMAL_TOLERANCE:
                problems.append(f"score {r['gap']:.1e} below the best found (tolerance {OPTIMAL_TOLERANCE:g})")
            if r["kkt_residual"] > OPTIMAL_TOLERANCE:
                problems.append(f"KKT residual {r['kkt_residual']:.1e} (not certified optimal)")
        elif r["claims_optimum"] and r.get("gap", 0.0) > OPTIMAL_TOLERANCE:
            notes.append("inexact: stopped short of the optimum")
        if problems:
            r["status"] = STATUS_WRONG
        r["note"] = "; ".join([*problems, *notes])


def _table(n_days: int, n: int, records: list[dict], floor: dict) -> Table:
    fastopt_time = next((r["median_s"] for r in records if r["key"] == "fastopt_search" and r["median_s"]), None)
    table = Table(title=f"N = {n} strategies, T = {n_days} days",
                  columns=["method", "median time", "× fastopt search", "score", "gap to best",
                           "non-zero w", "KKT residual", "status"])
    for r in [*records, floor]:
        t = r.get("median_s") or r.get("extrapolated_s")
        ratio = (t / fastopt_time) if (t and fastopt_time) else None
        time_cell = fmt_time(r.get("median_s")) if r.get("median_s") else (
            f"{'>' if r.get('lower_bound') else '~'}{fmt_time(r['extrapolated_s'])} (not run to the end)"
            if r.get("extrapolated_s") else "–")
        status = r["status"] if r["key"] != "floor" else "floor"
        if r.get("note"):
            status = f"{status}: {r['note']}"
        if r["status"] == STATUS_WRONG:
            status = f"**{status}**"
        table.rows.append([r["method"], time_cell, fmt_ratio(ratio),
                           f"{r['score']:.6f}" if "score" in r else "–", fmt_gap(r.get("gap")),
                           str(r.get("nonzero", "–")),
                           f"{r['kkt_residual']:.1e}" if "kkt_residual" in r else "–", status])
    return table


def summary_table(records: list[dict], contenders: list[Method]) -> Table:
    """One row per (N, T): every method's time and its ratio to fastopt search; fastopt's gap."""
    table = Table(title="Summary: median time per solve (× fastopt search); '~' = extrapolated, not run; "
                        "'>' = stopped at the budget (lower bound)",
                  columns=["N", "T", "fastopt gap", "floor: Σ and g", *[m.label for m in contenders]])
    keys = sorted({(r["n_days"], r["n_strategies"]) for r in records})
    for n_days, n in keys:
        rows = {r["key"]: r for r in records if r["n_days"] == n_days and r["n_strategies"] == n}
        base = rows.get("fastopt_search", {}).get("median_s")

        def cell(r: dict | None) -> str:
            if r is None:
                return "–"
            t = r.get("median_s")
            prefix = ""
            if t is None and r.get("extrapolated_s"):
                t, prefix = r["extrapolated_s"], ">" if r.get("lower_bound") else "~"
            if t is None:
                return r.get("status", "–")
            ratio = f" ({t / base:.3g}×)" if base else ""
            flag = " **wrong**" if r.get("status") == STATUS_WRONG else ""
            return f"{prefix}{fmt_time(t)}{ratio}{flag}"

        gap = rows.get("fastopt_search", {}).get("gap")
        table.rows.append([str(n), str(n_days), fmt_gap(gap), cell(rows.get("floor")),
                           *[cell(rows.get(m.key)) for m in contenders]])
    return table


COMPILE_SNIPPET = """
import json, time
t0 = time.perf_counter()
import numpy as np
from fastopt.optimize.solver import optimize
import_s = time.perf_counter() - t0
from bench.universe import generate_universe
_, _, returns = generate_universe({n}, {days}, {seed}, market_factor=True)
returns = np.ascontiguousarray(returns, dtype=np.float64)
t = time.perf_counter(); optimize(returns, solver="search", risk_model="sample"); first_s = time.perf_counter() - t
t = time.perf_counter(); optimize(returns, solver="search", risk_model="sample"); second_s = time.perf_counter() - t
print(json.dumps({{"import_s": import_s, "first_call_s": first_s, "second_call_s": second_s}}))
"""


def compile_times(ctx: BenchContext, *, n: int = 100, days: int = 365) -> Table:
    """First call in a fresh process with an empty numba cache, then with that cache filled."""
    cache_dir = ctx.scratch / "numba-cache-optimize"
    cache_dir.mkdir(parents=True, exist_ok=True)
    code = COMPILE_SNIPPET.format(n=n, days=days, seed=ctx.seed)
    table = Table(title=f"numba compile (fresh process, N = {n}, T = {days}, fastopt search)",
                  columns=["numba cache", "import fastopt.optimize.solver", "first call", "second call",
                           "first − second (≈ compile or cache load)"])
    for label in ("cold (empty NUMBA_CACHE_DIR)", "warm (same dir, second process)"):
        out = run_python(code, env={"NUMBA_CACHE_DIR": str(cache_dir)}, timeout_s=900)
        table.rows.append([label, fmt_time(out["import_s"]), fmt_time(out["first_call_s"]),
                           fmt_time(out["second_call_s"]), fmt_time(out["first_call_s"] - out["second_call_s"])])
    if (REPO_ROOT / "fastopt" / "commands" / "warmup.py").is_file():
        warm_dir = ctx.scratch / "numba-cache-warmup"
        warm_dir.mkdir(parents=True, exist_ok=True)
        for label in ("`fastopt warmup`, cold (empty NUMBA_CACHE_DIR): every kernel",
                      "`fastopt warmup`, warm (same dir)"):
            elapsed, proc = run_command([sys.executable, "-m", "fastopt", "warmup"],
                                        env={"NUMBA_CACHE_DIR": str(warm_dir)}, timeout_s=900)
            status = fmt_time(elapsed) if proc.returncode == 0 else f"exit {proc.returncode}"
            table.rows.append([label, "–", status + " (whole process)", "–", "–"])
    return table


def run(ctx: BenchContext) -> CaseResult:
    sizes = QUICK_SIZES if ctx.quick else FULL_SIZES
    budgets = _budgets(ctx.quick)
    contenders = methods()
    result = CaseResult(name=NAME, title=TITLE)
    for n_days in sizes["n_days"]:
        history: dict[str, list[tuple[int, float]]] = {}
        skipped_from: dict[str, dict] = {}
        for n in sizes["n_strategies"]:
            _, _, returns = universe(n, n_days, seed=ctx.seed)
            ctx.log(f"optimize: N={n} T={n_days}")
            records = run_config(returns, contenders, budgets, history, skipped_from)
            floor = _floor_record(returns, budgets)
            floor.update({"n_strategies": n, "n_days": n_days})
            result.records.extend([*records, floor])
            result.tables.append(_table(n_days, n, records, floor))
            for r in records:
                if r["status"] == STATUS_WRONG:
                    result.parity_failures.append(f"{r['method']} at N={n}, T={n_days}: {r['note']}")
    result.tables.insert(0, summary_table(result.records, contenders))
    fastopt_ready = all(m.solve is not None for m in contenders if m.key.startswith("fastopt"))
    if fastopt_ready and not ctx.quick:
        try:
            result.tables.append(compile_times(ctx))
        except Exception as exc:
            result.notes.append(f"numba compile time not measured: {type(exc).__name__}: {exc}")
    elif ctx.quick:
        result.notes.append("numba cold-cache compile time is measured by the full run only.")
    result.notes.extend([
        f"Budgets: a method predicted to take over {budgets['call_limit_s']:g} s per call (fastopt exact, the "
        "parity anchor: 4×; random search: 3×; today's method: 2×) is skipped with its extrapolated time (power law in N from the "
        "sizes it ran at, or one timed block / one timed start on this window); SLSQP runs are stopped at the "
        f"budget (lower bound). Timed repeats stop after ~{budgets['repeat_budget_s']:g} s "
        f"(max {budgets['max_repeats']}). For random search and today's method the probe on the same window "
        "is the warm-up.",
        "Data: bench.universe.generate_universe(N, T, seed, market_factor=True); lookback = the whole window.",
        "'today' re-implements BlaveClaw manager.optimize_weights (polyfit objective × 252 / std ddof 0, "
        "numeric gradients, equal + 10 Dirichlet starts); its weights are scored here unrounded "
        "(BlaveClaw rounds them to 4 decimals).",
        "Gap to best: relative distance to the best score any method reached on that window. fastopt's "
        f"results are marked wrong above {OPTIMAL_TOLERANCE:g} or with a KKT residual above it (`--fail-on-parity` "
        "then exits 1), except on windows fastopt itself flags ill-posed (status unbounded/ill_conditioned); "
        "SLSQP and PyPortfolioOpt, which also target the exact optimum, are marked inexact above it.",
        "KKT residual: the bench's own optimality certificate (bench/baselines/reference.py, 0 = optimal).",
    ])
    return result
