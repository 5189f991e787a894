"""Review fixes on the money path: restart after a halt, broken state files at start, price-source messages."""
from __future__ import annotations

import os

import pytest

import fastopt.backtest.prices
import reconciler.venues.prices
from fakes.workspace import journal_lines, make_workspace, reconciler_for
from fastopt.cli import main
from fastopt.errors import InputError
from reconciler.venues.prices import PriceSource

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
    assert reconciler.venues.prices.resolves is fastopt.backtest.prices.resolves


def test_fallback_price_message_says_what_really_happened(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("FASTOPT_OFFLINE")
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    monkeypatch.setenv("FASTOPT_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(reconciler.venues.prices, "resolves", lambda host, timeout_s: False)
    prices = PriceSource(price_file=None)([BTC])
    assert prices[BTC] > 0
    err = capsys.readouterr().err
    assert "FASTOPT_OFFLINE" not in err  # the user never set it
    assert "fapi.binance.com does not resolve" in err and "BTC-USD history embedded in fastopt" in err


def test_fallback_price_message_names_offline_when_the_user_set_it(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    monkeypatch.setenv("FASTOPT_CACHE_DIR", str(tmp_path / "empty-cache"))
    PriceSource(price_file=None)([BTC])
    err = capsys.readouterr().err
    assert "FASTOPT_OFFLINE=1 is set" in err and err.count("\n") == 1  # one line


def test_dry_run_creates_and_changes_no_file(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    before = sorted(p.name for p in tmp_path.iterdir())
    report = reconciler_for(cfg, "--dry-run").run_cycle()
    assert report.status == "dry_run" and report.plan.orders
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no paper_exchange.sqlite, journal, snapshot


def test_dry_run_reads_an_existing_paper_book_without_touching_it(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    rec = reconciler_for(cfg)
    assert rec.run_cycle().status == "ok"
    rec.venue("paper").close()
    db = tmp_path / "paper_exchange.sqlite"
    stamp, journal = db.read_bytes(), (tmp_path / "orders.jsonl").read_bytes()
    (tmp_path / "strategies" / "a" / "state.json").write_text('{"symbol": "BTC/USDT:USDT", "position": -1.0}')
    dry = reconciler_for(cfg, "--dry-run")
    report = dry.run_cycle()
    assert [(o.leg, o.side) for o in report.plan.orders] == [("close", "sell"), ("open", "sell")]  # saw the long
    dry.venue("paper").close()
    assert db.read_bytes() == stamp and (tmp_path / "orders.jsonl").read_bytes() == journal


def test_dry_run_leaves_unfinished_intents_to_the_real_run(tmp_path):
    from reconciler.journal import OrderJournal
    from reconciler.model import PlannedOrder
    from decimal import Decimal

    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    journal = OrderJournal(tmp_path / "orders.jsonl")
    journal.record_intents([("fo-crashed", PlannedOrder("paper", BTC, "buy", Decimal("0.1"), False, "open",
                                                        95000.0, False), 1.0, "c1")])
    journal.close()
    text = (tmp_path / "orders.jsonl").read_bytes()
    assert reconciler_for(cfg, "--dry-run").run_cycle().status == "dry_run"
    assert (tmp_path / "orders.jsonl").read_bytes() == text


@pytest.mark.parametrize("settings, reason", [
    ({"apiKey": "k"}, "must not hold credentials"),
    ({"secret": "s", "timeout": 1000}, "must not hold credentials"),
    ({"verbose": True}, "verbose"),
    ({"options": {"maxRetriesOnFailure": 2}}, "maxRetriesOnFailure must stay 0"),
    ({"options": 5}, "'options' must be an object"),
    ({"options": [1]}, "'options' must be an object"),
])
def test_credentials_verbose_and_order_retries_are_refused_in_exchange_settings(settings, reason):
    from reconciler.venues.ccxt_venue import build_ccxt_exchange

    env = {"BINANCEUSDM_API_KEY": "k", "BINANCEUSDM_SECRET": "s"}
    with pytest.raises(InputError, match=reason):
        build_ccxt_exchange("binanceusdm", settings, env)


def test_exchange_settings_in_the_config_cannot_carry_keys(tmp_path, capsys):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}},
                         exchange_settings={"binanceusdm": {"apiKey": "AKIA-visible", "secret": "shh"}})
    code = main(["reconcile", "--once", "--exchange", "binanceusdm", "--config", str(cfg), "--strategies",
                 str(tmp_path / "strategies")])
    err = capsys.readouterr().err
    assert code == 2 and "must not hold credentials" in err and "shh" not in err and "AKIA-visible" not in err
    assert journal_lines(tmp_path) == []


class AsyncMatching:
    """Wraps the paper venue like an exchange that acknowledges a market order as ``open`` and fills it
    a moment later: the fill lands (and shows in positions) only at the next lookup of that order."""

    def __init__(self, inner):
        self.inner, self.name, self.waiting, self.sent = inner, inner.name, {}, 0

    def create_order(self, *, symbol, side, amount, reduce_only, client_order_id):
        from reconciler.model import OrderResult

        self.sent += 1
        self.waiting[client_order_id] = dict(symbol=symbol, side=side, amount=amount, reduce_only=reduce_only)
        return OrderResult(client_order_id, "open", 0.0, None, "x1")

    def fetch_order_by_client_id(self, *, symbol, client_order_id):
        order = self.waiting.pop(client_order_id, None)
        if order is not None:
            self.inner.create_order(client_order_id=client_order_id, **order)
        return self.inner.fetch_order_by_client_id(symbol=symbol, client_order_id=client_order_id)

    def __getattr__(self, item):
        return getattr(self.inner, item)


def test_an_order_acknowledged_as_open_is_not_sent_again_before_it_is_final(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    rec = reconciler_for(cfg)
    venue = rec.venues["paper"] = AsyncMatching(rec.venue("paper"))
    first = rec.run_cycle()
    assert first.status == "incomplete" and venue.sent == 1 and len(rec.journal.unfinished()) == 1
    second = rec.run_cycle()  # looks the open order up first: it is filled now, positions show it
    assert second.status == "ok" and second.plan.orders == [] and venue.sent == 1
    assert rec.venue("paper").fetch_positions()[BTC] == pytest.approx(10_000 / 95_000, abs=1e-5)
    assert [r["status"] for r in journal_lines(tmp_path) if r["event"] == "outcome"] == ["filled"]


def test_a_second_reconciler_on_the_same_config_refuses_to_start(tmp_path, capsys):
    import subprocess
    import sys

    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from reconciler.runlock import RunLock; "
         "RunLock.acquire(sys.argv[1]); print('locked', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = ["reconcile", "--once", "--quiet", "--config", str(cfg), "--strategies", str(tmp_path / "strategies"),
                "--prices", str(tmp_path / "prices.json")]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert f"another reconciler (pid {holder.pid}" in err and "is running on" in err
        assert journal_lines(tmp_path) == [] and not (tmp_path / "paper_exchange.sqlite").exists()
        assert main([*args, "--dry-run"]) == 0  # a dry run only looks
    finally:
        holder.kill()
        holder.wait()
    assert main(args) == 0 and len(journal_lines(tmp_path)) == 2  # lock freed with its process


@pytest.mark.parametrize("paper, reason", [
    ({"markets": {BTC: {"amount_step": "abc"}}}, "amount_step of BTC/USDT:USDT must be a finite number > 0"),
    ({"markets": {BTC: {"amount_step": "NaN"}}}, "amount_step"),
    ({"markets": {BTC: {"amount_step": "Infinity"}}}, "amount_step"),
    ({"markets": {BTC: {"amount_step": 0}}}, "amount_step"),
    ({"markets": {BTC: {"amount_step": "0.001", "min_amount": "x"}}}, "min_amount"),
    ({"markets": {BTC: {"amount_step": "0.001", "min_cost": -1}}}, "min_cost"),
    ({"markets": {BTC: {"amount_step": True}}}, "amount_step"),
    ({"markets": {BTC: 5}}, "must be an object with amount_step"),
    ({"markets": [1]}, "markets must be an object"),
    ({"fee_bps": -5}, "fee_bps must be a finite number >= 0"),
    ({"slippage_bps": "x"}, "slippage_bps"),
])
def test_bad_paper_settings_are_one_line_input_errors(tmp_path, capsys, paper, reason):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}},
                         exchange_settings={"paper": paper})
    code = main(["reconcile", "--once", "--config", str(cfg), "--strategies", str(tmp_path / "strategies"),
                 "--prices", str(tmp_path / "prices.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and reason in err and "internal error" not in err and "\n" not in err
    assert journal_lines(tmp_path) == []


def test_a_client_order_id_is_never_reused_even_when_the_cycle_id_repeats(tmp_path, monkeypatch):
    import reconciler.engine as engine

    class FrozenClock:  # the clock stepped back and the pid and the cycle counter repeat after a restart
        @staticmethod
        def now(tz=None):
            from datetime import datetime as real

            return real(2030, 1, 1, tzinfo=tz)

    monkeypatch.setattr(engine, "datetime", FrozenClock)
    monkeypatch.setattr(engine.os, "getpid", lambda: 1)
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    assert reconciler_for(cfg).run_cycle().status == "ok"
    os.unlink(tmp_path / "paper_exchange.sqlite")  # a fresh paper book: the same order is planned again
    report = reconciler_for(cfg).run_cycle()  # restarted: same cycle id, same order, same index
    assert report.status == "ok" and [r["status"] for r in report.results] == ["filled"]
    ids = [r["client_order_id"] for r in journal_lines(tmp_path) if r["event"] == "intent"]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_stop_file_created_mid_cycle_stops_the_remaining_orders(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, leverage=1.0,
                         states={"a": {"positions": {BTC: 0.3, "ETH/USDT:USDT": -0.3, "SOL/USDT:USDT": 0.3}}})
    rec = reconciler_for(cfg, after_send_hook=lambda order, cid: (tmp_path / "STOP").write_text(""))
    report = rec.run_cycle()
    assert len(report.plan.orders) == 3
    assert [r["status"] for r in report.results] == ["filled", "not_sent", "not_sent"]
    assert len(rec.venue("paper").fetch_positions()) == 1 and not rec.journal.unfinished()
    assert report.status == "incomplete"
    assert rec.run_cycle().status == "stopped" and len(rec.venue("paper").fetch_positions()) == 1


def test_a_new_journal_is_durable_with_its_directory_entry(tmp_path, monkeypatch):
    import stat
    from decimal import Decimal

    from reconciler.journal import OrderJournal
    from reconciler.model import PlannedOrder

    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    journal = OrderJournal(tmp_path / "orders.jsonl")
    order = PlannedOrder("paper", BTC, "buy", Decimal("0.1"), False, "open", 95000.0, False)
    journal.record_intents([("fo-1", order, 1.0, "c1")])
    assert synced == ["file", "dir"]  # the intent, then the new file's directory entry
    journal.record_intents([("fo-2", order, 1.0, "c1")])
    assert synced == ["file", "dir", "file"]
