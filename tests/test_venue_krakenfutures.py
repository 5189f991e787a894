"""Kraken Futures (ccxt ``krakenfutures``) through the venue fault matrix (tests/fakes/venue_matrix.py), plus
its known problems, against the fake server tests/fakes/fake_krakenfutures.py with the real ccxt class.

Amounts are contracts; Kraken's PF_ perpetuals have contract size 1, so contracts = base units (Kraken
lists no flexible perpetual with another contract size). Prices and equity in USD.

Each known-problem test says whether it fails on the plain-ccxt profile: run this file with
``FASTOPT_KF_PLAIN_CCXT=1`` to put ``replace(DEFAULT, exchange_id="krakenfutures")`` (with the USD settle and
account currency, so that only the profile's functions differ) in place of the venue's profile (checked:
the tests marked "fails on plain ccxt" fail then, the others pass).
"""
from __future__ import annotations

import os
from dataclasses import replace
from decimal import Decimal

import pytest

from fakes import venue_matrix as vm
from fakes.fake_krakenfutures import DERIV, HISTORY, FakeKrakenFutures
from fakes.workspace import reconciler_for
from reconciler.errors import (
    AuthenticationError,
    InvalidOrder,
    OrderOutcomeUnknown,
    VenueConfigError,
)
from reconciler.venues import ccxt_venue
from reconciler.venues.ccxt_venue import CcxtVenue
from reconciler.venues.profile import DEFAULT, profile_for

pytestmark = pytest.mark.integration

PLAIN = os.environ.get("FASTOPT_KF_PLAIN_CCXT") == "1"
BTC = "BTC/USD:USD"


@pytest.fixture
def fake(monkeypatch):
    with vm.serving(FakeKrakenFutures, monkeypatch) as server:
        if PLAIN:  # the plain-ccxt profile, to show which tests the venue profile makes pass
            monkeypatch.setattr(ccxt_venue, "profile_for", lambda ex: replace(
                DEFAULT, exchange_id=ex, settle_currencies=("USD",), account_currency="USD"))
        yield server


def venue_of(fake: FakeKrakenFutures, **env: str) -> CcxtVenue:
    return CcxtVenue("krakenfutures", settings={"api_base_url": fake.base_url, "timeout": 1500,
                                                "enableRateLimit": False},
                     env={**fake.env, **env}, backoff_s=0.01, sleep=lambda s: None)


class TestFaultMatrix(vm.FaultMatrix):
    """Timeouts, 5xx, 429, margin and reduce-only refusals, status-less answers, crashes (tests/fakes/venue_matrix.py)."""


@pytest.mark.parametrize("kind", ["timeout_applied", "statusless"])
def test_lost_answers_resolve_from_the_order_history(fake, tmp_path, kind):
    """orders/status answers only for orders open or final for < 5 s on Kraken; here for none (``recent_s``
    0): a lost answer is resolved from ``GET /api/history/v2/orders`` (the order's ``clientId``), one fill
    per order, on target. Fails on plain ccxt (its lookup raises TypeError on an empty answer)."""
    fake.recent_s = 0.0
    vm.fault_case(fake, tmp_path, kind)
    assert fake.requests_to("GET", HISTORY + "orders")


def test_crash_after_send_resolves_from_the_order_history(fake, tmp_path):
    """A restart long after the send (orders/status no longer knows the order): the history proves it was
    applied, so it is not sent again. Fails on plain ccxt."""
    fake.recent_s = 0.0
    vm.crash_between_send_and_outcome(fake, tmp_path)


def test_orders_carry_the_client_id_amount_in_contracts_and_reduce_only(fake, tmp_path):
    """``cliOrdId`` = fastopt's id (``fo`` + 30 hex, 32 <= 100 characters), ``size`` in contracts (= base
    units: contract size 1 on PF_ perps) as journaled, ``orderType=mkt``, and ``reduceOnly=true`` on a close."""
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    vm.run_until_on_target(rec, fake)
    sent = vm.order_requests(fake, DERIV + "sendorder")
    intents = [r for r in vm.journal_lines(tmp_path) if r["event"] == "intent"]
    assert [p["cliOrdId"] for p in sent] == [r["client_order_id"] for r in intents]
    assert all(p["cliOrdId"].startswith("fo") and len(p["cliOrdId"]) == 32 for p in sent)
    assert [Decimal(p["size"]) for p in sent] == [Decimal(r["amount"]) for r in intents]
    assert {p["orderType"] for p in sent} == {"mkt"} and all("reduceOnly" not in p for p in sent)
    assert {p["symbol"] for p in sent} == {"PF_XBTUSD", "PF_ETHUSD", "PF_SOLUSD"}
    (tmp_path / "strategies" / "a" / "state.json").write_text(f'{{"symbol": "{fake.symbols["BTC"]}", "position": 0}}')
    rec.run_cycle()
    close = vm.order_requests(fake, DERIV + "sendorder")[-1]
    assert close["symbol"] == "PF_XBTUSD" and close["side"] == "sell" and close["reduceOnly"] == "true"
    assert fake.position("BTC") == 0.0


