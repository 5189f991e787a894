"""Bybit (ccxt ``bybit``, v5 API, Unified Trading Account) through the venue fault matrix
(tests/fakes/venue_matrix.py) and its known problems, with the real ccxt class against tests/fakes/fake_bybit.py.

Units: amounts in contracts; on Bybit's linear perpetuals one contract is one base unit (ccxt
``contractSize`` 1, Bybit has no other linear contract size), so contracts = base units; prices and equity
in USDT.
"""
from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import ccxt
import pytest

from fakes import venue_matrix as vm
from fakes.fake_bybit import API_KEY, FakeBybit
from fakes.workspace import journal_lines, reconciler_for
from reconciler.errors import (
    AuthenticationError,
    InsufficientFunds,
    InvalidOrder,
    OrderOutcomeUnknown,
    VenueConfigError,
    VenueError,
)
from reconciler.venues import bybit
from reconciler.venues.ccxt_venue import FASTOPT_DEFAULT_OPTIONS, CcxtVenue, rebase_urls
from reconciler.venues.profile import DEFAULT, default_account_problem, profile_for, venue_id_prefix

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
PLAIN = replace(DEFAULT, exchange_id="bybit")  # plain ccxt under the bybit id


@pytest.fixture
def fake(monkeypatch):
    with vm.serving(FakeBybit, monkeypatch) as server:
        yield server


def venue(fake: FakeBybit, profile=None, **kwargs) -> CcxtVenue:
    settings = {"api_base_url": fake.base_url, "timeout": 1500, "enableRateLimit": False}
    return CcxtVenue("bybit", settings=settings, env=fake.env, profile=profile, read_attempts=1, backoff_s=0.01,
                     **kwargs)


def plain_venue(fake: FakeBybit) -> CcxtVenue:
    """Plain ccxt under the bybit id: the default profile, and a client built without the profile's forced
    options (``build_ccxt_exchange`` would apply them), fastopt's generic defaults only."""
    exchange = ccxt.bybit({"apiKey": fake.env["BYBIT_API_KEY"], "secret": fake.env["BYBIT_SECRET"],
                           "timeout": 1500, "enableRateLimit": False, "options": dict(FASTOPT_DEFAULT_OPTIONS)})
    exchange.urls["api"] = rebase_urls(exchange.urls["api"], fake.base_url)[0]
    return CcxtVenue("bybit", exchange=exchange, profile=PLAIN, read_attempts=1, backoff_s=0.01)


def order_link_ids(fake: FakeBybit) -> list[str]:
    return [p["orderLinkId"] for p in fake.requests_to("POST", "/v5/order/create")]


class TestFaultMatrix(vm.FaultMatrix):
    """Timeouts, 5xx, 429, margin and reduce-only refusals, status-less answers, crashes (tests/fakes/venue_matrix.py)."""


def test_orders_carry_the_order_link_id_amount_in_contracts_and_reduce_only(fake, tmp_path):
    """Each order reaches ``POST /v5/order/create`` once with ``orderLinkId`` = the journaled client id,
    ``qty`` = the journaled amount in contracts (= base units on Bybit linear), ``positionIdx`` 0; a close
    is ``reduceOnly`` true."""
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    vm.run_until_on_target(rec, fake)
    sent = vm.order_requests(fake, "/v5/order/create")
    intents = [r for r in journal_lines(tmp_path) if r["event"] == "intent"]
    assert [p["orderLinkId"] for p in sent] == [r["client_order_id"] for r in intents]
    assert all(len(p["orderLinkId"]) <= 36 and p["orderLinkId"].startswith("fo") for p in sent)
    assert [Decimal(p["qty"]) for p in sent] == [Decimal(r["amount"]) for r in intents]
    assert all(p["category"] == "linear" and p["orderType"] == "Market" and p["positionIdx"] == 0 for p in sent)
    assert all("reduceOnly" not in p for p in sent)  # opening orders
    # base units held = contracts filled x contract size 1
    assert sum(f["qty"] for f in fake.fills if f["symbol"] == "BTCUSDT") == pytest.approx(fake.position("BTC"))
    (tmp_path / "strategies" / "a" / "state.json").write_text(json.dumps({"symbol": BTC, "position": 0.0}))
    for _ in range(3):
        rec.run_cycle()
    close = vm.order_requests(fake, "/v5/order/create")[-1]
    assert close["side"] == "Sell" and close["reduceOnly"] is True and close["symbol"] == "BTCUSDT"
    assert fake.position("BTC") == 0.0


