"""OKX (ccxt ``okx``, API v5): linear USDT perpetual swaps (``BTC/USDT:USDT`` = ``BTC-USDT-SWAP``), net mode.

Units: amounts are **contracts** (``sz``); one contract is ``ctVal`` base units (ccxt ``contractSize``:
``BTC-USDT-SWAP`` 0.01 BTC, ``ETH-USDT-SWAP`` 0.1 ETH, ``SOL-USDT-SWAP`` 1 SOL); positions in base units are
contracts x ``ctVal``; prices and equity in USDT (the account currency).

Where it departs from plain ccxt (checked against ccxt 4.5.90, ``ccxt/okx.py``):

- **credentials**: ``OKX_API_KEY``, ``OKX_SECRET`` and the API passphrase ``OKX_PASSWORD`` (ccxt ``password``,
  sent as ``OK-ACCESS-PASSPHRASE``; requests are signed with base64 HMAC-SHA256 of
  ``timestamp + method + path(+?query) + body`` in ``OK-ACCESS-SIGN``).
- **forced options** (:data:`OPTIONS`): markets of type ``swap`` only (``GET /api/v5/public/instruments
  ?instType=SWAP``: spot/margin, dated futures and options are never fastopt's, and ccxt's default loads them
  with 5 requests); orders through ``POST /api/v5/trade/order`` (ccxt's default is the batch endpoint; pinned so
  a ccxt change of default cannot change the answer shapes); margin mode ``cross`` (``tdMode``); positions from
  ``GET /api/v5/account/positions`` (a user option selecting ccxt's ``positions-history`` method would read
  *closed* positions as open ones, and the engine would trade against them); order lookups through
  ``GET /api/v5/trade/order`` and open orders through ``GET /api/v5/trade/orders-pending``.
- **orders** (:func:`order_params`): ``clOrdId`` (1-32 letters/digits: fastopt's ``fo`` + 30 hex is sent
  unchanged), ``reduceOnly: true`` on reduce-only orders, and always ``posSide: "net"`` (ccxt ``positionSide``):
  with ccxt's ``hedged`` option set, ccxt would otherwise send ``posSide`` long/short and *drop* ``reduceOnly``
  (``create_order_request``: ``omitReduceOnly``), so a closing order could open a position. OKX's answer to an
  order is an ack without state (``{"ordId", "clOrdId", "sCode": "0", "sMsg"}``): ccxt parses no status, so it is
  never final with 0 filled. ``CcxtVenue.create_order`` reads it back by ``clOrdId`` right after the ack
  (:func:`lookup`, ``GET /api/v5/trade/order``) and reports what OKX shows; when that read fails, the ack stays
  ``unknown`` and the engine looks it up on the next cycle.
- **lookup** (:func:`lookup`): ``GET /api/v5/trade/order?instId=...&clOrdId=...``; ``51603`` "Order does not
  exist" (ccxt OrderNotFound) or an empty ``data`` is None. OKX keeps canceled orders without fills for 2 hours
  only: such an order found "missing" later filled nothing, which is what "not found" means to the engine.
- **cancel** (:func:`cancel`): ``POST /api/v5/trade/cancel-order`` with ``clOrdId``; ``51400``/``51401``/
  ``51402`` (none, already canceled, already filled: ccxt OrderNotFound) are None; the ack carries no state, so the
  venue looks the order up after it.
- **open orders** (:func:`open_orders`): ``GET /api/v5/trade/orders-pending?instType=SWAP`` (whole account, one
  page of up to 100 orders).
- **refusals by code** (:data:`REFUSALS`): OKX answers a failed order with HTTP 200 and
  ``{"code": "1", "data": [{"sCode": "511xx", "sMsg": ...}], "msg": "All operations failed"}``; codes missing from
  ccxt's table (``51169`` no position in this direction for a reduce-only order, ``51170`` reduce-only order in the
  position's direction) become a generic ExchangeError there, i.e. an unknown outcome and a 30 s settle stall per
  cycle. The refusal codes are pinned here whatever ccxt's table says. ``51016`` (duplicated ``clOrdId``) is
  turned into an unknown outcome (an order with that id exists: look it up), never a refusal.
- **positions in scope** (:func:`position_in_scope`): rows with ``instType`` ``SWAP`` whose market is a linear
  swap settled in USDT; ``MARGIN``, ``FUTURES``, ``OPTION`` rows and inverse swaps (``BTC-USD-SWAP``, 100 USD per
  contract, settled in BTC) are never read as fastopt's positions. A row whose ``posSide`` is ``long``/``short``
  is a long/short-mode row (:func:`hedge_row`).
- **account mode** (:func:`account_problem`, ``GET /api/v5/account/config``): ``posMode`` ``long_short_mode`` is
  refused (fastopt holds one net position per symbol), and ``acctLv`` ``1`` (Spot mode: no swaps) is refused, each
  with the setting to change.
- **equity** (:func:`equity`, ``GET /api/v5/account/balance``): single-currency margin: the USDT ``eq`` (cash
  balance + unrealized PnL of USDT-margined positions); multi-currency and portfolio margin (``adjEq`` set): the
  account's ``adjEq`` (USD value of all collateral after discounts, taken as USDT).

Limits (not expressible in the profile hooks; see docs/venues.md): ccxt's okx ``load_markets`` also calls the
signed ``GET /api/v5/asset/currencies`` whenever keys are set (it ignores fastopt's ``fetchCurrencies: False``);
ccxt puts ``maxLmtSz`` (limit orders) in ``limits.amount.max`` and leaves the market-order cap ``maxMktSz`` in
``info`` only, so an order above ``maxMktSz`` is refused (``51202``) instead of split; ``GET /public/mark-price``
has no index price, so OKX gives no reference price for the plausibility check.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.errors import InsufficientFunds, InvalidOrder, OrderOutcomeUnknown, VenueError
from reconciler.venues.profile import Order, VenueProfile, info_value

#: ccxt options fastopt forces on okx (see the module docstring)
OPTIONS: dict[str, Any] = {
    "fetchMarkets": {"types": ["swap"]},
    "createOrder": "privatePostTradeOrder",
    "defaultMarginMode": "cross",
    "fetchPositions": {"method": "privateGetAccountPositions"},
    "fetchOrder": {"method": "privateGetTradeOrder"},
    "fetchOpenOrders": {"method": "privateGetTradeOrdersPending"},
}

_CLORDID = re.compile(r"^[A-Za-z0-9]{1,32}$")


def client_id(client_order_id: str) -> str:
    """fastopt's id (``fo`` + 30 hex, 32 characters) is a valid ``clOrdId`` (1-32 letters/digits): unchanged.

    Raises ValueError for an id OKX would refuse (never sent: a refusal there would look like a venue error).
    """
    if not _CLORDID.match(client_order_id):
        raise ValueError(f"okx clOrdId must be 1-32 letters or digits, not {client_order_id!r}")
    return client_order_id


def order_params(exchange: Any, *, symbol: str, side: str, reduce_only: bool,
                 client_order_id: str) -> dict[str, Any]:
    """``clOrdId``, ``posSide`` net (ccxt ``positionSide``) and ``reduceOnly`` when reducing (amount: contracts)."""
    params: dict[str, Any] = {"clOrdId": client_order_id, "positionSide": "net"}
    if reduce_only:
        params["reduceOnly"] = True
    return params


def _carries_nothing(order: Mapping[str, Any] | None) -> bool:
    return not order or (order.get("id") is None and order.get("clientOrderId") is None)


def lookup(exchange: Any, *, symbol: str, client_order_id: str) -> Order | None:
    """``GET /api/v5/trade/order?instId&clOrdId`` (ccxt ``fetch_order(None, symbol, {"clOrdId": id})``).

    None only when OKX says it has no such order (``51603``, ccxt OrderNotFound). An answer without an order
    (empty ``data``) is not proof of absence: a VenueError, so the order stays unresolved and is looked up
    again (a glitch read as "not found" after the settle window would send the order twice). The order
    returned is OKX's (the venue checks it carries ``client_order_id``). Without a symbol: a VenueError (OKX
    needs ``instId``; the order stays unresolved rather than "not found").
    """
    import ccxt

    if not symbol:  # OKX needs instId; "not found" would be a guess, so the order stays unresolved
        raise VenueError(f"okx: cannot look up {client_order_id} without its symbol (instId)")
    try:
        order = exchange.fetch_order(None, symbol, {"clOrdId": client_order_id})
    except ccxt.OrderNotFound:
        return None
    if _carries_nothing(order):
        raise VenueError(f"okx: the lookup of {client_order_id} answered without an order (and without 51603)")
    return order


def cancel(exchange: Any, *, symbol: str, client_order_id: str) -> Order | None:
    """``POST /api/v5/trade/cancel-order`` with ``clOrdId``; None when there is nothing to cancel
    (``51400``/``51401``/``51402``: ccxt OrderNotFound). The ack has no state: the venue looks the order up."""
    import ccxt

    try:
        order = exchange.cancel_order(None, symbol, {"clOrdId": client_order_id})
    except ccxt.OrderNotFound:
        return None
    if _carries_nothing(order):
        raise VenueError(f"okx: the lookup of {client_order_id} answered without an order (and without 51603)")
    return order


def open_orders(exchange: Any) -> list[Order]:
    """Every pending swap order of the account: ``GET /api/v5/trade/orders-pending?instType=SWAP``."""
    return list(exchange.fetch_open_orders(None, None, None, {"instType": "SWAP"}) or [])


#: OKX ``sCode``/``code`` values that are definitive refusals (not applied), whatever ccxt's table says
#: (``None`` in the comment: missing from ccxt 4.5.90's table, i.e. a generic ExchangeError there):
REFUSALS: dict[str, tuple[type[InvalidOrder], str]] = {
    # reduce-only refusals
    "51169": (InvalidOrder, "reduce-only order refused: no position in this direction (ccxt: None)"),
    "51170": (InvalidOrder, "reduce-only order refused: it is in the direction of the position (ccxt: None)"),
    "51205": (InvalidOrder, "reduce-only is not available"),
    "51112": (InvalidOrder, "close order size exceeds the available position size"),
    # margin / balance
    "51008": (InsufficientFunds, "insufficient margin or balance"),
    "51119": (InsufficientFunds, "insufficient balance"),
    "51127": (InsufficientFunds, "available balance is 0"),
    "51131": (InsufficientFunds, "insufficient balance"),
    # quantity and value limits
    "51020": (InvalidOrder, "order amount below the market minimum (minSz contracts)"),
    "51121": (InvalidOrder, "order amount is not a multiple of the lot size (lotSz contracts)"),
    "51004": (InvalidOrder, "order amount exceeds the position tier limit at the current leverage"),
    "51202": (InvalidOrder, "market order amount exceeds the market maximum (maxMktSz contracts)"),
    "51201": (InvalidOrder, "market order value exceeds the per-order maximum"),
    "51129": (InvalidOrder, "position and order value reached the position limit"),
    # account / instrument settings
    "51000": (InvalidOrder, "parameter error (e.g. posSide in long/short mode)"),
    "51001": (InvalidOrder, "instrument does not exist"),
}
#: codes that mean "an order with this client id exists": look it up, never a refusal
UNKNOWN_OUTCOME = {"51016": "duplicated clOrdId: an order with this client id exists"}

_SCODE = re.compile(r'"sCode"\s*:\s*"(\d+)"')
_CODE = re.compile(r'"code"\s*:\s*"(\d+)"')


def _codes(text: str) -> list[str]:
    """Every ``sCode`` in an OKX answer quoted in ``text``, then the top-level ``code`` (other than 0/1/2)."""
    codes = [c for c in _SCODE.findall(text) if c != "0"]
    codes += [c for c in _CODE.findall(text) if c not in ("0", "1", "2")]
    return codes


def refusal(exc: BaseException, message: str) -> VenueError | None:
    """A refusal for an OKX code in ``exc`` (its answer's body: ``sCode`` in ``data``, or the top ``code``).

    ``51016`` (duplicated clOrdId) gives :class:`OrderOutcomeUnknown` instead (look it up). Timeouts and
    connection failures carry no body, hence no code, and are never refusals.
    """
    import ccxt

    if not isinstance(exc, ccxt.BaseError):
        return None
    for code in _codes(str(exc)):
        if code in UNKNOWN_OUTCOME:
            return OrderOutcomeUnknown(f"{message} ({UNKNOWN_OUTCOME[code]})")
        if code in REFUSALS:
            cls, meaning = REFUSALS[code]
            return cls(f"{message} (okx {code}: {meaning})")
    return None


def position_in_scope(row: Mapping[str, Any], market: Mapping[str, Any] | None,
                      settle_currencies: tuple[str, ...]) -> bool:
    """A linear swap settled in ``settle_currencies`` (USDT), and, for a position row, ``instType`` ``SWAP`` with
    the market's ``instId``: MARGIN, FUTURES, OPTION rows and inverse swaps are never fastopt's."""
    if market is None or not (market.get("swap") and market.get("linear") and not market.get("inverse")
                              and market.get("settle") in settle_currencies):
        return False
    info = row.get("info") if isinstance(row, Mapping) else None
    if not row:  # a market check (no row)
        return True
    if not isinstance(info, Mapping):
        return False
    return info.get("instType") == "SWAP" and info.get("instId") == market.get("id")


def hedge_row(row: Mapping[str, Any]) -> bool:
    """A long/short-mode row: ``posSide`` ``long``/``short`` (ccxt ``hedged``); net-mode rows say ``net``."""
    info = row.get("info")
    side = str(info.get("posSide", "")).lower() if isinstance(info, Mapping) else ""
    return side in ("long", "short") or (row.get("hedged") is True and side != "net")


_ONE_WAY_FIX = ("switch the position mode to 'Buy/sell' (net mode) in OKX settings (Trade > Settings > Position "
                "mode; API: POST /api/v5/account/set-position-mode posMode=net_mode)")


def account_problem(exchange: Any) -> str | None:
    """``GET /api/v5/account/config``: long/short position mode, or Spot mode (``acctLv`` 1: no swaps)."""
    response = exchange.privateGetAccountConfig()
    data = response.get("data") if isinstance(response, Mapping) else None
    config = data[0] if isinstance(data, list) and data and isinstance(data[0], Mapping) else {}
    if str(config.get("posMode", "")) == "long_short_mode":
        return "the account is in long/short position mode (separate long and short positions per symbol)"
    if str(config.get("acctLv", "")) == "1":
        return ("the account is in Spot mode (acctLv 1), which cannot trade perpetual swaps (switch the account "
                "mode to 'Futures mode' / single-currency margin in OKX settings first)")
    return None


def equity(balance: Mapping[str, Any], account_currency: str) -> float | None:
    """USDT equity: ``adjEq`` of the account in multi-currency/portfolio margin (set there, empty otherwise),
    else the ``eq`` of the USDT row (cash balance + unrealized PnL), else ccxt's ``total``; None when absent."""
    info = balance.get("info")
    data = info.get("data") if isinstance(info, Mapping) else None
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], Mapping) else {}
    candidates = [first.get("adjEq")]
    for row in first.get("details") or []:
        if isinstance(row, Mapping) and row.get("ccy") == account_currency:
            candidates.append(row.get("eq"))
    candidates.append((balance.get("total") or {}).get(account_currency))
    for value in candidates:
        if value in (None, ""):
            continue
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return None


def market_max_amount(market: Mapping[str, Any]) -> Any:
    """``maxMktSz`` (contracts): the largest market order; ccxt keeps only ``maxLmtSz`` in its limits."""
    return info_value(market, "maxMktSz")


PROFILE = VenueProfile(
    exchange_id="okx",
    settle_currencies=("USDT",),
    account_currency="USDT",
    credentials=(("API_KEY", "apiKey"), ("SECRET", "secret"), ("PASSWORD", "password")),
    options=OPTIONS,
    one_way_fix=_ONE_WAY_FIX,
    client_id=client_id,
    order_params=order_params,
    lookup=lookup,
    cancel=cancel,
    open_orders=open_orders,
    refusal=refusal,
    position_in_scope=position_in_scope,
    hedge_row=hedge_row,
    account_problem=account_problem,
    equity=equity,
    market_max_amount=market_max_amount,
)
