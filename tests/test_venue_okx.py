"""OKX (ccxt ``okx``) through the venue fault matrix (tests/fakes/venue_matrix.py), plus OKX's known problems.

Every test runs ccxt's real ``okx`` class against the fake OKX server (tests/fakes/fake_okx.py). Amounts sent
are contracts (``sz``); one contract is ``ctVal`` base units (BTC-USDT-SWAP 0.01 BTC, ETH-USDT-SWAP 0.1 ETH,
SOL-USDT-SWAP 1 SOL); positions and steps of the fake are in base units; prices and equity in USDT.

"Default" below means plain ccxt: ``replace(DEFAULT, exchange_id="okx")`` as the venue's profile *and* as the
profile whose options ``build_ccxt_exchange`` applies (``profile_for`` patched).
"""
from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest

from fakes import venue_matrix as vm
from fakes.fake_okx import FakeOkx
from fakes.workspace import journal_lines, reconciler_for
from fastopt.errors import InputError
from reconciler.errors import AuthenticationError, InvalidOrder, OrderOutcomeUnknown, VenueConfigError, VenueError
from reconciler.venues import ccxt_venue
from reconciler.venues.ccxt_venue import CcxtVenue
from reconciler.venues.okx import PROFILE
from reconciler.venues.profile import DEFAULT

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
ORDER_PATH = "/api/v5/trade/order"


@pytest.fixture
def fake(monkeypatch):
    with vm.serving(FakeOkx, monkeypatch) as server:
        yield server


def venue(fake: FakeOkx, *, default: bool = False, monkeypatch=None, **settings) -> CcxtVenue:
    """A CcxtVenue on the fake: okx's profile, or (``default``) plain ccxt, options included."""
    profile = None
    if default:
        profile = replace(DEFAULT, exchange_id="okx")
        monkeypatch.setattr(ccxt_venue, "profile_for", lambda exchange_id: profile)
    return CcxtVenue("okx", settings={"api_base_url": fake.base_url, "timeout": 1500, "enableRateLimit": False,
                                      **settings}, env=fake.env, profile=profile, backoff_s=0.01)


# -- the fault matrix -----------------------------------------------------------------------
class TestFaultMatrix(vm.FaultMatrix):
    """Timeouts, 5xx, 429, margin and reduce-only refusals, status-less answers, crashes (tests/fakes/venue_matrix.py)."""


# -- what reaches the venue ------------------------------------------------------------------
def test_orders_carry_the_client_id_amount_in_contracts_and_reduce_only(fake, tmp_path):
    """``clOrdId`` = the journaled id, ``sz`` = the journaled amount in contracts (BTC: 0.01 BTC per contract, so
    the position in BTC is contracts x 0.01), ``posSide`` net, ``tdMode`` cross; a close is ``reduceOnly``."""
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    vm.run_until_on_target(rec, fake)
    sent = vm.order_requests(fake, ORDER_PATH)
    intents = [r for r in journal_lines(tmp_path) if r["event"] == "intent"]
    assert [p["clOrdId"] for p in sent] == [r["client_order_id"] for r in intents]
    assert [Decimal(p["sz"]) for p in sent] == [Decimal(r["amount"]) for r in intents]
    assert all(p["posSide"] == "net" and p["tdMode"] == "cross" and "reduceOnly" not in p for p in sent)
    btc = [p for p in sent if p["instId"] == "BTC-USDT-SWAP"]
    contracts = sum(Decimal(p["sz"]) for p in btc)
    assert abs(float(contracts) * 0.01 - fake.position("BTC")) < 1e-12
    assert contracts > 1 and abs(float(contracts) * 0.01 - vm.expected(fake)["BTC"]) <= fake.steps["BTC"]
    (tmp_path / "strategies" / "a" / "state.json").write_text(json.dumps({"symbol": BTC, "position": 0.0}))
    rec.run_cycle()
    close = vm.order_requests(fake, ORDER_PATH)[-1]
    assert close["instId"] == "BTC-USDT-SWAP" and close["side"] == "sell" and close["reduceOnly"] is True
    assert Decimal(close["sz"]) == contracts and fake.position("BTC") == 0.0