def test_the_self_check_refuses_a_venue_whose_lookup_does_not_work(fake, tmp_path):
    """A lookup by client id that fails (here ``GET /v5/order/realtime`` answering retCode 10001) makes the
    venue unusable: refused at start, naming the step; an answer carrying another order's ``orderLinkId``
    is never taken for ours; with the lookup working again, it trades."""
    cfg = vm.workspace(tmp_path, fake)
    fake.fail("/v5/order/realtime", 10001, "params error: orderLinkId")
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    with pytest.raises(VenueConfigError, match="self-check, order lookup by client id"):
        rec.venue(fake.exchange_id)
    assert fake.requests_to("POST", "/v5/order/create") == []
    fake.fail("/v5/order/realtime", None)
    other = {"symbol": "BTCUSDT", "orderType": "Market", "orderLinkId": "someone-else", "orderId": "1",
             "orderStatus": "Filled", "side": "Buy", "qty": "1", "cumExecQty": "1", "leavesQty": "0",
             "avgPrice": "95000", "cumExecValue": "95000", "createdTime": "1", "updatedTime": "1",
             "tpslMode": "", "positionIdx": 0, "reduceOnly": False, "timeInForce": "IOC", "price": "0"}
    for path in ("/v5/order/realtime", "/v5/order/realtime", "/v5/order/history"):
        fake.add_canned("GET", path, {"retCode": 0, "retMsg": "OK", "result": {"category": "linear",
                                      "list": [other], "nextPageCursor": ""}, "retExtInfo": {}, "time": 1})
    v = venue(fake)
    assert v.fetch_order_by_client_id(symbol=BTC, client_order_id="fo" + "1" * 30) is None
    report = reconciler_for(cfg, *vm.venue_args(tmp_path, fake)).run_cycle()
    assert report.status == "ok" and len(fake.fills) == 3
    vm.assert_on_target(fake)


def test_known_problem_lookup_by_client_id_raises_arguments_required_on_plain_ccxt(fake):
    """Known problem 1: plain ccxt's lookup (``fetch_order(None, symbol, {"clientOrderId": ...})``) raises
    ArgumentsRequired on a unified account before any request, so the self-check refuses the venue (and an
    order whose answer was lost could never be resolved). The profile's lookup answers None for an unknown
    id and finds an order whose answer was lost. Fails on the default profile (first half shows it)."""
    plain = plain_venue(fake)
    with pytest.raises(VenueConfigError, match="acknowledged"):
        plain.check_account()
    assert fake.requests_to("GET", "/v5/order/realtime") == []  # refused before any request
    v = venue(fake)
    v.check_account()
    fake.inject("timeout_applied")
    cid = "fo" + "ab" * 15
    with pytest.raises(OrderOutcomeUnknown):
        v.create_order(symbol=BTC, side="buy", amount=Decimal("0.010"), reduce_only=False, client_order_id=cid)
    found = v.fetch_order_by_client_id(symbol=BTC, client_order_id=cid)
    assert found is not None and found.status == "filled" and found.filled == pytest.approx(0.01)
    fake.realtime_closed = False  # after a Bybit restart only the order history has it
    found = v.fetch_order_by_client_id(symbol=BTC, client_order_id=cid)
    assert found is not None and found.status == "filled"
    assert fake.requests_to("GET", "/v5/order/history")[-1]["orderLinkId"] == cid


def test_known_problem_failed_unified_account_probe_blocks_plain_ccxt(fake, tmp_path):
    """Known problem 2: ccxt's ``create_order`` first probes the account type (``GET /v5/user/query-api`` +
    ``GET /v5/account/info``); when that probe fails (here retCode 10016), plain ccxt raises out of
    ``create_order`` although nothing was sent (an unknown outcome) and its lookup fails the same way.
    The profile forces the UTA options: no probe at all, orders reach the target. Fails on the default
    profile (first half shows it)."""
    fake.fail("/v5/user/query-api", 10016, "System error. Please try again later.")
    plain = plain_venue(fake)
    with pytest.raises(OrderOutcomeUnknown):
        plain.create_order(symbol=BTC, side="buy", amount=Decimal("0.010"), reduce_only=False,
                           client_order_id="fo" + "c" * 30)
    assert fake.requests_to("POST", "/v5/order/create") == []  # nothing was sent
    with pytest.raises(VenueError):
        plain.fetch_order_by_client_id(symbol=BTC, client_order_id="fo" + "c" * 30)
    probes = len(fake.requests_to("GET", "/v5/user/query-api"))
    assert probes == 2  # plain ccxt's create_order and its lookup each probed (and failed)
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    vm.run_until_on_target(rec, fake)
    vm.assert_one_fill_per_order(fake, tmp_path)
    assert len(fake.requests_to("GET", "/v5/user/query-api")) == probes  # the profile never probes


