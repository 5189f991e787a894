"""The polling loop while strategies rewrite their state files many times a second."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from fakes.workspace import make_workspace, reconciler_for
from fastopt.files.atomic import atomic_write_json
from reconciler.loop import PollingLoop, input_signature

SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")


def _record_reports(rec) -> list:
    """Wrap ``rec.run_cycle`` so the test keeps every report (the loop itself keeps only the last)."""
    reports: list = []
    real = rec.run_cycle

    def run_cycle():
        reports.append(real())
        return reports[-1]

    rec.run_cycle = run_cycle
    return reports


def _writer(path, symbol, written, stop, atomic, seed):
    k = seed
    while not stop.is_set():
        k += 1
        position = round(((k * 7919) % 2001 - 1000) / 1000.0, 3)  # in [-1, 1], many distinct values
        written.add(position)
        obj = {"symbol": symbol, "position": position, "updated_at": "2030-01-01T00:00:00Z", "note": "x" * 64}
        if atomic:
            atomic_write_json(path, obj)
        else:  # in place, in two pieces: readers can see an empty or a half-written file
            text = json.dumps(obj)
            with open(path, "w") as handle:
                handle.write(text[: len(text) // 2])
                handle.flush()
                time.sleep(0.0005)
                handle.write(text[len(text) // 2:])
        time.sleep(0.002)


def test_no_order_is_ever_based_on_a_half_written_state(tmp_path):
    names = [f"s{i}" for i in range(6)]
    states = {n: {"symbol": SYMBOLS[i % 3], "position": 0.0} for i, n in enumerate(names)}
    cfg = make_workspace(tmp_path, weights={n: 1 / 6 for n in names}, states=states, leverage=1.0)
    rec = reconciler_for(cfg, "--threshold", "1")
    written = {n: {0.0} for n in names}
    stop = threading.Event()
    threads = [threading.Thread(target=_writer, daemon=True,
                                args=(tmp_path / "strategies" / n / "state.json", SYMBOLS[i % 3], written[n], stop,
                                      i % 2 == 0, i * 100)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    reports = _record_reports(rec)
    loop = PollingLoop(rec, interval_s=0.005, full_every_s=0.05, max_cycles=40)
    try:
        loop.run()
    finally:
        stop.set()
        for t in threads:
            t.join()
    # a cycle that meets a half-written file before any good state of it exists is refused (raises): on a
    # loaded machine the three reads 5 ms apart can all land mid-write; nothing is sent then
    refused = loop.status_counts.get("refused", 0)
    assert loop.cycles == 40 and len(reports) == 40 - refused and loop.last_report is reports[-1]
    assert set(loop.status_counts) <= {"ok", "degraded", "refused"} and sum(loop.status_counts.values()) == 40
    assert refused <= 3
    sent = 0
    for report in reports:
        # degraded only by a half-written file seen (its last good state used), never by anything else
        assert report.status in ("ok", "degraded"), report.message
        assert all("last good state used" in p for p in report.problems), report.problems
        for name, state in report.states.items():
            (symbol, position), = state.positions.items()
            assert position in written[name], (name, position)  # a value some writer wrote in full
        for (venue, symbol), notional in report.target_notional.items():
            expected = sum(10_000 / 6 * s.positions.get(symbol, 0.0) for s in report.states.values())
            assert notional == pytest.approx(expected, abs=1e-6)
        sent += sum(1 for r in report.results if r["status"] == "filled")
    assert sent > 0
    assert any("last good" in m for m in rec.report.messages())  # half-written files were seen
    assert (tmp_path / "reconciler.heartbeat").exists()


def test_loop_reconciles_on_change_and_on_the_full_timer(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": SYMBOLS[0], "position": 0.5}})
    rec = reconciler_for(cfg)
    clock = [0.0]
    polls = []

    def sleep(seconds):
        clock[0] += seconds
        polls.append(clock[0])
        if len(polls) == 3:  # a strategy changes its state between polls
            atomic_write_json(tmp_path / "strategies" / "a" / "state.json", {"symbol": SYMBOLS[0], "position": 1.0})

    reports = _record_reports(rec)
    loop = PollingLoop(rec, interval_s=5, full_every_s=60, max_cycles=3, clock=lambda: clock[0], sleep=sleep)
    loop.run()
    # cycle 1 at t=0 (start), cycle 2 at t=15 (state changed), cycle 3 at t=75 (60 s after the last one)
    assert [len(r.plan.orders) for r in reports] == [1, 1, 0]
    assert clock[0] == pytest.approx(75.0)


def test_loop_keeps_running_on_invalid_config_and_retries(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": SYMBOLS[0], "position": 0.5}})
    cfg.write_text('{"account_value": 1000, "leverage": 1, "weights": {"a": 0.7}}')
    rec = reconciler_for(cfg)
    polls = []

    def sleep(seconds):
        polls.append(seconds)
        if len(polls) == 2:
            cfg.write_text('{"account_value": 1000, "leverage": 1, "weights": {"a": 1.0}}')

    loop = PollingLoop(rec, interval_s=1, full_every_s=60, max_cycles=2, sleep=sleep)
    loop.run()
    assert loop.status_counts == {"refused": 1, "ok": 1} and loop.last_report.status == "ok"
    assert any("refusing to trade" in m for m in rec.report.messages("ERROR"))


def test_signature_sees_config_and_state_changes(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": SYMBOLS[0], "position": 0.5}})
    before = input_signature(cfg, tmp_path / "strategies")
    atomic_write_json(tmp_path / "strategies" / "a" / "state.json", {"symbol": SYMBOLS[0], "position": 0.6})
    middle = input_signature(cfg, tmp_path / "strategies")
    os.utime(cfg, ns=(1, 1))
    assert len({before, middle, input_signature(cfg, tmp_path / "strategies")}) == 3


def _fake_time(tmp_path=None, on_sleep=None):
    """A monotonic clock advanced only by the loop's sleep; ``on_sleep(poll_number)`` runs after each poll."""
    clock = [0.0]
    polls = [0]

    def sleep(seconds):
        clock[0] += seconds
        polls[0] += 1
        if on_sleep is not None:
            on_sleep(polls[0])

    return clock, polls, sleep