def test_the_self_check_refuses_a_venue_whose_lookup_does_not_work(fake, tmp_path):
    """A lookup by client id that answers anything but "not found" for a never-used id (another order, or an
    error) makes the venue unusable: refused at start, naming the step; once it works, it trades."""
    cfg = vm.workspace(tmp_path, fake)
    other = {"code": "0", "msg": "", "data": [{"instId": "BTC-USDT-SWAP", "instType": "SWAP", "ordId": "1",
                                               "clOrdId": "someoneelse1", "state": "filled", "side": "buy",
                                               "ordType": "market", "sz": "1", "accFillSz": "1", "avgPx": "95000"}]}
    fake.add_canned("GET", ORDER_PATH, 200, other)
    with pytest.raises(VenueConfigError, match="self-check"):
        reconciler_for(cfg, *vm.venue_args(tmp_path, fake)).venue("okx")
    fake.add_canned("GET", ORDER_PATH, 200, {"code": "51000", "msg": "Parameter clOrdId error", "data": []})
    with pytest.raises(VenueConfigError, match="self-check, order lookup by client id"):
        reconciler_for(cfg, *vm.venue_args(tmp_path, fake)).venue("okx")
    assert not fake.fills
    report = reconciler_for(cfg, *vm.venue_args(tmp_path, fake)).run_cycle()
    assert report.status == "ok" and fake.fills


# -- OKX's known problems --------------------------------------------------------------------
def test_an_order_ack_without_state_is_read_back_never_final_with_nothing_filled(fake, tmp_path, monkeypatch):
    """OKX answers every order with an ack (``ordId``, ``clOrdId``, ``sCode`` 0; no ``state``, no fill). The
    profile reads the order back by ``clOrdId`` at once (filled, 2.5 contracts = 0.025 BTC); when that read
    fails, the ack is ``unknown`` (never final with 0 filled) and a later lookup resolves it.

    The read-back is ``CcxtVenue``'s (one lookup after any status-less reply, for every venue); before it,
    the engine stopped a cycle after each ack, so from flat a cycle sent one of the three orders and left it
    unresolved; now the cycle sends all three, each resolved, and ends ``ok``."""
    v = venue(fake)
    v.check_account()
    cid = "fo" + "1" * 30
    sent = v.create_order(symbol=BTC, side="buy", amount=Decimal("2.5"), reduce_only=False, client_order_id=cid)
    assert (sent.status, sent.filled, sent.client_order_id) == ("filled", 2.5, cid)
    assert fake.position("BTC") == pytest.approx(0.025)
    fake.add_canned("GET", ORDER_PATH, 200, {"code": "50013", "msg": "Systems are busy. Please try again later.",
                                             "data": []})
    cid2 = "fo" + "2" * 30
    sent = v.create_order(symbol=BTC, side="buy", amount=Decimal("1"), reduce_only=False, client_order_id=cid2)
    assert (sent.status, sent.filled, sent.client_order_id) == ("unknown", 0.0, cid2) and sent.exchange_order_id
    assert v.fetch_order_by_client_id(symbol=BTC, client_order_id=cid2).status == "filled"
    fake.inject("statusless")  # applied, answered {"code": "0", "data": []}
    sent = v.create_order(symbol=BTC, side="buy", amount=Decimal("1"), reduce_only=False,
                          client_order_id="fo" + "3" * 30)
    assert sent.status == "filled" and fake.position("BTC") == pytest.approx(0.045)
    assert v.fetch_order_by_client_id(symbol=BTC, client_order_id="fo" + "4" * 30) is None

    with FakeOkx() as flat:  # one cycle from flat: three orders
        cfg = vm.workspace(tmp_path / "okx", flat)
        report = reconciler_for(cfg, *vm.venue_args(tmp_path / "okx", flat)).run_cycle()
        assert report.status == "ok" and len(flat.fills) == 3
        assert not reconciler_for(cfg, *vm.venue_args(tmp_path / "okx", flat)).journal.unfinished()


