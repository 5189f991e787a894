"""Bitget USDT-M perpetuals (ccxt ``bitget``, classic account, API v2 ``/api/v2/mix/...``), one-way mode.

Scope: the linear perpetuals of product type ``USDT-FUTURES`` (``BTC/USDT:USDT`` is the market id
``BTCUSDT``, margin coin USDT). Amounts are in base units: ccxt 4.5.90 gives every Bitget contract a
contract size of 1 (``fetch_default_markets``: ``contractSize = 1 if contract``), so contracts = base units;
equity and prices are in USDT.

Where it departs from plain ccxt:

- **account type forced** (``options.uta = False``): ccxt decides classic vs unified (UTA) account by
  probing ``GET /api/v3/account/settings`` the first time any method needs it
  (``bitget.handle_uta_and_params``) and stores the answer in ``options['uta']`` for the life of the
  process; *any* failure of that one probe (a timeout, a 5xx, a 429) pins the process to the classic API.
  fastopt forces the classic v2 API, so no probe decides it. A UTA account answers every classic endpoint
  with code ``40085`` ("You are in Unified Account mode, and the Classic Account API is not supported");
  that code is a :class:`~reconciler.errors.VenueConfigError` here (refused at start, with the fix: a
  classic-mode sub-account), not ccxt's ``PermissionDenied``.
- **the futures account, not the spot wallet** (``options.defaultType = "swap"``, ``defaultSubType =
  "linear"``): ccxt's default type is ``spot``, so ``fetch_balance()`` would read the *spot* wallet
  (``GET /api/v2/spot/account/assets``) and ``fetch_open_orders()`` the spot book. Forced to the swap
  type they read ``GET /api/v2/mix/account/accounts?productType=USDT-FUTURES`` and
  ``GET /api/v2/mix/order/orders-pending?productType=USDT-FUTURES``. ``fetchMarkets.types = ["swap"]``:
  only the six ``GET /api/v2/mix/market/contracts`` requests at load (no spot symbols that would shadow
  ``BTC/USDT`` as a strategy symbol, no margin-currency request).
- **order replies are acks** (``POST /api/v2/mix/order/place-order`` answers ``{"orderId", "clientOid"}``
  only): ccxt's order has no status. ``CcxtVenue.create_order`` confirms the ack at once by one lookup by
  ``clientOid`` (:func:`lookup`); when that lookup fails or finds nothing yet, the outcome stays ``unknown``
  and the engine looks it up. Never "filled" nor "not applied" from an ack alone.
- **lookup by client id**: ``GET /api/v2/mix/order/detail?symbol=BTCUSDT&productType=USDT-FUTURES
  &clientOid=...`` (ccxt's implicit ``privateMixGetV2MixOrderDetail``, called directly: ccxt's
  ``fetch_order(None, ...)`` builds its "not found" message with ``id + ...`` and raises TypeError when
  ``data`` is empty). "Not found" is only Bitget's answer ``40109`` (ccxt OrderNotFound, also ``40768``,
  ``43001``); an answer without an order is an error, never "not found".
- **cancel**: ``POST /api/v2/mix/order/cancel-order`` with ``clientOid``; ``40768`` (no such order) and
  ``22001`` ("No order to cancel": already final; ccxt: generic ExchangeError) mean None, then the order
  is looked up.
- **refusals by code** (:data:`REFUSALS`): reduce-only refusals (``22002`` "No position to close",
  ``40757`` "Not enough position is available") are generic ``ExchangeError`` in ccxt, so a refused close
  would be an unknown outcome and stall the symbol for the settle window; here they are refusals.
- **hedge mode**: ``fetchPositionMode`` is False in ccxt for bitget, so plain ccxt never checks it. The
  start-up check reads ``posMode`` from ``GET /api/v2/mix/account/account`` (anything but
  ``one_way_mode`` is refused), and position rows with ``posMode == "hedge_mode"`` are refused.
- **equity**: ``accountEquity`` of the USDT row of the USDT-M futures account (wallet balance +
  unrealized PnL, USDT).
- **credentials**: ``BITGET_API_KEY``, ``BITGET_SECRET`` and the passphrase ``BITGET_PASSWORD``
  (ccxt ``password``, sent as ``ACCESS-PASSPHRASE``).

Client ids: fastopt's ``fo`` + 30 hex (32 characters) as is: Bitget's ``clientOid`` takes up to 50
characters (ccxt table: ``40305`` "Client_oid length is not greater than 50"); sent as ``clientOid``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.errors import InsufficientFunds, InvalidOrder, VenueConfigError, VenueError
from reconciler.venues.profile import VenueProfile, coded_refusal

PRODUCT_TYPE = "USDT-FUTURES"
MARGIN_COIN = "USDT"

#: how to leave the refused account modes (said in the refusal)
ONE_WAY_FIX = ("switch the USDT-M futures position mode to one-way (Futures > Preferences > Position mode: "
               "One-way) with no open USDT-M position or order")
UTA_FIX = ("fastopt trades Bitget through the classic account API (v2): trade from a classic-mode "
           "sub-account, or downgrade the account to classic mode")

#: Bitget codes that are definitive refusals (not applied, final), whatever ccxt's table says
#: (checked against ccxt 4.5.90 ``bitget.describe()['exceptions']``):
#:
#: - 22002 No position to close, 40757 Not enough position is available: not in ccxt's table -> ExchangeError
#:   (an unknown outcome: the symbol would stall for the settle window on every refused reduce-only order)
#: - 45111 less than the minimum order quantity: not in ccxt's table -> ExchangeError
#: - 40762 order amount exceeds the balance, 43012 insufficient balance, 40711 / 40712 insufficient contract
#:   balance / margin: InsufficientFunds in ccxt, pinned here
#: - 45110 under the minimum notional (5 USDT), 40808 size precision: InvalidOrder in ccxt, pinned here
#: - 40774 order type (one-way) does not match the position mode (hedge): InvalidOrder in ccxt, pinned with
#:   the fix
#: - 40085 a Unified (UTA) account called on the classic API: ccxt PermissionDenied; here a
#:   :class:`VenueConfigError` naming the fix
#:
#: Not a refusal: 40786 "Duplicate clientOid" (an order with that id exists: look it up).
REFUSALS: dict[str, tuple[type[VenueError], str]] = {
    "22002": (InvalidOrder, "reduce-only order refused: no position to close"),
    "40757": (InvalidOrder, "reduce-only order refused: not enough position to reduce"),
    "45111": (InvalidOrder, "quantity under the market's minimum order quantity"),
    "45110": (InvalidOrder, "order value under the market's minimum (USDT)"),
    "40808": (InvalidOrder, "order size does not fit the market's size step"),
    "40762": (InsufficientFunds, "the order amount exceeds the balance"),
    "43012": (InsufficientFunds, "insufficient balance"),
    "40711": (InsufficientFunds, "insufficient contract account balance"),
    "40712": (InsufficientFunds, "insufficient margin"),
    "40774": (InvalidOrder, f"the order's position type does not match the account's position mode (hedge "
                            f"mode); {ONE_WAY_FIX}"),
    "40085": (VenueConfigError, f"the account is a Unified Trading Account (UTA); {UTA_FIX}"),
}
_CODE = re.compile(r'"code"\s*:\s*"?(\d+)"?')
#: Bitget codes that mean "no such order" on lookup / cancel (40109 detail, 40768 cancel, 43001 spot-style)
_NOT_FOUND = ("40109", "40768", "43001")
#: cancel: the order exists but is final (filled or cancelled)
_NOTHING_TO_CANCEL = ("22001",)


def _code_of(exc: BaseException) -> str | None:
    match = _CODE.search(str(exc))
    return match.group(1) if match else None


def refusal(exc: BaseException, message: str) -> VenueError | None:
    """The refusal for a Bitget error code in ``exc``'s message (ccxt: ``bitget {"code":"22002",...}``),
    else None."""
    return coded_refusal(exc, message, _CODE, REFUSALS)


def order_params(exchange: Any, *, symbol: str, side: str, reduce_only: bool,
                 client_order_id: str) -> dict[str, Any]:
    """``clientOid`` (Bitget's field, kept by ccxt's ``create_order_request``); one-way mode
    (``hedged`` False: no ``tradeSide``); reduce-only as ccxt sends it in one-way mode (``reduceOnly: "YES"``).
    ``size`` is ccxt's amount: base units (contract size 1)."""
    params: dict[str, Any] = {"clientOid": client_order_id, "hedged": False}
    if reduce_only:
        params["reduceOnly"] = True
    return params