def test_the_loop_holds_one_report_however_many_cycles_run(tmp_path):
    import gc
    import weakref

    names = [f"s{i}" for i in range(5)]
    cfg = make_workspace(tmp_path, weights={n: 0.2 for n in names},
                         states={n: {"symbol": SYMBOLS[i % 3], "position": 0.5} for i, n in enumerate(names)})
    rec = reconciler_for(cfg, "--threshold", "1")
    refs, orders = [], [0]
    real = rec.run_cycle

    def run_cycle():
        report = real()
        refs.append(weakref.ref(report))
        orders[0] += len(report.plan.orders)
        return report

    rec.run_cycle = run_cycle

    def on_sleep(poll):
        if poll % 50 == 0:  # strategies move: the loop keeps trading
            atomic_write_json(tmp_path / "strategies" / names[poll % 5] / "state.json",
                              {"symbol": SYMBOLS[poll % 3], "position": round(-0.9 + poll / 1000, 3)})

    _, _, sleep = _fake_time(on_sleep=on_sleep)
    loop = PollingLoop(rec, interval_s=0, full_every_s=0, max_cycles=300, sleep=sleep)
    loop.run()
    gc.collect()
    alive = [r() for r in refs if r() is not None]
    assert len(refs) == 300 and loop.cycles == 300 and loop.status_counts == {"ok": 300}
    assert alive == [loop.last_report]  # every earlier report was freed
    assert orders[0] >= 5 + 5  # the first cycle opened every position, later rewrites traded again
    assert not any(isinstance(v, (list, dict)) and len(v) > 10 for v in vars(loop).values())


def test_a_disk_full_cycle_is_one_error_line_counted_and_retried_at_the_next_poll(tmp_path):
    import errno

    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": SYMBOLS[0], "position": 0.5}})
    rec = reconciler_for(cfg)
    failures = [0]
    real_record = rec.journal.record_intents

    def record_intents(items):
        if 1 <= rec_cycles[0] <= 2:  # the 2nd and 3rd cycles find the disk full when journaling intents
            failures[0] += 1
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "orders.jsonl"))
        return real_record(items)

    rec.journal.record_intents = record_intents
    rec_cycles = [0]
    real_cycle = rec.run_cycle
    positions_seen = []

    def run_cycle():
        try:
            return real_cycle()
        finally:
            rec_cycles[0] += 1
            positions_seen.append(dict(rec.venue("paper").fetch_positions()))

    rec.run_cycle = run_cycle

    def on_sleep(poll):
        if poll == 1:
            atomic_write_json(tmp_path / "strategies" / "a" / "state.json", {"symbol": SYMBOLS[0], "position": 1.0})

    clock, _, sleep = _fake_time(on_sleep=on_sleep)
    loop = PollingLoop(rec, interval_s=5, full_every_s=60, max_cycles=4, clock=lambda: clock[0], sleep=sleep)
    assert loop.run() == 0
    assert failures[0] == 2 and loop.status_counts == {"ok": 2, "failed": 2}
    assert clock[0] == pytest.approx(15.0)  # retried at each next poll, not after the 60 s full timer
    errors = [m for m in rec.report.messages("ERROR") if "ENOSPC" in m]
    assert len(errors) == 2 and all("disk full?" in m and "orders.jsonl" in m and "\n" not in m for m in errors)
    assert positions_seen[1] == positions_seen[2] == positions_seen[0]  # nothing sent while the disk was full
    assert loop.last_report.status == "ok" and [r["status"] for r in loop.last_report.results] == ["filled"]
    assert positions_seen[3][SYMBOLS[0]] == pytest.approx(2 * positions_seen[0][SYMBOLS[0]], rel=1e-3)