def test_reduce_only_and_limit_refusals_in_a_code_1_answer_are_refusals(fake, monkeypatch):
    """``{"code": "1", "data": [{"sCode": "51169"}]}`` (reduce-only order, no position in that direction) is a
    definitive refusal (InvalidOrder: not applied), as are 51170, 51121 (not a lot-size multiple), 51020 (under
    minSz; both canned: ccxt truncates amounts to the lot size first) and 51008 (margin). Plain ccxt fails it:
    51169/51170 are missing from ccxt's table -> ExchangeError -> an unknown outcome (a lookup and a 30 s settle
    stall per cycle); asserted below on the default profile."""
    v = venue(fake)
    cid = iter(f"fo{i:030x}" for i in range(1, 100))
    with pytest.raises(InvalidOrder, match="51169"):
        v.create_order(symbol=BTC, side="sell", amount=Decimal("1"), reduce_only=True, client_order_id=next(cid))
    v.create_order(symbol=BTC, side="buy", amount=Decimal("1"), reduce_only=False, client_order_id=next(cid))
    with pytest.raises(InvalidOrder, match="51170"):
        v.create_order(symbol=BTC, side="buy", amount=Decimal("1"), reduce_only=True, client_order_id=next(cid))
    for code, text in (("51121", "Order quantity must be a multiple of the lot size."),
                       ("51020", "Order amount should be greater than the min available amount.")):
        fake.add_canned("POST", ORDER_PATH, 200, {"code": "1", "msg": "All operations failed", "data": [
            {"clOrdId": "", "ordId": "", "sCode": code, "sMsg": text, "tag": "", "ts": "1"}]})
        with pytest.raises(InvalidOrder, match=code):
            v.create_order(symbol=BTC, side="buy", amount=Decimal("1"), reduce_only=False, client_order_id=next(cid))
    fake.inject("insufficient_margin")
    with pytest.raises(InvalidOrder, match="51008"):
        v.create_order(symbol=BTC, side="buy", amount=Decimal("1"), reduce_only=False, client_order_id=next(cid))
    assert len(fake.fills) == 1
    plain = venue(fake, default=True, monkeypatch=monkeypatch)
    with pytest.raises(OrderOutcomeUnknown):
        plain.create_order(symbol=BTC, side="buy", amount=Decimal("1"), reduce_only=True, client_order_id=next(cid))
    assert len(fake.fills) == 1


def test_positions_are_linear_usdt_swaps_only(fake, monkeypatch):
    """Margin (``BTC-USDT``), dated futures, options and inverse-swap rows of ``GET /account/positions`` are not
    fastopt's: only the USDT swaps are read (base units: 3 ETH-USDT-SWAP contracts short = -0.3 ETH).

    Plain ccxt 4.5.90 drops these rows too (its market flags: spot/future/option/inverse); the profile also
    requires the row's own ``instType`` SWAP and ``instId``, so a row ccxt resolves to the wrong or a
    placeholder market is never traded. Asserted: the profile's rule refuses a SWAP market with a MARGIN row."""
    fake.positions["ETH-USDT-SWAP"] = Decimal("-3")
    fake.foreign_rows = [
        {"instType": "MARGIN", "instId": "BTC-USDT", "pos": "0.5", "posCcy": "BTC", "posSide": "net",
         "mgnMode": "cross", "ccy": "USDT", "markPx": "95000"},
        {"instType": "FUTURES", "instId": "BTC-USDT-261225", "pos": "7", "posSide": "net", "mgnMode": "cross",
         "markPx": "95000"},
        {"instType": "OPTION", "instId": "BTC-USD-261225-100000-C", "pos": "-3", "posSide": "net",
         "mgnMode": "cross", "markPx": "0.01"},
        {"instType": "SWAP", "instId": "BTC-USD-SWAP", "pos": "-40", "posSide": "net", "mgnMode": "cross",
         "markPx": "95000"},
    ]
    v = venue(fake)
    assert v.fetch_positions() == {"ETH/USDT:USDT": pytest.approx(-0.3)}
    raw = {r["symbol"] for r in v.exchange.fetch_positions()}
    assert len(raw) == 5  # the venue's answer holds all five rows
    eth = v.exchange.markets["ETH/USDT:USDT"]
    assert not PROFILE.position_in_scope({"info": {"instType": "MARGIN", "instId": "ETH-USDT-SWAP"}}, eth, ("USDT",))
    assert PROFILE.position_in_scope({"info": {"instType": "SWAP", "instId": "ETH-USDT-SWAP"}}, eth, ("USDT",))
    assert not PROFILE.position_in_scope({}, v.exchange.markets["BTC/USD:BTC"], ("USDT",))


