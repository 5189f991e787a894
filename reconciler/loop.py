"""The polling loop: reconcile on change, and every ``full_every_s`` regardless.

Each poll (every ``interval_s``) touches the heartbeat file, checks the run lock
(when given) and compares a signature of the inputs (config + every
``strategies/*/state.json``: mtime, size, inode). A cycle runs when the
signature changed, when ``full_every_s`` passed since the last cycle (drift and
earlier failures get corrected), or right away when the previous cycle did not
finish cleanly (uncertain order, read failure, halted, a failed write: retried
each poll until it succeeds).

Runs for months in bounded memory: only the last :class:`CycleReport` is kept
(``last_report``), with counters (``cycles``, ``status_counts``). Scheduling uses
the monotonic ``clock`` only; a step of the wall clock (NTP, a person, a VM
resume) is logged once and changes nothing. An ``OSError`` (disk full, I/O
error) in a cycle or in the heartbeat is logged and retried at the next poll;
any other non-:class:`FastoptError` exception is a bug and propagates.
"""
from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fastopt.errors import EXIT_FAILURE, EXIT_OK, FastoptError, InputError
from reconciler.engine import CycleReport, Reconciler

if TYPE_CHECKING:
    from reconciler.runlock import RunLock

HEARTBEAT_NAME = "reconciler.heartbeat"
#: a change of (wall clock - monotonic clock) between two polls above this many seconds is logged
WALL_CLOCK_STEP_S = 60.0
#: cycle statuses after which the next poll runs a cycle at once
RETRY_STATUSES = ("incomplete", "blocked", "read_failed", "halted", "failed")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
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


def os_error_text(exc: OSError) -> str:
    """One line for an OSError: ``ENOSPC (No space left on device) on /path: disk full?``."""
    name = errno.errorcode.get(exc.errno or 0, "OSError")
    where = f" on {exc.filename}" if exc.filename else ""
    hint = ": disk full?" if exc.errno in _DISK_FULL else ""
    return f"{name} ({exc.strerror or exc}){where}{hint}"


class PollingLoop:
    """Runs :meth:`Reconciler.run_cycle` when needed; see the module docstring.

    Units: ``interval_s`` and ``full_every_s`` in seconds of ``clock`` (monotonic by default).
    ``lock``: the process's :class:`reconciler.runlock.RunLock`, verified every poll (its warnings
    are logged; when it says the folder was replaced the loop stops and returns ``EXIT_FAILURE``).
    ``wall_clock`` is read only to notice wall-clock steps, never to schedule.

    After :meth:`run`: ``cycles`` (int, cycles run), ``status_counts`` (status -> count; a cycle
    that raised OSError or FastoptError counts as ``failed``, an InputError as ``refused``) and
    ``last_report`` (the last :class:`CycleReport`, or None). Nothing else is kept per cycle.
    """

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
        wall_clock: Callable[[], float] = time.time,
        lock: RunLock | None = None,
    ) -> None:
        self.reconciler = reconciler
        self.interval_s = interval_s
        self.full_every_s = full_every_s
        self.max_cycles = max_cycles
        self.clock = clock
        self.sleep = sleep
        self.should_stop = should_stop
        self.wall_clock = wall_clock
        self.lock = lock
        self.heartbeat = reconciler.folder / HEARTBEAT_NAME
        self.last_report: CycleReport | None = None
        self.cycles = 0
        self.status_counts: dict[str, int] = {}
        self._clock_offset: float | None = None  # wall - monotonic at the previous poll, seconds
        self._heartbeat_failing = False

    def run(self) -> int:
        """Poll until ``should_stop()``, ``max_cycles`` or a lost run lock; returns the exit code."""
        s = self.reconciler.settings
        report = self.reconciler.report
        last_signature: Signature | None = None
        last_cycle_at = float("-inf")
        retry = False
        report.info(f"reconciler started: poll {self.interval_s:g} s, full cycle every {self.full_every_s:g} s, "
                    f"exchange {s.default_exchange}, config {s.config_path}")
        while not self.should_stop():
            self._watch_wall_clock()
            self._touch_heartbeat()
            if self.lock is not None:
                try:
                    warning = self.lock.verify()
                except FastoptError as err:
                    report.error(str(err))
                    return EXIT_FAILURE
                if warning:
                    report.warn(warning)
            try:
                signature: Signature | None = input_signature(s.config_path, s.strategies_dir)
            except OSError:
                signature = None  # unreadable folder: the cycle reads (and reports) it itself
            now = self.clock()
            changed = signature is None or signature != last_signature
            if changed or retry or now - last_cycle_at >= self.full_every_s:
                if changed and last_signature is not None:
                    report.info("inputs changed: reconciling")
                last_signature, last_cycle_at = signature, now
                result = self._cycle()
                self.last_report = result
                self.cycles += 1
                self.status_counts[result.status] = self.status_counts.get(result.status, 0) + 1
                retry = result.status in RETRY_STATUSES
                if self.max_cycles is not None and self.cycles >= self.max_cycles:
                    break
            self.sleep(self.interval_s)
        return EXIT_OK

    def _cycle(self) -> CycleReport:
        report = self.reconciler.report
        try:
            return self.reconciler.run_cycle()
        except InputError as err:
            report.error(f"{err} (no orders; waiting for a valid input)")
            return CycleReport("refused", str(err))
        except FastoptError as err:
            report.error(f"cycle failed: {err}")
            return CycleReport("failed", str(err))
        except OSError as err:  # disk full, I/O error: the engine sends nothing after a failed journal write
            line = f"cycle failed: {os_error_text(err)}; retrying next poll"
            report.error(line)
            return CycleReport("failed", line)

    def _touch_heartbeat(self) -> None:
        """Touch the heartbeat; a failure is one ERROR line per streak (not one per poll), then a recovery line."""
        try:
            self.heartbeat.touch()
        except OSError as err:
            if not self._heartbeat_failing:
                self.reconciler.report.error(f"cannot touch the heartbeat {self.heartbeat}: {os_error_text(err)}; "
                                             "still polling (a watchdog may think the reconciler is dead)")
            self._heartbeat_failing = True
            return
        if self._heartbeat_failing:
            self.reconciler.report.info(f"heartbeat {self.heartbeat} written again")
            self._heartbeat_failing = False

    def _watch_wall_clock(self) -> None:
        """Log (info) when the wall clock moved by > WALL_CLOCK_STEP_S relative to ``clock`` since the last poll."""
        offset = self.wall_clock() - self.clock()
        if self._clock_offset is not None:
            step = offset - self._clock_offset
            if abs(step) > WALL_CLOCK_STEP_S:
                self.reconciler.report.info(f"wall clock stepped by {step:+.0f} s; intervals use the monotonic clock")
        self._clock_offset = offset
