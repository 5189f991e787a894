"""Hyperliquid (ccxt ``hyperliquid``) through the venue fault matrix (tests/fakes/venue_matrix.py), plus one
test per problem the real ccxt class showed against Hyperliquid's API with plain-ccxt defaults.

The real ccxt class talks to tests/fakes/fake_hyperliquid.py, which verifies every signed action's EIP-712
signature against the test wallet (a throwaway key made for these tests). Amounts: Hyperliquid sizes are
coins (contract size 1), so contracts = base units; prices and equity are USDC.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from decimal import Decimal

import pytest

from fakes import venue_matrix as vm
from fakes.fake_hyperliquid import FakeHyperliquid
from fakes.workspace import reconciler_for
from fastopt.errors import InputError
from reconciler.errors import AuthenticationError, InsufficientFunds, InvalidOrder, VenueConfigError
from reconciler.venues import hyperliquid as hl
from reconciler.venues.ccxt_venue import FASTOPT_DEFAULT_OPTIONS, CcxtVenue, build_ccxt_exchange, rebase_urls
from reconciler.venues.profile import DEFAULT

pytestmark = pytest.mark.integration

CLOID = re.compile(r"^0xf0[0-9a-f]{30}$")


@pytest.fixture
def fake(monkeypatch):
    with vm.serving(FakeHyperliquid, monkeypatch) as server:
        yield server


def venue_of(fake: FakeHyperliquid, **kwargs) -> CcxtVenue:
    """A CcxtVenue with hyperliquid's profile against the fake (credentials from the environment)."""
    kwargs.setdefault("settings", {"api_base_url": fake.base_url, "timeout": 1500, "enableRateLimit": False})
    return CcxtVenue("hyperliquid", backoff_s=0.01, **kwargs)


def plain_ccxt_venue(fake: FakeHyperliquid, **changes) -> CcxtVenue:
    """The same venue with plain-ccxt behaviour: DEFAULT profile (``changes`` applied, e.g. the settle
    currency, to isolate one problem), only fastopt's default options."""
    import ccxt

    exchange = ccxt.hyperliquid({"walletAddress": fake.env["HYPERLIQUID_WALLET_ADDRESS"],
                                 "privateKey": fake.env["HYPERLIQUID_PRIVATE_KEY"], "timeout": 1500,
                                 "enableRateLimit": False, "options": dict(FASTOPT_DEFAULT_OPTIONS)})
    exchange.urls["api"] = rebase_urls(exchange.urls["api"], fake.base_url)[0]
    return CcxtVenue("hyperliquid", exchange=exchange, profile=replace(DEFAULT, exchange_id="hyperliquid", **changes),
                     backoff_s=0.01)


def order_actions(fake: FakeHyperliquid) -> list[dict]:
    return [body["action"] for body in fake.exchange_requests("order")]


# -- the fault matrix ------------------------------------------------------------------------------
class TestFaultMatrix(vm.FaultMatrix):
    """Timeouts, 5xx, 429, margin and reduce-only refusals, status-less answers, crashes (tests/fakes/venue_matrix.py)."""


# -- what reaches the venue ---------------------------------------------------------------------------
def test_orders_carry_the_cloid_amount_in_coins_and_reduce_only(fake, tmp_path):
    """Each order action carries the journaled id as ``c`` (``0xf0`` + 30 hex), the journaled amount as ``s``
    (coins: contract size 1, so contracts = base units), ``r`` (reduce-only) and an IOC limit ``t``; the
    position moves by exactly that many coins."""
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    vm.run_until_on_target(rec, fake)
    orders = [o for action in order_actions(fake) for o in action["orders"]]
    intents = [r for r in vm.journal_lines(tmp_path) if r["event"] == "intent"]
    assert [o["c"] for o in orders] == [r["client_order_id"] for r in intents]
    assert all(CLOID.match(o["c"]) for o in orders)
    assert [Decimal(o["s"]) for o in orders] == [Decimal(r["amount"]) for r in intents]
    assert all(o["t"] == {"limit": {"tif": "Ioc"}} and o["r"] is False for o in orders)
    btc = next(o for o in orders if o["a"] == 0)
    assert Decimal(btc["s"]) == Decimal(str(fake.position("BTC")))  # coins, one fill
    (tmp_path / "strategies" / "a" / "state.json").write_text(json.dumps({"symbol": fake.symbols["BTC"],
                                                                           "position": 0.0}))
    assert rec.run_cycle().status == "ok"
    close = order_actions(fake)[-1]["orders"][0]
    assert close["a"] == 0 and close["b"] is False and close["r"] is True
    assert fake.position("BTC") == 0.0


