"""Attacks on the reconciler where the venue does not matter (the embedded paper exchange).

Each test reproduces a way an attack on main doubled, misplaced or silently
dropped a position, and checks the guard that stops it: absurd state values,
two spellings of one market, an account_value typo or a leverage jump, a
rejection retried forever, an order stuck open, a full disk, a journal deleted
or renamed, unpriced symbols, and reports that miscounted fills.
"""
from __future__ import annotations

import errno
import json
import os
from decimal import Decimal

import pytest

from fakes.workspace import journal_lines, make_workspace, reconciler_for, write_json
from fastopt.cli import main
from fastopt.errors import InputError
from reconciler.errors import InvalidOrder
from reconciler.model import OrderResult

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"


def paper_positions(rec):
    return rec.venue("paper").fetch_positions()


def cli(tmp_path, *extra):
    return main(["reconcile", "--once", "--quiet", "--config", str(tmp_path / "portfolio_config.json"),
                 "--strategies", str(tmp_path / "strategies"), "--prices", str(tmp_path / "prices.json"),
                 "--confirm-delay", "0", *extra])


# -- item 7: one absurd state value ------------------------------------------------------------
def test_an_absurd_position_keeps_the_last_good_state_and_is_a_problem(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5},
                         states={"a": {"symbol": BTC, "position": 1.0}, "b": {"symbol": SOL, "position": 1.0}})
    rec = reconciler_for(cfg)
    assert rec.run_cycle().status == "ok"
    before = paper_positions(rec)
    write_json(tmp_path / "strategies" / "b" / "state.json", {"symbol": SOL, "position": 1e9})
    report = rec.run_cycle()
    assert report.status == "degraded" and any("outside +-3" in p for p in report.problems)
    assert report.plan.orders == [] and paper_positions(rec) == before  # BTC not closed, SOL not built up
    assert sum(abs(v) for v in report.target_notional.values()) == pytest.approx(10_000.0)


def test_an_absurd_position_with_no_good_state_refuses_the_cycle(tmp_path):
    make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5},
                   states={"a": {"symbol": BTC, "position": 1.0}, "b": {"symbol": SOL, "position": -1e9}})
    assert cli(tmp_path) == 2
    assert journal_lines(tmp_path) == []
    assert cli(tmp_path, "--max-position", "2e9") == 0  # allowed by the option; the gross cap then scales
    assert journal_lines(tmp_path)


# -- item 8: two spellings of one market --------------------------------------------------------
def test_two_spellings_of_one_market_net_out_and_an_unknown_symbol_is_an_error(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 0.4, "b": 0.4, "c": 0.2},
                         states={"a": {"symbol": "BTCUSDT", "position": 1.0},
                                 "b": {"symbol": BTC, "position": -1.0},
                                 "c": {"positions": {ETH: 1.0, "???": 1.0}}})
    rec = reconciler_for(cfg)
    report = rec.run_cycle()
    assert report.target_notional[("paper", BTC)] == 0.0
    assert BTC not in paper_positions(rec) and ETH in paper_positions(rec)  # ETH still trades
    assert report.status == "degraded" and any("'???'" in p or "??? " in p for p in report.problems)
    assert cli(tmp_path) == 1


# -- item 10: the config against the account ----------------------------------------------------
def test_an_account_value_typo_is_never_traded(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    rec = reconciler_for(cfg)
    assert rec.run_cycle().status == "ok"
    held = paper_positions(rec)[BTC]
    config = json.loads(cfg.read_text())
    write_json(cfg, {**config, "account_value": 100_000.0})  # x10 on a 10k account
    report = rec.run_cycle()
    assert report.status == "degraded" and any("equity" in p for p in report.problems)
    assert paper_positions(rec)[BTC] == held  # still reconciled to the last accepted config
    assert cli(tmp_path) == 1
    assert cli(tmp_path, "--accept-config") == 0  # the operator cannot accept a typo past the equity
    assert reconciler_for(cfg).run_cycle().status == "degraded" and paper_positions(rec)[BTC] == held


def test_a_typo_on_the_first_run_refuses_to_trade(tmp_path):
    make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}},
                   account_value=10_000.0)
    rec = reconciler_for(tmp_path / "portfolio_config.json")
    rec.venue("paper")  # the paper book is created with the 10k account
    config = json.loads((tmp_path / "portfolio_config.json").read_text())
    write_json(tmp_path / "portfolio_config.json", {**config, "account_value": 100_000.0})
    report = rec.run_cycle()
    assert report.status == "refused" and paper_positions(rec) == {}


def test_a_leverage_jump_waits_for_the_operator(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}},
                         leverage=0.5)
    assert cli(tmp_path) == 0
    config = json.loads(cfg.read_text())
    write_json(cfg, {**config, "leverage": 5.0})
    assert cli(tmp_path) == 1
    rec = reconciler_for(cfg)
    assert rec.run_cycle().plan.orders == []
    assert paper_positions(rec)[BTC] == pytest.approx(5_000 / 95_000, abs=1e-5)
    assert cli(tmp_path, "--accept-config") == 0
    assert cli(tmp_path) == 0
    assert paper_positions(reconciler_for(cfg))[BTC] == pytest.approx(50_000 / 95_000, abs=1e-5)
    assert not (tmp_path / "accept_config.json").exists()
    write_json(cfg, {**config, "leverage": 0.25})  # de-risking is never held back
    assert cli(tmp_path) == 0


