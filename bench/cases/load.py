"""Case 2 — load: ``fastopt.load_panel`` vs a json + pandas loop doing the same alignment.

Files come from ``bench.universe.write_universe`` into a temp dir (late starters
included, so the union calendar matters). Both loaders read the same files with a
warm OS page cache (the files were just written and the warm-up read them).
Parity: same names, same dates, returns identical (max |diff| = 0 expected, both
parse the same JSON text), and equal to the generator's own matrix.
"""
from __future__ import annotations

import inspect

import numpy as np

from bench.baselines.pandas_loader import pandas_load
from bench.cases import BenchContext, require, universe
from bench.runner import CaseResult, Table, fmt_ratio, fmt_time, measure

NAME = "load"
TITLE = "2. load: stats.json files → aligned T×N matrix"

FULL_SIZES = ((100, 365), (100, 1825), (1000, 365), (1000, 1825))
QUICK_SIZES = ((100, 365),)


def _fastopt_loader():
    load_panel = require("fastopt.files.loader", "load_panel")
    kwargs = {}
    if "min_history_days" in inspect.signature(load_panel).parameters:
        kwargs["min_history_days"] = 0  # keep late starters: the generator's matrix includes them
    return lambda folder: load_panel(folder, **kwargs), kwargs


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b), initial=0.0))


def run(ctx: BenchContext) -> CaseResult:
    write_universe = require("bench.universe", "write_universe")
    load, kwargs = _fastopt_loader()
    budget = {"max_repeats": 3 if ctx.quick else 5, "budget_s": 1.0 if ctx.quick else 6.0}
    result = CaseResult(name=NAME, title=TITLE)
    table = Table(title="load every */stats.json, union calendar, missing = 0",
                  columns=["files", "days", "fastopt load_panel", "json + pandas loop", "pandas / fastopt",
                           "parity: max abs diff vs pandas, vs generator", "status"])
    for n_files, n_days in (QUICK_SIZES if ctx.quick else FULL_SIZES):
        ctx.log(f"load: {n_files} files × {n_days} days")
        folder = ctx.scratch / f"universe-{n_files}-{n_days}"
        write_universe(folder, n_files, n_days, ctx.seed)
        dates, names, returns = universe(n_files, n_days, seed=ctx.seed)
        panel, fast = measure(lambda: load(folder), **budget)
        (p_dates, p_names, p_returns), slow = measure(lambda: pandas_load(folder), **budget)
        fast_returns = np.asarray(panel.returns, dtype=np.float64)
        diff_pandas = _max_diff(fast_returns, p_returns)
        diff_generator = _max_diff(fast_returns, returns)
        same_axes = (list(panel.names) == p_names == list(names)
                     and np.array_equal(np.asarray(panel.dates, dtype="datetime64[D]"), p_dates))
        ok = same_axes and diff_pandas == 0.0 and diff_generator <= 1e-15
        status = "ok" if ok else "**wrong**: " + ("names/dates differ" if not same_axes else "values differ")
        if not ok:
            result.parity_failures.append(f"load {n_files}×{n_days}: {status}")
        table.rows.append([str(n_files), str(n_days), fmt_time(fast.median_s), fmt_time(slow.median_s),
                           fmt_ratio(slow.median_s / fast.median_s), f"{diff_pandas:.1e}, {diff_generator:.1e}",
                           status])
        result.records.append({"n_files": n_files, "n_days": n_days, "fastopt_s": fast.median_s,
                               "pandas_s": slow.median_s, "fastopt_repeats": fast.repeats,
                               "pandas_repeats": slow.repeats, "max_diff_vs_pandas": diff_pandas,
                               "max_diff_vs_generator": diff_generator, "same_names_and_dates": same_axes})
    result.tables.append(table)
    result.notes.append(f"fastopt call: load_panel(folder{', ' + ', '.join(f'{k}={v}' for k, v in kwargs.items()) if kwargs else ''}); "
                        "pandas loop: json.load each file, pd.Series per strategy, DataFrame(...).sort_index()"
                        ".fillna(0) (BlaveClaw's manager alignment), columns sorted.")
    result.notes.append("Warm OS page cache for both (files just written); each loader warmed up once.")
    return result