def test_inverse_swaps_are_never_targeted(fake, tmp_path):
    """``BTC/USD:BTC`` (``BTC-USD-SWAP``, 100 USD per contract, settled in BTC) is never a target: a strategy
    naming it is unresolved (a problem, no order), and ``BTC/USDT`` maps to the linear ``BTC/USDT:USDT``.
    Plain ccxt also refuses the inverse swap (ccxt's ``inverse`` flag); with its default markets (spot listed),
    ``BTC/USDT`` names the spot market and resolves to nothing, which the profile's swap-only markets avoid."""
    v = venue(fake)
    assert v.resolve_symbol("BTC/USD:BTC") is None and "inverse" in v.explain_symbol("BTC/USD:BTC")
    assert v.resolve_symbol("BTC/USDT") == BTC and v.resolve_symbol("BTC-USDT-SWAP") == BTC
    states = {"a": {"symbol": "BTC/USD:BTC", "position": 1.0}, "b": {"positions": {"ETH/USDT:USDT": -1.0}}}
    cfg = vm.workspace(tmp_path, fake, states=states)
    report = reconciler_for(cfg, *vm.venue_args(tmp_path, fake)).run_cycle()
    assert report.status == "degraded"
    assert {p["instId"] for p in vm.order_requests(fake, ORDER_PATH)} == {"ETH-USDT-SWAP"}
    assert fake.position("ETH") == pytest.approx(-5000 / 3500, abs=fake.steps["ETH"])


def test_long_short_mode_and_spot_mode_are_refused(fake, monkeypatch, tmp_path):
    """``posMode`` ``long_short_mode`` (hedge) and ``acctLv`` 1 (Spot mode: no swaps) are refused at start with
    the setting to change; long/short position rows are refused too. Plain ccxt catches the hedge mode
    (``fetch_position_mode``) but accepts Spot mode (asserted), and its swap orders then fail one by one."""
    fake.pos_mode = "long_short_mode"
    with pytest.raises(VenueConfigError, match="long/short position mode.*net_mode"):
        venue(fake).check_account()
    row = {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "pos": "2", "posSide": "long", "mgnMode": "cross",
           "markPx": "95000"}
    fake.hedge_rows = [row]
    with pytest.raises(VenueConfigError, match="hedge mode"):
        venue(fake).fetch_positions()
    fake.pos_mode, fake.hedge_rows, fake.acct_lv = "net_mode", [], "1"
    with pytest.raises(VenueConfigError, match="Spot mode"):
        venue(fake).check_account()
    venue(fake, default=True, monkeypatch=monkeypatch).check_account()  # plain ccxt: accepted
    fake.acct_lv = "2"
    venue(fake).check_account()