def test_the_self_check_refuses_a_venue_whose_lookup_does_not_work(fake, tmp_path):
    """A lookup by cloid that answers anything but ``unknownOid`` for a never-used id (here the venue refusing
    the request, then an order carrying another cloid) makes the venue unusable: refused at start, naming
    the step. With the lookup working again, it trades."""
    cfg = vm.workspace(tmp_path, fake)
    fake.add_canned("orderStatus", 422, "Failed to deserialize the JSON body into the target type")
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    with pytest.raises(VenueConfigError, match="self-check, order lookup by client id"):
        rec.venue(fake.exchange_id)
    other = {"status": "order", "order": {"status": "filled", "statusTimestamp": 1, "order": {
        "coin": "BTC", "side": "B", "limitPx": "99750.0", "sz": "0.0", "oid": 77, "timestamp": 1, "origSz": "0.01",
        "cloid": "0xf0" + "ab" * 15, "reduceOnly": False, "orderType": "Limit", "tif": "Ioc"}}}
    fake.add_canned("orderStatus", 200, other)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    with pytest.raises(VenueConfigError, match="self-check"):
        rec.venue(fake.exchange_id)
    report = reconciler_for(cfg, *vm.venue_args(tmp_path, fake)).run_cycle()
    assert report.status == "ok" and len(fake.fills) == 3


# -- the known problems (each fails with the plain-ccxt DEFAULT profile) --------------------------------
def test_usdt_targets_trade_the_usdc_perps(fake, tmp_path):
    """Strategies written for ``BTC/USDT:USDT`` trade ``BTC/USDC:USDC``: the profile's settle currency is USDC.

    With the DEFAULT profile (settle USDT) no Hyperliquid market is in scope: the self-check refuses the venue
    ("no linear perpetual settled in USDT") and nothing would ever be priced (checked below)."""
    states = {"a": {"symbol": "BTC/USDT:USDT", "position": 1.0},
              "b": {"positions": {"ETH/USDT:USDT": -1.0, "SOL/USDT:USDT": 0.5}}}
    cfg = vm.workspace(tmp_path, fake, states=states)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    vm.run_until_on_target(rec, fake)
    assert {f["symbol"] for f in fake.fills} == {"BTC/USDC:USDC", "ETH/USDC:USDC", "SOL/USDC:USDC"}
    venue = rec.venue("hyperliquid")
    assert venue.resolve_symbol("BTC/USDT:USDT") == "BTC/USDC:USDC"
    assert venue.fetch_prices(["BTC/USDC:USDC"]) == {"BTC/USDC:USDC": 95000.0}
    plain = plain_ccxt_venue(fake)
    assert plain.resolve_symbol("BTC/USDT:USDT") is None
    with pytest.raises(VenueConfigError, match="no linear perpetual settled in USDT"):
        plain.check_account()


def test_credentials_are_the_wallet_address_and_its_private_key(fake, monkeypatch):
    """``HYPERLIQUID_WALLET_ADDRESS`` -> walletAddress and ``HYPERLIQUID_PRIVATE_KEY`` -> privateKey; missing ones
    are named. The DEFAULT profile reads API_KEY/SECRET/PASSWORD, so it reads neither (checked below) and
    construction fails naming variables fastopt does not read."""
    exchange = build_ccxt_exchange("hyperliquid", {"api_base_url": fake.base_url})
    assert exchange.walletAddress == fake.wallet and exchange.privateKey == fake.env["HYPERLIQUID_PRIVATE_KEY"]
    monkeypatch.delenv("HYPERLIQUID_PRIVATE_KEY")
    with pytest.raises(InputError, match="HYPERLIQUID_PRIVATE_KEY") as err:
        build_ccxt_exchange("hyperliquid", {})
    assert "not read by fastopt" not in str(err.value)
    monkeypatch.setenv("HYPERLIQUID_PRIVATE_KEY", fake.env["HYPERLIQUID_PRIVATE_KEY"] + "\n")
    with pytest.raises(InputError, match="HYPERLIQUID_PRIVATE_KEY ends with whitespace"):
        build_ccxt_exchange("hyperliquid", {})
    from reconciler.venues.ccxt_venue import credentials_from_env

    assert credentials_from_env("hyperliquid", fake.env, DEFAULT.credentials) == {}  # plain: nothing read


