"""The polling loop: reconcile on change, and every ``full_every_s`` regardless.

Each poll (every ``interval_s``) touches the heartbeat file and compares a
signature of the inputs (config + every ``strategies/*/state.json``: mtime,
size, inode). A cycle runs when the signature changed, when ``full_every_s``
passed since the last cycle (drift and earlier failures get corrected), or
right away when the previous cycle did not finish cleanly (uncertain order,
read failure, halted: reads are retried each poll until they succeed).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from fastopt.errors import FastoptError, InputError
from reconciler.engine import CycleReport, Reconciler

HEARTBEAT_NAME = "reconciler.heartbeat"
Signature = tuple


def input_signature(config_path: Path, strategies_dir: Path) -> Signature:
    """Cheap fingerprint of every input file (one stat each)."""
    items: list[tuple] = []
    for path in [config_path]:
        try:
            st = os.stat(path)
            items.append(("config", st.st_mtime_ns, st.st_size, st.st_ino))
        except FileNotFoundError:
            items.append(("config", None))
    try:
        entries = sorted(os.scandir(strategies_dir), key=lambda e: e.name)
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if not entry.is_dir():
            continue
        try:
            st = os.stat(os.path.join(entry.path, "state.json"))
        except FileNotFoundError:
            continue
        items.append((entry.name, st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(items)


class PollingLoop:
    """Runs :meth:`Reconciler.run_cycle` when needed; see the module docstring."""

    def __init__(
        self,
        reconciler: Reconciler,
        *,
        interval_s: float = 5.0,
        full_every_s: float = 60.0,
        max_cycles: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.reconciler = reconciler
        self.interval_s = interval_s
        self.full_every_s = full_every_s
        self.max_cycles = max_cycles
        self.clock = clock
        self.sleep = sleep
        self.should_stop = should_stop
        self.heartbeat = reconciler.folder / HEARTBEAT_NAME
        self.reports: list[CycleReport] = []
        self.cycles = 0

    def run(self) -> int:
        s = self.reconciler.settings
        report = self.reconciler.report
        last_signature: Signature | None = None
        last_cycle_at = float("-inf")
        retry = False
        report.info(f"reconciler started: poll {self.interval_s:g} s, full cycle every {self.full_every_s:g} s, "
                    f"exchange {s.default_exchange}, config {s.config_path}")
        while not self.should_stop():
            self.heartbeat.touch()
            signature = input_signature(s.config_path, s.strategies_dir)
            now = self.clock()
            changed = signature != last_signature
            if changed or retry or now - last_cycle_at >= self.full_every_s:
                if changed and last_signature is not None:
                    report.info("inputs changed: reconciling")
                last_signature, last_cycle_at = signature, now
                try:
                    result = self.reconciler.run_cycle()
                except InputError as err:
                    report.error(f"{err} (no orders; waiting for a valid input)")
                    result = CycleReport("refused", str(err))
                except FastoptError as err:
                    report.error(f"cycle failed: {err}")
                    result = CycleReport("failed", str(err))
                self.reports.append(result)
                self.cycles += 1
                retry = result.status in ("incomplete", "blocked", "read_failed", "halted", "failed")
                if self.max_cycles is not None and self.cycles >= self.max_cycles:
                    break
            self.sleep(self.interval_s)
        return 0
