"""Bitget USDT-M perpetuals (ccxt ``bitget``, classic account) through the venue fault matrix
(tests/fakes/venue_matrix.py) and its known problems, against the fake server tests/fakes/fake_bitget.py.

Units: amounts in contracts = base units (ccxt gives every Bitget contract a contract size of 1), prices
and equity in USDT.
"""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import ccxt
import pytest

from fakes import venue_matrix as vm
from fakes.fake_bitget import FakeBitget
from fakes.workspace import reconciler_for
from fastopt.errors import InputError
from reconciler.errors import (
    AuthenticationError,
    InsufficientFunds,
    InvalidOrder,
    OrderOutcomeUnknown,
    VenueConfigError,
)
from reconciler.venues import ccxt_venue
from reconciler.venues.bitget import PROFILE, refusal
from reconciler.venues.ccxt_venue import CcxtVenue
from reconciler.venues.profile import DEFAULT

pytestmark = pytest.mark.integration

PLACE = "/api/v2/mix/order/place-order"
DETAIL = "/api/v2/mix/order/detail"
PLAIN = replace(DEFAULT, exchange_id="bitget")


@pytest.fixture
def fake(monkeypatch):
    with vm.serving(FakeBitget, monkeypatch) as server:
        yield server


def venue_of(fake: FakeBitget, monkeypatch: pytest.MonkeyPatch, profile=PROFILE, env=None) -> CcxtVenue:
    """A CcxtVenue on the fake with ``profile`` used for everything, ccxt options included (the plain-ccxt
    default profile gets a client built without bitget's forced options)."""
    monkeypatch.setattr(ccxt_venue, "profile_for", lambda exchange_id: profile)
    return CcxtVenue("bitget", settings={"api_base_url": fake.base_url, "timeout": 1500, "enableRateLimit": False},
                     env=fake.env if env is None else env, profile=profile, backoff_s=0.01, order_settle_s=1.0)


def cid(n: int) -> str:
    return "fo" + f"{n:030x}"


class TestFaultMatrix(vm.FaultMatrix):
    """Timeouts, 5xx, 429, margin and reduce-only refusals, status-less answers, crashes (tests/fakes/venue_matrix.py)."""


def test_orders_carry_the_client_id_amount_in_base_units_and_reduce_only(fake, tmp_path):
    """Every order reaches ``POST /api/v2/mix/order/place-order`` with the journaled id as ``clientOid``,
    ``size`` = the journaled amount (contracts; Bitget's contract size is 1, so also base units), product
    type USDT-FUTURES, margin coin USDT, one-way (no ``tradeSide``); a close carries ``reduceOnly: "YES"``."""
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    vm.run_until_on_target(rec, fake)
    sent = vm.order_requests(fake, PLACE)
    intents = [r for r in vm.journal_lines(tmp_path) if r["event"] == "intent"]
    assert [p["clientOid"] for p in sent] == [r["client_order_id"] for r in intents]
    assert [Decimal(p["size"]) for p in sent] == [Decimal(r["amount"]) for r in intents]
    assert all(r["contract_size"] == 1.0 for r in intents)
    assert all(p["productType"] == "USDT-FUTURES" and p["marginCoin"] == "USDT" and p["orderType"] == "market"
               and "tradeSide" not in p for p in sent)
    assert all(p.get("reduceOnly", "NO") != "YES" for p in sent)  # opening orders
    held = {f["client_order_id"]: f["qty"] for f in fake.fills}
    assert [held[p["clientOid"]] for p in sent] == [Decimal(p["size"]) for p in sent]  # base units filled
    (tmp_path / "strategies" / "a" / "state.json").write_text('{"symbol": "BTC/USDT:USDT", "position": 0.0}')
    rec.run_cycle()
    close = vm.order_requests(fake, PLACE)[-1]
    assert close["symbol"] == "BTCUSDT" and close["side"] == "sell" and close["reduceOnly"] == "YES"
    assert fake.position("BTC") == 0.0


def test_the_self_check_refuses_a_venue_whose_lookup_does_not_work(fake, tmp_path):
    """The lookup of a never-used id must answer "not found" (40109): another order (a venue answering with
    someone else's order), a refused request or an answer without an order refuse the venue at start."""
    cfg = vm.workspace(tmp_path, fake)
    other = {"symbol": "BTCUSDT", "size": "0.01", "orderId": "1", "clientOid": "someone-else", "baseVolume": "0",
             "state": "live", "side": "buy", "orderType": "market", "reduceOnly": "NO", "posSide": "net"}
    for status, payload in [
        (200, {"code": "00000", "msg": "success", "requestTime": 1, "data": other}),
        (400, {"code": "40017", "msg": "Parameter verification failed", "requestTime": 1, "data": None}),
        (200, {"code": "00000", "msg": "success", "requestTime": 1, "data": None}),
    ]:
        fake.add_canned("GET", DETAIL, status, payload)
        rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
        with pytest.raises(VenueConfigError, match="self-check, order lookup by client id"):
            rec.venue(fake.exchange_id)
    assert fake.fills == []
    report = reconciler_for(cfg, *vm.venue_args(tmp_path, fake)).run_cycle()
    assert report.status == "ok" and fake.fills  # with the lookup working again, it trades


