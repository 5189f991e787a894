"""Objects for timing one reconcile cycle (used by the bench suite, ``python -m bench``).

``build_bench_workspace(folder)`` writes a config, ``n_strategies`` state files
spread over ``n_symbols`` symbols and a price file; ``bench_cycle(folder)``
runs cycles against the paper exchange (offline) and returns the wall and CPU
time of each, in milliseconds. Between timed cycles every strategy's position changes
(untimed), so each timed cycle reads changed files and sends orders.
"""
from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from fastopt.atomic import atomic_write_json
from fastopt.state_file import write_state


def _symbols(n_symbols: int) -> list[str]:
    return [f"C{i:03d}/USDT:USDT" for i in range(n_symbols)]


def build_bench_workspace(folder: str | os.PathLike[str], *, n_strategies: int = 500, n_symbols: int = 50,
                          seed: int = 0) -> Path:
    """Write config + states + prices under ``folder``; returns the config path."""
    folder = Path(folder)
    rng = random.Random(seed)
    symbols = _symbols(n_symbols)
    names = [f"s{i:04d}" for i in range(n_strategies)]
    raw = [rng.random() + 0.01 for _ in names]
    total = sum(raw)
    weights = {n: w / total for n, w in zip(names, raw)}
    weights[names[-1]] = 1.0 - sum(weights[n] for n in names[:-1])
    atomic_write_json(folder / "portfolio_config.json",
                      {"account_value": 1_000_000.0, "leverage": 2.0, "weights": weights})
    atomic_write_json(folder / "prices.json", {s: round(10 + 990 * rng.random(), 4) for s in symbols})
    for i, name in enumerate(names):
        write_state(folder / "strategies" / name / "state.json", symbol=symbols[i % n_symbols],
                    position=rng.choice([-1.0, -0.5, 0.5, 1.0]))
    return folder / "portfolio_config.json"


def _args(config: Path) -> argparse.Namespace:
    from reconciler.cli import configure

    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(["--config", str(config), "--strategies", str(config.parent / "strategies"),
                              "--prices", str(config.parent / "prices.json"), "--quiet"])


def bench_cycle(folder: str | os.PathLike[str] | None = None, *, n_strategies: int = 500, n_symbols: int = 50,
                repeats: int = 5, seed: int = 0) -> dict[str, Any]:
    """Time ``repeats`` cycles (first one cold: every state file parsed); returns ms per cycle and counts."""
    from reconciler.cli import build_reconciler

    os.environ["FASTOPT_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(folder) if folder is not None else Path(tmp)
        config = build_bench_workspace(root, n_strategies=n_strategies, n_symbols=n_symbols, seed=seed)
        reconciler = build_reconciler(_args(config))
        symbols = _symbols(n_symbols)
        rng = random.Random(seed + 1)
        timings_ms: list[float] = []
        cpu_ms: list[float] = []
        orders: list[int] = []
        for r in range(repeats):
            if r:
                for i in range(n_strategies):
                    write_state(root / "strategies" / f"s{i:04d}" / "state.json", symbol=symbols[i % n_symbols],
                                position=rng.choice([-1.0, -0.5, 0.5, 1.0]))
            started, cpu_started = time.perf_counter(), time.process_time()
            report = reconciler.run_cycle()
            timings_ms.append(1000 * (time.perf_counter() - started))
            cpu_ms.append(1000 * (time.process_time() - cpu_started))
            orders.append(len(report.plan.orders))
            if report.status != "ok":
                raise RuntimeError(f"bench cycle ended {report.status}: {report.message}")
        return {"n_strategies": n_strategies, "n_symbols": n_symbols, "cycle_ms": timings_ms,
                "cycle_cpu_ms": cpu_ms, "orders": orders}
