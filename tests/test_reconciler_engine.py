"""The reconcile cycle on the paper exchange: targets reached, safety rules, recovery, CLI."""
from __future__ import annotations

import json
import os
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakes.workspace import journal_lines, make_workspace, reconciler_for, write_json
from fastopt.cli import main
from fastopt.errors import InputError
from reconciler.errors import TemporaryError

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")


def paper_positions(rec) -> dict[str, float]:
    return rec.venue("paper").fetch_positions()


def test_cycle_reaches_targets_then_is_idle(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 0.5, "b": 0.3, "c": 0.2},
                         states={"a": {"symbol": BTC, "position": 1.0}, "b": {"symbol": BTC, "position": -0.5},
                                 "c": {"positions": {ETH: -1.0}}}, leverage=2.0)
    rec = reconciler_for(cfg)
    first = rec.run_cycle()
    assert first.status == "ok" and len(first.plan.orders) == 2
    pos = paper_positions(rec)
    assert pos[BTC] == pytest.approx(10_000 * 2 * (0.5 - 0.15) / 95000.0, abs=1e-5)  # one step: 0.00001
    assert pos[ETH] == pytest.approx(-4000 / 3500.0, abs=1e-3)
    second = rec.run_cycle()
    assert second.status == "ok" and second.plan.orders == []
    snap = json.loads((tmp_path / "last_reconcile.json").read_text())
    assert set(snap) >= {"ts", "target", "live", "orders"} and snap["target"][BTC]["notional"] == pytest.approx(7000)
    lines = journal_lines(tmp_path)
    assert [r["event"] for r in lines] == ["intent", "intent", "outcome", "outcome"]


def test_flip_closes_reduce_only_then_opens_and_untargeted_symbol_is_closed(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"positions": {BTC: 1.0, ETH: 0.5}}})
    rec = reconciler_for(cfg)
    rec.run_cycle()
    write_json(tmp_path / "strategies" / "a" / "state.json", {"positions": {BTC: -0.5}})
    report = rec.run_cycle()
    legs = [(o.symbol, o.leg, o.reduce_only, o.side) for o in report.plan.orders]
    assert legs == [(BTC, "close", True, "sell"), (BTC, "open", False, "sell"), (ETH, "close", True, "sell")]
    pos = paper_positions(rec)
    assert ETH not in pos and pos[BTC] == pytest.approx(-5000 / 95000.0, abs=1e-5)


