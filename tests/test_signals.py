"""SIGTERM/SIGINT on a real `fastopt reconcile` process: the order in flight finishes, one line, exit 0.

Also the rotating log file (--log-file, --log-max-bytes, --log-backups, --log-json) of that process.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakes.workspace import journal_lines, make_workspace
from reconciler.report import Reporter

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
ROOT = Path(__file__).resolve().parents[1]

#: runs `fastopt reconcile` with the paper exchange's create_order slowed down: it writes a marker
#: when an order is in flight, then takes ``delay`` seconds to fill it
SLOW_ORDERS = """
import sys, time
from pathlib import Path
from reconciler.venues import paper

marker, delay = Path(sys.argv[1]), float(sys.argv[2])
original = paper.PaperExchange.create_order

def slow(self, **kwargs):
    with open(marker, "a") as handle:
        handle.write(kwargs["client_order_id"] + "\\n")
    time.sleep(delay)
    return original(self, **kwargs)

paper.PaperExchange.create_order = slow
from fastopt.cli import main
sys.exit(main(sys.argv[3:]))
"""


def start(tmp_path: Path, *options: str, delay: float = 0.0) -> subprocess.Popen:
    cfg = tmp_path / "portfolio_config.json"
    script = tmp_path / "slow_orders.py"
    script.write_text(SLOW_ORDERS)
    env = {**os.environ, "FASTOPT_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, str(script), str(tmp_path / "in_flight"), str(delay), "reconcile", "--config", str(cfg),
            "--strategies", str(tmp_path / "strategies"), "--prices", str(tmp_path / "prices.json"),
            "--interval", "0.05", "--full-every", "0.2", *options]
    return subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout_s: float = 20.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_the_order_in_flight_then_exits_0(tmp_path, sig):
    make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5},
                   states={"a": {"symbol": BTC, "position": 1.0}, "b": {"symbol": ETH, "position": -1.0}})
    proc = start(tmp_path, "--log-file", str(tmp_path / "reconciler.log"), delay=1.0)
    try:
        wait_for(lambda: (tmp_path / "in_flight").exists())  # the first order is between send and outcome
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    in_flight = (tmp_path / "in_flight").read_text().split()
    assert len(in_flight) == 1  # nothing was sent after the signal
    records = journal_lines(tmp_path)
    outcomes = {r["client_order_id"]: r for r in records if r["event"] == "outcome"}
    intents = [r for r in records if r["event"] == "intent"]
    assert len(intents) == 2 and set(outcomes) == {r["client_order_id"] for r in intents}  # nothing unfinished
    assert outcomes[in_flight[0]]["status"] == "filled"  # the order in flight finished and was journaled
    other = next(cid for cid in outcomes if cid != in_flight[0])
    assert outcomes[other]["status"] == "not_sent" and "stopping" in outcomes[other]["error"]
    stop_lines = [line for line in err.splitlines() if "reconciler stopped" in line]
    assert len(stop_lines) == 1 and sig.name in stop_lines[0], err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    log = (tmp_path / "reconciler.log").read_text()
    assert "reconciler started" in log and f"reconciler stopped ({sig.name}" in log


def test_sigterm_while_idle_and_json_log(tmp_path):
    make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    log = tmp_path / "reconciler.jsonl"
    proc = start(tmp_path, "--quiet", "--log-file", str(log), "--log-json")
    try:
        wait_for(lambda: (tmp_path / "last_cycle.json").exists() and (tmp_path / "reconciler.heartbeat").exists())
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        stopped_in = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and err == "" and stopped_in < 5
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[0]["event"] == "start" and records[-1]["event"] == "stop"
    assert records[-1]["exit_code"] == 0 and "SIGTERM" in records[-1]["message"]
    assert all({"ts", "level", "message"} <= set(r) for r in records)


def test_log_file_rotates(tmp_path):
    path = tmp_path / "r.log"
    reporter = Reporter(quiet=True, log_file=path, log_max_bytes=2048, log_backups=2)
    for i in range(400):
        reporter.info(f"line {i} " + "x" * 40)
    reporter.close()
    assert path.exists() and (tmp_path / "r.log.1").exists() and (tmp_path / "r.log.2").exists()
    assert not (tmp_path / "r.log.3").exists()
    assert all(p.stat().st_size <= 2048 for p in tmp_path.glob("r.log*"))
    assert path.read_text().splitlines()[-1].endswith(f"info  line 399 {'x' * 40}")


def test_bad_log_options_are_usage_errors(tmp_path, capsys):
    from fastopt.cli import main

    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    base = ["reconcile", "--once", "--quiet", "--config", str(cfg), "--strategies", str(tmp_path / "strategies"),
            "--prices", str(tmp_path / "prices.json")]
    assert main([*base, "--log-file", str(tmp_path / "no" / "such" / "dir" / "x.log")]) == 2
    assert "cannot open the log file" in capsys.readouterr().err
    assert main([*base, "--log-max-bytes", "10"]) == 2
    assert not (tmp_path / "orders.jsonl").exists()


def test_sigterm_during_a_once_run_finishes_the_order_and_exits_0(tmp_path):
    make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5},
                   states={"a": {"symbol": BTC, "position": 1.0}, "b": {"symbol": ETH, "position": -1.0}})
    proc = start(tmp_path, "--once", delay=1.0)
    try:
        wait_for(lambda: (tmp_path / "in_flight").exists())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    statuses = sorted(r["status"] for r in journal_lines(tmp_path) if r["event"] == "outcome")
    assert statuses == ["filled", "not_sent"]
    assert sum("stopping on SIGTERM" in line for line in err.splitlines()) == 1
    cycle = json.loads((tmp_path / "last_cycle.json").read_text())
    assert cycle["counts"] == {"filled": 1, "not_sent": 1} and cycle["sent"] == 1