def lookup(exchange: Any, *, symbol: str, client_order_id: str) -> Mapping[str, Any] | None:
    """The order with ``clientOid == client_order_id``: ``GET /api/v2/mix/order/detail`` (symbol,
    productType, clientOid), parsed by ccxt; None only when Bitget answers "order not found" (40109).

    An answer without an order raises (never read as "not found": an order whose answer was lost would
    be sent again); an order carrying another client id raises :class:`VenueError`.
    """
    import ccxt

    market = exchange.market(symbol)
    request = {"symbol": market["id"], "productType": _product_type(market), "clientOid": client_order_id}
    try:
        response = exchange.privateMixGetV2MixOrderDetail(request)
    except ccxt.BaseError as exc:
        if isinstance(exc, ccxt.OrderNotFound) or _code_of(exc) in _NOT_FOUND:
            return None
        raise
    data = response.get("data") if isinstance(response, Mapping) else None
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, Mapping) or not data:
        raise ccxt.ExchangeError(f"bitget order detail for clientOid {client_order_id} answered without an "
                                 f"order: {str(response)[:200]}")
    order = exchange.parse_order(dict(data), market)
    carried = order.get("clientOrderId")
    if carried != client_order_id:
        raise VenueError(f"bitget: the lookup of clientOid {client_order_id} returned an order carrying "
                         f"{carried!r}; not trusted")
    return order


