"""Walk-forward outputs: ``stats.json`` (BlaveClaw-compatible keys plus ours) and ``pnl.png``.

``stats.json`` keeps every key BlaveClaw's ``manager/management_backtest.py``
writes, with its units: ``lookback``, ``allocator``, ``start``, ``end``,
``managed`` {``total_return_%``, ``sharpe``, ``max_drawdown_%`` (negative
percent, BlaveClaw's sign)}, ``random_benchmark`` {``n``, median/p5/p95
Sharpe, ``managed_beats_pct_sharpe`` (percent), median/p5/p95 total return in
percent}, ``daily_dates``, ``managed_returns`` (net daily fractions, 6
decimals), ``weights_history`` {name: daily weights, 4 decimals}. Ours on top:
``managed`` also has ``cagr_%``, ``sortino``, ``ann_vol_%``, ``avg_turnover_%``
(mean daily turnover, percent of equity), ``avg_leverage``, ``cash_days``,
``no_rising_days``; ``benchmarks`` {``equal_weight``, ``inverse_vol``} with the
same keys; ``random_benchmark`` also has ``seed`` and the managed Sharpe
percentile; ``leverage_history``, ``turnover_history``, ``rebalance_days`` and
``settings``.

Both files are rendered in memory first and then written atomically
(``fastopt.files.atomic``): a failure leaves the previous outputs untouched.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from fastopt.files.atomic import atomic_write_bytes, atomic_write_text
from fastopt.files.screen import SYNTHETIC_MARK
from fastopt.walkforward.core import PortfolioSummary, WalkForwardResult

__all__ = ["build_stats", "dumps_stats", "render_pnl_png", "write_outputs", "STATS_NAME", "PNG_NAME"]

STATS_NAME = "stats.json"
PNG_NAME = "pnl.png"
#: Strategies drawn individually in the weights panel; the rest are summed as "other".
TOP_STRATEGIES = 10


def _round(value: float, digits: int = 4) -> float:
    value = float(value)
    return round(value, digits) if np.isfinite(value) else 0.0


def _summary_block(summary: PortfolioSummary) -> dict[str, float]:
    return {
        "total_return_%": _round(summary.total_return * 100),
        "sharpe": _round(summary.sharpe),
        "max_drawdown_%": _round(-summary.max_drawdown * 100),
        "cagr_%": _round(summary.cagr * 100),
        "sortino": _round(summary.sortino),
        "ann_vol_%": _round(summary.ann_vol * 100),
        "avg_turnover_%": _round(summary.avg_turnover * 100),
    }


def _day_labels(result: WalkForwardResult) -> list[str]:
    if result.dates is None:
        return [str(result.lookback + k) for k in range(result.n_days)]
    return [str(d) for d in np.asarray(result.dates, dtype="datetime64[D]")]


def build_stats(result: WalkForwardResult) -> dict[str, Any]:
    """The ``stats.json`` document of a walk-forward (plain JSON types only)."""
    labels = _day_labels(result)
    managed = _summary_block(result.managed)
    managed["avg_leverage"] = _round(float(result.leverage.mean()) if result.n_days else 0.0)
    managed["cash_days"] = int(result.cash_days)
    managed["no_rising_days"] = int(result.no_rising_days)
    doc: dict[str, Any] = {
        "lookback": int(result.lookback),
        "allocator": result.allocator,
        "start": labels[0],
        "end": labels[-1],
        "managed": managed,
    }
    rnd = result.random
    if rnd is not None and rnd.n:
        doc["random_benchmark"] = {
            "n": int(rnd.n),
            "median_sharpe": _round(rnd.percentile("sharpes", 50)),
            "p5_sharpe": _round(rnd.percentile("sharpes", 5)),
            "p95_sharpe": _round(rnd.percentile("sharpes", 95)),
            "managed_beats_pct_sharpe": _round(rnd.managed_beats_pct_sharpe or 0.0, 2),
            "median_total_return_%": _round(rnd.percentile("total_returns", 50) * 100),
            "p5_total_return_%": _round(rnd.percentile("total_returns", 5) * 100),
            "p95_total_return_%": _round(rnd.percentile("total_returns", 95) * 100),
            "seed": int(rnd.seed),
        }
    else:
        doc["random_benchmark"] = {"n": 0}
    doc["benchmarks"] = {name: _summary_block(s) for name, s in result.benchmarks.items()}
    doc["rebalance"] = int(result.rebalance)
    doc["n_strategies"] = len(result.names)
    doc["settings"] = {k: v for k, v in result.settings.items()}
    doc["elapsed_seconds"] = _round(result.elapsed_seconds, 3)
    doc["daily_dates"] = labels
    doc["managed_returns"] = [round(float(v), 6) for v in result.returns]
    doc["turnover_history"] = [round(float(v), 6) for v in result.turnover]
    doc["leverage_history"] = [round(float(v), 4) for v in result.leverage]
    doc["rebalance_days"] = [labels[k] for k in np.flatnonzero(result.rebalance_mask)]
    doc["weights_history"] = {
        name: [round(float(v), 4) for v in result.weights[:, a]] for a, name in enumerate(result.names)
    }
    return doc


def dumps_stats(doc: dict[str, Any]) -> str:
    """Strict JSON, one top-level key per line with compact values.

    (Indenting every number of a 2,000-strategy weights history would make the
    file several times larger for no reader's benefit.)
    """
    lines = []
    items = list(doc.items())
    for index, (key, value) in enumerate(items):
        body = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(", ", ": "))
        comma = "," if index < len(items) - 1 else ""
        lines.append(f"  {json.dumps(key)}: {body}{comma}")
    return "{\n" + "\n".join(lines) + "\n}\n"


def render_pnl_png(result: WalkForwardResult, *, title: str | None = None) -> bytes:
    """PNG bytes: cumulative return vs the random p5-p95 band and median, drawdown, stacked weights."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.ticker as mticker

    from fastopt import metrics

    if result.dates is not None:
        x = np.asarray(result.dates, dtype="datetime64[D]").astype("datetime64[ms]").astype(object)
    else:
        x = np.arange(result.lookback, result.lookback + result.n_days)
    managed_cum = metrics.equity_curve(result.returns) - 1.0
    drawdown = metrics.drawdown_curve(result.returns)

    fig, (ax_cum, ax_dd, ax_w) = plt.subplots(
        3, 1, figsize=(13, 10), sharex=True, gridspec_kw={"height_ratios": [3, 1, 2]}
    )
    synthetic = set(result.settings.get("synthetic_strategies") or [])
    marker = f" - {len(synthetic)} strategies {SYNTHETIC_MARK}" if synthetic else ""
    fig.suptitle(
        (title or f"Walk-forward: {result.allocator}, lookback {result.lookback} d, rebalance {result.rebalance} d")
        + marker,
        fontsize=12,
    )
    percent = mticker.FuncFormatter(lambda y, _: f"{y:.0f}%")
    rnd = result.random
    if rnd is not None and rnd.n:
        ax_cum.fill_between(x, rnd.band[0] * 100, rnd.band[2] * 100, color="#999999", alpha=0.25,
                            label=f"random p5-p95 (n={rnd.n})")
        ax_cum.plot(x, rnd.band[1] * 100, color="#777777", lw=1, ls="--", label="random median")
    if "equal_weight" in result.benchmark_returns:
        eq_cum = metrics.equity_curve(result.benchmark_returns["equal_weight"]) - 1.0
        ax_cum.plot(x, eq_cum * 100, color="#3b7dd8", lw=1, alpha=0.8, label="equal weight")
    ax_cum.plot(x, managed_cum * 100, color="#1a9850", lw=1.6, label="managed")
    ax_cum.axhline(0, color="#888888", lw=0.5)
    ax_cum.yaxis.set_major_formatter(percent)
    ax_cum.set_ylabel("cumulative return")
    ax_cum.legend(loc="upper left", fontsize=9)
    ax_cum.grid(True, alpha=0.3)

    ax_dd.fill_between(x, -drawdown * 100, 0, color="#d73027", alpha=0.6)
    ax_dd.yaxis.set_major_formatter(percent)
    ax_dd.set_ylabel("drawdown")
    ax_dd.grid(True, alpha=0.3)

    weights = result.weights
    order = np.argsort(-weights.mean(axis=0), kind="stable") if weights.size else np.array([], dtype=int)
    top = [int(a) for a in order[:TOP_STRATEGIES] if weights[:, a].any()]
    layers = [weights[:, a] for a in top]
    labels = [result.names[a] + (f" {SYNTHETIC_MARK}" if result.names[a] in synthetic else "") for a in top]
    rest = [int(a) for a in order if int(a) not in set(top)]
    if rest and weights[:, rest].any():
        layers.append(weights[:, rest].sum(axis=1))
        labels.append(f"other ({len(rest)})")
    if layers:
        colors = plt.cm.tab20(np.linspace(0, 1, max(len(layers), 2)))
        ax_w.stackplot(x, np.vstack(layers), labels=labels, colors=colors[: len(layers)], alpha=0.85)
        ax_w.legend(loc="upper left", fontsize=7, ncol=2)
    ax_w.set_ylim(0, 1)
    ax_w.yaxis.set_major_formatter(mticker.FuncFormatter(lambda y, _: f"{y:.0%}"))
    ax_w.set_ylabel("weight")
    ax_w.grid(True, alpha=0.3)
    if result.settings.get("target_vol") is not None:
        ax_lev = ax_w.twinx()
        ax_lev.plot(x, result.leverage, color="black", lw=0.8, label="leverage")
        ax_lev.set_ylabel("leverage (x)")
        ax_lev.legend(loc="upper right", fontsize=7)

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write_outputs(
    result: WalkForwardResult, output_dir: str | os.PathLike[str], *, plot: bool = True
) -> dict[str, Path]:
    """Render then atomically write ``stats.json`` (and ``pnl.png``) into ``output_dir``.

    Everything is rendered before the first write, so an error while rendering
    leaves existing files untouched. Returns {"stats": path, "png": path}.
    """
    folder = Path(output_dir)
    stats_text = dumps_stats(build_stats(result))
    png = render_pnl_png(result) if plot else None
    paths = {"stats": folder / STATS_NAME}
    atomic_write_text(paths["stats"], stats_text)
    if png is not None:
        paths["png"] = folder / PNG_NAME
        atomic_write_bytes(paths["png"], png)
    return paths