def test_paper_state_survives_a_restart(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": ETH, "position": 1.0}})
    rec = reconciler_for(cfg)
    rec.run_cycle()
    rec.venue("paper").close()
    again = reconciler_for(cfg)
    assert paper_positions(again)[ETH] == pytest.approx(10_000 / 3500.0, abs=1e-3)
    assert again.run_cycle().plan.orders == []
    fills = again.venue("paper").fills()
    assert len(fills) == 1 and fills[0]["fee"] > 0
    fill = fills[0]
    assert fill["price"] == pytest.approx(3500.0 * (1 + 2e-4))  # default slippage 2 bps against the buyer
    assert fill["fee"] == pytest.approx(float(fill["amount"]) * fill["price"] * 4e-4)  # default fee 4 bps
    assert again.venue("paper").cash == pytest.approx(10_000 - float(fill["amount"]) * fill["price"] - fill["fee"])


BAD_CONFIGS = [
    ({"account_value": 10_000, "leverage": 1.0, "weights": {"a": 0.5, "b": 0.4}}, "sum to"),
    ({"account_value": 10_000, "leverage": 1.0, "weights": {"a": 1.2, "b": -0.2}}, ">= 0"),
    ({"account_value": 10_000, "leverage": float("inf"), "weights": {"a": 0.5, "b": 0.5}}, "leverage"),
    ({"account_value": 10_000, "leverage": 0, "weights": {"a": 0.5, "b": 0.5}}, "leverage"),
    ({"account_value": 10_000, "leverage": 9.0, "weights": {"a": 0.5, "b": 0.5}}, "above the maximum"),
    ({"account_value": 0, "leverage": 1.0, "weights": {"a": 0.5, "b": 0.5}}, "account_value"),
    ({"account_value": -5, "leverage": 1.0, "weights": {"a": 0.5, "b": 0.5}}, "account_value"),
    ({"account_value": 10_000, "leverage": 1.0, "weights": {"a": 0.5, "ghost": 0.5}}, "no folder"),
    ({"account_value": 10_000, "leverage": 1.0, "weights": {}}, "non-empty"),
    ({"account_value": 10_000, "leverage": 1.0, "weights": {"a": "0.5", "b": 0.5}}, ">= 0"),
    ({"account_value": 10_000, "leverage": 1.0, "weights": {"a": 0.5, "b": 0.5}, "exchanges": {"a": 3}},
     "exchanges"),
]


@pytest.mark.parametrize("config,reason", BAD_CONFIGS)
def test_invalid_config_is_refused_and_sends_nothing(tmp_path, config, reason):
    cfg = make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5},
                         states={"a": {"symbol": BTC, "position": 1.0}, "b": {"symbol": ETH, "position": 1.0}})
    text = json.dumps(config).replace("Infinity", "1e999")
    (tmp_path / "portfolio_config.json").write_text(text)
    rec = reconciler_for(cfg)
    with pytest.raises(InputError, match=reason):
        rec.run_cycle()
    assert journal_lines(tmp_path) == [] and paper_positions(rec) == {}
    rc = main(["reconcile", "--once", "--quiet", "--config", str(cfg), "--strategies", str(tmp_path / "strategies"),
               "--prices", str(tmp_path / "prices.json")])
    assert rc == 2 and journal_lines(tmp_path) == []


BAD_STATES = ["", "{", '{"symbol": "BTC/USDT:USDT", "position": 1', '{"symbol": "BTC/USDT:USDT"}', "[]",
              '{"symbol": "BTC/USDT:USDT", "position": NaN}', '{"symbol": "", "position": 1}',
              '{"positions": {"BTC/USDT:USDT": "1"}}', '{"symbol": "BTC/USDT:USDT", "position": true}',
              '{"positions": [1]}', "\x00\x01", '{"symbol": "X", "position": 1, "updated_at": "yesterday"}']


@given(bad=st.sampled_from(BAD_STATES), other=st.sampled_from([None, 0.0, 1.0]))
def test_bad_state_files_never_yield_an_order(tmp_path_factory, bad, other):
    root = tmp_path_factory.mktemp("bad")
    states = {"a": None, "b": None if other is None else {"symbol": ETH, "position": other}}
    cfg = make_workspace(root, weights={"a": 0.5, "b": 0.5}, states=states)
    (root / "strategies" / "a" / "state.json").write_text(bad)
    rec = reconciler_for(cfg)
    # no earlier good state of "a" in this run: counting it as flat could close what it holds,
    # so the whole cycle is refused (the other strategy waits too)
    with pytest.raises(InputError, match="refusing to trade"):
        rec.run_cycle()
    assert journal_lines(root) == [] and paper_positions(rec) == {}
    assert not (root / "last_reconcile.json").exists()


def test_corrupt_state_keeps_last_good_and_missing_state_counts_flat(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5}, states={"a": {"symbol": BTC, "position": 1.0}})
    rec = reconciler_for(cfg)
    first = rec.run_cycle()
    assert [o.symbol for o in first.plan.orders] == [BTC]
    assert any("no state file" in m and "flat" in m for m in rec.report.messages("warn"))
    (tmp_path / "strategies" / "a" / "state.json").write_text('{"symbol": "BTC/USDT:USDT", "posi')
    second = rec.run_cycle()
    assert second.plan.orders == [] and second.target_notional[("paper", BTC)] == pytest.approx(5000)
    assert any("keeping its last good state" in m for m in rec.report.messages("ERROR"))
    assert second.status == "degraded" and any("last good state used" in p for p in second.problems)
    missing_warnings = [m for m in rec.report.messages("warn") if "no state file" in m]
    assert len(missing_warnings) == 1  # warned once