def test_market_orders_carry_a_5_percent_price_bound(fake, tmp_path):
    """ccxt refuses a market order without a price; the profile gives the mark price and ccxt sends an IOC
    limit at mark x 1.05 (buy) / x 0.95 (sell), rounded to 5 significant digits. With the DEFAULT profile
    (no price) every order is rejected before it is sent (checked below)."""
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    vm.run_until_on_target(rec, fake)
    prices = {o["a"]: (o["b"], Decimal(o["p"])) for a in order_actions(fake) for o in a["orders"]}
    assert prices == {0: (True, Decimal("99750")), 1: (False, Decimal("3325")), 2: (True, Decimal("199.5"))}
    plain = plain_ccxt_venue(fake, settle_currencies=("USDC",), account_currency="USDC")
    plain.fetch_prices(["BTC/USDC:USDC"])
    with pytest.raises(InvalidOrder, match="require price"):
        plain.create_order(symbol="BTC/USDC:USDC", side="buy", amount=Decimal("0.01"), reduce_only=False,
                           client_order_id="0xf0" + "1" * 30)
    assert len(order_actions(fake)) == 3  # the plain order never left ccxt


def test_client_ids_are_cloids_and_looked_up_by_cloid(fake):
    """fastopt's ``fo`` + 30 hex maps one-to-one to the cloid ``0xf0`` + the same 30 hex; a lookup of an unused
    cloid answers None, of a sent one the order. With the DEFAULT profile the id stays ``fo...``, which the
    venue cannot deserialize (HTTP 422): the plain self-check refuses the venue even with USDC markets in
    scope (checked below)."""
    fo = "fo" + "0123456789abcdef0123456789abcd"
    assert hl.client_id(fo) == "0xf0" + fo[2:]
    assert len({hl.client_id("fo" + f"{i:030x}") for i in range(1000)}) == 1000
    with pytest.raises(ValueError):
        hl.client_id("fo" + "g" * 30)
    venue = venue_of(fake)
    venue.check_account()
    assert venue.client_id_prefix == "0xf0"
    cid = venue.format_client_id(fo)
    assert venue.fetch_order_by_client_id(symbol="BTC/USDC:USDC", client_order_id=cid) is None
    venue.fetch_prices(["BTC/USDC:USDC"])
    sent = venue.create_order(symbol="BTC/USDC:USDC", side="buy", amount=Decimal("0.01"), reduce_only=False,
                              client_order_id=cid)
    assert sent.client_order_id == cid
    found = venue.fetch_order_by_client_id(symbol="BTC/USDC:USDC", client_order_id=cid)
    assert found.status == "filled" and found.filled == pytest.approx(0.01)
    plain = plain_ccxt_venue(fake, settle_currencies=("USDC",), account_currency="USDC")
    with pytest.raises(VenueConfigError, match="order lookup by client id"):
        plain.check_account()


def test_no_builder_fee_approval_no_referral_no_builder_field(fake, tmp_path):
    """Through markets, prices, orders, a cancel and lookups, no ``approveBuilderFee`` nor ``setReferrer``
    action is ever sent and no order carries ``builder``. The plain ccxt defaults send both actions while
    loading the markets and attach ``builder: {b: 0x6530..., f: 10}`` (1 bp) to orders (checked below)."""
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    vm.run_until_on_target(rec, fake)
    venue = rec.venue("hyperliquid")
    fake.order_mode = "rest"
    cid = venue.format_client_id("fo" + "5" * 30)
    venue.create_order(symbol="SOL/USDC:USDC", side="buy", amount=Decimal("1"), reduce_only=False, client_order_id=cid)
    assert venue.cancel_order_by_client_id(symbol="SOL/USDC:USDC", client_order_id=cid).status == "canceled"
    assert set(fake.actions) == {"order", "cancelByCloid"}
    assert order_actions(fake) and all("builder" not in a for a in order_actions(fake))

    import ccxt

    fresh = FakeHyperliquid()
    with fresh:
        exchange = ccxt.hyperliquid({"walletAddress": fresh.wallet, "privateKey": fresh.env["HYPERLIQUID_PRIVATE_KEY"],
                                     "options": dict(FASTOPT_DEFAULT_OPTIONS)})
        exchange.urls["api"] = rebase_urls(exchange.urls["api"], fresh.base_url)[0]
        exchange.load_markets()
        assert {"approveBuilderFee", "setReferrer"} <= set(fresh.actions)
        exchange.create_order("BTC/USDC:USDC", "market", "buy", 0.01, 95000.0)
        assert order_actions(fresh)[-1]["builder"] == {"b": "0x6530512a6c89c7cfcebc3ba7fcd9ada5f30827a6", "f": 10}


