"""CcxtVenue's account checks, refusals, order states and secrets: the real ccxt ``binanceusdm``
client against the fake Binance USD-M server (tests/fake_binance.py) on 127.0.0.1."""
from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from fake_binance import API_KEY, SECRET, FakeBinance
from fastopt.errors import InputError
from reconciler.errors import (
    InsufficientFunds,
    InvalidOrder,
    OrderOutcomeUnknown,
    TemporaryError,
    VenueConfigError,
    scrub,
    translate_ccxt_error,
)
from reconciler.venues.ccxt_venue import CcxtVenue, MonotonicThrottle, build_ccxt_exchange, credentials_from_env

pytestmark = pytest.mark.integration

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
ORDER = ("POST", "/fapi/v1/order")
ENV = {"BINANCEUSDM_API_KEY": API_KEY, "BINANCEUSDM_SECRET": SECRET}


@pytest.fixture
def fake():
    with FakeBinance(slow_s=2.0) as server:
        yield server


def venue_for(fake, **kwargs) -> CcxtVenue:
    return CcxtVenue("binanceusdm", settings={"api_base_url": fake.base_url, "timeout": 1500}, env=dict(ENV),
                     backoff_s=0.01, **kwargs)


def buy(venue, cid, amount="0.002", symbol=BTC, side="buy", reduce_only=False):
    return venue.create_order(symbol=symbol, side=side, amount=Decimal(amount), reduce_only=reduce_only,
                              client_order_id=cid)


# -- account mode -----------------------------------------------------------------------------------
def test_one_way_account_passes_the_check_with_a_signed_request(fake):
    venue = venue_for(fake)
    assert venue.check_account() is None
    (params,) = fake.requests_to("GET", "/fapi/v1/positionSide/dual")
    assert "signature" in params and "timestamp" in params


def test_hedge_mode_is_refused_at_check_account_naming_venue_problem_and_fix(fake):
    fake.hedge = True
    with pytest.raises(VenueConfigError) as info:
        venue_for(fake).check_account()
    message = str(info.value)
    assert message.startswith("binanceusdm:") and "hedge mode" in message
    assert "switch to one-way mode in the Binance futures settings" in message
    assert fake.fills == [] and ("POST", "/fapi/v1/order") not in fake.requests


def test_hedge_mode_sides_are_refused_on_positions_read_not_netted(fake):
    venue = venue_for(fake)
    fake.hedge = True
    fake.set_hedge_position("BTC", "LONG", "0.010")
    fake.set_hedge_position("BTC", "SHORT", "-0.004")
    with pytest.raises(VenueConfigError, match="hedge mode"):
        venue.fetch_positions()
    fake.hedge = False
    fake.manual_fill("BTC", "0.006")
    assert venue.fetch_positions() == {BTC: pytest.approx(0.006)}


def test_a_manual_trade_moves_the_position_without_an_api_fill(fake):
    venue = venue_for(fake)
    fake.manual_fill("ETH", "-0.5")
    assert venue.fetch_positions() == {ETH: pytest.approx(-0.5)}
    assert fake.fills == [] and len(fake.manual_fills) == 1


def test_whitespace_in_keys_is_an_input_error_naming_the_variable_never_the_value(fake):
    with pytest.raises(InputError) as info:
        credentials_from_env("binanceusdm", {**ENV, "BINANCEUSDM_SECRET": SECRET + "\n"})
    assert "BINANCEUSDM_SECRET ends with whitespace (a newline?); remove it" in str(info.value)
    assert SECRET not in str(info.value)
    with pytest.raises(InputError, match="BINANCEUSDM_API_KEY starts with whitespace"):
        CcxtVenue("binanceusdm", settings={"api_base_url": fake.base_url}, env={**ENV, "BINANCEUSDM_API_KEY":
                                                                                  " " + API_KEY})
    # a client built elsewhere (keys set on it directly) is caught by the start-up check
    exchange = build_ccxt_exchange("binanceusdm", {"api_base_url": fake.base_url, "timeout": 1500}, ENV)
    exchange.secret = SECRET + "\r\n"
    with pytest.raises(InputError, match="BINANCEUSDM_SECRET ends with whitespace") as info:
        CcxtVenue("binanceusdm", exchange=exchange).check_account()
    assert SECRET not in str(info.value)
    assert fake.requests == []