def test_order_replies_are_acks_confirmed_by_a_lookup(fake, tmp_path, monkeypatch):
    """Known problem: Bitget answers an order with ``{"orderId", "clientOid"}`` only. An ack is never read
    as "filled" nor as "not applied": the profile confirms it at once with one
    ``GET /api/v2/mix/order/detail`` by ``clientOid``; when that lookup finds nothing yet (Bitget
    acknowledges before the order is visible) or fails, the outcome is ``unknown`` and it is looked up
    later. A plan of three orders is then sent in one cycle.

    ccxt's own order from the ack has no status (asserted below on the raw client); ``CcxtVenue`` confirms
    every status-less ack with the profile's lookup, which is what plain ccxt could not do on Bitget."""
    plain = venue_of(fake, monkeypatch, profile=PLAIN)
    plain.check_account()
    raw = plain.exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.01, None,
                                      {"clientOid": cid(1), "hedged": False})
    assert raw.get("status") is None and not raw.get("filled")  # the ack says nothing of the order's state

    venue = venue_of(fake, monkeypatch)
    venue.check_account()
    before = len(fake.requests_full)
    sent = venue.create_order(symbol="BTC/USDT:USDT", side="buy", amount=Decimal("0.01"), reduce_only=False,
                              client_order_id=cid(2))
    assert sent.status == "filled" and sent.filled == 0.01 and sent.average == 95000.0
    assert [(r["method"], r["path"], r["params"].get("clientOid")) for r in fake.requests_full[before:]] == [
        ("POST", PLACE, cid(2)), ("GET", DETAIL, cid(2))]
    fake.add_canned("GET", DETAIL, 400, {"code": "40109", "msg": "The data of the order cannot be found, please "
                                         "confirm the order number", "requestTime": 1, "data": None})
    unconfirmed = venue.create_order(symbol="BTC/USDT:USDT", side="buy", amount=Decimal("0.01"),
                                     reduce_only=False, client_order_id=cid(3))
    assert unconfirmed.status == "unknown"  # not found right after the ack: never "not applied"
    found = venue.fetch_order_by_client_id(symbol="BTC/USDT:USDT", client_order_id=cid(3))
    assert found is not None and found.status == "filled" and found.filled == 0.01
    fake.fills.clear()
    fake.set_position("BTCUSDT", 0)

    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    placed = len(vm.order_requests(fake, PLACE))
    assert rec.run_cycle().status == "ok"
    vm.assert_on_target(fake)
    assert len(vm.order_requests(fake, PLACE)) - placed == 3
    outcomes = [r["status"] for r in vm.journal_lines(tmp_path) if r["event"] == "outcome"]
    assert outcomes == ["filled"] * 3 and not rec.journal.unfinished()


def test_reduce_only_refusals_are_refusals_by_code(fake, monkeypatch):
    """Known problem: Bitget refuses a reduce-only order that cannot reduce with ``22002`` "No position to
    close" (or ``40757`` "Not enough position is available"); ccxt 4.5.90 has neither code in its table, so
    plain ccxt raises a generic ExchangeError: an *unknown* outcome that blocks the symbol until the order
    is looked up and the settle window passes. Here it is a refusal (:class:`InvalidOrder`), at once.

    Fails on the plain-ccxt default profile: the same refused order is an :class:`OrderOutcomeUnknown`
    there (asserted below with ``PLAIN``)."""
    venue = venue_of(fake, monkeypatch)
    venue.check_account()
    venue.create_order(symbol="ETH/USDT:USDT", side="buy", amount=Decimal("1"), reduce_only=False,
                       client_order_id=cid(2))
    with pytest.raises(InvalidOrder, match="no position to close"):
        venue.create_order(symbol="ETH/USDT:USDT", side="buy", amount=Decimal("1"), reduce_only=True,
                           client_order_id=cid(3))
    assert fake.position("ETH") == 1.0

    plain = venue_of(fake, monkeypatch, profile=PLAIN)
    with pytest.raises(OrderOutcomeUnknown):
        plain.create_order(symbol="ETH/USDT:USDT", side="buy", amount=Decimal("1"), reduce_only=True,
                           client_order_id=cid(4))

    def body(code: str) -> ccxt.ExchangeError:
        return ccxt.ExchangeError('bitget {"code":"%s","msg":"...","requestTime":1,"data":null}' % code)

    assert isinstance(refusal(body("40757"), "m"), InvalidOrder)
    assert isinstance(refusal(body("45111"), "m"), InvalidOrder)
    assert isinstance(refusal(ccxt.InsufficientFunds(body("40762").args[0]), "m"), InsufficientFunds)
    assert refusal(body("40786"), "m") is None  # duplicate clientOid: the order exists, look it up
    assert refusal(ccxt.RequestTimeout("bitget POST http://x/api/v2/mix/order/place-order"), "m") is None


