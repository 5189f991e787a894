"""Review fixes on the money path: restart after a halt, broken state files at start, price-source messages."""
from __future__ import annotations

import os

import pytest

import fastopt.prices
import reconciler.prices
from fakes.workspace import journal_lines, make_workspace, reconciler_for
from fastopt.cli import main
from fastopt.errors import InputError
from reconciler.prices import PriceSource

BTC = "BTC/USDT:USDT"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")


def test_halted_file_keeps_trading_halted_after_a_restart(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    (tmp_path / "HALTED").write_text('{"reason": "positions unreadable"}')
    rec = reconciler_for(cfg, "--manual-resume")  # a restart: the halt was decided by an earlier process
    report = rec.run_cycle()
    assert report.status == "halted" and report.plan.orders  # planned, not sent
    assert journal_lines(tmp_path) == [] and rec.venue("paper").fetch_positions() == {}
    assert rec.run_cycle().status == "halted"  # reads succeed, the file is still there: still halted
    os.unlink(tmp_path / "HALTED")
    assert rec.run_cycle().status == "ok" and BTC in rec.venue("paper").fetch_positions()


@pytest.mark.parametrize("broken", ["", '{"symbol": "BTC/USDT:USDT", "posi', '{"symbol": "BTC/USDT:USDT", '
                                    '"position": NaN}', '{"symbol": "BTC/USDT:USDT", "position": "1"}'])
def test_broken_state_with_no_earlier_good_state_never_closes_the_position(tmp_path, broken):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    assert reconciler_for(cfg).run_cycle().status == "ok"
    held = reconciler_for(cfg).venue("paper").fetch_positions()
    lines = len(journal_lines(tmp_path))
    (tmp_path / "strategies" / "a" / "state.json").write_text(broken)
    restarted = reconciler_for(cfg)  # no last good state in this process
    with pytest.raises(InputError, match="refusing to trade.*no earlier good state"):
        restarted.run_cycle()
    assert restarted.venue("paper").fetch_positions() == held and len(journal_lines(tmp_path)) == lines
    code = main(["reconcile", "--once", "--quiet", "--config", str(cfg), "--strategies",
                 str(tmp_path / "strategies"), "--prices", str(tmp_path / "prices.json")])
    assert code == 2 and len(journal_lines(tmp_path)) == lines


def test_reconciler_uses_the_fastopt_dns_helper():
    assert reconciler.prices.resolves is fastopt.prices.resolves


def test_fallback_price_message_says_what_really_happened(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("FASTOPT_OFFLINE")
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    monkeypatch.setenv("FASTOPT_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(reconciler.prices, "resolves", lambda host, timeout_s: False)
    prices = PriceSource(price_file=None)([BTC])
    assert prices[BTC] > 0
    err = capsys.readouterr().err
    assert "FASTOPT_OFFLINE" not in err  # the user never set it
    assert "fapi.binance.com does not resolve" in err and "synthetic" in err


def test_fallback_price_message_names_offline_when_the_user_set_it(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    monkeypatch.setenv("FASTOPT_CACHE_DIR", str(tmp_path / "empty-cache"))
    PriceSource(price_file=None)([BTC])
    err = capsys.readouterr().err
    assert "FASTOPT_OFFLINE=1 is set" in err and err.count("\n") == 1  # one line