# -- refusals -------------------------------------------------------------------------------------------
def _max_qty(fake, venue):
    fake.set_max_qty("BTC", market="0.010")
    return buy(venue, "fo-max", amount="0.011")


def _hedge(fake, venue):
    fake.hedge = True
    return buy(venue, "fo-hedge")


def _margin(fake, venue):
    fake.add_fault(*ORDER, "insufficient")
    return buy(venue, "fo-margin")


def _reduce_only_flat(fake, venue):
    return buy(venue, "fo-ro", side="sell", reduce_only=True)


def _min_notional(fake, venue):
    return buy(venue, "fo-small", amount="0.001")


def _canned(code, msg):
    def run(fake, venue):
        fake.add_canned(*ORDER, 400, {"code": code, "msg": msg})
        return buy(venue, f"fo{code}")
    return run


@pytest.mark.parametrize("action, expected, code", [
    (_hedge, InvalidOrder, "-4061"),
    (_margin, InsufficientFunds, "-2019"),
    (_max_qty, InvalidOrder, "-4005"),
    (_reduce_only_flat, InvalidOrder, "-2022"),
    (_min_notional, InvalidOrder, "-4164"),
    (_canned(-2027, "Exceeded the maximum allowable position at current leverage."), InvalidOrder, "-2027"),
    (_canned(-2028, "Leverage is smaller than permitted: insufficient margin balance"), InsufficientFunds, "-2028"),
    (_canned(-4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit."), InvalidOrder,
     "-4131"),
], ids=["hedge-4061", "margin-2019", "maxqty-4005", "reduceonly-2022", "notional-4164", "maxpos-2027",
        "leverage-2028", "percentprice-4131"])
def test_venue_refusals_are_rejections_not_unknown_outcomes(fake, action, expected, code):
    venue = venue_for(fake)
    venue.load_markets([BTC], {})
    with pytest.raises(expected) as info:
        action(fake, venue)
    assert type(info.value) is expected  # not OrderOutcomeUnknown: the engine records "rejected"
    assert code in str(info.value)
    assert fake.fills == [] and fake.position("BTC") == 0
    assert len(fake.requests_to(*ORDER)) == 1  # sent once, never retried


def test_hedge_refusal_says_how_to_fix_it(fake):
    fake.hedge = True
    with pytest.raises(InvalidOrder, match="switch to one-way mode"):
        buy(venue_for(fake), "fo-h")


def test_ccxt_maps_these_codes_to_non_refusals_hence_the_override():
    """Documents why the binanceusdm profile's refusal table exists: without it ccxt's class decides."""
    import ccxt

    from reconciler.venues.binanceusdm import refusal

    exc = ccxt.OperationRejected('binanceusdm {"code":-4061,"msg":"Order\'s position side does not match user\'s '
                                 'setting."}')
    assert isinstance(translate_ccxt_error(exc, during_order=True), OrderOutcomeUnknown)
    assert type(translate_ccxt_error(exc, during_order=True, refusal=refusal)) is InvalidOrder
    failed = ccxt.OperationFailed('binanceusdm {"code":-2019,"msg":"Margin is insufficient."}')
    assert type(translate_ccxt_error(failed, during_order=True, refusal=refusal)) is InsufficientFunds
    timeout = ccxt.RequestTimeout("binanceusdm POST https://fapi.binance.com/fapi/v1/order")
    assert isinstance(translate_ccxt_error(timeout, during_order=True, refusal=refusal),
                      OrderOutcomeUnknown)


# -- order states ---------------------------------------------------------------------------------------
def test_an_answer_without_a_status_is_unknown_never_final(fake):
    venue = venue_for(fake)
    fake.add_canned(*ORDER, 200, {"orderId": 77, "clientOrderId": "fo-ack", "symbol": "BTCUSDT"})
    result = buy(venue, "fo-ack")
    assert result.status == "unknown" and result.filled == 0.0 and result.exchange_order_id == "77"


def test_an_order_answered_new_is_open_then_filled_on_lookup(fake):
    venue = venue_for(fake)
    fake.order_mode = "new_then_fill"
    result = buy(venue, "fo-new")
    assert result.status == "open" and result.filled == 0.0
    found = venue.fetch_order_by_client_id(symbol=BTC, client_order_id="fo-new")
    assert found.status == "filled" and found.filled == pytest.approx(0.002) and found.average == 95000.0


def test_partial_fill_then_cancel_returns_canceled_with_the_filled_part(fake):
    venue = venue_for(fake)
    fake.order_mode = "partial:0.5"
    result = buy(venue, "fo-part", amount="0.010")
    assert result.status == "partially_filled" and result.filled == pytest.approx(0.005)
    canceled = venue.cancel_order_by_client_id(symbol=BTC, client_order_id="fo-part")
    assert canceled.status == "canceled" and canceled.filled == pytest.approx(0.005)
    assert canceled.average == 95000.0 and fake.position("BTC") == Decimal("0.005")
    (params,) = fake.requests_to("DELETE", "/fapi/v1/order")
    assert params["origClientOrderId"] == "fo-part" and params["symbol"] == "BTCUSDT" and "signature" in params
    # cancelling again: "unknown order" from the venue, so it is looked up: the same final state
    again = venue.cancel_order_by_client_id(symbol=BTC, client_order_id="fo-part")
    assert (again.status, again.filled) == ("canceled", pytest.approx(0.005))
    assert fake.fills[-1]["qty"] == Decimal("0.005") and len(fake.fills) == 1


def test_cancel_of_an_order_filled_meanwhile_is_filled_and_of_none_is_none(fake):
    venue = venue_for(fake)
    fake.order_mode = "stay_open"
    assert buy(venue, "fo-late").status == "open"
    assert fake.fill_open("fo-late") == 1
    late = venue.cancel_order_by_client_id(symbol=BTC, client_order_id="fo-late")
    assert late.status == "filled" and late.filled == pytest.approx(0.002)
    assert venue.cancel_order_by_client_id(symbol=BTC, client_order_id="fo-never") is None


def test_expired_order_with_a_fill_is_canceled_keeping_the_filled_amount(fake):
    venue = venue_for(fake)
    fake.add_canned(*ORDER, 200, {"orderId": 9, "clientOrderId": "fo-exp", "symbol": "BTCUSDT", "status": "EXPIRED",
                                  "executedQty": "0.001", "origQty": "0.002", "avgPrice": "95010", "type": "MARKET",
                                  "side": "BUY", "cumQuote": "95.01"})
    result = buy(venue, "fo-exp")
    assert (result.status, result.filled, result.average) == ("canceled", pytest.approx(0.001), 95010.0)


def test_open_orders_lists_only_ids_with_the_prefix_across_symbols(fake):
    venue = venue_for(fake)
    fake.order_mode = "stay_open"
    buy(venue, "fo-aaa")
    buy(venue, "fo-bbb", amount="0.010", symbol=ETH)
    buy(venue, "web_manual1")
    buy(venue, "xfo-ccc")
    fake.order_mode = "fill"
    buy(venue, "fo-done")  # filled: not open
    mine = venue.open_orders("fo-")
    assert sorted((symbol, r.client_order_id, r.status) for symbol, r in mine) == [
        (BTC, "fo-aaa", "open"), (ETH, "fo-bbb", "open")]
    (params,) = fake.requests_to("GET", "/fapi/v1/openOrders")
    assert "symbol" not in params and "signature" in params  # the whole account, one signed request
    assert venue.open_orders("nothing-") == []


def test_order_reaches_the_venue_with_client_id_reduce_only_and_quantity(fake):
    venue = venue_for(fake)
    buy(venue, "fo-open1", amount="0.003")
    buy(venue, "fo-close1", amount="0.003", side="sell", reduce_only=True)
    first, second = fake.requests_to(*ORDER)
    assert (first["newClientOrderId"], first["quantity"], first.get("reduceOnly")) == ("fo-open1", "0.003", None)
    assert (second["newClientOrderId"], second["side"], second["reduceOnly"]) == ("fo-close1", "SELL", "true")
    assert fake.position("BTC") == 0


def test_an_order_answered_after_the_client_timeout_is_unknown_and_applied(fake):
    venue = venue_for(fake)
    fake.order_delays.append(2.0)  # client timeout 1.5 s
    with pytest.raises(OrderOutcomeUnknown) as info:
        buy(venue, "fo-slow")
    assert "signature=" not in str(info.value)
    deadline = time.monotonic() + 5
    while not fake.fills and time.monotonic() < deadline:
        time.sleep(0.05)
    found = venue.fetch_order_by_client_id(symbol=BTC, client_order_id="fo-slow")
    assert found is not None and found.status == "filled" and len(fake.fills) == 1


# -- prices, equity, markets, symbols -----------------------------------------------------------------
def test_reference_price_is_the_index_of_the_same_answer(fake):
    venue = venue_for(fake)
    assert venue.reference_prices([BTC]) == {}  # nothing fetched yet
    fake.set_index("BTC", 94_000.0)
    assert venue.fetch_prices([BTC, ETH]) == {BTC: 95_000.0, ETH: 3_500.0}
    assert venue.reference_prices([BTC, ETH, SOL]) == {BTC: 94_000.0, ETH: 3_500.0}
    assert fake.requests.count(("GET", "/fapi/v1/premiumIndex")) == 1  # no extra request
    assert fake.requests.count(("GET", "/fapi/v1/ticker/24hr")) == 0


def test_a_wrong_mark_once_shows_against_its_index(fake):
    venue = venue_for(fake)
    fake.add_canned("GET", "/fapi/v1/premiumIndex", 200, [
        {"symbol": "BTCUSDT", "markPrice": "9.50000000", "indexPrice": "95000.00000000", "time": 1}])
    assert venue.fetch_prices([BTC]) == {BTC: 9.5} and venue.reference_prices([BTC]) == {BTC: 95_000.0}
    assert venue.fetch_prices([BTC]) == {BTC: 95_000.0} and venue.reference_prices([BTC]) == {BTC: 95_000.0}


def test_positions_empty_once_then_back(fake):
    venue = venue_for(fake)
    fake.manual_fill("SOL", "3")
    fake.add_canned("GET", "/fapi/v3/positionRisk", 200, [])
    assert venue.fetch_positions() == {}
    assert venue.fetch_positions() == {SOL: 3.0}


def test_equity_is_wallet_plus_unrealized_pnl_read_signed_with_retries(fake):
    venue = venue_for(fake)
    fake.set_balance(5000, -250.5)
    fake.add_fault("GET", "/fapi/v3/account", "500")
    assert venue.fetch_equity() == pytest.approx(4749.5)
    calls = fake.requests_to("GET", "/fapi/v3/account")
    assert len(calls) == 2 and all("signature" in p for p in calls)


@pytest.mark.parametrize("raw, expected", [
    ("BTCUSDT", BTC), ("btcusdt", BTC), ("btc/usdt:usdt", BTC), ("BTC/USDT:USDT", BTC), (" ETH/USDT:USDT ", ETH),
    ("BTC/USDT", BTC), ("sol-usdt", SOL), ("garbage", None), ("", None), ("DOGEUSDT", None),
    ("BTC/USDC:USDC", BTC),  # by base asset: the venue's own settle currency (a warning once)
])
def test_resolve_symbol(fake, raw, expected):
    assert venue_for(fake).resolve_symbol(raw) == expected


def test_max_amount_is_the_market_order_limit(fake):
    fake.set_max_qty("BTC", lot="1000", market="120")
    venue = venue_for(fake)
    markets = venue.load_markets([BTC, ETH], {})
    assert markets[BTC].max_amount == Decimal("120")  # MARKET_LOT_SIZE, not LOT_SIZE
    assert markets[ETH].max_amount == Decimal("1000000")


# -- secrets ----------------------------------------------------------------------------------------------
def test_scrub_removes_query_strings_signatures_and_key_values(monkeypatch):
    monkeypatch.setenv("SOMEX_SECRET", "s3cr3t-value")
    text = ("binanceusdm GET https://fapi.binance.com/fapi/v3/positionRisk?timestamp=1&recvWindow=10000&"
            "signature=abcdef0123 body: quantity=1&signature=ffff headers {'X-MBX-APIKEY': 'KEY123'} "
            "apiKey=AK-9 leaked s3cr3t-value")
    out = scrub(text)
    assert "https://fapi.binance.com/fapi/v3/positionRisk?<redacted>" in out
    for secret in ("abcdef0123", "ffff", "KEY123", "AK-9", "s3cr3t-value", "timestamp=1"):
        assert secret not in out
    assert scrub("the secret word and a price=5") == "the secret word and a price=5"


def test_errors_from_the_real_client_carry_no_signature_or_key(fake, monkeypatch):
    monkeypatch.setenv("BINANCEUSDM_API_KEY", API_KEY)
    monkeypatch.setenv("BINANCEUSDM_SECRET", SECRET)
    venue = venue_for(fake, read_attempts=1)
    venue.load_markets([BTC], {})
    fake.add_fault("GET", "/fapi/v3/positionRisk", "timeout")
    with pytest.raises(TemporaryError) as info:
        venue.fetch_positions()
    message = str(info.value)
    assert "/fapi/v3/positionRisk?<redacted>" in message
    assert "signature=" not in message and "timestamp=" not in message
    assert API_KEY not in message and SECRET not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_translate_scrubs_a_signed_url_in_a_ccxt_error():
    import ccxt

    exc = ccxt.NetworkError("binanceusdm GET https://fapi.binance.com/fapi/v1/order?symbol=BTCUSDT&"
                            "origClientOrderId=fo1&timestamp=1700000000000&signature=deadbeef")
    err = translate_ccxt_error(exc, secrets=["my-api-key-1"])
    assert "signature=" not in str(err) and "deadbeef" not in str(err) and "fo1" not in str(err)
    assert isinstance(err, TemporaryError)


# -- rate limiter vs wall clock ---------------------------------------------------------------------------
def test_throttle_spacing_on_the_monotonic_clock_and_capped():
    class Ex:
        rateLimit = 50

    now = [100.0]
    slept = []

    def sleep(s):
        slept.append(round(s, 6))
        now[0] += s

    throttle = MonotonicThrottle(Ex(), clock=lambda: now[0], sleep=sleep)
    throttle(1)
    throttle(1)  # 0 s after: waits the full 50 ms
    now[0] += 0.02
    throttle(1)  # 20 ms after: waits 30 ms
    throttle(40)  # weight 40 (2 s in ccxt): capped at 5 x rateLimit
    assert slept == [0.05, 0.03, 0.25]


def test_a_wall_clock_stepped_back_does_not_freeze_requests(fake):
    venue = venue_for(fake)
    venue.fetch_prices([BTC])  # markets + one premiumIndex: the limiter has a last request
    real = venue.exchange.milliseconds
    venue.exchange.milliseconds = lambda: real() - 600_000  # the wall clock steps back 10 minutes
    out: dict = {}

    def again():
        started = time.monotonic()
        out["prices"] = venue.fetch_prices([BTC])
        out["elapsed"] = time.monotonic() - started

    worker = threading.Thread(target=again, daemon=True)
    worker.start()
    worker.join(5.0)
    assert not worker.is_alive(), "the request was held back by the stepped wall clock"
    assert out["prices"] == {BTC: 95_000.0} and out["elapsed"] < 2.0


def test_every_built_client_gets_the_monotonic_throttle(fake):
    public = build_ccxt_exchange("binanceusdm", {"api_base_url": fake.base_url}, public_only=True)
    assert isinstance(public.throttle, MonotonicThrottle)
    assert isinstance(venue_for(fake).exchange.throttle, MonotonicThrottle)


def test_a_delay_fault_slows_one_answer_only(fake):
    venue = venue_for(fake)
    fake.add_fault("GET", "/fapi/v3/account", "delay:1.0")  # under the client timeout (1.5 s)
    started = time.monotonic()
    assert venue.fetch_equity() == 100_000.0
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    venue.fetch_equity()
    assert time.monotonic() - started < 0.9
