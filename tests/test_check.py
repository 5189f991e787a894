"""`fastopt check`: a paper setup passes; each broken part is one ✗ line with the reason and exit 1.

Against the fake Binance USD-M server (127.0.0.1): good keys pass the venue's self-check, a broken
secret and missing keys fail it; nothing is ever sent.
"""
from __future__ import annotations

import errno
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from fake_binance import API_KEY, SECRET, FakeBinance
from fakes.workspace import make_workspace, write_json
from fastopt.cli import main
from fastopt.files.stats import write_stats

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")


def workspace(root, **extra):
    cfg = make_workspace(root, weights={"a": 0.5, "b": 0.5},
                         states={"a": {"symbol": BTC, "position": 1.0}, "b": {"symbol": ETH, "position": -1.0}},
                         **extra)
    days = np.arange("2024-01-01", "2024-03-01", dtype="datetime64[D]")
    for i, name in enumerate(("a", "b")):
        returns = np.random.default_rng(i).normal(0.001, 0.02, len(days))
        write_stats(root / "strategies" / name / "stats.json", strategy=name, symbol=BTC, dates=days,
                    returns=returns)
    return cfg


def check(cfg, capsys, *extra):
    code = main(["check", "--json", "--config", str(cfg), "--strategies", str(cfg.parent / "strategies"),
                 "--prices", str(cfg.parent / "prices.json"), *extra])
    out = json.loads(capsys.readouterr().out)
    return code, {c["name"]: c for c in out["checks"]}, out


def failed(checks):
    return {name: c["detail"] for name, c in checks.items() if not c["ok"]}


def test_paper_setup_passes_and_nothing_is_written(tmp_path, capsys):
    cfg = workspace(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, checks, out = check(cfg, capsys)
    assert code == 0 and out["ok"] is True, failed(checks)
    assert list(checks) == ["config", "notify", "state.json files", "stats.json files", "order journal", "disk",
                            "reconciler setup", "keys paper", "venue paper", "prices paper"]
    assert checks["prices paper"]["detail"] == "paper: 2 price(s) plausible"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no journal, no paper book, no temp file
    # the human checklist: one ✓ line per check
    assert main(["check", "--config", str(cfg), "--strategies", str(tmp_path / "strategies"), "--prices",
                 str(tmp_path / "prices.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("✓ ") for line in lines) == 10 and lines[-1] == "all checks passed"


@pytest.mark.parametrize("breakage,name,reason", [
    ("config", "config", "sum to"),
    ("state", "state.json files", "1 of 2 invalid"),
    ("position", "state.json files", "outside +-3"),
    ("stats", "stats.json files", "stats file not found"),
    ("journal", "order journal", "damaged"),
    ("notify", "notify", "FASTOPT_TELEGRAM_TOKEN"),
    ("price", "prices paper", "jumped"),
    ("unknown", "prices paper", "no market"),
])
def test_each_broken_part_is_one_cross_and_exit_1(tmp_path, capsys, monkeypatch, breakage, name, reason):
    cfg = workspace(tmp_path)
    strategies = tmp_path / "strategies"
    if breakage == "config":
        write_json(cfg, {"account_value": 10_000, "leverage": 1.0, "weights": {"a": 0.5, "b": 0.7}})
    elif breakage == "state":
        (strategies / "a" / "state.json").write_text('{"symbol": "BTC/USDT:USDT", "position": 1')
    elif breakage == "position":
        write_json(strategies / "a" / "state.json", {"symbol": BTC, "position": 50.0})
    elif breakage == "stats":
        (strategies / "b" / "stats.json").unlink()
    elif breakage == "journal":
        (tmp_path / "orders.jsonl").write_text('{"event": "intent"\n{"event": "outcome"}\n')
    elif breakage == "notify":
        monkeypatch.delenv("FASTOPT_TELEGRAM_TOKEN", raising=False)
        raw = json.loads(cfg.read_text())
        write_json(cfg, {**raw, "notify": {"telegram_chat_id": "42"}})
    elif breakage == "price":
        # the last run saw BTC at 95,000: a price file now saying 40,000 is a jump to refuse
        ts = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
        write_json(tmp_path / "last_reconcile.json", {"ts": ts, "target": {}, "live": {},
                                                      "observed_prices": [["paper", BTC, 95000.0]]})
        write_json(tmp_path / "prices.json", {BTC: 40000.0, ETH: 3500.0})
    else:
        write_json(strategies / "b" / "state.json", {"symbol": "NOTAMARKET", "position": 1.0})
    code, checks, out = check(cfg, capsys)
    assert code == 1 and out["ok"] is False
    # a damaged journal also stops the reconciler from being built (venues are then not checked)
    assert set(failed(checks)) == ({name, "reconciler setup"} if breakage == "journal" else {name}), failed(checks)
    assert reason in checks[name]["detail"]


def test_unwritable_folder_fails_the_disk_check(tmp_path, capsys, monkeypatch):
    import tempfile

    cfg = workspace(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    code, checks, _ = check(cfg, capsys)
    assert code == 1 and failed(checks) == {"disk": "OSError: [Errno 28] No space left on device"}


@pytest.fixture
def fake():
    with FakeBinance(slow_s=2.0) as server:
        yield server


def binance(tmp_path, fake):
    cfg = workspace(tmp_path)
    (tmp_path / "exchange.json").write_text(json.dumps({"api_base_url": fake.base_url, "timeout": 1500}))
    return cfg, ("--exchange", "binanceusdm", "--exchange-config", str(tmp_path / "exchange.json"), "--backoff",
                 "0.01", "--read-retries", "1")


@pytest.mark.integration
def test_fake_binance_good_keys_pass(tmp_path, capsys, monkeypatch, fake):
    monkeypatch.setenv("BINANCEUSDM_API_KEY", API_KEY)
    monkeypatch.setenv("BINANCEUSDM_SECRET", SECRET)
    cfg, options = binance(tmp_path, fake)
    code, checks, _ = check(cfg, capsys, *options)
    assert code == 0, failed(checks)
    assert checks["venue binanceusdm"]["detail"].startswith("binanceusdm: reachable, self-check passed")
    assert "checked against the reference price" in checks["prices binanceusdm"]["detail"]
    assert not [r for r in fake.requests if r[0] in ("POST", "DELETE")]  # nothing sent


@pytest.mark.integration
def test_fake_binance_broken_or_missing_keys_fail(tmp_path, capsys, monkeypatch, fake):
    monkeypatch.setenv("BINANCEUSDM_API_KEY", API_KEY)
    monkeypatch.setenv("BINANCEUSDM_SECRET", "not-the-secret")
    cfg, options = binance(tmp_path, fake)
    code, checks, _ = check(cfg, capsys, *options)
    assert code == 1 and set(failed(checks)) == {"venue binanceusdm"}
    detail = checks["venue binanceusdm"]["detail"]
    assert "not-the-secret" not in detail and "signature" in detail.lower()
    monkeypatch.delenv("BINANCEUSDM_SECRET")
    code, checks, _ = check(cfg, capsys, *options)
    assert code == 1 and set(failed(checks)) == {"keys binanceusdm"}
    assert "BINANCEUSDM_SECRET" in checks["keys binanceusdm"]["detail"]
