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

Events (:meth:`reconciler.report.Reporter.event`, forwarded to the notifier): ``start``
when the loop starts, ``stop`` when it ends (with the reason: a signal, the run lock
lost, ``max_cycles``), ``daily_summary`` every ``summary_every_s`` (cycles and orders
by outcome since the last summary, the equity read last) and ``stale_config`` (checked
hourly) when the config file was not rewritten for ``config_stale_after_s``.
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
#: seconds between two checks of the config file's age (stale_config event)
CONFIG_CHECK_EVERY_S = 3600.0
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

    ``stop_reason()``: why ``should_stop()`` became true (e.g. ``"SIGTERM"``), for the ``stop`` event;
    ``summary_every_s``: seconds between ``daily_summary`` events (None: none); ``config_stale_after_s``:
    age of the config file (seconds, by its mtime) above which a ``stale_config`` event is raised (None: never).
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
        stop_reason: Callable[[], str | None] = lambda: None,
        summary_every_s: float | None = 86400.0,
        config_stale_after_s: float | None = None,
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
        self.stop_reason = stop_reason
        self.summary_every_s = summary_every_s
        self.config_stale_after_s = config_stale_after_s
        self._summary_at: float | None = None  # clock of the last summary (or of the start)
        self._day_cycles: dict[str, int] = {}  # cycle statuses since the last summary
        self._day_orders: dict[str, int] = {}  # order outcomes since the last summary
        self._config_checked_at = float("-inf")

    def run(self) -> int:
        """Poll until ``should_stop()``, ``max_cycles`` or a lost run lock; returns the exit code.

        Ends with one ``stop`` event saying why."""
        code, why = self._run()
        self.reconciler.report.event("stop", f"reconciler stopped ({why}) after {self.cycles} cycle(s)",
                                     key=f"stop|{id(self)}", cycles=self.cycles, exit_code=code)
        return code

    def _run(self) -> tuple[int, str]:
        s = self.reconciler.settings
        report = self.reconciler.report
        last_signature: Signature | None = None
        last_cycle_at = float("-inf")
        retry = False
        report.event("start", f"reconciler started: poll {self.interval_s:g} s, full cycle every "
                     f"{self.full_every_s:g} s, exchange {s.default_exchange}, config {s.config_path}",
                     key=f"start|{id(self)}")
        self._summary_at = self.clock()
        while not self.should_stop():
            self._watch_wall_clock()
            self._touch_heartbeat()
            if self.lock is not None:
                try:
                    warning = self.lock.verify()
                except FastoptError as err:
                    report.event("alert", str(err), key="lock_lost")
                    return EXIT_FAILURE, "the run lock was lost"
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
                self._after_cycle(result)
                if self.max_cycles is not None and self.cycles >= self.max_cycles:
                    return EXIT_OK, f"--max-cycles {self.max_cycles} reached"
            self.sleep(self.interval_s)
        return EXIT_OK, self.stop_reason() or "asked to stop"

    def _after_cycle(self, result: CycleReport) -> None:
        """Counters for the daily summary; the summary when due; the config's age, hourly."""
        self._day_cycles[result.status] = self._day_cycles.get(result.status, 0) + 1
        for status, n in result.counts().items():
            self._day_orders[status] = self._day_orders.get(status, 0) + n
        now = self.clock()
        if self.summary_every_s is not None and self._summary_at is not None \
                and now - self._summary_at >= self.summary_every_s:
            cycles = ", ".join(f"{k} {v}" for k, v in sorted(self._day_cycles.items()))
            orders = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(self._day_orders.items())) or "none"
            equity = getattr(self.reconciler, "_cycle_equity", {})  # read by the last cycle, per venue
            total = sum(v for v in equity.values() if v is not None) if equity and None not in equity.values() \
                else None
            self.reconciler.report.event(
                "daily_summary", f"last {(now - self._summary_at) / 3600:.0f} h: {sum(self._day_cycles.values())} "
                f"cycle(s) ({cycles}); orders: {orders}; last cycle {result.status}"
                + (f"; equity {total:,.2f}" if total is not None else ""),
                key=f"summary|{id(self)}|{now}", cycles=dict(self._day_cycles), orders=dict(self._day_orders),
                equity=total)
            self._summary_at, self._day_cycles, self._day_orders = now, {}, {}
        if self.config_stale_after_s is not None and now - self._config_checked_at >= CONFIG_CHECK_EVERY_S:
            self._config_checked_at = now
            try:
                age = self.wall_clock() - os.stat(self.reconciler.settings.config_path).st_mtime
            except OSError:
                return
            if age > self.config_stale_after_s:
                self.reconciler.report.event(
                    "stale_config", f"{self.reconciler.settings.config_path} was last written {age / 86400:.1f} d "
                    f"ago (limit {self.config_stale_after_s / 86400:g} d): is the weekly optimize running?",
                    key="config")

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