def test_the_account_type_is_forced_so_no_probe_decides_it(fake, tmp_path, monkeypatch):
    """Known problem: plain ccxt decides classic vs unified (UTA) account by probing
    ``GET /api/v3/account/settings`` once and keeps the answer for the process; one failed probe (here a
    500 on a UTA account) pins it to the classic API, whose every call then fails. The profile forces
    ``options.uta = False`` (classic v2 API): no probe is ever sent.

    Fails on the plain-ccxt default profile: the probe is sent (and pins ``options['uta']``), asserted
    below with ``PLAIN``."""
    venue = venue_of(fake, monkeypatch)
    assert venue.exchange.options["uta"] is False
    venue.check_account()
    cfg = vm.workspace(tmp_path, fake)
    vm.run_until_on_target(reconciler_for(cfg, *vm.venue_args(tmp_path, fake)), fake)
    assert not [r for r in fake.requests_full if r["path"].startswith("/api/v3/")]

    fake.uta_account = True
    fake.add_canned("GET", "/api/v3/account/settings", 500, {"code": "40015", "msg": "System is abnormal"})
    plain = venue_of(fake, monkeypatch, profile=PLAIN)
    with pytest.raises(AuthenticationError, match="40085"):
        plain.check_account()
    assert plain.exchange.options["uta"] is False  # pinned by one failed probe
    assert len(fake.requests_to("GET", "/api/v3/account/settings")) == 1
    with pytest.raises(AuthenticationError, match="40085"):
        plain.fetch_positions()
    assert len(fake.requests_to("GET", "/api/v3/account/settings")) == 1  # never asked again


def test_a_unified_account_is_refused_with_the_fix(fake, tmp_path):
    """A UTA account answers the classic API with 40085: refused at start (VenueConfigError naming the fix:
    a classic-mode sub-account), not an authentication error, and nothing is sent. (On the plain-ccxt
    default a *working* probe switches ccxt to the UTA v3 API, which fastopt does not support or test;
    a failed one pins the classic API, see the test above.)"""
    fake.uta_account = True
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    with pytest.raises(VenueConfigError, match="Unified Trading Account.*classic-mode sub-account"):
        rec.venue(fake.exchange_id)
    assert not vm.order_requests(fake, PLACE)


def test_hedge_mode_is_refused(fake, tmp_path, monkeypatch):
    """Known problem: hedge mode (``posMode: hedge_mode``) must be refused. ccxt's bitget has
    ``fetchPositionMode: False``, so plain ccxt never checks: on a flat hedge-mode account the default
    self-check passes and every order is then refused by Bitget (40774). The profile reads ``posMode`` from
    ``GET /api/v2/mix/account/account`` at start, and refuses hedge-mode position rows.

    Fails on the plain-ccxt default profile: ``check_account`` passes (asserted below with ``PLAIN``)."""
    fake.hedge = True
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    with pytest.raises(VenueConfigError, match="hedge mode.*one-way"):
        rec.venue(fake.exchange_id)
    assert not vm.order_requests(fake, PLACE)
    fake.hedge_positions[("BTCUSDT", "long")] = Decimal("0.5")
    with pytest.raises(VenueConfigError, match="hedge mode"):
        venue_of(fake, monkeypatch).fetch_positions()

    fake.hedge_positions.clear()
    venue_of(fake, monkeypatch, profile=PLAIN).check_account()  # plain ccxt: nothing noticed


def test_the_passphrase_is_required_and_sent(fake, monkeypatch):
    """Bitget keys have a passphrase: ``BITGET_PASSWORD`` -> ccxt ``password`` -> ``ACCESS-PASSPHRASE``.
    Missing: refused before any request, naming the variable; wrong: Bitget's 40012 is an authentication
    error. (The plain-ccxt default also reads ``<ID>_PASSWORD``; this pins that the profile keeps it, as a
    profile listing only key and secret, like binanceusdm's, would fail here.)"""
    env = {k: v for k, v in fake.env.items() if k != "BITGET_PASSWORD"}
    with pytest.raises(InputError, match="BITGET_PASSWORD"):
        venue_of(fake, monkeypatch, env=env)
    with pytest.raises(AuthenticationError, match="40012"):
        venue_of(fake, monkeypatch, env={**fake.env, "BITGET_PASSWORD": "wrong-passphrase"}).check_account()
    venue_of(fake, monkeypatch).check_account()
    signed = [r for r in fake.requests_full if r["path"] == "/api/v2/mix/position/all-position"]
    assert signed and signed[-1]["headers"]["ACCESS-PASSPHRASE"] == fake.env["BITGET_PASSWORD"]