def test_the_self_check_refuses_a_venue_whose_lookup_does_not_work(fake, tmp_path):
    """A lookup endpoint answering an error (orders/status refusing the request, or the order history
    failing) makes the venue unusable: refused at start, naming the step; working again, it trades."""
    cfg = vm.workspace(tmp_path, fake)
    fake.add_canned("GET", DERIV + "orders/status", 400, {"result": "error", "serverTime": "2026-01-01T00:00:00Z",
                                                          "error": "requiredArgumentMissing"})
    with pytest.raises(VenueConfigError, match="self-check, order lookup by client id"):
        reconciler_for(cfg, *vm.venue_args(tmp_path, fake)).venue(fake.exchange_id)
    fake.add_canned("GET", HISTORY + "orders", 500, {"result": "error", "error": "Server Error"})
    with pytest.raises(VenueConfigError, match="self-check, order lookup by client id"):
        reconciler_for(cfg, *vm.venue_args(tmp_path, fake)).venue(fake.exchange_id)
    assert fake.fills == []
    report = reconciler_for(cfg, *vm.venue_args(tmp_path, fake)).run_cycle()
    assert report.status == "ok" and fake.fills


def test_lookup_by_client_id_returns_only_that_order(fake):
    """Known problem: ccxt's fetch_order(None, symbol, {"clientOrderId": id}) sends ``orderIds=None`` and
    returns the first order of the answer whatever its id (here another client's order, listed because
    Kraken ignores the unusable filter), or raises TypeError on an empty answer. The profile's lookup
    sends ``cliOrdIds`` and keeps only the entry carrying the id. Fails on plain ccxt."""
    venue = venue_of(fake)
    assert venue.fetch_order_by_client_id(symbol=BTC, client_order_id="fo" + "1" * 30) is None  # nothing at all
    fake.add_foreign_order("someone-else")
    venue.check_account()  # the never-used id still answers "not found"
    assert venue.fetch_order_by_client_id(symbol=BTC, client_order_id="fo" + "2" * 30) is None
    sent = fake.requests_to("GET", DERIV + "orders/status")[-1]
    assert sent == {"cliOrdIds": "fo" + "2" * 30}
    # and a real order is found, by orders/status while recent, then by the history
    venue.create_order(symbol=BTC, side="buy", amount=Decimal("0.0100"), reduce_only=False,
                       client_order_id="fo" + "3" * 30)
    found = venue.fetch_order_by_client_id(symbol=BTC, client_order_id="fo" + "3" * 30)
    assert found is not None and found.status == "filled" and found.filled == pytest.approx(0.01)
    fake.recent_s = 0.0
    found = venue.fetch_order_by_client_id(symbol=BTC, client_order_id="fo" + "3" * 30)
    assert found is not None and found.status == "filled" and found.filled == pytest.approx(0.01)
    assert found.client_order_id == "fo" + "3" * 30


def test_would_not_reduce_position_is_a_refusal(fake):
    """Known problem: ``sendStatus.status = wouldNotReducePosition`` (HTTP 200) is raised by ccxt as
    ExchangeError, which became an unknown outcome (then the broken lookup, then a block). It is a
    refusal (InvalidOrder, not applied). Fails on plain ccxt (OrderOutcomeUnknown)."""
    venue = venue_of(fake)
    with pytest.raises(InvalidOrder, match="wouldNotReducePosition") as info:
        venue.create_order(symbol=BTC, side="sell", amount=Decimal("0.0100"), reduce_only=True,
                           client_order_id="fo" + "4" * 30)
    assert not isinstance(info.value, OrderOutcomeUnknown)
    assert fake.fills == [] and fake.position("BTC") == 0.0


def test_a_reused_client_id_is_looked_up_not_refused(fake):
    """``clientOrderIdAlreadyExist`` (ccxt DuplicateOrderId, an InvalidOrder) means an order with this id
    exists: an unknown outcome to look up, never "refused, not applied". Fails on plain ccxt."""
    venue = venue_of(fake)
    cid = "fo" + "5" * 30
    venue.create_order(symbol=BTC, side="buy", amount=Decimal("0.0100"), reduce_only=False, client_order_id=cid)
    with pytest.raises(OrderOutcomeUnknown, match="clientOrderIdAlreadyExist"):
        venue.create_order(symbol=BTC, side="buy", amount=Decimal("0.0100"), reduce_only=False, client_order_id=cid)
    assert len(fake.fills) == 1


def test_equity_is_the_flex_portfolio_value_in_usd(fake):
    """Known problem: ccxt's balance ``total`` of the flex account is per-currency collateral quantity
    (USD 50000 here), without unrealized PnL; equity is ``accounts.flex.portfolioValue`` (USD).
    Fails on plain ccxt (50000.0)."""
    fake.set_balance(50000, unrealized_pnl="-1234.5")
    assert venue_of(fake).fetch_equity() == pytest.approx(48765.5)


