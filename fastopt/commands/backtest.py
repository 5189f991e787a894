"""`fastopt backtest`: run every strategies/<name>/strategy.py in parallel subprocesses.

Each strategy runs as ``python strategy.py [--live] [--prices-dir DIR]`` in its
own folder (so it writes its stats.json / pnl.png, or state.json with
``--live``, next to itself). A strategy that fails or exceeds ``--timeout`` (its
whole process group is killed) is reported with the tail of its stderr; the
others keep running. Every stderr line of a strategy that mentions a warning
(synthetic prices, a stale candle, a Python ``warnings`` line) is shown under
its result, whether it succeeded or not (``warnings`` in ``--json``). Exit 0 if
all succeeded, 1 if any failed, 2 for a bad folder, 3 when no strategy.py was
found.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

from fastopt.errors import EXIT_CODES, EXIT_FAILURE, EXIT_OK, InputError, NothingToDo

SUMMARY = "run every strategy's backtest (or --live position) in parallel"

STRATEGY_FILENAME = "strategy.py"
DEFAULT_TIMEOUT_S = 600.0
STDERR_TAIL_LINES = 8
#: At most this many warning lines are kept per strategy (the rest are counted).
MAX_WARNINGS = 20
_WARNING_LINE = re.compile(r"warn|stale", re.IGNORECASE)
#: Python's ``warnings`` header ("file.py:12: UserWarning: ..."); the indented line after it echoes the source.
_PY_WARNING_HEADER = re.compile(r":\d+: \w*Warning: ")

EPILOG = """examples:
  fastopt backtest                                   # every strategies/*/strategy.py -> stats.json + pnl.png
  fastopt backtest --strategies strategies --jobs 2 --timeout 120
  fastopt backtest --prices-dir my_prices            # your own daily CSVs (BTC-USD.csv, ...)
  FASTOPT_OFFLINE=1 fastopt backtest                 # the real history embedded in fastopt (BTC ETH BNB SOL)
  fastopt backtest --live                            # today's positions -> state.json
  FASTOPT_SYNTHETIC=1 fastopt backtest --live --allow-synthetic   # synthetic market, paper demo only
  fastopt backtest --json | jq '.results[] | select(.status != "ok")'

here: 1 some strategy failed or timed out, 2 bad folder/option, 3 no strategy found.

