"""Attacks on the hardened reconciler through the REAL ccxt ``binanceusdm`` client and the fake Binance.

Each test first reproduces the condition of an attack that doubled, misplaced or silently dropped a
position on the previous version (the attack's precondition is asserted, so the test cannot pass
vacuously), then checks the guarantee the engine now makes (``reconciler/engine.py`` module doc):

1. a slow batch: the settle window of a timed-out order runs from its own send time;
2. a bogus positions read (``[]``) is confirmed before use; a real manual trade is accepted after
   confirmation; reads that keep disagreeing are a read failure;
3. a mark price 10x off its index is not traded; the per-order cap holds at the true price;
4. a hedge-mode account is refused at start (names one-way mode), exit 1;
5. a -2019 rejection is a problem, backs off, never blocks the other symbols; an amount above the
   market's max quantity is split;
6. a strategy moved from binanceusdm to paper: the binance position is closed, paper opens it;
7. an account_value typo (x10 the equity) is never traded, not even after ``--accept-config``; a
   leverage jump waits for the operator;
8. API keys with a trailing newline are a one-line input error; no message or file ever carries a
   signature or a key;
9. an order stuck open blocks only its symbol, is cancelled after ``--cancel-after``, re-planned;
   partial fills are reported with their filled amount;
10. ``fastopt reconcile --once --json`` counts match what the exchange did.

Rate limiting is switched off in the exchange settings (``enableRateLimit: false``, a ccxt constructor
parameter) only to keep the file fast; nothing tested here depends on request spacing.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from decimal import Decimal

import pytest

from fake_binance import API_KEY, DEFAULT_MARKETS, SECRET, FakeBinance, _market, _position_row
from fakes.workspace import journal_lines, make_workspace, reconciler_for, write_json
from fastopt.cli import main
from test_reconciler_binance import EXPECTED, STEP, assert_on_target, fake, keys, run_until_ok  # noqa: F401

pytestmark = pytest.mark.integration

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
ORDER = ("POST", "/fapi/v1/order")
CANCEL = ("DELETE", "/fapi/v1/order")
POSITIONS = ("GET", "/fapi/v3/positionRisk")  # what ccxt 4.5.90's binanceusdm fetch_positions reads
PREMIUM = ("GET", "/fapi/v1/premiumIndex")
DEFAULT_STATES = {"a": {"symbol": BTC, "position": 1.0}, "b": {"positions": {ETH: -1.0, SOL: 0.5}}}


# -- helpers -------------------------------------------------------------------------------------
def ws(tmp_path, fake, *, timeout_ms=1500, weights=None, states=None, **config):
    """The standard workspace (BTC +5000, ETH -5000, SOL +2500 on a 10k account) and exchange.json."""
    cfg = make_workspace(tmp_path, weights=weights or {"a": 0.5, "b": 0.5}, states=states or DEFAULT_STATES,
                         **config)
    write_json(tmp_path / "exchange.json", exchange_settings(fake, timeout_ms))
    return cfg


def exchange_settings(fake, timeout_ms=1500):
    return {"api_base_url": fake.base_url, "timeout": timeout_ms, "enableRateLimit": False}


def venue_args(tmp_path, *, settle_s=0.0):
    return ("--exchange", "binanceusdm", "--exchange-config", str(tmp_path / "exchange.json"), "--backoff", "0.01",
            "--order-settle", str(settle_s))


def cli(tmp_path, *extra, venue=True, quiet=True):
    """``fastopt reconcile --once`` on the workspace (binance venue unless ``venue=False``)."""
    argv = ["reconcile", "--once", "--config", str(tmp_path / "portfolio_config.json"),
            "--strategies", str(tmp_path / "strategies"), "--prices", str(tmp_path / "prices.json"),
            "--confirm-delay", "0", *(["--quiet"] if quiet else []), *(venue_args(tmp_path) if venue else ()),
            *extra]
    return main(argv)


def set_state(tmp_path, name, state):
    write_json(tmp_path / "strategies" / name / "state.json", state)


def set_config(cfg, **changes):
    write_json(cfg, {**json.loads(cfg.read_text()), **changes})


def orders_sent(fake, base=None):
    """Parameters of every POST /fapi/v1/order (of ``base``'s market when given)."""
    return [p for p in fake.requests_to(*ORDER) if base is None or p.get("symbol") == f"{base}USDT"]


def fills_of(fake, base):
    return [f for f in fake.fills if f["symbol"] == f"{base}USDT"]


def outcomes(tmp_path, cid):
    return [r for r in journal_lines(tmp_path) if r["event"] == "outcome" and r["client_order_id"] == cid]


def cid_of(tmp_path, symbol, nth=0):
    return [r["client_order_id"] for r in journal_lines(tmp_path) if r["event"] == "intent"
            and r["symbol"] == symbol][nth]


def run_until_idle(rec, attempts=5):
    """Cycles until one is ok with nothing left to send (a capped order leaves a remainder)."""
    statuses = []
    for _ in range(attempts):
        report = rec.run_cycle()
        statuses.append(report.status)
        if report.status == "ok" and not report.plan.orders:
            return statuses
    raise AssertionError(f"never idle: {statuses}")


def within_step(fake, base, target):
    return abs(float(fake.position(base)) - target) <= STEP[base] + 1e-12


# -- 1. settle window from each order's own send time ---------------------------------------------
SIX = ("BTC", "ETH", "SOL", "BNB", "XRP", "DOGE")
SIX_MARKETS = [*DEFAULT_MARKETS, _market("BNB", 600.0, "0.01", "0.01", "5", "0.010"),
               _market("XRP", 2.0, "0.1", "0.1", "5", "0.0001"), _market("DOGE", 0.2, "1", "1", "5", "0.00001")]
SIX_PRICES = {m["base"]: m["price"] for m in SIX_MARKETS}
SIX_STEPS = {m["base"]: float(m["step"]) for m in SIX_MARKETS}


def test_slow_batch_last_order_applied_late_is_never_declared_unapplied_and_resent(tmp_path):
    """Six orders, each delayed 0.35 s by the exchange; the sixth times out (client timeout 1 s), its
    lookup finds nothing, and the exchange applies it 1.85 s after it was sent. --order-settle 2.3 s is
    longer than that and than one order's delay, but shorter than the batch (~2.9 s): measured from the
    cycle start (or from when the batch's intents were journaled) the window is already over when the next
    cycle looks the order up, before it is applied. On the pre-hardening engine (7821248) XRP fills twice."""
    delay, settle, timeout_s = 0.35, 2.3, 1.0
    with FakeBinance(SIX_MARKETS, late_s=1.5) as fake:
        weights = {f"s{i}": 1 / 6 for i in range(6)}
        states = {f"s{i}": {"symbol": f"{base}/USDT:USDT", "position": 1.0} for i, base in enumerate(SIX)}
        cfg = ws(tmp_path, fake, timeout_ms=int(timeout_s * 1000), weights=weights, states=states,
                 account_value=12_000.0)
        fake.order_delays.extend([delay] * 6)
        fake.add_fault(*ORDER, *["delay:0"] * 5, "timeout_then_apply")
        rec = reconciler_for(cfg, *venue_args(tmp_path, settle_s=settle))

        started = time.monotonic()
        first = rec.run_cycle()
        batch_s = time.monotonic() - started
        assert first.status == "incomplete", first.status
        assert first.counts() == {"filled": 5, "unknown": 1}, first.counts()
        late = first.results[-1]["symbol"]
        late_base = late.split("/")[0]
        # the attack's precondition: the window, counted from the batch start, is over while the late
        # order is still not applied (and not visible: its lookup said "not found")
        assert batch_s > settle, batch_s
        assert fake.position(late_base) == 0 and len(fake.fills) == 5

        statuses = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            report = rec.run_cycle()
            statuses.append(report.status)
            if report.status == "ok":
                break
            assert [o.symbol for o in report.plan.orders] == [], "nothing else is left to trade"
            time.sleep(0.2)
        assert statuses[0] == "degraded" and statuses[-1] == "ok", statuses

    assert Counter(f["symbol"] for f in fake.fills) == {f"{b}USDT": 1 for b in SIX}  # each symbol filled once
    assert Counter(p["symbol"] for p in orders_sent(fake)) == {f"{b}USDT": 1 for b in SIX}  # nothing re-sent
    for base in SIX:
        target = 2_000.0 / SIX_PRICES[base]
        assert abs(float(fake.position(base)) - target) <= SIX_STEPS[base] + 1e-9, base
    late_cid = first.results[-1]["client_order_id"]
    assert [r["status"] for r in outcomes(tmp_path, late_cid)] == ["filled"]  # never "not_found"
    assert not rec.journal.unfinished()


# -- 2. bogus positions read ----------------------------------------------------------------------
def test_a_bogus_empty_positions_read_is_confirmed_and_never_doubles(tmp_path, fake):
    rec = reconciler_for(ws(tmp_path, fake), *venue_args(tmp_path))
    run_until_ok(rec)
    assert_on_target(fake)
    assert len(fake.fills) == 3
    reads = fake.requests.count(POSITIONS)

    fake.add_canned(*POSITIONS, 200, [])  # "flat everywhere", once
    set_state(tmp_path, "b", {"positions": {ETH: -0.5, SOL: 0.5}})  # ETH short halves
    report = rec.run_cycle()
    assert fake.requests.count(POSITIONS) - reads >= 2  # the surprising read was read again
    assert report.status == "ok", (report.status, report.problems)
    assert [(o.symbol, o.side, o.reduce_only) for o in report.plan.orders] == [(ETH, "buy", True)]
    assert len(fake.fills) == 4  # only the ETH adjustment: nothing re-bought on the bogus read
    assert_on_target(fake, {"BTC": 5000 / 95000.0, "ETH": -2500 / 3500.0, "SOL": 2500 / 190.0})


def test_a_real_manual_trade_is_accepted_after_confirmation_and_corrected(tmp_path, fake):
    rec = reconciler_for(ws(tmp_path, fake), *venue_args(tmp_path))
    run_until_ok(rec)
    fake.manual_fill("BTC", "0.05")  # a human doubles the BTC position on the website
    reads = fake.requests.count(POSITIONS)
    report = rec.run_cycle()
    assert fake.requests.count(POSITIONS) - reads == 2
    assert any("confirmed by a second read" in m for m in rec.report.messages("warn"))
    assert [(o.symbol, o.side, o.reduce_only) for o in report.plan.orders] == [(BTC, "sell", True)]
    assert report.status == "ok" and len(fake.fills) == 4
    assert_on_target(fake)


def test_position_reads_that_keep_disagreeing_are_a_read_failure_and_send_nothing(tmp_path, fake):
    rec = reconciler_for(ws(tmp_path, fake), *venue_args(tmp_path))
    run_until_ok(rec)
    sent = len(orders_sent(fake))
    fake.add_canned(*POSITIONS, 200, [])
    fake.add_canned(*POSITIONS, 200, [_position_row(fake, "BTCUSDT", "BOTH", Decimal("0.500"))])
    set_state(tmp_path, "a", {"symbol": BTC, "position": 0.5})  # there is something to trade
    report = rec.run_cycle()
    assert report.status == "read_failed" and not report.ok, report.status
    assert "disagree" in report.message
    assert len(orders_sent(fake)) == sent and len(fake.fills) == 3  # nothing sent
    assert_on_target(fake)  # untouched
    assert rec.run_cycle().status == "ok"  # reads agree again: the BTC reduction goes through
    assert_on_target(fake, {"BTC": 2500 / 95000.0, "ETH": -5000 / 3500.0, "SOL": 2500 / 190.0})


# -- 3. wrong mark price --------------------------------------------------------------------------
def test_a_mark_price_ten_times_off_its_index_is_not_traded_and_the_cap_holds_at_the_true_price(tmp_path, fake):
    true_btc = 65_000.0
    fake.set_price("BTC", true_btc)
    cfg = ws(tmp_path, fake)
    rec = reconciler_for(cfg, *venue_args(tmp_path), "--max-order-usd", "3000")
    run_until_idle(rec)  # capped orders: BTC and ETH need two cycles each
    on_target = {"BTC": 5000 / true_btc, "ETH": -5000 / 3500.0, "SOL": 2500 / 190.0}
    assert_on_target(fake, on_target)
    btc_before, btc_posts = fake.position("BTC"), len(orders_sent(fake, "BTC"))

    fake.set_price("BTC", 6_500.0)  # mark (and last) price: a bad print, 10x too low
    fake.set_index("BTC", true_btc)
    set_state(tmp_path, "a", {"symbol": BTC, "position": 0.5})  # reduce BTC: 2500 / 6500 would BUY 0.34 BTC
    set_state(tmp_path, "b", {"positions": {ETH: -0.5, SOL: 0.5}})
    report = rec.run_cycle()
    assert report.status == "degraded" and not report.ok
    assert any("BTC" in p and "implausible price" in p for p in report.problems), report.problems
    assert BTC not in {o.symbol for o in report.plan.orders}
    assert len(orders_sent(fake, "BTC")) == btc_posts and fake.position("BTC") == btc_before
    assert within_step(fake, "ETH", -2500 / 3500.0)  # the other symbols are traded
    assert cli(tmp_path, "--max-order-usd", "3000") == 1  # cron sees the problem
    assert len(orders_sent(fake, "BTC")) == btc_posts

    fake.set_price("BTC", true_btc)  # the mark is right again
    fake.set_index("BTC", None)
    statuses = [rec.run_cycle().status for _ in range(3)]
    assert statuses[-1] == "ok", statuses
    assert within_step(fake, "BTC", 2500 / true_btc)
    true_prices = {"BTCUSDT": true_btc, "ETHUSDT": 3500.0, "SOLUSDT": 190.0}
    for params in orders_sent(fake):
        assert float(params["quantity"]) * true_prices[params["symbol"]] <= 3000.0 + 1e-6, params


# -- 4. hedge mode --------------------------------------------------------------------------------
def test_a_hedge_mode_account_is_refused_at_start_naming_one_way_mode(tmp_path, fake, capsys):
    fake.hedge = True
    fake.set_hedge_position("BTC", "LONG", "0.05")
    fake.set_hedge_position("BTC", "SHORT", "-0.05")
    ws(tmp_path, fake)
    assert cli(tmp_path) == 1
    err = capsys.readouterr().err
    assert "hedge mode" in err and "one-way mode" in err, err
    assert "Traceback" not in err
    assert orders_sent(fake) == [] and fake.fills == []
    report = reconciler_for(tmp_path / "portfolio_config.json", *venue_args(tmp_path)).run_cycle()
    assert report.status == "refused" and "one-way" in report.message
    assert orders_sent(fake) == []


def test_hedge_rows_are_refused_even_when_the_mode_endpoint_says_one_way(tmp_path, fake):
    fake.hedge = True
    fake.set_hedge_position("ETH", "SHORT", "-1")
    fake.add_canned("GET", "/fapi/v1/positionSide/dual", 200, {"dualSidePosition": False})
    ws(tmp_path, fake)
    assert cli(tmp_path) == 1
    assert orders_sent(fake) == [] and fake.fills == []


# -- 5. rejections --------------------------------------------------------------------------------
def test_a_margin_rejection_backs_off_and_never_blocks_the_other_symbols(tmp_path, fake):
    fake.add_fault(*ORDER, "insufficient")  # -2019 on the first order (BTC)
    rec = reconciler_for(ws(tmp_path, fake), *venue_args(tmp_path), "--reject-backoff", "60")
    offset = [0.0]
    rec.clock = lambda: time.monotonic() + offset[0]
    first = rec.run_cycle()
    assert first.status == "degraded" and not first.ok
    assert first.counts() == {"rejected": 1, "filled": 2}, first.counts()
    assert any("BTC" in p and "rejected" in p for p in first.problems)
    assert fake.position("BTC") == 0 and within_step(fake, "ETH", EXPECTED["ETH"])
    assert within_step(fake, "SOL", EXPECTED["SOL"])
    assert len(orders_sent(fake, "BTC")) == 1

    offset[0] += 30
    second = rec.run_cycle()  # within the backoff: the same order is not sent again
    assert len(orders_sent(fake, "BTC")) == 1
    assert second.status == "degraded" and any("backoff" in p for p in second.problems), second.problems
    offset[0] += 31
    assert rec.run_cycle().status == "ok"  # after the backoff it is tried again (and accepted now)
    assert len(orders_sent(fake, "BTC")) == 2
    assert_on_target(fake)
    assert [r["status"] for r in journal_lines(tmp_path) if r["event"] == "outcome"].count("rejected") == 1


def test_a_rejection_exits_1_with_once_and_is_not_resent_by_the_next_run_within_the_backoff(tmp_path, fake):
    """Cron: every `--once` run is one cycle. A rejected order must not be re-sent unchanged by the next
    run inside --reject-backoff (here 600 s) either, or a rejection is retried every minute forever."""
    ws(tmp_path, fake)
    fake.add_fault(*ORDER, "insufficient")
    assert cli(tmp_path, "--reject-backoff", "600") == 1
    assert len(orders_sent(fake, "BTC")) == 1 and fake.position("BTC") == 0
    assert within_step(fake, "ETH", EXPECTED["ETH"]) and within_step(fake, "SOL", EXPECTED["SOL"])
    second = cli(tmp_path, "--reject-backoff", "600")
    assert len(orders_sent(fake, "BTC")) == 1, "the rejected BTC order was re-sent unchanged inside its backoff"
    assert second == 1  # still not on target: a problem


def test_an_amount_above_the_market_max_quantity_is_split_and_lands_on_target(tmp_path, fake):
    fake.set_max_qty("BTC", market="0.02")  # MARKET_LOT_SIZE maxQty: 0.0526 needs three orders
    fake.set_max_qty("ETH", lot="0.5", market="0.6")  # LOT_SIZE smaller than MARKET_LOT_SIZE
    rec = reconciler_for(ws(tmp_path, fake), *venue_args(tmp_path))
    report = rec.run_cycle()
    assert report.status == "ok", (report.status, report.problems)
    assert set(report.counts()) == {"filled"}  # every part accepted
    btc = [Decimal(p["quantity"]) for p in orders_sent(fake, "BTC")]
    eth = [Decimal(p["quantity"]) for p in orders_sent(fake, "ETH")]
    assert len(btc) == 3 and max(btc) <= Decimal("0.02"), btc
    assert len(eth) == 3 and max(eth) <= Decimal("0.5"), eth
    assert_on_target(fake)
    assert rec.run_cycle().plan.orders == []


# -- 6. venue moved -------------------------------------------------------------------------------
def moved_workspace(tmp_path, fake):
    return make_workspace(tmp_path, weights={"b": 1.0}, states={"b": {"symbol": ETH, "position": 1.0}},
                          exchanges={"b": "binanceusdm"},
                          exchange_settings={"binanceusdm": exchange_settings(fake)})


def test_a_strategy_moved_from_binance_to_paper_is_closed_on_binance_and_opened_on_paper(tmp_path, fake):
    cfg = moved_workspace(tmp_path, fake)
    rec = reconciler_for(cfg)  # default venue: paper
    assert run_until_ok(rec) == ["ok"]
    assert within_step(fake, "ETH", 10_000 / 3500.0)
    assert ETH not in rec.venue("paper").fetch_positions()

    set_config(cfg, exchanges={"b": "paper"})  # the operator moves the strategy to the paper venue
    report = rec.run_cycle()
    assert report.status == "ok", (report.status, report.problems)
    assert {(o.venue, o.symbol, o.side, o.reduce_only) for o in report.plan.orders} == \
        {("binanceusdm", ETH, "sell", True), ("paper", ETH, "buy", False)}
    assert fake.position("ETH") == 0  # no longer targeted there: closed
    assert rec.venue("paper").fetch_positions()[ETH] == pytest.approx(10_000 / 3500.0, abs=1e-3)
    assert rec.run_cycle().plan.orders == []


def test_a_venue_move_is_closed_by_a_fresh_process_too(tmp_path, fake):
    cfg = moved_workspace(tmp_path, fake)
    assert cli(tmp_path, venue=False) == 0
    assert within_step(fake, "ETH", 10_000 / 3500.0)
    set_config(cfg, exchanges={})  # back to the default venue (paper); binance only remembered by the journal
    assert cli(tmp_path, venue=False) == 0
    assert fake.position("ETH") == 0 and len(fills_of(fake, "ETH")) == 2
    rec = reconciler_for(cfg)
    assert rec.venue("paper").fetch_positions()[ETH] == pytest.approx(10_000 / 3500.0, abs=1e-3)
    assert rec.run_cycle().plan.orders == []


# -- 7. account value typo / leverage jump -------------------------------------------------------
def test_an_account_value_ten_times_the_equity_is_never_traded_even_when_accepted(tmp_path, fake):
    fake.set_balance(10_000)
    cfg = ws(tmp_path, fake)
    rec = reconciler_for(cfg, *venue_args(tmp_path))
    assert run_until_ok(rec) == ["ok"]
    sent = len(orders_sent(fake))
    set_config(cfg, account_value=100_000.0)  # a typo: x10
    report = rec.run_cycle()
    assert not report.ok and any("equity" in p for p in report.problems), report.problems
    assert len(orders_sent(fake)) == sent  # nothing sized on 100k
    assert_on_target(fake)  # the last accepted config (10k) is still the target
    assert cli(tmp_path) == 1
    assert cli(tmp_path, "--accept-config") == 0
    assert cli(tmp_path) == 1  # the operator cannot accept it past the equity check
    assert len(orders_sent(fake)) == sent
    assert_on_target(fake)


def test_an_account_value_typo_on_a_first_run_refuses_to_trade(tmp_path, fake):
    fake.set_balance(10_000)
    ws(tmp_path, fake, account_value=100_000.0)
    assert cli(tmp_path, "--accept-config") == 0
    assert cli(tmp_path) == 1
    report = reconciler_for(tmp_path / "portfolio_config.json", *venue_args(tmp_path)).run_cycle()
    assert report.status == "refused" and "equity" in report.message
    assert orders_sent(fake) == []


def test_a_leverage_jump_is_held_back_until_the_operator_accepts_it(tmp_path, fake):
    fake.set_balance(10_000)
    cfg = ws(tmp_path, fake)
    assert cli(tmp_path) == 0
    assert_on_target(fake)
    sent = len(orders_sent(fake))
    set_config(cfg, leverage=3.0)
    assert cli(tmp_path) == 1
    assert len(orders_sent(fake)) == sent
    assert cli(tmp_path, "--accept-config") == 0
    assert cli(tmp_path) == 0
    assert_on_target(fake, {k: 3 * v for k, v in EXPECTED.items()})


# -- 8. keys with a trailing newline; secrets never printed ------------------------------------------
@pytest.mark.parametrize("variable", ["BINANCEUSDM_SECRET", "BINANCEUSDM_API_KEY"])
def test_a_key_with_a_trailing_newline_is_a_one_line_input_error(tmp_path, fake, monkeypatch, capfd, variable):
    value = {"BINANCEUSDM_SECRET": SECRET, "BINANCEUSDM_API_KEY": API_KEY}[variable]
    monkeypatch.setenv(variable, value + "\n")
    ws(tmp_path, fake)
    assert cli(tmp_path) == 2
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert variable in lines[0] and "Traceback" not in err
    assert value not in out + err
    assert fake.requests == []  # nothing was even asked, let alone sent


HTML_ERROR = "<html><body>502 Bad Gateway</body></html>"
#: a positions answer -> text the HALTED reason must show (proof the error itself got through). ccxt puts
#: the signed URL (?timestamp=...&signature=...) in the message of a timeout and of a non-JSON error body
HALT_ANSWERS = {"500-json": "Internal error", "502-html": "/fapi/v3/positionRisk?<redacted>",
                "401-html": "/fapi/v3/positionRisk?<redacted>", "timeout": "/fapi/v3/positionRisk?<redacted>"}


@pytest.mark.parametrize("answer", sorted(HALT_ANSWERS))
def test_a_halt_never_writes_a_signature_or_a_key(tmp_path, fake, capfd, answer):
    ws(tmp_path, fake, timeout_ms=500)
    if answer == "500-json":
        fake.add_fault(*POSITIONS, "500", "500", "500")  # every attempt (--read-retries 3)
    elif answer == "timeout":
        fake.add_fault(*POSITIONS, "timeout", "timeout", "timeout")
    elif answer == "502-html":
        for _ in range(3):
            fake.add_canned(*POSITIONS, 502, HTML_ERROR)
    else:
        fake.add_canned(*POSITIONS, 401, "<html>401 Unauthorized</html>")  # not retried
    assert cli(tmp_path, "--manual-resume", "--halt-after", "1", quiet=False) == 1
    assert cli(tmp_path, "--manual-resume", "--halt-after", "1", "--json", quiet=False) == 1  # halted still
    out, err = capfd.readouterr()
    halted = (tmp_path / "HALTED").read_text()
    assert HALT_ANSWERS[answer] in halted, halted
    texts = {"stdout": out, "stderr": err, "HALTED": halted}
    for path in tmp_path.iterdir():
        if path.is_file() and path.suffix in (".json", ".jsonl"):
            texts[path.name] = path.read_text(errors="replace")
    for name, text in texts.items():
        assert "signature=" not in text.lower(), (name, text)
        for secret in (API_KEY, SECRET):
            assert secret not in text, (name, secret)
    assert orders_sent(fake) == []


def test_an_order_error_never_puts_a_signature_in_the_journal_the_report_or_the_log(tmp_path, fake):
    cfg = ws(tmp_path, fake)
    fake.add_fault(*ORDER, "apply_then_500")  # BTC applied, answer lost

    rec = reconciler_for(cfg, *venue_args(tmp_path))
    rec.venue("binanceusdm")  # the start-up self-check (a lookup too) runs here, before the faults
    for _ in range(3):  # the lost order's lookup fails on every attempt, with the signed URL in ccxt's message
        fake.add_canned("GET", "/fapi/v1/order", 502, HTML_ERROR)
    reports = [rec.run_cycle() for _ in range(3)]
    assert_on_target(fake)
    assert len(fake.fills) == 3
    log = "\n".join(message for _, message in rec.report.lines)
    journal = (tmp_path / "orders.jsonl").read_text()
    assert "/fapi/v1/order?<redacted>" in log, log  # the lookup error is reported ...
    texts = {"log": log, "journal": journal, "reports": json.dumps([r.results for r in reports] +
                                                                    [r.problems for r in reports])}
    for name, text in texts.items():
        assert "signature=" not in text.lower(), (name, text)  # ... without the signed query
        assert API_KEY not in text and SECRET not in text, name


# -- 9. stuck open order --------------------------------------------------------------------------
def mode_for_first_order(fake, mode):
    """``mode`` for the next order only, then back to "fill" (switched right after it is answered)."""
    fake.order_mode = mode

    def back_to_fill(order, cid):
        fake.order_mode = "fill"

    return back_to_fill


def test_an_order_stuck_open_blocks_only_its_symbol_and_is_cancelled_then_replanned(tmp_path, fake):
    cancel_after = 0.8
    cfg = ws(tmp_path, fake)
    rec = reconciler_for(cfg, *venue_args(tmp_path), "--cancel-after", str(cancel_after),
                         after_send_hook=mode_for_first_order(fake, "stay_open"))
    first = rec.run_cycle()
    assert first.counts() == {"open": 1, "filled": 2}, first.counts()
    stuck = first.results[0]["client_order_id"]
    assert first.results[0]["symbol"] == BTC and fake.orders[stuck]["status"] == "NEW"

    set_state(tmp_path, "b", {"positions": {ETH: -0.5, SOL: 0.5}})
    second = rec.run_cycle()  # BTC still working: blocked, not re-sent; ETH traded meanwhile
    assert [o.symbol for o in second.plan.orders] == [ETH]
    assert second.status == "degraded" and any(BTC in p for p in second.problems), second.problems
    assert len(orders_sent(fake, "BTC")) == 1 and fake.requests_to(*CANCEL) == []
    assert within_step(fake, "ETH", -2500 / 3500.0)

    time.sleep(cancel_after + 0.1)
    third = rec.run_cycle()  # cancelled, then re-planned on the position it left (flat)
    assert len(fake.requests_to(*CANCEL)) == 1 and fake.orders[stuck]["status"] == "CANCELED"
    assert [(o.symbol, o.leg) for o in third.plan.orders] == [(BTC, "open")]
    assert third.status == "ok", (third.status, third.problems)
    assert [r["status"] for r in outcomes(tmp_path, stuck)] == ["canceled"]
    assert len(fills_of(fake, "BTC")) == 1 and within_step(fake, "BTC", EXPECTED["BTC"])


def test_a_partial_fill_is_reported_with_its_filled_amount_never_as_zero(tmp_path, fake):
    cancel_after = 0.8
    cfg = ws(tmp_path, fake)
    rec = reconciler_for(cfg, *venue_args(tmp_path), "--cancel-after", str(cancel_after),
                         after_send_hook=mode_for_first_order(fake, "partial:0.4"))
    first = rec.run_cycle()
    assert first.counts() == {"partially_filled": 1, "filled": 2}, first.counts()
    partial = first.results[0]
    assert partial["symbol"] == BTC and partial["filled"] == pytest.approx(0.020)
    cid = partial["client_order_id"]

    time.sleep(cancel_after + 0.1)
    second = rec.run_cycle()
    assert fake.orders[cid]["status"] == "CANCELED"
    [outcome] = outcomes(tmp_path, cid)
    assert outcome["status"] == "canceled" and outcome["filled"] == pytest.approx(0.020)
    assert second.status == "ok" and [(o.symbol, o.amount) for o in second.plan.orders] == \
        [(BTC, Decimal("0.032"))]
    assert within_step(fake, "BTC", EXPECTED["BTC"]) and len(fills_of(fake, "BTC")) == 2

    about = [m for _, m in rec.report.lines if cid in m]
    assert any("partially filled: 0.02 of 0.052" in m for m in about), about
    assert any("canceled after 0.02 of 0.052" in m for m in about), about
    assert not any(" 0 filled" in m for m in about), about


# -- 10. output counts ----------------------------------------------------------------------------
FAKE_STATUS = {"FILLED": "filled", "PARTIALLY_FILLED": "partially_filled", "NEW": "open", "CANCELED": "canceled"}


def exchange_counts(fake):
    return dict(Counter(FAKE_STATUS[o["status"]] for o in fake.orders.values()))


def test_once_json_counts_match_what_the_exchange_filled(tmp_path, fake, monkeypatch, capsys):
    from reconciler.venues.ccxt_venue import CcxtVenue

    ws(tmp_path, fake)
    modes = ["partial:0.4", "stay_open", "fill"]  # BTC, ETH, SOL
    real_create = CcxtVenue.create_order

    def create(self, **kw):
        fake.order_mode = modes.pop(0) if modes else "fill"
        return real_create(self, **kw)

    monkeypatch.setattr(CcxtVenue, "create_order", create)
    assert cli(tmp_path, "--json") == 1  # orders still working: not on target
    out = json.loads(capsys.readouterr().out)
    assert exchange_counts(fake) == {"partially_filled": 1, "open": 1, "filled": 1}
    assert out["counts"] == exchange_counts(fake), out


def test_once_json_counts_include_the_order_resolved_before_the_retry_cycle(tmp_path, fake, capsys):
    """An order applied whose answer was lost: --once re-reads and sends the rest in a second cycle.
    The run filled three orders; its --json must say so (not only the last cycle's one)."""
    ws(tmp_path, fake)
    fake.add_fault(*ORDER, "delay:0", "apply_then_500")  # ETH applied, answer lost; SOL not sent
    assert cli(tmp_path, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert len(fake.fills) == 3 and exchange_counts(fake) == {"filled": 3}
    assert_on_target(fake)
    assert out["status"] == "ok"
    assert out["counts"] == {"filled": 3}, out


def test_once_resolves_an_order_lost_by_an_earlier_run_within_one_run(tmp_path, fake):
    """cron `--once`: an order whose answer was lost (500) and which the exchange does not have blocks its
    symbol for the settle window *from when this process first saw it*. A new process starts that window
    again, so `--once` must wait it out itself (bounded by --order-settle), or the symbol never trades."""
    ws(tmp_path, fake)
    fake.add_fault(*ORDER, "500")  # BTC not applied, answer lost; ETH and SOL not sent in that cycle
    settle = ("--order-settle", "1.5")
    assert cli(tmp_path, *settle) == 0  # one run: waits the window out, declares BTC never applied, trades
    assert_on_target(fake)
    assert len(fake.fills) == 3
    outcomes = [r["status"] for r in journal_lines(tmp_path) if r["event"] == "outcome"]
    assert outcomes.count("not_found") == 1


def test_a_repaired_journal_is_checked_once_not_by_every_run(tmp_path, fake):
    ws(tmp_path, fake)
    assert cli(tmp_path) == 0
    journal = tmp_path / "orders.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join([lines[0], "{garbage", *lines[1:]]) + "\n")
    assert cli(tmp_path) == 2  # damaged: nothing sent
    assert main(["reconcile", "--repair-journal", "--config", str(tmp_path / "portfolio_config.json"),
                 "--strategies", str(tmp_path / "strategies")]) == 0
    write_json(tmp_path / "strategies" / "a" / "state.json", {"symbol": "BTC/USDT:USDT", "position": 0.5})
    started = time.monotonic()
    assert cli(tmp_path, "--order-settle", "1") == 0  # waits the settle window once, checks open orders
    assert time.monotonic() - started >= 1.0
    write_json(tmp_path / "strategies" / "a" / "state.json", {"symbol": "BTC/USDT:USDT", "position": 0.25})
    started = time.monotonic()
    assert cli(tmp_path, "--order-settle", "30") == 0  # the check is recorded: no second wait
    assert time.monotonic() - started < 20