class Wrapped:
    """A venue wrapper: what a subclass does not define goes to the wrapped paper venue."""

    def __init__(self, inner, symbol=None):
        self.inner, self.symbol, self.name = inner, symbol, inner.name

    def __getattr__(self, item):
        return getattr(self.inner, item)


def btc_eth_with(tmp_path, wrapper, *options):
    """A BTC + ETH workspace whose paper venue is wrapped by ``wrapper(venue, BTC)``; a settable clock."""
    cfg = make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5},
                         states={"a": {"symbol": BTC, "position": 1.0}, "b": {"symbol": ETH, "position": 1.0}})
    now = [1000.0]
    rec = reconciler_for(cfg, *options)
    rec.clock = lambda: now[0]
    venue = rec.venues["paper"] = wrapper(rec.venue("paper"), BTC)
    return rec, venue, now


# -- rejections ---------------------------------------------------------------------------------
class Refusing(Wrapped):
    """Refuses every order on ``symbol`` (as a venue does for margin)."""

    attempts = 0

    def create_order(self, **kw):
        if kw["symbol"] == self.symbol:
            self.attempts += 1
            raise InvalidOrder("margin is insufficient (-2019)")
        return self.inner.create_order(**kw)


def test_a_rejection_is_a_problem_backs_off_and_never_blocks_other_symbols(tmp_path):
    rec, venue, now = btc_eth_with(tmp_path, Refusing, "--reject-backoff", "60")
    report = rec.run_cycle()
    assert report.status == "degraded" and report.counts() == {"filled": 1, "rejected": 1}
    assert any("rejected" in p for p in report.problems) and ETH in paper_positions(rec)
    now[0] += 30
    again = rec.run_cycle()
    assert venue.attempts == 1 and again.status == "degraded" and "backoff" in " ".join(again.problems)
    now[0] += 31
    rec.run_cycle()
    assert venue.attempts == 2  # tried again after the backoff ...
    now[0] += 61
    rec.run_cycle()
    assert venue.attempts == 2  # ... which doubled to 120 s
    rejected = [r for r in journal_lines(tmp_path) if r.get("status") == "rejected"]
    assert len(rejected) == 2


# -- orders stuck open --------------------------------------------------------------------------
class StuckOpen(Wrapped):
    """Orders on ``symbol`` rest open with 40 % filled until cancelled."""

    def __init__(self, inner, symbol):
        super().__init__(inner, symbol)
        self.working: dict[str, dict] = {}
        self.cancelled: list[str] = []

    def create_order(self, *, symbol, side, amount, reduce_only, client_order_id):
        if symbol != self.symbol:
            return self.inner.create_order(symbol=symbol, side=side, amount=amount, reduce_only=reduce_only,
                                           client_order_id=client_order_id)
        part = (amount * Decimal("0.4")).quantize(amount)
        self.inner.create_order(symbol=symbol, side=side, amount=part, reduce_only=reduce_only,
                                client_order_id=client_order_id)
        self.working[client_order_id] = {"amount": amount, "filled": part}
        return OrderResult(client_order_id, "partially_filled", float(part), None, "x")

    def fetch_order_by_client_id(self, *, symbol, client_order_id):
        order = self.working.get(client_order_id)
        if order is None:
            return self.inner.fetch_order_by_client_id(symbol=symbol, client_order_id=client_order_id)
        status = "canceled" if client_order_id in self.cancelled else "partially_filled"
        return OrderResult(client_order_id, status, float(order["filled"]), None, "x")

    def cancel_order_by_client_id(self, *, symbol, client_order_id):
        self.cancelled.append(client_order_id)
        return self.fetch_order_by_client_id(symbol=symbol, client_order_id=client_order_id)


def test_an_order_stuck_open_blocks_only_its_symbol_and_is_cancelled_after_the_timeout(tmp_path):
    rec, venue, now = btc_eth_with(tmp_path, StuckOpen, "--cancel-after", "60")
    first = rec.run_cycle()
    assert first.counts() == {"filled": 1, "partially_filled": 1}
    write_json(tmp_path / "strategies" / "b" / "state.json", {"symbol": ETH, "position": 0.5})
    now[0] += 10
    second = rec.run_cycle()  # BTC still working: blocked; ETH is traded all the same
    assert [o.symbol for o in second.plan.orders] == [ETH] and second.status == "degraded"
    assert any(BTC in p for p in second.problems) and venue.cancelled == []
    now[0] += 60
    third = rec.run_cycle()  # cancelled after 60 s, then re-planned on the position it left
    assert len(venue.cancelled) == 1
    assert [(o.symbol, o.leg) for o in third.plan.orders] == [(BTC, "adjust")]
    outcomes = [r for r in journal_lines(tmp_path) if r["event"] == "outcome" and r["status"] == "canceled"]
    assert len(outcomes) == 1 and outcomes[0]["filled"] > 0  # the partial fill is reported as it is