""" + EXIT_CODES


@dataclass(frozen=True)
class StrategyRun:
    """Outcome of one strategy subprocess."""

    name: str
    status: str  # "ok", "failed", "timeout" (killed) or "cancelled" (interrupted before start)
    returncode: int | None
    seconds: float
    stdout_tail: str
    stderr_tail: str
    warnings: tuple[str, ...] = ()  # stderr lines that mention a warning, in order, de-duplicated


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--strategies", default="strategies", help="folder of <name>/strategy.py (default: strategies)")
    parser.add_argument(
        "--jobs", type=int, default=None, help="parallel strategies (default: number of CPUs, at most 4)"
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help=f"seconds per strategy before it is killed (default {DEFAULT_TIMEOUT_S:g})"
    )
    parser.add_argument("--live", action="store_true", help="write today's positions (state.json) instead of backtesting")
    parser.add_argument("--prices-dir", default=None, help="folder of daily price CSVs passed to every strategy")
    parser.add_argument(
        "--no-plot", action="store_true", help="pass --no-plot to every strategy (skip pnl.png: ~1-2 s less each)"
    )
    parser.add_argument(
        "--allow-synthetic",
        action="store_true",
        help="with --live: let strategies write positions from synthetic prices (FASTOPT_SYNTHETIC=1; paper demos only)",
    )
    parser.add_argument("--only", action="append", default=None, metavar="NAME", help="run only this strategy (repeatable)")
    parser.add_argument("--json", action="store_true", help="machine-readable results on stdout")


def discover_strategies(folder: Path) -> list[tuple[str, Path]]:
    """Sorted (name, strategy.py path) one level under ``folder``; InputError if it is not a folder."""
    if not folder.exists():
        raise InputError("strategies folder not found", path=folder)
    if not folder.is_dir():
        raise InputError("not a folder", path=folder)
    found = []
    for child in sorted(folder.iterdir()):
        script = child / STRATEGY_FILENAME
        if child.is_dir() and not child.name.startswith((".", "_")) and script.is_file():
            found.append((child.name, script))
    return found


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def warning_lines(stderr: str) -> tuple[str, ...]:
    """The stderr lines that mention a warning or stale data ("WARNING: SYNTHETIC PRICES", "warning: latest
    ... candle", "UserWarning: ..."), stripped, de-duplicated in order; beyond MAX_WARNINGS one line counts the rest."""
    seen: dict[str, None] = {}
    after_header = False
    for line in stderr.splitlines():
        text = line.strip()
        if after_header and line[:1].isspace():  # the source line Python prints under a warning
            after_header = False
            continue
        after_header = bool(_PY_WARNING_HEADER.search(line))
        if text and _WARNING_LINE.search(text):
            seen.setdefault(text, None)
    found = list(seen)
    if len(found) > MAX_WARNINGS:
        found = found[:MAX_WARNINGS] + [f"... and {len(found) - MAX_WARNINGS} more warning lines"]
    return tuple(found)


_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()
_ABORTED = threading.Event()


def run_one(name: str, script: Path, *, extra_args: list[str], timeout_s: float) -> StrategyRun:
    """Run one strategy.py in its folder; kill its whole process group on timeout."""
    started = time.perf_counter()
    script = script.resolve()
    command = [sys.executable, str(script), *extra_args]
    with _LIVE_LOCK:  # started under the lock: an abort can never miss a process
        if _ABORTED.is_set():
            return StrategyRun(name, "cancelled", None, 0.0, "", "not started: the run was interrupted")
        process = subprocess.Popen(
            command,
            cwd=script.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        _LIVE.add(process)
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        elapsed = time.perf_counter() - started
        note = f"killed after {timeout_s:g} s timeout"
        return StrategyRun(name, "timeout", None, elapsed, _tail(stdout), _tail(f"{stderr}\n{note}"),
                           warning_lines(stderr))
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(process)
    elapsed = time.perf_counter() - started
    status = "ok" if process.returncode == 0 else "failed"
    return StrategyRun(name, status, process.returncode, elapsed, _tail(stdout, 2), _tail(stderr),
                       warning_lines(stderr))


def kill_all_running() -> None:
    """Kill every strategy process group still running and start no more (Ctrl-C / errors)."""
    with _LIVE_LOCK:
        _ABORTED.set()
        running = list(_LIVE)
    for process in running:
        _kill_group(process)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def run_all(
    strategies: list[tuple[str, Path]],
    *,
    extra_args: list[str],
    timeout_s: float,
    jobs: int,
    show_progress: bool,
) -> list[StrategyRun]:
    """Run strategies in a thread pool (each thread waits on one subprocess)."""
    results: list[StrategyRun] = []
    progress = None
    task = None
    if show_progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("backtest"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=True,
        )
        progress.start()
        task = progress.add_task("", total=len(strategies))
    _ABORTED.clear()
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        pending = {
            pool.submit(run_one, name, script, extra_args=extra_args, timeout_s=timeout_s)
            for name, script in strategies
        }
        while pending:
            # Short waits, not one blocking wait: a Ctrl-C delivered to a worker thread
            # would otherwise only surface in the main thread once a strategy finished.
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()
                results.append(outcome)
                if progress is not None:
                    progress.update(task, advance=1, description=f"{outcome.name}: {outcome.status}")
    except BaseException:
        # Ctrl-C or a bug: strategies run in their own sessions, so kill them explicitly.
        pool.shutdown(wait=False, cancel_futures=True)
        kill_all_running()
        raise
    finally:
        pool.shutdown(wait=True)
        if progress is not None:
            progress.stop()
    results.sort(key=lambda r: r.name)
    return results


def run(args: argparse.Namespace) -> int:
    folder = Path(args.strategies)
    if args.timeout is None or not args.timeout > 0:
        raise InputError(f"--timeout must be a positive number of seconds, got {args.timeout!r}")
    jobs = args.jobs if args.jobs is not None else min(4, os.cpu_count() or 1)
    if jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {jobs}")
    strategies = discover_strategies(folder)
    if args.only:
        wanted = set(args.only)
        unknown = sorted(wanted - {name for name, _ in strategies})
        if unknown:
            raise InputError(f"no strategy named {', '.join(unknown)} under {folder}")
        strategies = [(n, p) for n, p in strategies if n in wanted]
    if not strategies:
        raise NothingToDo(f"no */{STRATEGY_FILENAME} found", path=folder)
    extra_args: list[str] = []
    if args.live:
        extra_args.append("--live")
        if args.allow_synthetic:
            extra_args.append("--allow-synthetic")
    elif args.no_plot:
        extra_args.append("--no-plot")
    if args.prices_dir is not None:
        prices_dir = Path(args.prices_dir)
        if not prices_dir.is_dir():
            raise InputError("prices folder not found", path=prices_dir)
        extra_args += ["--prices-dir", str(prices_dir.resolve())]
    results = run_all(
        strategies,
        extra_args=extra_args,
        timeout_s=float(args.timeout),
        jobs=jobs,
        show_progress=sys.stderr.isatty() or bool(os.environ.get("FASTOPT_PROGRESS")),
    )
    failed = [r for r in results if r.status != "ok"]
    if args.json:
        payload = {
            "mode": "live" if args.live else "backtest",
            "strategies_dir": str(folder),
            "ok": len(results) - len(failed),
            "failed": len(failed),
            "results": [asdict(r) for r in results],
        }
        print(json.dumps(payload, indent=2))
    else:
        _print_report(results)
    return EXIT_FAILURE if failed else EXIT_OK


def _print_report(results: list[StrategyRun]) -> None:
    width = max(len(r.name) for r in results)
    for r in results:
        last = r.stdout_tail.splitlines()[-1] if r.stdout_tail else ""
        print(f"{r.status:<7} {r.name:<{width}} {r.seconds:6.1f}s  {last if r.status == 'ok' else ''}".rstrip())
        for line in r.warnings:  # under its row, as the strategy wrote it (each line names the warning)
            print(f"{'':<7} ! {line}")
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        code = "timeout" if r.returncode is None else f"exit {r.returncode}"
        print(f"\n--- {r.name} ({code}) stderr tail:", file=sys.stderr)
        print(r.stderr_tail or "(no stderr)", file=sys.stderr)
    warned = sum(1 for r in results if r.warnings)
    tail = f", {warned} with warnings (shown above)" if warned else ""
    print(f"{len(results) - len(failed)} ok, {len(failed)} failed{tail}", file=sys.stderr)