def test_stale_state_warns(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0},
                         states={"a": {"symbol": BTC, "position": 1.0, "updated_at": "2020-01-01T00:00:00Z"}})
    rec = reconciler_for(cfg, "--stale-after", "1")
    rec.run_cycle()
    rec.run_cycle()
    assert len([m for m in rec.report.messages("warn") if "stale" in m]) == 1


def test_kill_switch_stops_orders_and_dry_run_sends_and_writes_nothing(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    dry = reconciler_for(cfg, "--dry-run").run_cycle()
    assert dry.status == "dry_run" and len(dry.plan.orders) == 1
    assert not (tmp_path / "last_reconcile.json").exists() and journal_lines(tmp_path) == []
    (tmp_path / "STOP").write_text("")
    rec = reconciler_for(cfg)
    stopped = rec.run_cycle()
    assert stopped.status == "stopped" and paper_positions(rec) == {} and journal_lines(tmp_path) == []
    os.unlink(tmp_path / "STOP")
    assert rec.run_cycle().status == "ok" and BTC in paper_positions(rec)


def test_caps_max_order_and_gross_exposure(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"positions": {BTC: 3.0, ETH: -3.0}}},
                         leverage=1.0)
    rec = reconciler_for(cfg, "--max-leverage", "2", "--max-order-usd", "1000")
    report = rec.run_cycle()
    assert sum(abs(v) for v in report.target_notional.values()) == pytest.approx(20_000)  # 60k capped to 2 x 10k
    for o in report.plan.orders:
        assert float(o.amount) * o.price <= 1000 + 1e-9 and o.capped


class FlakyPositions:
    """Wraps a venue; fetch_positions fails while ``failing`` is true."""

    def __init__(self, inner):
        self.inner, self.failing, self.name = inner, True, inner.name

    def fetch_positions(self):
        if self.failing:
            raise TemporaryError("positions unavailable")
        return self.inner.fetch_positions()

    def __getattr__(self, item):
        return getattr(self.inner, item)


@pytest.mark.parametrize("manual", [False, True])
def test_halts_after_consecutive_read_failures_and_resumes(tmp_path, manual):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    rec = reconciler_for(cfg, "--halt-after", "2", *(["--manual-resume"] if manual else []))
    flaky = FlakyPositions(rec.venue("paper"))
    rec.venues["paper"] = flaky
    assert rec.run_cycle().status == "read_failed" and not rec.halted
    assert rec.run_cycle().status == "halted" and rec.halted
    assert any("ALERT" in m for m in rec.report.messages("ERROR"))
    flaky.failing = False
    report = rec.run_cycle()
    if manual:
        assert report.status == "halted" and (tmp_path / "HALTED").exists() and journal_lines(tmp_path) == []
        os.unlink(tmp_path / "HALTED")
        report = rec.run_cycle()
    assert report.status == "ok" and BTC in flaky.inner.fetch_positions()


class Crash(BaseException):
    """Simulated process death (not caught by the engine)."""


