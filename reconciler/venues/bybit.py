"""Bybit (ccxt ``bybit``, API v5): linear USDT perpetuals of a Unified Trading Account (UTA), one-way mode.

Units: amounts in contracts; on Bybit's linear contracts one contract is one unit of the base coin
(ccxt ``contractSize`` 1, ``qty`` in base coin); prices and equity in USDT.

Where it departs from plain ccxt (checked against ccxt 4.5.90, ``ccxt/bybit.py``):

- **lookup by client id**: ccxt's ``fetch_order`` on a unified account raises ``ArgumentsRequired`` unless
  ``params["acknowledged"]`` is set, and then looks up by ``orderId`` only (``fetch_order``, the
  ``acknowledged`` check before any request); plain ccxt's lookup could never resolve a lost answer. Here
  (:func:`lookup`): ``GET /v5/order/realtime`` with ``orderLinkId`` (open orders), the same with
  ``openOnly=1`` (the last 500 closed orders, real time), then ``GET /v5/order/history`` with
  ``orderLinkId`` (older orders; Bybit says it may lag), through ccxt's ``fetch_open_orders`` /
  ``fetch_canceled_and_closed_orders`` (which make no other request); only a row carrying exactly that
  ``orderLinkId`` counts.
- **no pre-flight probe**: ``create_order``, ``fetch_balance`` and ``fetch_order`` first call
  ``is_unified_enabled`` (``GET /v5/user/query-api`` + ``GET /v5/account/info``) unless the options
  ``enableUnifiedMargin``/``enableUnifiedAccount`` are set. A failure of that probe (e.g. retCode 10005
  for a key without transfer/withdrawal permission, a 5xx, a timeout) came out of ``create_order`` as an
  unknown order outcome although nothing was sent. Those options are forced (UTA), so ``create_order``
  makes exactly one request (``POST /v5/order/create``); :func:`account_problem` checks at start-up that
  the account really is unified (``GET /v5/account/info`` ``unifiedMarginStatus``: 1 = classic is
  refused) and that the first USDT perpetual is not in hedge mode (``GET /v5/position/list?symbol=``:
  rows with ``positionIdx`` 1/2).
- **status-less order ack**: ``POST /v5/order/create`` answers only ``orderId``/``orderLinkId``;
  ``CcxtVenue.create_order`` looks the order up once after a successful send (:func:`lookup`), so a
  filled market order is known as filled in the same cycle.
- **cancel by client id**: ccxt's generic ``cancel_order_with_client_order_id`` sends ``orderId=""`` and
  a raw ``clientOrderId``; here ``POST /v5/order/cancel`` with ``orderLinkId``.
- **market order limit**: ccxt puts ``lotSizeFilter.maxOrderQty`` (limit orders) in ``limits.amount.max``
  and drops ``maxMktOrderQty`` (market orders, usually 10x smaller); :func:`market_max_amount` gives it to
  the venue so orders are split under it instead of being refused forever (retCode 10001 "The number of
  contracts exceeds maximum limit allowed").
- **refusals by retCode** (:data:`REFUSALS`) where ccxt's table makes a refused order an unknown outcome
  (110066, 110090) or to pin them; 110072 (``orderLinkId`` already used) is turned into an unknown outcome:
  an order with that id exists, look it up.
- **equity**: the USDT coin's ``equity`` (wallet balance + unrealized PnL, USDT) of
  ``GET /v5/account/wallet-balance?accountType=UNIFIED``; other collateral coins are not counted.

Not avoidable from a profile: with keys set, ccxt 4.5.90's ``load_markets`` fetches currencies through the
private ``GET /v5/asset/coin/query-info`` (``has['fetchCurrencies']``; fastopt's ``fetchCurrencies`` option is
not read by ``load_markets`` in this version): one more signed read per markets load.

Client ids: fastopt's ``fo`` + 30 hex (32 characters) is a valid ``orderLinkId`` (max 36 of
``[A-Za-z0-9_-]``), sent unchanged through ccxt's unified ``clientOrderId`` (ccxt maps it to
``orderLinkId``); ``positionIdx`` 0 (one-way) and ``reduceOnly`` true go in the JSON body.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.errors import InsufficientFunds, InvalidOrder, OrderOutcomeUnknown, VenueError
from reconciler.venues.profile import (
    Order,
    VenueProfile,
    coded_refusal,
    default_equity,
    default_position_in_scope,
    info_value,
)

ONE_WAY_FIX = ("switch USDT perpetuals to one-way mode (Bybit: Derivatives > Settings > Position Mode, or "
               "POST /v5/position/switch-mode with coin=USDT, mode=0)")

#: Bybit v5 retCodes that are definitive refusals (not applied), whatever ccxt's table says:
#:
#: - 110066 trading not allowed at the current time: ccxt ExchangeError (would be an unknown outcome)
#: - 110090 position would exceed the max limit at the current leverage: not in ccxt's table (ExchangeError)
#: - 110007/110004/110012/110044/110045 insufficient balance/margin: ccxt InsufficientFunds, pinned
#: - 110017 reduce-only rule not satisfied (position zero or same side): ccxt InvalidOrder, pinned
#: - 110094 order value under the minimum, 110016 qty over the risk limit, 110020 too many active orders,
#:   110021 open interest limit, 110040 would trigger liquidation: ccxt InvalidOrder, pinned
REFUSALS: dict[str, tuple[type[InvalidOrder], str]] = {
    "110066": (InvalidOrder, "trading is not allowed on this symbol at the current time"),
    "110090": (InvalidOrder, "the position would exceed the maximum allowed at the current leverage"),
    "110007": (InsufficientFunds, "available balance not enough for the order"),
    "110004": (InsufficientFunds, "insufficient wallet balance"),
    "110012": (InsufficientFunds, "available balance not enough"),
    "110044": (InsufficientFunds, "insufficient available margin"),
    "110045": (InsufficientFunds, "insufficient wallet balance"),
    "110017": (InvalidOrder, "reduce-only order rejected (it would not reduce the position)"),
    "110094": (InvalidOrder, "order value under the market minimum"),
    "110016": (InvalidOrder, "quantity exceeds the risk limit"),
    "110020": (InvalidOrder, "too many active orders"),
    "110021": (InvalidOrder, "open interest limit reached"),
    "110040": (InvalidOrder, "the order would trigger a forced liquidation"),
}
#: retCode of "orderLinkId is duplicate": the id is on the venue already (an unknown outcome, not a refusal)
DUPLICATE_CLIENT_ID = "110072"
_CODE = re.compile(r'"retCode"\s*:\s*(\d+)')


def order_params(exchange: Any, *, symbol: str, side: str, reduce_only: bool,
                 client_order_id: str) -> dict[str, Any]:
    """``clientOrderId`` (ccxt sends it as ``orderLinkId``), ``positionIdx`` 0 (one-way: a symbol in hedge
    mode refuses it with retCode 10001 instead of opening a hedge side) and ``reduceOnly`` true when set."""
    params: dict[str, Any] = {"clientOrderId": client_order_id, "positionIdx": 0}
    if reduce_only:
        params["reduceOnly"] = True
    return params


def _matching(orders: Any, client_order_id: str) -> Order | None:
    for order in orders or []:
        if isinstance(order, Mapping) and order.get("clientOrderId") == client_order_id:
            return order
    return None


def lookup(exchange: Any, *, symbol: str, client_order_id: str) -> Order | None:
    """The order whose ``orderLinkId`` is ``client_order_id`` on ``symbol``, else None.

    Up to three requests, first hit wins: ``GET /v5/order/realtime`` (open orders), the same with
    ``openOnly=1`` (the 500 most recent closed orders; cleared when Bybit restarts), ``GET
    /v5/order/history`` (closed orders, may lag a little: an order not found yet within the engine's
    settle window stays unresolved). Rows carrying another id are ignored (never someone else's order).
    """
    params = {"orderLinkId": client_order_id}
    found = _matching(exchange.fetch_open_orders(symbol, None, None, dict(params)), client_order_id)
    if found is None:
        found = _matching(exchange.fetch_open_orders(symbol, None, None, {**params, "openOnly": 1}),
                          client_order_id)
    if found is None:
        found = _matching(exchange.fetch_canceled_and_closed_orders(symbol, None, None, dict(params)),
                          client_order_id)
    return found


def cancel(exchange: Any, *, symbol: str, client_order_id: str) -> Order | None:
    """``POST /v5/order/cancel`` with ``orderLinkId``; retCode 110001 (no such order, or already final:
    ccxt OrderNotFound) means None. Bybit's answer carries no status: the caller looks the order up."""
    import ccxt

    try:
        return exchange.cancel_order(None, symbol, {"orderLinkId": client_order_id})
    except ccxt.OrderNotFound:
        return None


def open_orders(exchange: Any) -> list[Order]:
    """Every open USDT linear order of the account (``GET /v5/order/realtime?category=linear&settleCoin=
    USDT``), 50 per page, following ``nextPageCursor`` (at most 20 pages)."""
    out: list[Order] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(20):
        params: dict[str, Any] = {"settleCoin": "USDT"}
        if cursor:
            params["cursor"] = cursor
        page = list(exchange.fetch_open_orders(None, None, 50, params) or [])
        out.extend(page)
        info = page[0].get("info") if page else None
        cursor = info.get("nextPageCursor") if isinstance(info, Mapping) else None
        if not page or len(page) < 50 or not cursor or cursor in seen:
            break
        seen.add(cursor)
    return out


def refusal(exc: BaseException, message: str) -> VenueError | None:
    """A refusal for a Bybit retCode in ``exc``'s message (ccxt puts the body, ``{"retCode":110017,...}``,
    in it), else None. retCode 10001 "position idx not match position mode" is a refusal naming hedge
    mode; retCode 110072 (duplicate ``orderLinkId``) is an :class:`OrderOutcomeUnknown`: an order with
    that id exists and must be looked up. A timeout or a connection failure carries no body: never a
    refusal."""
    import ccxt

    if not isinstance(exc, ccxt.BaseError):
        return None
    text = str(exc)
    match = _CODE.search(text)
    if match is None:
        return None
    code = match.group(1)
    if code == DUPLICATE_CLIENT_ID:
        return OrderOutcomeUnknown(f"{message} (an order with this client id exists already: look it up)")
    if code == "10001" and "position idx not match position mode" in text.lower():
        return InvalidOrder(f"{message} (the symbol is in hedge mode: {ONE_WAY_FIX})")
    return coded_refusal(exc, message, _CODE, REFUSALS)


def market_max_amount(market: Mapping[str, Any]) -> Any:
    """``lotSizeFilter.maxMktOrderQty`` (contracts): the largest *market* order, which ccxt drops (it keeps
    the limit-order ``maxOrderQty`` in ``limits.amount.max``, usually 10x larger); None when absent."""
    return info_value(market, "lotSizeFilter", "maxMktOrderQty")


def position_in_scope(row: Mapping[str, Any], market: Mapping[str, Any] | None,
                      settle_currencies: tuple[str, ...]) -> bool:
    """A linear perpetual (``contractType`` LinearPerpetual: ccxt swap + linear) settled in USDT; USDC
    perpetuals, dated futures, inverse contracts, options and spot are not fastopt's. For in-scope markets,
    also records the market-order maximum (see the module docstring)."""
    if not default_position_in_scope(row, market, settle_currencies):
        return False
    if market.get("expiry") is not None:  # a dated contract is never a perpetual
        return False
    return True


def hedge_row(row: Mapping[str, Any]) -> bool:
    """A row of a hedge-mode position: ccxt ``hedged``, or ``positionIdx`` 1 (buy side) / 2 (sell side)."""
    if row.get("hedged") is True:
        return True
    info = row.get("info")
    return isinstance(info, Mapping) and str(info.get("positionIdx", "0")) in ("1", "2")


def account_problem(exchange: Any) -> str | None:
    """Why fastopt cannot trade this account, else None. ``GET /v5/account/info``: ``unifiedMarginStatus``
    1 is a classic account (the options forced here assume UTA); then ``GET /v5/position/list`` of the
    first USDT perpetual (BTCUSDT when listed): rows with ``positionIdx`` 1/2 mean hedge mode."""
    response = exchange.privateGetV5AccountInfo({})
    result = response.get("result") if isinstance(response, Mapping) else None
    status = result.get("unifiedMarginStatus") if isinstance(result, Mapping) else None
    try:
        status = int(status)
    except (TypeError, ValueError):
        return "the account mode could not be read (GET /v5/account/info gave no unifiedMarginStatus)"
    if status in (1, 2):
        return ("the account is not a Unified Trading Account (unifiedMarginStatus "
                f"{status}); upgrade it to UTA in Bybit's account settings")
    exchange.options["unifiedMarginStatus"] = status
    markets = exchange.markets or {}
    probe = "BTC/USDT:USDT" if "BTC/USDT:USDT" in markets else next(
        (s for s, m in markets.items() if position_in_scope({}, m, ("USDT",)) and m.get("active") is not False), None)
    if probe is None:
        return None
    rows = exchange.privateGetV5PositionList({"category": "linear", "symbol": markets[probe]["id"]})
    listed = ((rows.get("result") or {}).get("list") or []) if isinstance(rows, Mapping) else []
    if any(str(r.get("positionIdx", "0")) in ("1", "2") for r in listed if isinstance(r, Mapping)):
        return f"{probe} is in hedge mode (separate long and short positions)"
    return None


def equity(balance: Mapping[str, Any], account_currency: str) -> float | None:
    """The account currency's coin ``equity`` (wallet balance + unrealized PnL, in that coin) of the
    unified wallet; else its ``walletBalance`` + ``unrealisedPnl``; else ccxt's ``total``. Other collateral
    coins (BTC, USDC...) are not counted (a lower figure: fastopt sizes down, never up)."""
    info = balance.get("info")
    accounts = ((info.get("result") or {}).get("list") or []) if isinstance(info, Mapping) else []
    for account in accounts:
        for coin in (account.get("coin") or []) if isinstance(account, Mapping) else []:
            if not isinstance(coin, Mapping) or coin.get("coin") != account_currency:
                continue
            try:
                if coin.get("equity") not in (None, ""):
                    return float(coin["equity"])
                return float(coin.get("walletBalance") or 0) + float(coin.get("unrealisedPnl") or 0)
            except (TypeError, ValueError):
                break
    return default_equity(balance, account_currency)


PROFILE = VenueProfile(
    exchange_id="bybit",
    settle_currencies=("USDT",),
    account_currency="USDT",
    credentials=(("API_KEY", "apiKey"), ("SECRET", "secret")),
    options={
        # no is_unified_enabled probe inside create_order/fetch_balance (see the module docstring)
        "enableUnifiedAccount": True,
        "enableUnifiedMargin": False,
        # an order delayed longer than this is refused by Bybit (retCode 10002): the engine's settle
        # window (30 s) relies on it staying short
        "recvWindow": 5000,
        # linear contracts only: spot, inverse and option markets are never traded (and each category is
        # one more request that must succeed before trading)
        "fetchMarkets": {"types": ["linear"]},
        "defaultType": "swap",
        "defaultSubType": "linear",
        "defaultSettle": "USDT",
    },
    one_way_fix=ONE_WAY_FIX,
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