# -- venue behaviour ---------------------------------------------------------------------------------------
def test_a_wrong_key_is_an_authentication_error_and_nothing_is_applied(fake, tmp_path, monkeypatch):
    """A private key that is neither the account's nor an API wallet's signs a valid signature of another
    address: Hyperliquid answers "User or API Wallet 0x... does not exist." (ccxt: InvalidOrder), which the
    profile makes an AuthenticationError: the order is rejected, the cycle stops sending."""
    monkeypatch.setenv("HYPERLIQUID_PRIVATE_KEY", "0x" + "5c" * 32)
    venue = venue_of(fake)
    venue.check_account()  # reads are unsigned
    venue.fetch_prices(["BTC/USDC:USDC"])
    with pytest.raises(AuthenticationError, match="User or API Wallet 0x[0-9a-f]{40} does not exist"):
        venue.create_order(symbol="BTC/USDC:USDC", side="buy", amount=Decimal("0.01"), reduce_only=False,
                           client_order_id="0xf0" + "2" * 30)
    assert fake.fills == [] and fake.orders == {}


def test_a_tampered_signature_is_refused(fake):
    """The fake recovers the signer from the EIP-712 signature: an action changed after signing (here the
    size) recovers another address and is refused as on Hyperliquid."""
    exchange = build_ccxt_exchange("hyperliquid", {"api_base_url": fake.base_url, "options": hl.OPTIONS})
    exchange.load_markets()
    request = exchange.create_orders_request([{"symbol": "BTC/USDC:USDC", "type": "market", "side": "buy",
                                               "amount": 0.01, "price": 95000.0, "params": {}}])
    request["action"]["orders"][0]["s"] = "1.0"
    import ccxt

    with pytest.raises(ccxt.InvalidOrder, match="does not exist"):
        exchange.privatePostExchange(request)
    request["action"]["orders"][0]["s"] = "0.01"
    answer = exchange.privatePostExchange(request)
    assert "filled" in answer["response"]["data"]["statuses"][0] and fake.position("BTC") == 0.01


def test_prices_are_the_mark_with_the_oracle_as_reference(fake):
    """ccxt's ticker gives the mid price as ``last`` and no mark/index; the venue's ``markPx`` is the price
    (and a market order's reference) and ``oraclePx`` the reference of the plausibility check."""
    fake.set_price("BTC", 95000.0, mid=94990.0, oracle=95010.0)
    venue = venue_of(fake)
    venue.check_account()
    assert venue.fetch_prices(["BTC/USDC:USDC"]) == {"BTC/USDC:USDC": 95000.0}
    assert venue.reference_prices(["BTC/USDC:USDC"]) == {"BTC/USDC:USDC": 95010.0}
    venue.create_order(symbol="BTC/USDC:USDC", side="sell", amount=Decimal("0.01"), reduce_only=False,
                       client_order_id="0xf0" + "9" * 30)
    assert order_actions(fake)[-1]["orders"][0]["p"] == "90250"  # 95000 x 0.95