def test_crash_between_send_and_outcome_recovers_without_duplicate(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": ETH, "position": 1.0}})

    def die(order, cid):
        raise Crash(cid)

    with pytest.raises(Crash):
        reconciler_for(cfg, after_send_hook=die).run_cycle()
    assert [r["event"] for r in journal_lines(tmp_path)] == ["intent"]
    restarted = reconciler_for(cfg)
    report = restarted.run_cycle()
    assert report.plan.orders == []  # the fill was found by client order id and positions re-read
    events = journal_lines(tmp_path)
    assert [r["event"] for r in events] == ["intent", "outcome"] and events[1]["status"] == "filled"
    assert len(restarted.venue("paper").fills()) == 1


def test_crash_between_journal_and_send_recovers(tmp_path, monkeypatch):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": ETH, "position": 1.0}})
    rec = reconciler_for(cfg)
    paper = rec.venue("paper")

    def die(**kwargs):
        raise Crash("killed before the request left")

    monkeypatch.setattr(paper, "create_order", die)
    with pytest.raises(Crash):
        rec.run_cycle()
    monkeypatch.undo()
    restarted = reconciler_for(cfg)
    report = restarted.run_cycle()
    events = journal_lines(tmp_path)
    assert events[1]["event"] == "outcome" and events[1]["status"] == "not_found"
    assert len(report.plan.orders) == 1 and len(restarted.venue("paper").fills()) == 1


def test_journal_ignores_a_torn_last_line(tmp_path):
    from reconciler.journal import OrderJournal

    path = tmp_path / "orders.jsonl"
    path.write_text('{"event":"intent","client_order_id":"fo1","venue":"paper","symbol":"X","side":"buy",'
                    '"amount":"1"}\n{"event":"outcome","client_o')
    journal = OrderJournal(path)
    assert [i.client_order_id for i in journal.unfinished()] == ["fo1"]


def test_paper_refuses_duplicates_bad_amounts_and_wrong_reduce_only(tmp_path):
    from reconciler.errors import InvalidOrder
    from reconciler.venues.paper import PaperExchange

    paper = PaperExchange(tmp_path / "p.sqlite", price_source=lambda s: {x: 100.0 for x in s}, initial_cash=1000)
    paper.fetch_prices(["A"])
    paper.create_order(symbol="A", side="buy", amount=Decimal("0.5"), reduce_only=False, client_order_id="c1")
    for kwargs in [dict(amount=Decimal("0.5"), reduce_only=False, client_order_id="c1", side="buy"),
                   dict(amount=Decimal("0.005"), reduce_only=False, client_order_id="c2", side="buy"),
                   dict(amount=Decimal("0.5"), reduce_only=True, client_order_id="c3", side="buy"),
                   dict(amount=Decimal("0.01"), reduce_only=False, client_order_id="c4", side="sell")]:
        with pytest.raises(InvalidOrder):
            paper.create_order(symbol="A", **kwargs)
    closed = paper.create_order(symbol="A", side="sell", amount=Decimal("0.9"), reduce_only=True,
                                client_order_id="c5")
    assert closed.filled == 0.5 and paper.fetch_positions() == {}


def test_cli_once_json_status_and_exit_codes(tmp_path, capsys):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": -1.0}})
    base = ["--config", str(cfg), "--strategies", str(tmp_path / "strategies"), "--prices",
            str(tmp_path / "prices.json"), "--quiet"]
    assert main(["status", "--config", str(cfg)]) == 3  # no snapshot yet
    assert main(["reconcile", "--once", "--json", *base]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "ok" and out["orders"][0]["side"] == "sell"
    assert main(["status", "--config", str(cfg), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["symbol"] == BTC and rows[0]["target_notional"] == pytest.approx(-10_000)
    # live = before the orders + this cycle's fills from the journal: on target after the cycle
    assert rows[0]["live_amount"] == pytest.approx(-10_000 / 95_000, abs=1e-5)
    assert abs(rows[0]["gap_notional"]) <= 1.0
    assert main(["reconcile", "--once", "--threshold", "-1", *base]) == 2
    assert main(["reconcile", "--once", "--prices", str(tmp_path / "missing.json"), *base[:4], "--quiet"]) == 2
    (tmp_path / "STOP").write_text("")
    write_json(tmp_path / "strategies" / "a" / "state.json", {"symbol": BTC, "position": 1.0})
    assert main(["reconcile", "--once", *base]) == 1


def test_offline_without_price_file_uses_the_strategies_prices(tmp_path, monkeypatch, shared_prices):
    from reconciler.venues.prices import last_closes_from_csv_dir

    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    os.unlink(tmp_path / "prices.json")
    monkeypatch.setenv("FASTOPT_PRICES_DIR", str(shared_prices))
    rc = main(["reconcile", "--once", "--config", str(cfg), "--strategies", str(tmp_path / "strategies"), "--quiet"])
    assert rc == 0
    snap = json.loads((tmp_path / "last_reconcile.json").read_text())
    assert snap["target"][BTC]["price"] == last_closes_from_csv_dir(shared_prices)[BTC]


def test_no_price_anywhere_is_a_clear_error():
    from reconciler.venues.prices import PriceSource

    source = PriceSource(price_file=None, offline=True, use_strategy_prices=False)
    with pytest.raises(InputError, match="no prices"):
        source([BTC])


def test_bad_price_file_is_a_clear_error(tmp_path, capsys):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": BTC, "position": 1.0}})
    (tmp_path / "prices.json").write_text('{"BTC/USDT:USDT": -3}')
    rc = main(["reconcile", "--once", "--config", str(cfg), "--strategies", str(tmp_path / "strategies")])
    err = capsys.readouterr().err
    assert rc == 2 and "prices.json: price of 'BTC/USDT:USDT' must be a positive number" in err
    assert "Traceback" not in err and not (tmp_path / "orders.jsonl").exists()


def test_prices_from_a_folder_of_csv_closes(tmp_path, shared_prices):
    from reconciler.venues.prices import last_closes_from_csv_dir

    prices = last_closes_from_csv_dir(shared_prices)
    assert prices[BTC] == prices["BTC/USD"] > 1000 and ETH in prices


@given(positions=st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.25, 1.0]), min_size=4, max_size=4),
       symbols=st.lists(st.sampled_from([BTC, ETH, "SOL/USDT:USDT"]), min_size=4, max_size=4),
       again=st.lists(st.sampled_from([-1.0, 0.0, 0.5]), min_size=4, max_size=4))
def test_end_to_end_paper_positions_land_on_target(tmp_path_factory, positions, symbols, again):
    from reconciler.venues.paper import default_market
    from fakes.workspace import PRICES

    root = tmp_path_factory.mktemp("e2e")
    names = ["a", "b", "c", "d"]
    cfg = make_workspace(root, weights={n: 0.25 for n in names}, leverage=2.0,
                         states={n: {"symbol": s, "position": p} for n, s, p in zip(names, symbols, positions)})
    rec = reconciler_for(cfg)
    for round_positions in (positions, again):  # second round: flips, closes, netting changes
        for n, s, p in zip(names, symbols, round_positions):
            write_json(root / "strategies" / n / "state.json", {"symbol": s, "position": p})
        assert rec.run_cycle().status == "ok"
        live = paper_positions(rec)
        for symbol, price in PRICES.items():
            target = sum(10_000 * 2 * 0.25 * p for s, p in zip(symbols, round_positions) if s == symbol) / price
            m = default_market(symbol, price)
            tol = float(m.amount_step) + max(10.0, m.min_cost) / price + float(m.min_amount)
            assert abs(live.get(symbol, 0.0) - target) <= tol * (1 + 1e-9), symbol


def test_python_dash_m_reconciler_runs_one_cycle(tmp_path):
    import subprocess
    import sys

    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": ETH, "position": 0.5}})
    proc = subprocess.run([sys.executable, "-m", "reconciler", "--once", "--config", str(cfg), "--strategies",
                           str(tmp_path / "strategies"), "--prices", str(tmp_path / "prices.json")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "FASTOPT_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "BUY" in proc.stderr and "cycle ok" in proc.stderr
    assert [r["status"] for r in journal_lines(tmp_path) if r["event"] == "outcome"] == ["filled"]


def test_paper_market_overrides_from_the_config(tmp_path):
    cfg = make_workspace(tmp_path, weights={"a": 1.0}, states={"a": {"symbol": ETH, "position": 1.0}},
                         exchange_settings={"paper": {"fee_bps": 0, "slippage_bps": 0,
                                                      "markets": {ETH: {"amount_step": "0.5", "min_cost": 50}}}})
    rec = reconciler_for(cfg)
    report = rec.run_cycle()
    assert [o.amount for o in report.plan.orders] == [Decimal("2.5")]  # 10,000 / 3,500 = 2.857 -> 2.5
    fill = rec.venue("paper").fills()[0]
    assert fill["fee"] == 0 and fill["price"] == 3500.0