def test_cancel_by_client_id(fake):
    """A resting order is cancelled with ``cliOrdId`` (ccxt's cancel sends ``order_id`` only: plain ccxt
    never cancels it, fails); a second cancel finds it final and answers from the lookup."""
    fake.order_mode = "stay_open"
    venue = venue_of(fake)
    cid = "fo" + "6" * 30
    venue.create_order(symbol=BTC, side="buy", amount=Decimal("0.0100"), reduce_only=False, client_order_id=cid)
    assert [c for c, _ in venue.open_orders("fo")] == [BTC]
    result = venue.cancel_order_by_client_id(symbol=BTC, client_order_id=cid)
    assert result is not None and result.status == "canceled" and result.filled == 0.0
    assert fake.requests_to("POST", DERIV + "cancelorder")[0] == {"cliOrdId": cid}
    assert venue.open_orders("fo") == []
    again = venue.cancel_order_by_client_id(symbol=BTC, client_order_id=cid)
    assert again is not None and again.status == "canceled"
    assert venue.cancel_order_by_client_id(symbol=BTC, client_order_id="fo" + "7" * 30) is None


def test_positions_only_flex_linear_perps(fake):
    """Inverse (PI_XBTUSD) and dated (FF_XBTUSD_261225) rows are not fastopt's; PF_ rows are, in base
    units with their sign. (Passes on plain ccxt too: ccxt marks those markets inverse / future.)"""
    fake.other_positions = [{"side": "long", "symbol": "PI_XBTUSD", "price": 95000.0,
                             "fillTime": "2026-01-01T00:00:00Z", "size": 5000.0, "unrealizedFunding": 0.0},
                            {"side": "short", "symbol": "FF_XBTUSD_261225", "price": 95000.0,
                             "fillTime": "2026-01-01T00:00:00Z", "size": 0.5, "unrealizedFunding": 0.0}]
    fake.positions["PF_ETHUSD"] = Decimal("-1.5")
    venue = venue_of(fake)
    assert venue.fetch_positions() == {"ETH/USD:USD": -1.5}
    assert venue.resolve_symbol("BTC/USDT:USDT") == BTC
    assert venue.resolve_symbol("PI_XBTUSD") is None


def test_signature_and_key_are_checked(fake):
    """The fake checks Kraken's Authent (HMAC-SHA512 of SHA-256(postData + nonce + endpointPath), base64
    secret) and APIKey: a wrong secret or key is refused as Kraken does (authenticationError), which is
    an AuthenticationError, never a temporary failure. (A fake property, not a profile one.)"""
    import base64

    wrong = base64.b64encode(b"not-the-secret").decode()
    with pytest.raises(AuthenticationError):
        venue_of(fake, KRAKENFUTURES_SECRET=wrong).fetch_positions()
    with pytest.raises(AuthenticationError):
        venue_of(fake, KRAKENFUTURES_API_KEY="someone-elses-key").fetch_equity()
    assert venue_of(fake).fetch_positions() == {}


def test_profile_registered_and_client_ids_kept():
    """The registry gives this module's profile; fastopt's ids are sent unchanged (<= 100 characters)."""
    profile = profile_for("krakenfutures")
    assert profile.exchange_id == "krakenfutures" and profile.settle_currencies == ("USD",)
    cid = "fo" + "ab" * 15
    assert profile.client_id(cid) == cid and len(cid) <= 100


def test_an_account_without_the_flex_wallet_is_refused_at_start(fake):
    """The PF_ perps trade only from the multi-collateral (flex) account: without one the self-check
    refuses the venue, naming the fix. Fails on plain ccxt (no account check on this venue)."""
    fake.has_flex = False
    with pytest.raises(VenueConfigError, match="flex"):
        venue_of(fake).check_account()
    fake.has_flex = True
    venue_of(fake).check_account()


def test_history_is_paged_and_an_unprovable_absence_raises(fake, monkeypatch):
    """The order history is read page by page (``continuation_token``) until the order's events are found;
    when the pages allowed run out and the history goes on, the lookup raises (the symbol blocks) instead
    of answering "never applied", which could double the order."""
    from reconciler.errors import VenueError
    from reconciler.venues import krakenfutures

    monkeypatch.setattr(krakenfutures, "HISTORY_COUNT", 2)
    fake.recent_s = 0.0
    venue = venue_of(fake)
    first = "fo" + "8" * 30
    venue.create_order(symbol=BTC, side="buy", amount=Decimal("0.0100"), reduce_only=False, client_order_id=first)
    for i in range(3):
        fake.add_foreign_order(f"other-{i}")
    found = venue.fetch_order_by_client_id(symbol=BTC, client_order_id=first)
    assert found is not None and found.status == "filled" and found.filled == pytest.approx(0.01)
    tokens = [p for p in fake.requests_to("GET", HISTORY + "orders") if "continuation_token" in p]
    assert tokens  # found past the first page
    monkeypatch.setattr(krakenfutures, "HISTORY_PAGES", 2)
    with pytest.raises(VenueError, match="cannot prove"):
        venue.fetch_order_by_client_id(symbol=BTC, client_order_id="fo" + "9" * 30)
