"""Case 8 — scale: `fastopt optimize` end to end on 5,000 and 20,000 strategies, a daily walk-forward of 2,000.

Targets (fastopt issue 13): files on disk -> config written under 30 s with peak RSS
under 2 GB at 20,000 strategies x 730 days (365-day window) with any risk option,
under 8 s at 5,000; a daily 4-year walk-forward of 2,000 strategies under 30 s (default options:
``risk_model="auto"`` fits these N >= lookback windows with the factor model; the table reports it).

Each `fastopt optimize` run is a separate process (stdout to a file) waited with
``os.wait4``, whose rusage gives the process's peak RSS. The default (``--risk-model auto``)
fits these N > T windows with the factor model; ``--risk-model sample`` is refused on them
(exit 3, status unbounded): that is the expected answer, timed too. ``--allow-implausible``: these synthetic windows fit in-sample
Sharpe ratios far above the plausibility threshold (exit 3 otherwise); the case measures speed and memory. A tracemalloc run of ``optimize(risk_model="factor")``
on the in-memory 20,000 x 365 window shows no N x N (3.2 GB) allocation.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from bench.cases import BenchContext, require, universe
from bench.runner import REPO_ROOT, CaseResult, Table, fmt_time, run_python

NAME = "scale"
TITLE = "8. scale: `fastopt optimize` on 5,000 / 20,000 strategies, daily walk-forward of 2,000"

FULL = {"sizes": [5000, 20000], "days": 730, "lookback": 365, "wf_n": 2000, "wf_days": 365 + 4 * 365}
QUICK = {"sizes": [600], "days": 200, "lookback": 120, "wf_n": 150, "wf_days": 120 + 60}
OPTIONS = {"default (risk model auto)": [], "--risk-model sample": ["--risk-model", "sample"],
           "--shrinkage auto": ["--shrinkage", "auto"], "--risk-model factor": ["--risk-model", "factor"]}


#: Runs argv[2:] and writes its peak RSS (KB) to argv[1]. Linux carries the RSS high-water mark of
#: the process image an exec replaces into the new one, so a child forked straight from this
#: (large) bench process would report the bench's own peak; this small launcher's child does not.
LAUNCHER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def run_measured(argv: list[str], out_path, timeout_s: float = 900.0) -> tuple[float, int, float]:
    """(wall seconds, exit code, peak RSS in MB) of a process whose stdout goes to ``out_path``."""
    rss_path = f"{out_path}.rss"
    with open(out_path, "wb") as out, open(f"{out_path}.err", "wb") as err:
        start = time.perf_counter()
        code = subprocess.run([sys.executable, "-c", LAUNCHER, rss_path, *argv], stdout=out, stderr=err,
                              cwd=REPO_ROOT, timeout=timeout_s).returncode
        seconds = time.perf_counter() - start
    with open(rss_path) as handle:
        rss_kb = float(handle.read())  # ru_maxrss is in KB on Linux
    return seconds, code, rss_kb / 1024.0


def run(ctx: BenchContext) -> CaseResult:
    write_universe = require("bench.universe", "write_universe")
    require("fastopt.optimize.risk_model", "factor_model")
    p = QUICK if ctx.quick else FULL
    result = CaseResult(name=NAME, title=TITLE)
    table = Table(title=f"`fastopt optimize --json` process, {p['days']} days of files, {p['lookback']}-day window",
                  columns=["strategies", "option", "exit", "status", "score (raw)", "ann. vol", "non-zero w",
                           "wall", "peak RSS"])
    for n in p["sizes"]:
        folder = ctx.scratch / f"scale{n}" / "strategies"
        ctx.log(f"scale: writing {n} strategies x {p['days']} days")
        write_universe(folder, n, p["days"], ctx.seed)
        for label, extra in OPTIONS.items():
            out = ctx.scratch / f"scale{n}" / f"out-{len(extra)}-{extra[-1] if extra else 'sample'}.json"
            argv = [sys.executable, "-m", "fastopt", "optimize", "--strategies", str(folder), "--config",
                    str(ctx.scratch / f"scale{n}" / "portfolio_config.json"), "--target-vol", "0.30",
                    "--lookback", str(p["lookback"]), "--json", "--allow-implausible", *extra]
            ctx.log(f"scale: N={n} {label}")
            seconds, code, rss_mb = run_measured(argv, out)
            status, score, vol, nonzero = "refused", None, None, None
            if code == 0:
                summary = json.loads(out.read_text())
                status, score, vol = summary["status"], summary["score"], summary["ann_vol"]
                nonzero = len(summary["weights"])
            elif code != 3:
                result.parity_failures.append(f"N={n} {label}: exit {code}")
            table.rows.append([str(n), label, str(code), status, "–" if score is None else f"{score:.3g}",
                               "–" if vol is None else f"{vol:.2%}", "–" if nonzero is None else str(nonzero),
                               fmt_time(seconds), f"{rss_mb:.0f} MB"])
            result.records.append({"key": "optimize_cli", "n_strategies": n, "days": p["days"],
                                   "lookback": p["lookback"], "option": label, "exit": code, "status": status,
                                   "score": score, "ann_vol": vol, "nonzero": nonzero, "seconds": seconds,
                                   "peak_rss_mb": rss_mb})
    result.tables.append(table)

    n_big = max(p["sizes"])
    ctx.log(f"scale: tracemalloc of optimize(risk_model='factor') on {n_big} x {p['lookback']}")
    traced = run_python(f"""
        import json, time, tracemalloc
        from bench.cases import universe
        from fastopt.optimize.solver import optimize
        _, _, returns = universe({n_big}, {p['lookback']}, seed={ctx.seed})
        optimize(returns[:, :400], risk_model="factor")  # numba caches loaded outside the trace
        tracemalloc.start()
        start = time.perf_counter()
        alloc = optimize(returns, risk_model="factor")
        seconds = time.perf_counter() - start
        current, peak = tracemalloc.get_traced_memory()
        print(json.dumps({{"peak_mb": peak / 2**20, "seconds": seconds, "status": alloc.status,
                           "input_mb": returns.nbytes / 2**20}}))
    """, timeout_s=900)
    n_by_n_mb = 8 * n_big * n_big / 2**20
    result.records.append({"key": "tracemalloc_factor", "n_strategies": n_big, "n_by_n_mb": n_by_n_mb, **traced})
    result.notes.append(f"tracemalloc peak of optimize(risk_model='factor') on {n_big} x {p['lookback']} (in memory): "
                        f"{traced['peak_mb']:.0f} MB (the window itself {traced['input_mb']:.0f} MB; an N x N matrix "
                        f"would be {n_by_n_mb:.0f} MB), status {traced['status']}, {traced['seconds']:.2f} s "
                        "under tracing.")
    if not ctx.quick and traced["peak_mb"] >= n_by_n_mb / 2:  # quick sizes are too small to tell
        result.parity_failures.append(f"tracemalloc peak {traced['peak_mb']:.0f} MB: an N x N allocation?")

    walkforward = require("fastopt", "walkforward")
    _, _, returns = universe(p["wf_n"], p["wf_days"], seed=ctx.seed)
    ctx.log(f"scale: daily walk-forward {p['wf_n']} x {p['wf_days']} days, lookback {p['lookback'] if ctx.quick else 365}")
    lookback = p["lookback"] if ctx.quick else 365
    start = time.perf_counter()
    wf = walkforward(returns, lookback=lookback, rebalance=1, random_n=1000, seed=ctx.seed)  # default risk_model
    wf_s = time.perf_counter() - start
    fits = p["wf_days"] - lookback
    model = wf.settings["risk_model"]
    if model == "factor":
        model += f" (k = {wf.settings['factors']})"
    wf_table = Table(title=f"fastopt.walkforward, {p['wf_n']} strategies, lookback {lookback}, rebalance 1, "
                           "default options (risk_model auto)",
                     columns=["fits", "risk model", "warm-start fits", "wall", "per fit", "managed Sharpe",
                              "avg turnover"])
    wf_table.rows.append([str(fits), model, str(wf.face_fits), fmt_time(wf_s), fmt_time(wf_s / fits),
                          f"{wf.managed.sharpe:.3f}", f"{wf.managed.avg_turnover:.2%}"])
    result.tables.append(wf_table)
    result.records.append({"key": "walkforward", "n_strategies": p["wf_n"], "days": p["wf_days"], "lookback": lookback,
                           "fits": fits, "seconds": wf_s, "managed_sharpe": float(wf.managed.sharpe),
                           "risk_model": wf.settings["risk_model"], "factors": wf.settings["factors"],
                           "warm_fits": int(wf.face_fits), "statuses": sorted(set(wf.fit_status)),
                           "nonzero_last": int(np.count_nonzero(np.asarray(wf.weights)[-1]))})
    return result