def test_known_problem_client_id_is_an_order_link_id_of_at_most_36_chars(fake):
    """Known problem 3: Bybit's client id is ``orderLinkId`` (max 36 of [A-Za-z0-9_-]; the fake refuses
    others with 10001). fastopt's ``fo`` + 30 hex is sent unchanged; the prefix stays ``fo``. The format
    part also holds on the default profile (ccxt maps ``clientOrderId`` to ``orderLinkId``); the default
    fails the last part: retCode 110072 (id already used) would be a refusal ("not applied") instead of an
    unknown outcome to look up."""
    profile = profile_for("bybit")
    assert profile is bybit.PROFILE and venue_id_prefix(profile) == "fo"
    cid = profile.client_id("fo" + "0123456789abcdef0123456789abcd")
    assert cid == "fo0123456789abcdef0123456789abcd" and len(cid) <= 36
    v = venue(fake)
    v.create_order(symbol=BTC, side="buy", amount=Decimal("0.010"), reduce_only=False, client_order_id=cid)
    assert order_link_ids(fake) == [cid] and "clientOrderId" not in fake.requests_to("POST", "/v5/order/create")[0]
    with pytest.raises(InvalidOrder):  # a too-long id is a refusal, nothing applied
        v.create_order(symbol=BTC, side="buy", amount=Decimal("0.010"), reduce_only=False,
                       client_order_id="fo" + "0" * 40)
    with pytest.raises(OrderOutcomeUnknown, match="exists already"):  # 110072: look it up, not "refused"
        v.create_order(symbol=BTC, side="buy", amount=Decimal("0.010"), reduce_only=False, client_order_id=cid)
    assert len(fake.fills) == 1


def test_known_problem_hedge_mode_is_refused_with_the_fix(fake):
    """Known problem 4: hedge mode (positionIdx 1/2). At start the profile reads ``GET /v5/position/list``
    of BTCUSDT and refuses a hedge-mode account even when flat (plain ccxt has no ``fetchPositionMode`` on
    bybit: the default account check says nothing, shown with the default account_problem); a hedge row is
    refused by the position read; an order into a hedge-mode symbol (10001 "position idx not match position
    mode") is a refusal naming the fix."""
    fake.hedge = True
    with pytest.raises(VenueConfigError, match="hedge mode.*one-way"):
        venue(fake).check_account()
    venue(fake, profile=replace(bybit.PROFILE, account_problem=default_account_problem)).check_account()
    v = venue(fake)
    with pytest.raises(InvalidOrder, match="hedge mode"):
        v.create_order(symbol=BTC, side="buy", amount=Decimal("0.010"), reduce_only=False,
                       client_order_id="fo" + "d" * 30)
    fake.set_position("BTCUSDT", "0.5")
    with pytest.raises(VenueConfigError, match="hedge mode"):
        v.fetch_positions()
    assert fake.fills == []


def test_a_classic_account_is_refused(fake):
    """unifiedMarginStatus 1 (classic account): the UTA options forced by the profile do not fit it."""
    fake.unified_status = 1
    with pytest.raises(VenueConfigError, match="Unified Trading Account"):
        venue(fake).check_account()


