"""Case 8 — vol targeting: does the leverage hit the target out of sample? Which vol to divide by.

Weekly walk-forward (``rebalance=7``, lookback 365, default allocator ``slope_std``, no costs) on
the real-price universe (``bench.real_universe``: 80 rules on the embedded BTC/ETH/BNB/SOL closes)
and on ``bench.universe`` synthetic universes (market factor) of 50, 500 and 2,000 strategies,
plus held-out seeds. The walk-forward runs once per universe unlevered; the weights do not depend
on the leverage (no costs), so each vol estimator's leverage ``min(0.30 / vol, 5)`` is applied to
the same weights afterwards, computed from the fit window only (days before the rebalance day).

Reported per estimator x universe:

- **ratio** = realized annualized vol (std ddof 1 x sqrt 365) of the levered out-of-sample daily
  returns / 0.30, over the invested days whose leverage is *not* capped (the issue's measure);
  with the share of invested days at the cap;
- **uncapped ratio**: the same with leverage ``0.30 / vol`` uncapped on every invested day: the
  estimator's own calibration, defined even where the cap always binds (N > T universes);
- **with the cap, every invested day**: what the capped book realized;
- the per-year range of the ratio (years of at least 60 uncapped days).
"""
from __future__ import annotations

import math
import time

import numpy as np

from bench.cases import BenchContext, require, universe
from bench.runner import CaseResult, Table

NAME = "vol_targeting"
TITLE = "8. vol targeting: realized out-of-sample vol / target for each leverage vol estimator"

LOOKBACK, REBALANCE, TARGET, CAP, PPY = 365, 7, 0.30, 5.0, 365
FULL = {"synthetic": [(50, 0), (500, 0), (2000, 0)], "held_out": [(50, 1), (500, 1)], "oos_days": 1460,
        "real": True}
QUICK = {"synthetic": [(50, 0)], "held_out": [(50, 1)], "oos_days": 365, "real": True}


EQUAL_REFERENCE = "reference: 1/N weights, in_sample"


