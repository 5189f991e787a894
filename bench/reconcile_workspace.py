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

from fastopt.files.atomic import atomic_write_json
from fastopt.files.state import write_state


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


# ----------------------------------------------------------------------------- journal load

def write_bench_journal(path: str | os.PathLike[str], *, n_intents: int = 50_000, n_outcomes: int = 50_000,
                        n_unfinished: int = 100, batch: int = 500, seed: int = 0) -> list[str]:
    """Write ``n_intents + n_outcomes`` records to a new journal at ``path`` with the journal's own API.

    Rounds of ``batch`` intents (one ``record_intents`` call, one fsync) each followed by the outcomes of
    the finished ones (``record_outcome``, not fsynced). ``n_unfinished`` intents, spread evenly, get no
    outcome; the outcomes left over (``n_outcomes - (n_intents - n_unfinished)``, which must be >= 0) are
    second outcome lines of finished orders (what a lookup after a restart appends). Returns the client
    order ids of the unfinished intents, oldest first (what ``OrderJournal(path).unfinished()`` must give).
    """
    from decimal import Decimal

    from reconciler.journal import OrderJournal
    from reconciler.model import PlannedOrder

    extra = n_outcomes - (n_intents - n_unfinished)
    if extra < 0 or not 0 <= n_unfinished <= n_intents:
        raise ValueError(f"{n_outcomes} outcomes cannot finish {n_intents - n_unfinished} of {n_intents} intents")
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: the bench journal is written to a new file")
    rng = random.Random(seed)
    symbols = _symbols(50)
    stride = max(1, n_intents // max(n_unfinished, 1))
    unfinished_at = set(range(stride - 1, n_intents, stride)[:n_unfinished]) if n_unfinished else set()
    journal = OrderJournal(path)
    unfinished: list[str] = []
    finished: list[str] = []
    try:
        for start in range(0, n_intents, batch):
            items = []
            for i in range(start, min(start + batch, n_intents)):
                side = rng.choice(("buy", "sell"))
                order = PlannedOrder(venue="paper", symbol=symbols[i % len(symbols)], side=side,
                                     amount=Decimal(rng.randint(1, 50_000)) / 1000, reduce_only=side == "sell",
                                     leg="adjust", price=round(10 + 990 * rng.random(), 4))
                items.append((f"fo{i:030x}", order, 1.0, f"20300101T000000.{i:06d}-1-{i}"))
            journal.record_intents(items)
            for i, (cid, order, _, _) in zip(range(start, start + len(items)), items):
                if i in unfinished_at:
                    unfinished.append(cid)
                    continue
                journal.record_outcome(cid, status="filled", filled=float(order.amount), average=order.price,
                                       exchange_order_id=str(10**9 + i))
                finished.append(cid)
        for cid in finished[:extra]:
            journal.record_outcome(cid, status="not_found", error="looked up again after a restart")
    finally:
        journal.close()
    return unfinished


def bench_journal_load(path: str | os.PathLike[str], expected_unfinished: list[str], *,
                       repeats: int = 5) -> dict[str, Any]:
    """Time ``OrderJournal(path)`` (seconds): one untimed warm-up, then ``repeats`` timed loads.

    Parity before timing: the warm-up's unfinished ids equal ``expected_unfinished`` (same order). Every
    load must leave the file as it was (a load that rewrites it would time a different file next).
    """
    from reconciler.journal import OrderJournal

    path = Path(path)

    def fingerprint() -> tuple[int, int, int]:
        st = os.stat(path)
        return st.st_ino, st.st_size, st.st_mtime_ns

    before = fingerprint()
    with open(path, "rb") as handle:
        n_lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    journal = OrderJournal(path)
    got = [intent.client_order_id for intent in journal.unfinished()]
    journal.close()
    parity_ok = got == list(expected_unfinished)
    times: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        journal = OrderJournal(path)
        times.append(time.perf_counter() - started)
        journal.close()
    unchanged = fingerprint() == before
    return {"records": n_lines, "bytes": before[1], "load_s": times, "unfinished": len(got),
            "parity_ok": parity_ok, "file_unchanged": unchanged}


# ----------------------------------------------------------------------------- loop memory

def _rss_mib() -> float:
    """Current resident set size of this process (MiB), from /proc/self/statm."""
    with open("/proc/self/statm") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_loop_memory(folder: str | os.PathLike[str] | None = None, *, n_strategies: int = 50, n_symbols: int = 10,
                      cycles: int = 10_000, sample_at: tuple[int, ...] = (1_000, 10_000), rewrite_every: int = 250,
                      seed: int = 0) -> dict[str, Any]:
    """Run a :class:`reconciler.loop.PollingLoop` for ``cycles`` cycles and sample this process's RSS.

    Meant for a fresh interpreter (``python -c``), so the RSS is the loop's own. interval 0 and full
    cycle every 0 s: every poll is a cycle. Every ``rewrite_every`` cycles every strategy's position
    changes, so the next cycle sends orders. RSS (MiB, /proc/self/statm) is read right after the cycles
    in ``sample_at``; the peak RSS (MiB, getrusage) at the end. Returns samples, counts and wall seconds.
    """
    import resource

    from reconciler.cli import build_reconciler
    from reconciler.loop import PollingLoop

    os.environ["FASTOPT_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(folder) if folder is not None else Path(tmp)
        config = build_bench_workspace(root, n_strategies=n_strategies, n_symbols=n_symbols, seed=seed)
        reconciler = build_reconciler(_args(config))
        symbols = _symbols(n_symbols)
        rng = random.Random(seed + 1)
        samples: dict[int, float] = {}
        sent = [0, 0]  # orders in results, of which filled
        real_cycle = reconciler.run_cycle

        def run_cycle():
            report = real_cycle()
            sent[0] += len(report.results)
            sent[1] += sum(1 for r in report.results if r.get("status") == "filled")
            return report

        reconciler.run_cycle = run_cycle
        loop = PollingLoop(reconciler, interval_s=0.0, full_every_s=0.0, max_cycles=cycles)

        def after_poll(_seconds: float) -> None:  # the loop's sleep: runs after every cycle here
            if loop.cycles in sample_at and loop.cycles not in samples:
                samples[loop.cycles] = _rss_mib()
            if loop.cycles % rewrite_every == 0:
                for i in range(n_strategies):
                    write_state(root / "strategies" / f"s{i:04d}" / "state.json", symbol=symbols[i % n_symbols],
                                position=rng.choice([-1.0, -0.5, 0.5, 1.0]))

        loop.sleep = after_poll
        started = time.perf_counter()
        loop.run()
        seconds = time.perf_counter() - started
        samples.setdefault(loop.cycles, _rss_mib())  # the last cycle breaks out before the loop sleeps
        unfinished = len(reconciler.journal.unfinished())
        return {"n_strategies": n_strategies, "n_symbols": n_symbols, "cycles": loop.cycles,
                "rss_mib": {str(k): v for k, v in sorted(samples.items())},
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "status_counts": dict(loop.status_counts), "orders": sent[0], "filled": sent[1],
                "unfinished": unfinished, "seconds": seconds}