def test_refusals_equity_open_orders_and_cancel(fake):
    """Insufficient margin is InsufficientFunds, a reduce-only order that would increase the position and an
    order under $10 are InvalidOrder (not applied); equity is the USDC account value; a resting order is
    listed by open_orders (prefix ``0xf0``) and cancelled by cloid; cancelling it again finds it cancelled."""
    venue = venue_of(fake)
    venue.check_account()
    venue.fetch_prices(["BTC/USDC:USDC", "ETH/USDC:USDC"])
    fake.set_balance(1234.5)
    assert venue.fetch_equity() == 1234.5
    with pytest.raises(InsufficientFunds):
        venue.create_order(symbol="BTC/USDC:USDC", side="buy", amount=Decimal("1"), reduce_only=False,
                           client_order_id="0xf0" + "3" * 30)
    with pytest.raises(InvalidOrder, match="reduce-only"):
        venue.create_order(symbol="BTC/USDC:USDC", side="sell", amount=Decimal("0.01"), reduce_only=True,
                           client_order_id="0xf0" + "4" * 30)
    with pytest.raises(InvalidOrder, match=r"\$10"):
        venue.create_order(symbol="ETH/USDC:USDC", side="buy", amount=Decimal("0.001"), reduce_only=False,
                           client_order_id="0xf0" + "6" * 30)
    assert fake.fills == []
    fake.order_mode = "rest"
    cid = "0xf0" + "7" * 30
    venue.create_order(symbol="ETH/USDC:USDC", side="buy", amount=Decimal("0.01"), reduce_only=False,
                       client_order_id=cid)
    listed = venue.open_orders(venue.client_id_prefix)
    assert [(s, r.client_order_id, r.status) for s, r in listed] == [("ETH/USDC:USDC", cid, "open")]
    assert venue.cancel_order_by_client_id(symbol="ETH/USDC:USDC", client_order_id=cid).status == "canceled"
    assert venue.cancel_order_by_client_id(symbol="ETH/USDC:USDC", client_order_id=cid).status == "canceled"
    assert venue.open_orders(venue.client_id_prefix) == []
    assert venue.cancel_order_by_client_id(symbol="ETH/USDC:USDC", client_order_id="0xf0" + "8" * 30) is None


def test_scope_hedge_rows_and_account_problem(fake):
    """Only main-dex USDC linear perps are in scope (not HIP-3, spot, or USDT rows); a row type other than
    ``oneWay`` is refused; options that send orders to another account than the one read (a vault) are
    refused at start, naming the fix; a global sub-account (reads and orders for it) is fine."""
    perp = {"swap": True, "linear": True, "settle": "USDC", "info": {"name": "BTC"}}
    assert hl.position_in_scope({}, perp, ("USDC",))
    assert not hl.position_in_scope({}, {**perp, "info": {"name": "xyz:TSLA", "hip3": True}}, ("USDC",))
    assert not hl.position_in_scope({}, {"spot": True, "swap": False, "settle": None}, ("USDC",))
    assert not hl.position_in_scope({}, {**perp, "settle": "USDT"}, ("USDC",))
    assert not hl.hedge_row({"info": {"type": "oneWay"}}) and hl.hedge_row({"info": {"type": "twoWay"}})
    other = "0x" + "3" * 40
    vault = venue_of(fake, settings={"api_base_url": fake.base_url, "options": {"vaultAddress": other}})
    with pytest.raises(VenueConfigError, match="another account than the one fastopt reads.*remove the vaultAddress"):
        vault.check_account()
    sub = venue_of(fake, settings={"api_base_url": fake.base_url, "options": {"subAccountAddress": other}})
    assert hl.account_problem(sub.exchange) is None
    assert hl.account_problem(venue_of(fake).exchange) is None


def test_order_answers_carry_their_status(fake):
    """ccxt parses Hyperliquid's order answers without a status; the profile reads them: ``filled`` with the
    whole size -> filled, with a part (IOC remainder cancelled) -> canceled keeping the part, ``resting`` ->
    open, a bare ``"waitingForFill"`` -> unknown (looked up by cloid)."""
    assert hl.reply_status({"info": {"filled": {"totalSz": "0.01", "avgPx": "1", "oid": 1}}}, "0.01") == "closed"
    assert hl.reply_status({"info": {"filled": {"totalSz": "0.004", "avgPx": "1", "oid": 1}}}, "0.01") == "canceled"
    assert hl.reply_status({"info": {"resting": {"oid": 1}}}, "0.01") == "open"
    assert hl.reply_status({"info": "waitingForFill"}, "0.01") is None
    venue = venue_of(fake)
    venue.check_account()
    venue.fetch_prices(["BTC/USDC:USDC"])

    def send(n: str):
        return venue.create_order(symbol="BTC/USDC:USDC", side="buy", amount=Decimal("0.01"), reduce_only=False,
                                  client_order_id="0xf0" + n * 30)

    filled = send("a")
    assert (filled.status, filled.filled, filled.average) == ("filled", 0.01, 95000.0)
    fake.inject("statusless")  # a bare "waitingForFill": confirmed by one lookup right after it
    assert send("b").status == "filled"
    fake.order_mode = "rest"
    assert send("c").status == "open"
