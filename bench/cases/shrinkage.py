"""Case 7 — shrinkage (small): what covariance shrinkage does out of sample when N > T.

Universe without the market factor (``market_factor=False``) and more strategies than
days in the window, where near-zero-variance long-only portfolios make the in-sample
ratio blow up. A walk-forward re-fits ``fastopt.optimize(window, shrinkage=X)`` every
``REBALANCE`` days on the trailing window and holds the weights; out-of-sample daily
portfolio returns give the Sharpe (mean / std ddof 1 × √365). X = 0 vs "auto"
(Ledoit–Wolf intensity) on the sample covariance, and the statistical factor model
(``risk_model="factor"``, the default ``auto`` picks it on these windows); equal weights for
reference. Unlevered.
"""
from __future__ import annotations

import collections
import time

import numpy as np

from bench.baselines.reference import count_nonzero
from bench.cases import BenchContext, require, universe
from bench.runner import CaseResult, Table, fmt_time

NAME = "shrinkage"
TITLE = "7. shrinkage: out-of-sample effect on an N > T universe (no market factor)"

FULL = {"n": 400, "lookback": 180, "oos": 360, "rebalance": 10}
QUICK = {"n": 150, "lookback": 90, "oos": 60, "rebalance": 15}


def oos_sharpe(daily: np.ndarray) -> float:
    std = daily.std(ddof=1)
    return float(daily.mean() / std * np.sqrt(365)) if std > 0 else 0.0


def run(ctx: BenchContext) -> CaseResult:
    optimize = require("fastopt.optimize.solver", "optimize")
    p = QUICK if ctx.quick else FULL
    n_days = p["lookback"] + p["oos"]
    _, _, returns = universe(p["n"], n_days, seed=ctx.seed, market_factor=False)
    ctx.log(f"shrinkage: N={p['n']}, lookback {p['lookback']}, {p['oos']} days")
    table = Table(title=f"N = {p['n']} strategies, lookback {p['lookback']} days (N > T), {p['oos']} out-of-sample "
                        f"days, re-fit every {p['rebalance']} days",
                  columns=["weights", "OOS Sharpe", "OOS ann. vol", "mean in-sample score", "mean non-zero w",
                           "fit statuses", "time of all fits"])
    result = CaseResult(name=NAME, title=TITLE)
    fits = ((0.0, "sample", "fastopt, shrinkage=0.0 (sample covariance)"),
            ("auto", "sample", "fastopt, shrinkage=auto (sample covariance)"),
            (0.0, "factor", "fastopt, risk_model=factor (default auto here)"))
    for shrinkage, risk_model, label in fits:
        daily = np.empty(p["oos"])
        scores, nonzero, statuses = [], [], collections.Counter()
        fit_s = 0.0
        weights = None
        for d in range(p["oos"]):
            day = p["lookback"] + d
            if d % p["rebalance"] == 0:
                start = time.perf_counter()
                allocation = optimize(returns[day - p["lookback"]: day], solver="search", shrinkage=shrinkage,
                                      risk_model=risk_model)
                fit_s += time.perf_counter() - start
                weights = np.asarray(allocation.weights, dtype=np.float64)
                scores.append(float(allocation.score))
                nonzero.append(count_nonzero(weights))
                statuses[str(allocation.status)] += 1
            daily[d] = float(returns[day] @ weights)
        sharpe = oos_sharpe(daily)
        ann_vol = float(daily.std(ddof=1) * np.sqrt(365))
        table.rows.append([label, f"{sharpe:.3f}", f"{ann_vol:.2%}",
                           f"{np.mean(scores):.3g}", f"{np.mean(nonzero):.1f}",
                           ", ".join(f"{k}×{v}" for k, v in sorted(statuses.items())), fmt_time(fit_s)])
        result.records.append({"shrinkage": shrinkage, "risk_model": risk_model, "oos_sharpe": sharpe,
                               "oos_ann_vol": ann_vol,
                               "mean_in_sample_score": float(np.mean(scores)), "mean_nonzero": float(np.mean(nonzero)),
                               "statuses": dict(statuses), "fit_time_s": fit_s, **p})
    equal = returns[p["lookback"]:].mean(axis=1)
    table.rows.append(["equal weights (1/N)", f"{oos_sharpe(equal):.3f}", f"{equal.std(ddof=1) * np.sqrt(365):.2%}",
                       "–", str(p["n"]), "–", "–"])
    result.records.append({"shrinkage": None, "equal_weight_oos_sharpe": oos_sharpe(equal)})
    result.tables.append(table)
    result.notes.append("In-sample score is fastopt's own report (on the raw covariance); a huge in-sample score with a "
                        "poor out-of-sample Sharpe is the ill-posed N > T case the shrinkage option and the factor model are for.")
    return result