def cancel(exchange: Any, *, symbol: str, client_order_id: str) -> Mapping[str, Any] | None:
    """``POST /api/v2/mix/order/cancel-order`` by ``clientOid``; None when Bitget has no such order (40768)
    or nothing left to cancel (22001: already filled or cancelled); the caller then looks it up."""
    import ccxt

    try:
        return exchange.cancel_order("", symbol, {"clientOrderId": client_order_id})
    except ccxt.BaseError as exc:
        if isinstance(exc, ccxt.OrderNotFound) or _code_of(exc) in _NOT_FOUND + _NOTHING_TO_CANCEL:
            return None
        raise


def open_orders(exchange: Any) -> list[Mapping[str, Any]]:
    """Every open order of the USDT-M futures account in one request:
    ``GET /api/v2/mix/order/orders-pending?productType=USDT-FUTURES&limit=100`` (no symbol).
    Bitget pages at 100; fastopt keeps a handful of orders working at most."""
    return list(exchange.fetch_open_orders(None, None, 100, {"type": "swap", "productType": PRODUCT_TYPE}) or [])


def hedge_row(row: Mapping[str, Any]) -> bool:
    """A row of a hedge-mode account: ccxt ``hedged``, or ``posMode == "hedge_mode"`` in the raw row
    (in one-way mode ``holdSide`` is also long/short, so it says nothing of the mode)."""
    if row.get("hedged") is True:
        return True
    info = row.get("info")
    return isinstance(info, Mapping) and str(info.get("posMode", "")).lower() == "hedge_mode"


def _product_type(market: Mapping[str, Any]) -> str:
    return PRODUCT_TYPE if market.get("settle") == "USDT" else f"{market.get('settle')}-FUTURES"


def account_problem(exchange: Any) -> str | None:
    """Anything but one-way mode is refused: ``posMode`` of
    ``GET /api/v2/mix/account/account?symbol=...&productType=USDT-FUTURES&marginCoin=USDT`` (the position
    mode is account-wide per product type; the symbol is any listed USDT perp, BTCUSDT when listed)."""
    markets = exchange.markets or {}
    perps = [m for m in markets.values() if m.get("swap") and m.get("linear") and m.get("settle") == MARGIN_COIN]
    if not perps:
        return None  # the self-check refuses a venue without perps in scope before this
    market = next((m for m in perps if m.get("id") == "BTCUSDT"), sorted(perps, key=lambda m: str(m["id"]))[0])
    response = exchange.privateMixGetV2MixAccountAccount({"symbol": market["id"], "productType": PRODUCT_TYPE,
                                                          "marginCoin": MARGIN_COIN})
    data = response.get("data") if isinstance(response, Mapping) else None
    mode = str(data.get("posMode")) if isinstance(data, Mapping) and data.get("posMode") is not None else None
    if mode == "one_way_mode":
        return None
    if mode == "hedge_mode":
        return "the USDT-M futures account is in hedge mode (posMode hedge_mode: separate long and short positions)"
    return f"the USDT-M futures position mode could not be read as one-way (posMode {mode!r})"


def equity(balance: Mapping[str, Any], account_currency: str) -> float | None:
    """``accountEquity`` (wallet balance + unrealized PnL, USDT) of the ``account_currency`` row of
    ``GET /api/v2/mix/account/accounts?productType=USDT-FUTURES``; else ccxt's ``total`` of that currency
    (the same figure). Other margin coins of a multi-assets account are not counted (a lower equity)."""
    info = balance.get("info")
    rows = info if isinstance(info, list) else (info.get("data") if isinstance(info, Mapping) else None)
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, Mapping) and row.get("marginCoin") == account_currency:
            try:
                return float(row["accountEquity"])
            except (KeyError, TypeError, ValueError):
                break
    total = (balance.get("total") or {}).get(account_currency)
    try:
        return None if total is None else float(total)
    except (TypeError, ValueError):
        return None


PROFILE = VenueProfile(
    exchange_id="bitget",
    settle_currencies=("USDT",),
    account_currency="USDT",
    credentials=(("API_KEY", "apiKey"), ("SECRET", "secret"), ("PASSWORD", "password")),
    options={
        "uta": False,
        "defaultType": "swap",
        "defaultSubType": "linear",
        "fetchMarkets": {"types": ["swap"]},
    },
    one_way_fix=ONE_WAY_FIX,
    order_params=order_params,
    lookup=lookup,
    cancel=cancel,
    open_orders=open_orders,
    refusal=refusal,
    hedge_row=hedge_row,
    account_problem=account_problem,
    equity=equity,
)