def test_hedged_option_still_sends_net_and_reduce_only(fake, monkeypatch):
    """A user's ccxt option ``hedged: true`` makes ccxt send ``posSide`` long/short and drop ``reduceOnly``
    (``omitReduceOnly``); the profile always sends ``posSide: net`` so a close stays reduce-only. Plain ccxt
    fails: its order is refused in net mode (51000 posSide) and sent without ``reduceOnly`` (asserted)."""
    v = venue(fake, options={"hedged": True})
    v.create_order(symbol=BTC, side="buy", amount=Decimal("3"), reduce_only=False, client_order_id="fo" + "a" * 30)
    v.create_order(symbol=BTC, side="sell", amount=Decimal("3"), reduce_only=True, client_order_id="fo" + "b" * 30)
    sent = vm.order_requests(fake, ORDER_PATH)
    assert [p["posSide"] for p in sent] == ["net", "net"] and sent[1]["reduceOnly"] is True
    assert fake.position("BTC") == 0.0
    plain = venue(fake, default=True, monkeypatch=monkeypatch, options={"hedged": True})
    with pytest.raises(InvalidOrder, match="51000"):
        plain.create_order(symbol=BTC, side="sell", amount=Decimal("3"), reduce_only=True,
                           client_order_id="fo" + "c" * 30)
    last = fake.requests_full[-1]  # plain ccxt: the batch endpoint
    assert last["path"] == "/api/v5/trade/batch-orders" and last["params"]["posSide"] == "long"
    assert "reduceOnly" not in last["params"] and fake.position("BTC") == 0.0


def test_markets_are_swaps_only_and_credentials_need_the_passphrase(fake, monkeypatch):
    """Markets: one ``instType=SWAP`` request (plain ccxt: SPOT, FUTURES, SWAP and two OPTION requests). Keys:
    ``OKX_PASSWORD`` (the API passphrase) is required; a wrong one is OKX's 50105, an authentication error."""
    venue(fake).check_account()
    kinds = [r["params"].get("instType") for r in fake.requests_full if r["path"] == "/api/v5/public/instruments"]
    assert kinds == ["SWAP"]
    env = {k: v for k, v in fake.env.items() if k != "OKX_PASSWORD"}
    with pytest.raises(InputError, match="OKX_PASSWORD"):
        CcxtVenue("okx", settings={"api_base_url": fake.base_url}, env=env)
    bad = CcxtVenue("okx", settings={"api_base_url": fake.base_url, "timeout": 1500},
                    env={**fake.env, "OKX_PASSWORD": "wrong-passphrase"})
    with pytest.raises(AuthenticationError, match="50105"):
        bad.fetch_positions()
    bad = CcxtVenue("okx", settings={"api_base_url": fake.base_url, "timeout": 1500},
                    env={**fake.env, "OKX_SECRET": "wrong-secret"})
    with pytest.raises(AuthenticationError, match="50113"):
        bad.fetch_equity()


def test_equity_is_usdt_equity_or_adjusted_equity(fake, monkeypatch):
    """Single-currency margin: USDT ``eq`` = cash balance + unrealized PnL (USDT). Multi-currency / portfolio
    margin: the account's ``adjEq`` (USD value of all collateral after discounts). Plain ccxt reads the USDT
    ``eq`` in both (asserted): it ignores the other collateral backing the positions."""
    fake.set_balance(12000, -500)
    assert venue(fake).fetch_equity() == 11500.0
    fake.adj_eq = "30500.5"
    assert venue(fake).fetch_equity() == 30500.5
    assert venue(fake, default=True, monkeypatch=monkeypatch).fetch_equity() == 11500.0


def test_a_lookup_answer_without_an_order_is_not_proof_of_absence(fake):
    """Only 51603 means "no such order". An answer with empty ``data`` (a glitch) must leave the order
    unresolved: read as "not found" after the settle window, it would make the engine send it again."""
    v = venue(fake)
    v.check_account()
    fake.add_canned("GET", ORDER_PATH, 200, {"code": "0", "msg": "", "data": []})
    with pytest.raises(VenueError):
        v.profile.lookup(v.exchange, symbol=BTC, client_order_id="fo" + "9" * 30)
    assert v.fetch_order_by_client_id(symbol=BTC, client_order_id="fo" + "9" * 30) is None  # 51603: none