def test_scope_equity_and_prices(fake):
    """Only USDT linear perpetuals count: a dated USDT future (BTCUSDT-26DEC25) and a USDC perpetual are not
    fastopt's; equity = USDT coin equity (wallet + unrealized PnL, USDT); mark price with the index as
    reference."""
    fake.set_position("BTCUSDT", "0.25")
    fake.set_position("SOLUSDT", "-3.5")
    fake.set_position("BTCUSDT-26DEC25", "1.0")
    fake.set_position("BTCPERP", "2.0")
    fake.wallet, fake.unrealized_pnl = Decimal("12000"), Decimal("-150.5")
    v = venue(fake)
    v.check_account()
    assert v.fetch_positions() == {BTC: 0.25, "SOL/USDT:USDT": -3.5}
    assert v.fetch_equity() == pytest.approx(11849.5)
    assert v.resolve_symbol("BTC/USDC:USDC") is None and v.resolve_symbol("BTCUSDT") == BTC
    assert v.resolve_symbol("BTC/USDT:USDT-251226") is None
    assert v.fetch_prices([BTC]) == {BTC: 95000.0} and v.reference_prices([BTC]) == {BTC: 95000.0}


def test_market_orders_are_split_under_max_mkt_order_qty(fake, tmp_path):
    """ccxt keeps only ``maxOrderQty`` (limit orders); Bybit refuses a market order above ``maxMktOrderQty``
    (10001). The profile's ``market_max_amount`` gives it: the BTC target (0.052 contracts) goes out in
    orders of at most 0.02. On the default profile max_amount would be 1190 (refused forever)."""
    fake.set_max_market_qty("BTC", "0.02")
    v = venue(fake)
    assert v.load_markets([BTC], {})[BTC].max_amount == Decimal("0.02")
    plain = plain_venue(fake)
    assert plain.resolve_symbol(BTC) == BTC and plain.load_markets([BTC], {})[BTC].max_amount == Decimal("1190")
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    vm.run_until_on_target(rec, fake, cycles=12)
    btc = [Decimal(p["qty"]) for p in fake.requests_to("POST", "/v5/order/create") if p["symbol"] == "BTCUSDT"]
    assert len(btc) >= 3 and max(btc) <= Decimal("0.02")
    vm.assert_one_fill_per_order(fake, tmp_path)


def test_cancel_and_open_orders_by_order_link_id(fake):
    """A working order is listed (whole account, settleCoin USDT) and cancelled by ``orderLinkId``; a second
    cancel finds it already final (110001) and reports its state from the lookup."""
    fake.order_mode = "stay_open"
    v = venue(fake)
    cid = "fo" + "e" * 30
    v.create_order(symbol=BTC, side="buy", amount=Decimal("0.010"), reduce_only=False, client_order_id=cid)
    listed = v.open_orders("fo")
    assert [(s, o.client_order_id, o.status) for s, o in listed] == [(BTC, cid, "open")]
    assert fake.requests_to("GET", "/v5/order/realtime")[-1]["settleCoin"] == "USDT"
    result = v.cancel_order_by_client_id(symbol=BTC, client_order_id=cid)
    assert result is not None and result.status == "canceled" and result.filled == 0.0
    assert fake.requests_to("POST", "/v5/order/cancel")[0]["orderLinkId"] == cid
    again = v.cancel_order_by_client_id(symbol=BTC, client_order_id=cid)
    assert again is not None and again.status == "canceled"
    assert v.open_orders("fo") == []
    assert v.cancel_order_by_client_id(symbol=BTC, client_order_id="fo" + "9" * 30) is None


def test_refusals_and_auth(fake, monkeypatch):
    """Refusal codes are refusals (not applied); 110066 (ccxt: ExchangeError) is pinned as one; a wrong key
    (10003) is an authentication error at start."""
    v = venue(fake)
    fake.inject("insufficient_margin")
    with pytest.raises(InsufficientFunds):
        v.create_order(symbol=BTC, side="buy", amount=Decimal("0.010"), reduce_only=False,
                       client_order_id="fo" + "f" * 30)
    err = bybit.refusal(ccxt.ExchangeError('bybit {"retCode":110066,"retMsg":"No trading is allowed"}'), "m")
    assert isinstance(err, InvalidOrder)
    assert bybit.refusal(ccxt.RequestTimeout("bybit GET timed out"), "m") is None
    assert PLAIN.refusal(ccxt.ExchangeError('bybit {"retCode":110066}'), "m") is None
    wrong = {"BYBIT_API_KEY": "not-" + API_KEY, "BYBIT_SECRET": fake.env["BYBIT_SECRET"]}
    bad = CcxtVenue("bybit", settings={"api_base_url": fake.base_url, "timeout": 1500}, env=wrong,
                    read_attempts=1)
    with pytest.raises(AuthenticationError):
        bad.check_account()
    assert fake.fills == []
