"""The polling loop while strategies rewrite their state files many times a second."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from fakes.workspace import make_workspace, reconciler_for
from fastopt.atomic import atomic_write_json
from reconciler.loop import PollingLoop, input_signature

SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")


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
    loop = PollingLoop(rec, interval_s=0.005, full_every_s=0.05, max_cycles=40)
    try:
        loop.run()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert loop.cycles == 40
    sent = 0
    for report in loop.reports:
        assert report.status == "ok", report.message
        for name, state in report.states.items():
            (symbol, position), = state.positions.items()
            assert position in written[name], (name, position)  # a value some writer wrote in full
        for (venue, symbol), notional in report.target_notional.items():
            expected = sum(10_000 / 6 * s.positions.get(symbol, 0.0) for s in report.states.values())
            assert notional == pytest.approx(expected, abs=1e-6)
        sent += sum(1 for r in report.results if r["status"] == "filled")
    assert sent > 0
    assert any("last good" in m for m in rec.report.messages("warn"))  # half-written files were seen
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

    loop = PollingLoop(rec, interval_s=5, full_every_s=60, max_cycles=3, clock=lambda: clock[0], sleep=sleep)
    loop.run()
    # cycle 1 at t=0 (start), cycle 2 at t=15 (state changed), cycle 3 at t=75 (60 s after the last one)
    assert [len(r.plan.orders) for r in loop.reports] == [1, 1, 0]
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
    assert [r.status for r in loop.reports] == ["refused", "ok"]
    assert any("refusing to trade" in m for m in rec.report.messages("ERROR"))


def test_signature_sees_config_and_state_changes(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": SYMBOLS[0], "position": 0.5}})
    before = input_signature(cfg, tmp_path / "strategies")
    atomic_write_json(tmp_path / "strategies" / "a" / "state.json", {"symbol": SYMBOLS[0], "position": 0.6})
    middle = input_signature(cfg, tmp_path / "strategies")
    os.utime(cfg, ns=(1, 1))
    assert len({before, middle, input_signature(cfg, tmp_path / "strategies")}) == 3