def _estimators():
    """name -> f(window T x N, weights) -> daily variance. All read the window only."""
    ve = require("fastopt.optimize.vol_estimate", "portfolio_variance")
    from fastopt.optimize import vol_estimate as v
    def recent(days):
        return lambda x, w: v.in_sample_variance(x[-days:], w)

    def dof(x, w):  # (e) in-sample x (T / (T - k))^2, k = support size (at most T/2)
        t = x.shape[0]
        k = min(int(np.count_nonzero(w)), t // 2)
        return v.in_sample_variance(x, w) * (t / (t - k)) ** 2

    return {
        "in_sample (a, old)": lambda x, w: ve(x, w, estimator="in_sample"),
        "shrunk LW (b)": lambda x, w: ve(x, w, estimator="shrunk"),
        "factor k=1 (c, default)": lambda x, w: ve(x, w, estimator="factor"),
        "factor k=3 (c)": lambda x, w: v.factor_variance(x, w, factors=3),
        "factor k=5 (c)": lambda x, w: v.factor_variance(x, w, factors=5),
        "last 90 days (d)": recent(90),
        "last 180 days (d)": recent(180),
        "EWMA hl 30 (d)": lambda x, w: v.ewma_variance(x, w, half_life=30),
        "EWMA hl 60 (d)": lambda x, w: ve(x, w, estimator="ewma"),
        "in-sample x T/(T-k) (e)": dof,
        "max(factor k=3, EWMA 60) (f)": lambda x, w: max(v.factor_variance(x, w, factors=3), v.ewma_variance(x, w)),
    }


def evaluate(returns: np.ndarray, weights: np.ndarray, fit_days: list[int], estimators: dict) -> dict:
    """Per estimator: ratio (uncapped days), capped share, uncapped ratio, per-year ratios."""
    n_oos = returns.shape[0] - LOOKBACK
    port = np.einsum("tn,tn->t", returns[LOOKBACK:], weights)  # unlevered out-of-sample returns
    years = np.arange(n_oos) // 365
    out = {}
    for name, variance in estimators.items():
        vol = np.zeros(n_oos)
        for day in fit_days:
            w = weights[day - LOOKBACK]
            if w.any():
                vol[day - LOOKBACK: day - LOOKBACK + REBALANCE] = math.sqrt(
                    max(variance(returns[day - LOOKBACK: day], w), 0.0) * PPY)
        invested = weights.any(axis=1)
        with np.errstate(divide="ignore"):
            uncapped = np.where(vol > 0, TARGET / np.where(vol > 0, vol, 1.0), np.inf)
        capped = invested & (uncapped > CAP)
        use = invested & ~capped
        levered = port * np.minimum(uncapped, CAP)

        def ratio(mask):
            return float(levered[mask].std(ddof=1) * math.sqrt(PPY) / TARGET) if mask.sum() >= 60 else float("nan")

        calib = invested & (vol > 0)
        out[name] = {
            "ratio": ratio(use),
            "capped_share": float(capped.sum() / max(invested.sum(), 1)),
            "ratio_all_days": ratio(invested),
            "uncapped_ratio": float((port[calib] * uncapped[calib]).std(ddof=1) * math.sqrt(PPY) / TARGET),
            "per_year": [ratio(use & (years == y)) for y in range(int(years.max()) + 1)],
        }
    return out


def _fmt(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.2f}"


def run(ctx: BenchContext) -> CaseResult:
    walkforward = require("fastopt.walkforward", "walkforward")
    p = QUICK if ctx.quick else FULL
    estimators = _estimators()
    universes: list[tuple[str, np.ndarray]] = []
    if p["real"]:
        from bench.real_universe import real_price_universe

        _, names, real = real_price_universe()
        universes.append((f"real {len(names)}", real))
    for label, specs in (("", p["synthetic"]), (" held-out", p["held_out"])):
        for n, seed in specs:
            _, _, r = universe(n, LOOKBACK + p["oos_days"], seed=seed, market_factor=True)
            universes.append((f"syn {n} s{seed}{label}", r))
    result = CaseResult(name=NAME, title=TITLE)
    results = {}
    for label, returns in universes:
        start = time.perf_counter()
        wf = walkforward(returns, lookback=LOOKBACK, rebalance=REBALANCE, random_n=0, target_vol=None)
        fit_days = [LOOKBACK + int(d) for d in np.flatnonzero(wf.rebalance_mask)]
        wf_s = time.perf_counter() - start
        start = time.perf_counter()
        results[label] = evaluate(returns, wf.weights, fit_days, estimators)
        # reference: a portfolio nobody optimized (static 1/N) sized by its in-sample vol: what is left
        # when the optimizer's bias is absent (vol of vol, fat tails, lagged estimates)
        equal = np.outer(wf.weights.any(axis=1), np.full(returns.shape[1], 1.0 / returns.shape[1]))
        results[label][EQUAL_REFERENCE] = evaluate(returns, equal, fit_days,
                                                   {"in_sample": estimators["in_sample (a, old)"]})["in_sample"]
        ctx.log(f"vol_targeting: {label}: walk-forward {wf_s:.1f} s, estimators {time.perf_counter() - start:.1f} s")
        for name, rec in results[label].items():
            record = {key: (None if isinstance(val, float) and not math.isfinite(val) else val)
                      for key, val in rec.items() if key != "per_year"}
            record["per_year"] = [y if math.isfinite(y) else None for y in rec["per_year"]]
            result.records.append({"universe": label, "estimator": name, "n_strategies": returns.shape[1],
                                   "oos_days": returns.shape[0] - LOOKBACK, **record})
    labels = [label for label, _ in universes]
    main = Table(title="realized OOS vol / target (0.30) on uncapped days (share of invested days at the 5x cap)",
                 columns=["estimator", *labels])
    calib = Table(title="uncapped leverage 0.30 / vol on every invested day: realized OOS vol / target",
                  columns=["estimator", *labels])
    whole = Table(title="with the cap, every invested day: realized OOS vol / target (what the book did)",
                  columns=["estimator", *labels])
    spread = Table(title="per-year ratio on uncapped days: min–max over the years (>= 60 uncapped days)",
                   columns=["estimator", *labels])
    for name in [*estimators, EQUAL_REFERENCE]:
        main.rows.append([name, *(f"{_fmt(results[u][name]['ratio'])} ({results[u][name]['capped_share']:.0%})"
                                  for u in labels)])
        calib.rows.append([name, *(_fmt(results[u][name]["uncapped_ratio"]) for u in labels)])
        whole.rows.append([name, *(_fmt(results[u][name]["ratio_all_days"]) for u in labels)])
        cells = []
        for u in labels:
            years = [y for y in results[u][name]["per_year"] if math.isfinite(y)]
            cells.append(f"{min(years):.2f}–{max(years):.2f}" if years else "–")
        spread.rows.append([name, *cells])
    result.tables += [main, calib, whole, spread]
    result.notes.append("Weekly walk-forward, lookback 365, slope_std, no costs; leverage min(0.30 / vol, 5) from "
                        "the fit window only. A ratio > 1 means the book ran hotter than the target.")
    return result