def test_equity_is_the_usdt_m_futures_account(fake, monkeypatch):
    """Equity = ``accountEquity`` of the USDT-M futures account (wallet 20000 + unrealized PnL -1500 = 18500
    USDT), read from ``GET /api/v2/mix/account/accounts?productType=USDT-FUTURES``.

    Fails on the plain-ccxt default profile: ccxt's ``defaultType`` is spot, so ``fetch_balance()`` reads
    the spot wallet (12.5 USDT here; asserted below with ``PLAIN``)."""
    fake.set_balance(20000, -1500)
    assert venue_of(fake, monkeypatch).fetch_equity() == 18500.0
    assert fake.requests_to("GET", "/api/v2/mix/account/accounts")[-1]["productType"] == "USDT-FUTURES"
    assert venue_of(fake, monkeypatch, profile=PLAIN).fetch_equity() == 12.5


def test_only_usdt_perpetuals_are_in_scope(fake, monkeypatch):
    """USDT-M perpetuals only: a position on a USDT-margined delivery contract (same product type, so in
    the same positions answer) is not fastopt's; inverse (BTCUSD, settled in BTC) and USDC perpetuals are
    never targets; ``BTC/USDT``, ``BTCUSDT`` and ``BTC/USDT:USDT`` are the BTCUSDT perpetual.

    Fails on the plain-ccxt default profile: ccxt also loads the spot markets there, so ``BTC/USDT`` names
    the spot pair and resolves to nothing (checked by running it with ``PLAIN``)."""
    venue = venue_of(fake, monkeypatch)
    venue.check_account()
    fake.set_position("BTCUSDT0626", "0.3")
    fake.set_position("SOLUSDT", "-2.5")
    assert venue.fetch_positions() == {"SOL/USDT:USDT": -2.5}
    for raw in ("BTC/USDT", "BTCUSDT", "BTC/USDT:USDT", "btc-usdt"):
        assert venue.resolve_symbol(raw) == "BTC/USDT:USDT"
    assert venue.resolve_symbol("BTC/USD:BTC") is None
    assert venue.resolve_symbol("BTC/USDC:USDC") is None
    assert "inverse" in venue.explain_symbol("BTC/USD:BTC")


def test_open_orders_and_cancel_by_client_id(fake, monkeypatch):
    """Open orders: one ``GET /api/v2/mix/order/orders-pending?productType=USDT-FUTURES`` for the whole
    account (no symbol). Cancel by ``clientOid``: a working order ends canceled; an order already final
    (22001 "No order to cancel") is looked up; an unknown id (40768) is None.

    Fails on the plain-ccxt default profile: ``fetch_open_orders()`` without a symbol lists the *spot*
    book there (``defaultType`` spot; checked by running it with ``PLAIN``), and 22001 is a generic error."""
    venue = venue_of(fake, monkeypatch)
    venue.check_account()
    fake.order_mode = "stay_open"
    venue.create_order(symbol="BTC/USDT:USDT", side="buy", amount=Decimal("0.01"), reduce_only=False,
                       client_order_id=cid(10))
    venue.create_order(symbol="SOL/USDT:USDT", side="sell", amount=Decimal("1"), reduce_only=False,
                       client_order_id=cid(11))
    listed = venue.open_orders("fo")
    assert sorted((s, o.client_order_id, o.status) for s, o in listed) == [
        ("BTC/USDT:USDT", cid(10), "open"), ("SOL/USDT:USDT", cid(11), "open")]
    assert "symbol" not in fake.requests_to("GET", "/api/v2/mix/order/orders-pending")[-1]
    done = venue.cancel_order_by_client_id(symbol="BTC/USDT:USDT", client_order_id=cid(10))
    assert done is not None and done.status == "canceled" and done.filled == 0.0
    again = venue.cancel_order_by_client_id(symbol="BTC/USDT:USDT", client_order_id=cid(10))
    assert again is not None and again.status == "canceled"
    assert venue.cancel_order_by_client_id(symbol="BTC/USDT:USDT", client_order_id=cid(12)) is None
    assert [o.client_order_id for _, o in venue.open_orders("fo")] == [cid(11)]