def test_a_bug_in_a_cycle_is_not_swallowed(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": SYMBOLS[0], "position": 0.5}})
    rec = reconciler_for(cfg)

    def broken():
        raise KeyError("a bug")

    rec.run_cycle = broken
    loop = PollingLoop(rec, interval_s=0, full_every_s=0, max_cycles=3, sleep=lambda s: None)
    with pytest.raises(KeyError, match="a bug"):
        loop.run()


def test_a_failing_heartbeat_is_one_error_line_and_the_loop_keeps_polling(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": SYMBOLS[0], "position": 0.5}})
    rec = reconciler_for(cfg)
    missing = tmp_path / "gone"

    def on_sleep(poll):
        if poll == 4:
            missing.mkdir()

    clock, polls, sleep = _fake_time(on_sleep=on_sleep)
    loop = PollingLoop(rec, interval_s=5, full_every_s=10, clock=lambda: clock[0], sleep=sleep,
                       should_stop=lambda: polls[0] >= 7)
    loop.heartbeat = missing / "reconciler.heartbeat"
    assert loop.run() == 0
    errors = [m for m in rec.report.messages("ERROR") if "heartbeat" in m]
    assert len(errors) == 1 and "ENOENT" in errors[0]
    assert sum("written again" in m for m in rec.report.messages("info")) == 1
    assert loop.heartbeat.exists() and loop.cycles == 4  # t = 0, 10, 20, 30


@pytest.mark.parametrize("jumps, expected", [
    ({2: -600.0}, ["wall clock stepped by -600 s; intervals use the monotonic clock"]),
    ({1: 3600.0, 3: -3600.0}, ["wall clock stepped by +3600 s; intervals use the monotonic clock",
                                "wall clock stepped by -3600 s; intervals use the monotonic clock"]),
    ({1: 30.0, 2: -45.0}, []),  # small corrections (NTP slewing, drift) say nothing
])
def test_a_wall_clock_step_is_logged_once_and_changes_no_schedule(tmp_path, jumps, expected):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": SYMBOLS[0], "position": 0.5}})
    rec = reconciler_for(cfg)
    wall = [1_900_000_000.0]
    cycle_times = []
    real = rec.run_cycle

    def run_cycle():
        cycle_times.append(clock[0])
        return real()

    rec.run_cycle = run_cycle

    def on_sleep(poll):
        wall[0] += 20.0 + jumps.get(poll, 0.0)  # the wall clock follows the sleep, plus the steps

    clock, _, sleep = _fake_time(on_sleep=on_sleep)
    loop = PollingLoop(rec, interval_s=20, full_every_s=60, max_cycles=3, clock=lambda: clock[0], sleep=sleep,
                       wall_clock=lambda: wall[0])
    loop.run()
    assert [m for m in rec.report.messages("info") if "wall clock" in m] == expected
    assert cycle_times == [0.0, 60.0, 120.0]


def test_the_loop_rewrites_a_deleted_lock_file_and_stops_when_its_folder_is_replaced(tmp_path):
    from reconciler.runlock import LOCK_NAME, RunLock

    root = tmp_path / "cfg"
    root.mkdir()
    cfg = make_workspace(root, weights={"a": 1.0}, states={"a": {"symbol": SYMBOLS[0], "position": 0.5}})
    rec = reconciler_for(cfg)

    def on_sleep(poll):
        if poll == 1:
            os.unlink(root / LOCK_NAME)
        if poll == 3:  # a deploy swaps the whole folder: another reconciler could now lock the new one
            root.rename(tmp_path / "old")
            root.mkdir()

    clock, polls, sleep = _fake_time(on_sleep=on_sleep)
    with RunLock.acquire(root, config_path=cfg) as lock:
        loop = PollingLoop(rec, interval_s=5, full_every_s=60, clock=lambda: clock[0], sleep=sleep,
                           should_stop=lambda: polls[0] >= 10, lock=lock)
        assert loop.run() == 1
    assert polls[0] == 3 and loop.cycles == 1  # stopped at the first poll after the swap, before any cycle
    assert [m for m in rec.report.messages("warn") if LOCK_NAME in m] == [
        f"{root / LOCK_NAME} was deleted (a person, a cleanup, a deploy?); rewritten: the run lock is the "
        f"flock on {root} and still holds"]
    assert any("no longer the folder this reconciler locked" in m for m in rec.report.messages("ERROR"))