# -- disk full ----------------------------------------------------------------------------------
def test_a_full_disk_sends_nothing_leaves_no_torn_record_and_recovers(tmp_path, monkeypatch):
    import reconciler.journal as journal_module

    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    rec = reconciler_for(cfg)
    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module.os, "write", full)
    report = rec.run_cycle()
    assert paper_positions(rec) == {} and report.results[0]["status"] == "not_sent"
    assert not report.ok and any("ENOSPC" in p or "space" in p for p in report.problems)
    path = tmp_path / "orders.jsonl"
    assert not path.exists() or path.read_bytes() in (b"",) or path.read_bytes().endswith(b"\n")
    monkeypatch.setattr(journal_module.os, "write", real_write)
    assert rec.run_cycle().status == "ok" and BTC in paper_positions(rec)
    assert [r["event"] for r in journal_lines(tmp_path)] == ["intent", "outcome"]


# -- journal deleted or renamed -----------------------------------------------------------------
def test_a_journal_deleted_while_running_stops_trading(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    rec = reconciler_for(cfg)
    assert rec.run_cycle().status == "ok"
    os.unlink(tmp_path / "orders.jsonl")
    write_json(tmp_path / "strategies" / "a" / "state.json", {"symbol": BTC, "position": -1.0})
    report = rec.run_cycle()
    assert report.status == "failed" and not report.ok
    assert paper_positions(rec)[BTC] > 0 and not (tmp_path / "orders.jsonl").exists()


class WithOpenOrders(Wrapped):
    """Shows ``orders`` ((symbol, OrderResult) pairs) as open on the venue."""

    def __init__(self, inner, orders):
        super().__init__(inner)
        self.orders = orders

    def open_orders(self, prefix):
        return [(symbol, r) for symbol, r in self.orders if r.client_order_id.startswith(prefix)]


def test_a_missing_journal_with_our_open_orders_on_the_venue_sends_nothing(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    assert reconciler_for(cfg).run_cycle().status == "ok"
    os.rename(tmp_path / "orders.jsonl", tmp_path / "orders-old.jsonl")
    write_json(tmp_path / "strategies" / "a" / "state.json", {"symbol": BTC, "position": -1.0})
    rec = reconciler_for(cfg)
    assert rec.history_unknown
    rec.venues["paper"] = WithOpenOrders(rec.venue("paper"), [(BTC, OrderResult("fo" + "a" * 30, "open"))])
    report = rec.run_cycle()
    assert report.status == "blocked" and "open order" in report.message and report.results == []
    rec.venues["paper"].orders = []
    assert rec.run_cycle().status == "ok" and paper_positions(rec)[BTC] < 0


# -- unpriced symbols ---------------------------------------------------------------------------
def test_a_target_that_cannot_be_priced_is_an_error_of_the_cycle(tmp_path):
    make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5},
                   states={"a": {"symbol": BTC, "position": 1.0}, "b": {"symbol": "DOGE/USDT:USDT", "position": 1.0}})
    assert cli(tmp_path) == 1
    rec = reconciler_for(tmp_path / "portfolio_config.json")
    report = rec.run_cycle()
    assert any("DOGE" in p and "no price" in p for p in report.problems) and BTC in paper_positions(rec)


def test_bad_state_on_first_read_is_still_an_input_error(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 5.0}})
    with pytest.raises(InputError, match="outside"):
        reconciler_for(cfg).run_cycle()


def test_a_price_jump_is_checked_across_runs_too(tmp_path):
    """cron runs `--once` in a new process each time: the prices seen last come from the snapshot."""
    make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5},
                   states={"a": {"symbol": BTC, "position": 1.0}, "b": {"symbol": SOL, "position": 0.0}})
    assert cli(tmp_path) == 0  # SOL targeted at 0: its price is read (190) and remembered
    write_json(tmp_path / "prices.json", {BTC: 95_000.0, ETH: 3500.0, SOL: 19.0})  # a bad print, 10x too low
    write_json(tmp_path / "strategies" / "b" / "state.json", {"symbol": SOL, "position": 1.0})
    assert cli(tmp_path) == 1  # a new process: 19 is a jump from the 190 it never saw itself
    rec = reconciler_for(tmp_path / "portfolio_config.json")
    assert SOL not in paper_positions(rec)  # nothing bought at the bad price (it would have been 10x the target)
    write_json(tmp_path / "prices.json", {BTC: 95_000.0, ETH: 3500.0, SOL: 190.0})
    assert cli(tmp_path) == 1  # back to 190: a jump from the 19 seen by the last run, confirmed by the next
    assert cli(tmp_path) == 0
    assert paper_positions(rec)[SOL] == pytest.approx(5_000 / 190, abs=0.1)


def test_a_capped_order_is_a_problem_until_the_target_is_reached(tmp_path):
    make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    assert cli(tmp_path, "--max-order-usd", "4000") == 1  # 4,000 of 10,000 sent: not on target yet
    assert cli(tmp_path, "--max-order-usd", "4000") == 1
    assert cli(tmp_path, "--max-order-usd", "4000") == 0
