"""The paper exchange behind the same venue interface as CcxtVenue (equity, symbols, cancel/lookup,
open orders, max amount)."""
from __future__ import annotations

import inspect
from decimal import Decimal

import pytest

from reconciler.errors import InvalidOrder
from reconciler.venues.paper import PaperExchange, market_from_spec
from reconciler.venues.ccxt_venue import CcxtVenue

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


class Prices:
    """A price source whose prices the test changes; counts calls."""

    def __init__(self, prices):
        self.prices, self.calls = dict(prices), 0

    def __call__(self, symbols):
        self.calls += 1
        return {s: self.prices[s] for s in symbols if s in self.prices}


def paper(tmp_path, prices=None, **kwargs):
    source = Prices({BTC: 100.0, ETH: 10.0} if prices is None else prices)
    return PaperExchange(tmp_path / "p.sqlite", price_source=source, initial_cash=1000.0, fee_bps=0.0,
                         slippage_bps=0.0, **kwargs), source


VENUE_METHODS = ["check_account", "fetch_positions", "fetch_equity", "fetch_prices", "reference_prices",
                 "resolve_symbol", "load_markets", "create_order", "fetch_order_by_client_id",
                 "cancel_order_by_client_id", "open_orders"]


@pytest.mark.parametrize("method", VENUE_METHODS)
def test_paper_and_ccxt_venues_have_the_same_interface(method):
    ours, theirs = inspect.signature(getattr(PaperExchange, method)), inspect.signature(getattr(CcxtVenue, method))
    assert list(ours.parameters) == list(theirs.parameters)
    assert [p.kind for p in ours.parameters.values()] == [p.kind for p in theirs.parameters.values()]


def test_paper_settles_at_once_and_has_nothing_to_check_or_compare(tmp_path):
    venue, _ = paper(tmp_path)
    assert venue.order_settle_s == 0.0
    assert venue.check_account() is None
    venue.fetch_prices([BTC])
    assert venue.reference_prices([BTC]) == {}


def test_equity_is_cash_plus_positions_at_the_last_known_price(tmp_path):
    venue, source = paper(tmp_path)
    assert venue.fetch_equity() == 1000.0
    venue.fetch_prices([BTC, ETH])
    venue.create_order(symbol=BTC, side="buy", amount=Decimal("2"), reduce_only=False, client_order_id="c1")
    venue.create_order(symbol=ETH, side="sell", amount=Decimal("5"), reduce_only=False, client_order_id="c2")
    assert venue.cash == pytest.approx(1000.0 - 200.0 + 50.0)
    assert venue.fetch_equity() == pytest.approx(1000.0)
    source.prices.update({BTC: 130.0, ETH: 12.0})
    assert venue.fetch_equity() == pytest.approx(1000.0)  # last *known* prices: not fetched yet
    venue.fetch_prices([BTC, ETH])
    assert venue.fetch_equity() == pytest.approx(850.0 + 2 * 130.0 - 5 * 12.0)


def test_equity_prices_an_unpriced_holding_once_and_is_none_without_a_price(tmp_path):
    venue, source = paper(tmp_path)
    venue.fetch_prices([BTC])
    venue.create_order(symbol=BTC, side="buy", amount=Decimal("1"), reduce_only=False, client_order_id="c1")
    restarted, source2 = paper(tmp_path, prices={BTC: 110.0})  # same database, fresh process
    assert restarted.fetch_equity() == pytest.approx(900.0 + 110.0) and source2.calls == 1
    gone, _ = paper(tmp_path, prices={})
    assert gone.fetch_equity() is None


@pytest.mark.parametrize("raw, expected", [
    ("BTC/USDT:USDT", BTC), ("btc/usdt:usdt", BTC), ("BTC/USDT", BTC), ("BTC-USDT", BTC), ("BTCUSDT", BTC),
    ("btcusdt", BTC), (" ETHUSDT ", ETH), ("BTCBUSD", "BTC/BUSD:BUSD"), ("ETHUSDC", "ETH/USDC:USDC"),
    ("BTCUSD", "BTC/USD:USD"), ("1000PEPEUSDT", "1000PEPE/USDT:USDT"),
    ("", None), ("   ", None), ("garbage", None), ("USDT", None), ("BTC/EUR", None), ("BTC/USDT:BTC", None),
    ("B TC/USDT", None), ("A/B/C", None), ("BTC:USDT", None),
])
def test_resolve_symbol(tmp_path, raw, expected):
    assert paper(tmp_path)[0].resolve_symbol(raw) == expected


def test_cancel_looks_the_order_up_and_open_orders_are_always_empty(tmp_path):
    venue, _ = paper(tmp_path)
    venue.fetch_prices([BTC])
    venue.create_order(symbol=BTC, side="buy", amount=Decimal("0.5"), reduce_only=False, client_order_id="fo-1")
    assert venue.open_orders("fo") == [] and venue.open_orders("") == []
    done = venue.cancel_order_by_client_id(symbol=BTC, client_order_id="fo-1")
    assert (done.status, done.filled, done.average) == ("filled", 0.5, 100.0)
    assert venue.cancel_order_by_client_id(symbol=BTC, client_order_id="fo-nope") is None
    assert venue.fetch_positions() == {BTC: 0.5}  # cancelling changed nothing


def test_max_amount_from_the_market_spec_limits_one_order(tmp_path):
    venue, _ = paper(tmp_path, markets={BTC: {"amount_step": "0.1", "max_amount": "1.5"}})
    prices = venue.fetch_prices([BTC, ETH])
    markets = venue.load_markets([BTC, ETH], prices)
    assert markets[BTC].max_amount == Decimal("1.5") and markets[ETH].max_amount is None
    with pytest.raises(InvalidOrder, match="above the market's max 1.5"):
        venue.create_order(symbol=BTC, side="buy", amount=Decimal("1.6"), reduce_only=False, client_order_id="c1")
    assert venue.fetch_positions() == {} and venue.cash == 1000.0
    venue.create_order(symbol=BTC, side="buy", amount=Decimal("1.5"), reduce_only=False, client_order_id="c2")
    assert venue.fetch_positions() == {BTC: 1.5}


@pytest.mark.parametrize("bad", [0, -1, "x", "nan", True])
def test_a_bad_max_amount_is_refused(bad):
    with pytest.raises(ValueError, match="max_amount"):
        market_from_spec(BTC, {"amount_step": "0.1", "max_amount": bad})


def test_a_paper_database_that_cannot_be_written_is_a_temporary_venue_error_not_a_crash(tmp_path, monkeypatch):
    """A full disk under paper_exchange.sqlite: the order is rolled back (not applied) and reported as a
    venue error, which the engine looks up, instead of an sqlite3 exception that would kill the loop."""
    import sqlite3
    from decimal import Decimal

    from reconciler.errors import TemporaryError
    from reconciler.venues.paper import PaperExchange

    paper = PaperExchange(tmp_path / "p.sqlite", price_source=lambda s: {x: 100.0 for x in s}, initial_cash=1e4)

    class FullDisk:
        def __init__(self, inner):
            self.inner = inner

        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO fills"):
                raise sqlite3.OperationalError("database or disk is full")
            return self.inner.execute(sql, *args)

    real = paper._db
    paper._db = FullDisk(real)
    with pytest.raises(TemporaryError, match="disk is full"):
        paper.create_order(symbol="X/USDT:USDT", side="buy", amount=Decimal("1"), reduce_only=False,
                           client_order_id="fo1")
    paper._db = real
    assert paper.fetch_positions() == {} and paper.fetch_order_by_client_id(symbol="X/USDT:USDT",
                                                                            client_order_id="fo1") is None
