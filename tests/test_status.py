"""`fastopt status` / reconciler.health.collect_status: healthy exits 0, each problem exits 4 and is named."""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from fakes.workspace import make_workspace, reconciler_for, write_json
from fastopt.cli import main
from reconciler.errors import InvalidOrder
from reconciler.health import EXIT_UNHEALTHY, collect_status, human_age, lock_holder
from reconciler.runlock import RunLock

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")


@pytest.fixture
def traded(tmp_path, capsys):
    """A paper workspace after one real `fastopt reconcile --once` (two orders filled)."""
    cfg = make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5},
                         states={"a": {"symbol": BTC, "position": 1.0}, "b": {"symbol": ETH, "position": -1.0}})
    assert main(["reconcile", "--once", "--quiet", "--config", str(cfg), "--strategies", str(tmp_path / "strategies"),
                 "--prices", str(tmp_path / "prices.json")]) == 0
    capsys.readouterr()
    return cfg


def status_json(cfg, capsys, *extra):
    code = main(["status", "--config", str(cfg), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_healthy_after_a_cycle_exit_0_with_every_field(traded, capsys):
    code, out = status_json(traded, capsys)
    assert code == 0 and out["healthy"] is True and out["problems"] == []
    assert out["heartbeat"]["age_s"] < 60 and out["stop"] is False and out["halted"]["present"] is False
    assert out["unresolved_intents"] == [] and out["lock"]["held"] is False
    cycle = out["last_cycle"]
    assert cycle["status"] == "ok" and cycle["planned"] == 2 and cycle["sent"] == 2
    assert cycle["counts"] == {"filled": 2} and cycle["age_s"] < 60
    assert cycle["equity"]["by_venue"] == {"paper": pytest.approx(10_000.0)}
    rows = {r["symbol"]: r for r in out["rows"]}
    assert rows[BTC]["target_notional"] == pytest.approx(5000) and abs(rows[BTC]["gap_notional"]) < 5
    paper = out["equity"]["by_venue"]["paper"]
    # starting cash rebuilt from the fills; equity = cash + positions x the snapshot's prices; fees + slippage lost
    assert paper["start"] == pytest.approx(10_000.0)
    assert paper["pnl"] == pytest.approx(paper["equity"] - 10_000.0) and -20 < paper["pnl"] < 0
    assert out["equity"]["total"] == pytest.approx(paper["equity"])
    assert out["equity"]["pnl_vs_account_value"] == pytest.approx(paper["equity"] - 10_000.0)
    assert out["config"]["age_s"] < 60 and [s["strategy"] for s in out["states"]] == ["a", "b"]
    assert all(s["age_s"] < 60 for s in out["states"])


@pytest.mark.parametrize("problem,expected", [
    ("stop", "kill switch"),
    ("halted", "HALTED"),
    ("intent", "unresolved order intent"),
    ("damaged", "journal"),
])
def test_each_problem_exits_4_and_is_named(traded, capsys, problem, expected):
    folder = traded.parent
    if problem == "stop":
        (folder / "STOP").write_text("")
    elif problem == "halted":
        write_json(folder / "HALTED", {"halted_at": "2030-01-01T00:00:00Z", "reason": "cannot read paper"})
    elif problem == "intent":
        with open(folder / "orders.jsonl", "a") as handle:
            handle.write(json.dumps({"event": "intent", "ts": "2030-01-01T00:00:00.000Z",
                                     "client_order_id": "fo" + "a" * 30, "venue": "paper", "symbol": BTC,
                                     "side": "buy", "amount": "0.01", "reduce_only": False, "leg": "open"}) + "\n")
    else:
        with open(folder / "orders.jsonl", "r+b") as handle:
            handle.write(b"{garbage\n")
    code, out = status_json(traded, capsys)
    assert code == EXIT_UNHEALTHY and out["healthy"] is False
    assert any(expected in p for p in out["problems"]), out["problems"]
    if problem == "intent":
        assert out["unresolved_intents"][0]["client_order_id"] == "fo" + "a" * 30


def test_stale_heartbeat_and_four_day_old_snapshot(traded, capsys):
    old = time.time() - 4 * 86400 - 3600
    os.utime(traded.parent / "reconciler.heartbeat", (old, old))
    code, out = status_json(traded, capsys, "--stale-after", "120")
    assert code == EXIT_UNHEALTHY
    assert any(p.startswith("heartbeat stale: last 4.0 d ago") for p in out["problems"]), out["problems"]
    # four days later everything the reconciler wrote is stale, each named
    later = collect_status(traded, now=datetime.now(timezone.utc) + timedelta(days=4))
    text = "\n".join(later["problems"])
    assert "heartbeat stale" in text and "last cycle stale" in text and "snapshot stale" in text and "4.0 d ago" in text
    assert later["healthy"] is False
    # a generous limit (cron every 10 min) makes a 5-minute-old heartbeat fine
    recent = time.time() - 300
    os.utime(traded.parent / "reconciler.heartbeat", (recent, recent))
    assert collect_status(traded, stale_after_s=900)["healthy"] is True
    assert collect_status(traded, stale_after_s=120)["healthy"] is False


def test_stop_blocked_cycle_is_reported_not_hidden(traded, capsys):
    """The issue's case: a cycle blocked by STOP printed "2 order(s) planned" and exit 0."""
    folder = traded.parent
    (folder / "STOP").write_text("")
    write_json(folder / "strategies" / "a" / "state.json", {"symbol": BTC, "position": -1.0})
    assert main(["reconcile", "--once", "--quiet", "--config", str(traded), "--strategies",
                 str(folder / "strategies"), "--prices", str(folder / "prices.json")]) == 1
    capsys.readouterr()
    code, out = status_json(traded, capsys)
    assert code == EXIT_UNHEALTHY
    assert out["last_cycle"]["status"] == "stopped" and out["last_cycle"]["sent"] == 0
    assert out["last_cycle"]["planned"] >= 1
    assert any(p.startswith("last cycle stopped: kill switch") for p in out["problems"])
    assert any(p.startswith("kill switch:") for p in out["problems"])
    # human output: the verdict and the problems come first, in the first lines
    assert main(["status", "--config", str(traded)]) == EXIT_UNHEALTHY
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("✗ UNHEALTHY")
    assert any("kill switch" in line for line in lines[1:4])
    assert any(line.startswith("last cycle") and "stopped" in line for line in lines)


def test_a_rejection_in_the_last_cycle_is_a_problem(tmp_path, capsys):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    rec = reconciler_for(cfg)
    paper = rec.venue("paper")

    def refuse(**kwargs):
        raise InvalidOrder("paper: margin is insufficient")

    paper.create_order = refuse
    report = rec.run_cycle()
    assert report.counts() == {"rejected": 1}
    (tmp_path / "reconciler.heartbeat").touch()
    code, out = status_json(cfg, capsys)
    assert code == EXIT_UNHEALTHY
    assert out["last_cycle"]["counts"] == {"rejected": 1}
    assert "last cycle: 1 order(s) rejected" in out["problems"]
    assert any("rejected: paper: margin is insufficient" in p for p in out["problems"])
    assert any(e["kind"] == "rejection" for e in out["last_cycle"]["events"])


def test_refused_cycle_is_recorded_in_last_cycle(traded, capsys):
    folder = traded.parent
    write_json(traded, {"account_value": 10_000, "leverage": 1.0, "weights": {"a": 0.7, "b": 0.7}})
    rec = reconciler_for(traded)
    with pytest.raises(Exception, match="sum to"):
        rec.run_cycle()
    cycle = json.loads((folder / "last_cycle.json").read_text())
    assert cycle["status"] == "refused" and "sum to" in cycle["message"]
    code, out = status_json(traded, capsys)
    assert code == EXIT_UNHEALTHY and any(p.startswith("last cycle refused:") for p in out["problems"])


def test_lock_holder_is_seen_without_touching_the_lock(traded):
    folder = traded.parent
    with RunLock.acquire(folder, config_path=traded):
        held = lock_holder(folder)
        assert held["held"] is True and held["pid"] == os.getpid() and held["info"]["pid"] == os.getpid()
        # status did not take or break the lock: a second reconciler is still refused
        with pytest.raises(Exception, match="another reconciler"):
            RunLock.acquire(folder, config_path=traded)
        assert collect_status(traded)["lock"]["held"] is True
    assert lock_holder(folder)["held"] is False


def test_real_venue_equity_from_last_cycle_against_account_value(tmp_path, capsys):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}},
                         account_value=10_000.0)
    now = datetime.now(timezone.utc)
    write_json(tmp_path / "last_cycle.json", {
        "ts": now.isoformat().replace("+00:00", "Z"), "status": "ok", "message": "", "problems": [],
        "counts": {}, "planned": 0, "sent": 0, "equity": {"by_venue": {"binanceusdm": 10_450.5}, "total": 10_450.5}})
    (tmp_path / "reconciler.heartbeat").touch()
    out = collect_status(cfg, now=now)
    assert out["equity"]["by_venue"]["binanceusdm"]["equity"] == 10_450.5
    assert out["equity"]["total"] == 10_450.5 and out["equity"]["pnl_vs_account_value"] == pytest.approx(450.5)
    # no snapshot yet: no table, and that is not hidden either
    assert out["snapshot"] is None and out["rows"] == []


def test_nothing_ran_yet_is_exit_3_and_a_missing_config_exit_2(tmp_path, capsys):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    assert main(["status", "--config", str(cfg)]) == 3
    assert main(["status", "--config", str(tmp_path / "nope" / "portfolio_config.json")]) == 2
    assert "config not found" in capsys.readouterr().err


@pytest.mark.parametrize("seconds,text", [(None, "never"), (12, "12 s ago"), (600, "10.0 min ago"),
                                          (7200, "2.0 h ago"), (4.3 * 86400, "4.3 d ago")])
def test_human_age(seconds, text):
    assert human_age(seconds) == text
