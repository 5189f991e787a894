"""Kraken Futures (ccxt ``krakenfutures``): multi-collateral ("flex") linear USD perpetuals ``PF_*``.

Scope: the flexible perpetuals ``PF_<BASE>USD`` (ccxt ``BTC/USD:USD``: ``swap``, ``linear``, settle USD,
contract size 1, so an amount in contracts is an amount in base units). Inverse perpetuals ``PI_*``
(settled in the coin), dated futures ``FF_*``/``FI_*`` and index rows ``in_*``/``rr_*`` are not fastopt's.
A strategy's ``BTC/USDT:USDT`` is traded as ``BTC/USD:USD`` (same base asset, see
``CcxtVenue.resolve_symbol``). Equity and prices are in USD (the account currency).

Where it departs from plain ccxt (checked against ccxt 4.5.90, ``ccxt/krakenfutures.py``):

- **lookup by client id** (:func:`lookup`): ccxt's ``fetch_order(None, symbol, {"clientOrderId": id})``
  sends ``GET /derivatives/api/v3/orders/status?orderIds=None&clientOrderId=...`` (``fetch_order`` always
  sets ``orderIds: [id]``; Kraken's filter is ``cliOrdIds``), then returns ``orders[0]`` whatever its
  id, and on an empty list raises ``TypeError`` (``'... order id ' + None``). Here: ``GET orders/status``
  with ``cliOrdIds=<id>``, keeping only the entry whose ``order.cliOrdId`` is exactly the id. That
  endpoint answers only for orders that are **open or became final in the last 5 seconds** (Kraken docs,
  "Get Specific Orders' Status"), so an order not there is then searched in the account's order history
  ``GET /api/history/v2/orders?tradeable=<PF_id>&sort=desc&since=<now - 7 days>`` (ccxt
  ``historyGetOrders``; events ``OrderPlaced`` / ``OrderUpdated`` / ``OrderCancelled`` /
  ``OrderRejected`` carrying the order's ``clientId``), paged with ``continuation_token`` (header
  ``Next-Continuation-Token``), at most :data:`HISTORY_PAGES` pages. Only when both say nothing is the
  answer None; a history too long to search raises (the symbol blocks rather than risk a double order).
- **refusals** (:func:`refusal`): ``POST /derivatives/api/v3/sendorder`` answers HTTP 200 with
  ``sendStatus.status`` naming the refusal; ccxt's ``verify_order_action_success`` raises
  ``ExchangeError`` for ``wouldNotReducePosition`` (reduce-only order that would not reduce), ``selfFill``
  and ``tooManySmallOrders``, ``ExchangeNotAvailable`` (a *temporary* class) for ``marketSuspended`` /
  ``marketInactive``, ``BadRequest`` for ``maxPositionViolation``: all are orders not placed (final),
  so they are refusals here (:data:`REFUSALS`). ``clientOrderIdAlreadyExist`` (ccxt ``DuplicateOrderId``,
  an ``InvalidOrder``, which fastopt would take as "refused, not applied") means an order with this id
  *exists*: it becomes :class:`~reconciler.errors.OrderOutcomeUnknown`, so the order is looked up.
- **equity** (:func:`equity`): ``portfolioValue`` of the ``flex`` account of ``GET
  /derivatives/api/v3/accounts`` (USD value of all collateral + unrealized PnL); ccxt's ``total`` of
  ``fetch_balance`` is per-currency collateral *quantities* (USD quantity alone would miss USDT/BTC
  collateral and unrealized PnL).
- **account mode** (:func:`account_problem`): Kraken has no hedge mode (one net position per contract);
  the check is that the multi-collateral ``flex`` account exists (the PF_ perps trade only from it).
- **cancel** (:func:`cancel`): ``POST /derivatives/api/v3/cancelorder`` with ``cliOrdId`` (ccxt's
  ``cancel_order`` only sends ``order_id``); ``cancelStatus.status`` ``cancelled`` is the canceled order,
  ``filled`` / ``notFound`` give None (the venue then looks the order up).

Client ids: Kraken's ``cliOrdId`` takes up to 100 characters; fastopt's ``fo`` + 30 hex (32 characters)
is sent unchanged (deterministic, one-to-one, prefix ``fo``), through ccxt's unified ``clientOrderId``
(``create_order_request`` maps it to ``cliOrdId``); reduce-only as ``reduceOnly=true``. Market orders
are ``orderType=mkt`` (no price: Kraken applies its own price collar). Amounts are contracts
(``size``; contract size 1 on PF_ perps). Signing (ccxt ``sign``): header ``Authent`` = base64
HMAC-SHA512(key = base64-decoded secret, message = SHA-256(postData + nonce + endpointPath)) with
``APIKey``; ccxt sends no ``Nonce`` (empty nonce).
"""
from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from reconciler.errors import InsufficientFunds, InvalidOrder, OrderOutcomeUnknown, VenueError
from reconciler.venues.profile import VenueProfile, default_position_in_scope

#: ``sendStatus.status`` / ``cancelStatus.status`` values of Kraken Futures that are definitive
#: refusals of a new order (not placed, final), whatever class ccxt gives them
REFUSALS: dict[str, tuple[type[InvalidOrder], str]] = {
    "wouldNotReducePosition": (InvalidOrder, "reduce-only order refused: it would not reduce the position"),
    "insufficientAvailableFunds": (InsufficientFunds, "insufficient available margin"),
    "invalidSize": (InvalidOrder, "invalid size (under the minimum or not a multiple of the step)"),
    "invalidOrderType": (InvalidOrder, "invalid order type"),
    "invalidSide": (InvalidOrder, "invalid side"),
    "invalidPrice": (InvalidOrder, "invalid price"),
    "maxPositionViolation": (InvalidOrder, "the order would exceed the maximum position of the contract"),
    "marketSuspended": (InvalidOrder, "the market is suspended"),
    "marketInactive": (InvalidOrder, "the market is inactive"),
    "selfFill": (InvalidOrder, "the order would fill against an order of the same account"),
    "tooManySmallOrders": (InvalidOrder, "too many small open orders"),
    "outsidePriceCollar": (InvalidOrder, "outside the price collar"),
    "iocWouldNotExecute": (InvalidOrder, "the market order found nothing to execute against"),
    "clientOrderIdTooLong": (InvalidOrder, "client order id too long"),
}
#: ccxt's message from verify_order_action_success: "krakenfutures: createOrder failed due to <status>"
_STATUS = re.compile(r"createOrder failed due to (\w+)")
#: statuses that say an order with this client id already exists: look it up, never "refused"
_EXISTS = ("clientOrderIdAlreadyExist",)

#: how far back, and how many pages of (up to HISTORY_COUNT events), the order history is searched
HISTORY_DAYS = 7
HISTORY_PAGES = 20
HISTORY_COUNT = 500

#: orders/status ``status`` -> ccxt unified status (ccxt 4.5.90 has no entry for REJECTED)
_ORDER_STATUS = {"ENTERED_BOOK": "open", "UNTOUCHED": "open", "PARTIALLY_FILLED": "open",
                 "TRIGGER_PLACED": "open", "FULLY_EXECUTED": "closed", "CANCELLED": "canceled",
                 "REJECTED": "rejected", "TRIGGER_ACTIVATION_FAILURE": "rejected"}


def refusal(exc: BaseException, message: str) -> VenueError | None:
    """A refusal for a Kraken ``sendStatus.status`` named in ccxt's createOrder error, else None.

    ``clientOrderIdAlreadyExist`` gives :class:`OrderOutcomeUnknown` (an order with that id exists).
    A timeout or a 5xx carries no status and is never a refusal.
    """
    import ccxt

    if not isinstance(exc, ccxt.BaseError):
        return None
    match = _STATUS.search(str(exc))
    if match is None:
        return None
    status = match.group(1)
    if status in _EXISTS:
        return OrderOutcomeUnknown(f"{message} (an order with this client id exists: look it up)")
    if status not in REFUSALS:
        return None
    cls, meaning = REFUSALS[status]
    return cls(f"{message} ({meaning})")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _from_status(exchange: Any, entry: Mapping[str, Any], symbol: str) -> dict[str, Any]:
    """An ``orders/status`` entry (``{"order": {...}, "status": ...}``) as a ccxt order (amounts in
    contracts), through ccxt's ``parse_order`` with the status map completed."""
    order = dict(exchange.parse_order(dict(entry)))
    raw = str(entry.get("status") or "")
    order["status"] = _ORDER_STATUS.get(raw)  # a state not listed (or none): unknown, never a guess
    order["symbol"] = order.get("symbol") or symbol
    return order


def _history_order(events: list[tuple[str, Mapping[str, Any], str]], client_order_id: str,
                   symbol: str) -> dict[str, Any]:
    """The order told by its history events: ``filled`` = the largest ``filled`` seen (contracts);
    status ``canceled``/``rejected`` after an OrderCancelled/OrderRejected event, ``closed`` after a
    ``full_fill`` update or once an event shows nothing remaining after a fill, ``canceled`` when nothing
    filled and nothing remains (as ccxt's fetch_canceled_orders reads an OrderPlaced with ``filled`` 0),
    else ``open`` (placed, not yet final: never taken as "not applied"). Independent of the events'
    order (several events of one order can share a millisecond)."""
    filled = max((_number(order.get("filled")) for _, order, _ in events), default=0.0)
    remaining = min((_number(order.get("quantity")) for _, order, _ in events), default=0.0)
    kinds = {kind for kind, _, _ in events}
    uid = next((order.get("uid") for _, order, _ in events if order.get("uid")), None)
    side = next((str(order.get("direction")).lower() for _, order, _ in events if order.get("direction")), None)
    if "OrderCancelled" in kinds:
        status = "canceled"
    elif "OrderRejected" in kinds:
        status = "rejected"
    elif filled > 0 and (remaining == 0 or any(reason == "full_fill" for _, _, reason in events)):
        status = "closed"
    elif remaining == 0:  # nothing filled and nothing left (an IoC that found nothing): final, not applied
        status = "canceled"
    else:
        status = "open"
    return {"id": uid, "clientOrderId": client_order_id, "symbol": symbol, "side": side, "filled": filled,
            "amount": filled + remaining, "status": status, "average": None, "price": None,
            "info": {"source": "history"}}


def _events_of(element: Mapping[str, Any], client_order_id: str) -> list[tuple[str, Mapping[str, Any], str]]:
    """(event kind, the order as the event shows it, reason) for the events of ``client_order_id``."""
    event = element.get("event") if isinstance(element, Mapping) else None
    out: list[tuple[str, Mapping[str, Any], str]] = []
    if not isinstance(event, Mapping):
        return out
    for kind, body in event.items():
        if not isinstance(body, Mapping):
            continue
        for key in ("newOrder", "order"):
            order = body.get(key)
            if isinstance(order, Mapping) and str(order.get("clientId") or "") == client_order_id:
                out.append((str(kind), order, str(body.get("reason") or "")))
                break
    return out


def _history_lookup(exchange: Any, market_id: str, client_order_id: str, symbol: str) -> dict[str, Any] | None:
    """Search ``GET /api/history/v2/orders`` (this contract, newest first, last HISTORY_DAYS days)."""
    import ccxt

    since = int((time.time() - HISTORY_DAYS * 86400) * 1000)
    request: dict[str, Any] = {"tradeable": market_id, "sort": "desc", "since": since, "count": HISTORY_COUNT}
    found: list[tuple[str, Mapping[str, Any], str]] = []
    for _ in range(HISTORY_PAGES):
        response = exchange.historyGetOrders(dict(request))
        elements = response.get("elements") if isinstance(response, Mapping) else None
        if not isinstance(elements, list):
            raise ccxt.ExchangeNotAvailable(f"{exchange.id} order history answered without an elements list")
        for element in elements:
            found.extend(_events_of(element, client_order_id))
        token = response.get("continuationToken")
        if not token:
            headers = getattr(exchange, "last_response_headers", None) or {}
            token = next((v for k, v in headers.items() if str(k).lower() == "next-continuation-token"), None)
        if found:
            # an order's events are close together; the newest events are enough once it appears,
            # except its placement may sit on the next page: fetch that too when one exists
            if token and not any(kind == "OrderPlaced" for kind, _, _ in found):
                request["continuation_token"] = token
                continue
            return _history_order(found, client_order_id, symbol)
        if not token or not elements:
            return None
        request["continuation_token"] = token
    if found:
        return _history_order(found, client_order_id, symbol)
    raise ccxt.ExchangeError(f"{exchange.id}: client order id {client_order_id} not found in the last "
                             f"{HISTORY_PAGES * HISTORY_COUNT} order events of {market_id} and the history goes "
                             "on; cannot prove the order was never applied")


def lookup(exchange: Any, *, symbol: str, client_order_id: str) -> dict[str, Any] | None:
    """The order carrying exactly ``client_order_id`` (amounts in contracts), or None when Kraken has none.

    1. ``GET /derivatives/api/v3/orders/status?cliOrdIds=<id>`` (open orders, and orders final for
       less than 5 s): the entry whose ``order.cliOrdId`` is the id; an answer without an ``orders``
       list raises (temporary), never None;
    2. else the order history of the symbol's contract (see the module docstring).
    """
    import ccxt

    if exchange.markets is None:
        exchange.load_markets()
    market = exchange.market(symbol)
    response = exchange.privateGetOrdersStatus({"cliOrdIds": client_order_id})
    entries = response.get("orders") if isinstance(response, Mapping) else None
    if not isinstance(entries, list):
        raise ccxt.ExchangeNotAvailable(f"{exchange.id} orders/status answered without an orders list")
    for entry in entries:
        inner = entry.get("order") if isinstance(entry, Mapping) else None
        if isinstance(inner, Mapping) and str(inner.get("cliOrdId") or "") == client_order_id:
            return _from_status(exchange, entry, symbol)
    return _history_lookup(exchange, market["id"], client_order_id, symbol)


def cancel(exchange: Any, *, symbol: str, client_order_id: str) -> dict[str, Any] | None:
    """``POST /derivatives/api/v3/cancelorder`` with ``cliOrdId``: the canceled order, or None when Kraken
    answers ``notFound`` / ``filled`` (none, or already final: the venue then looks it up)."""
    if exchange.markets is None:
        exchange.load_markets()
    response = exchange.privatePostCancelorder({"cliOrdId": client_order_id})
    status = (response.get("cancelStatus") or {}).get("status") if isinstance(response, Mapping) else None
    if status != "cancelled":
        return None
    order = dict(exchange.parse_order(response["cancelStatus"]))
    order["status"] = "canceled"
    order["symbol"] = order.get("symbol") or symbol
    return order


def position_in_scope(row: Mapping[str, Any], market: Mapping[str, Any] | None,
                      settle_currencies: tuple[str, ...]) -> bool:
    """A flexible linear perpetual ``PF_*`` settled in USD (ccxt swap + linear); inverse ``PI_*``,
    dated ``FF_*``/``FI_*`` and index rows are not fastopt's."""
    if not default_position_in_scope(row, market, settle_currencies):
        return False
    return str((market or {}).get("id") or "").upper().startswith("PF_")


def account_problem(exchange: Any) -> str | None:
    """None when the multi-collateral ``flex`` account exists (``GET /derivatives/api/v3/accounts``);
    Kraken Futures has no hedge mode."""
    response = exchange.privateGetAccounts()
    accounts = response.get("accounts") if isinstance(response, Mapping) else None
    if not isinstance(accounts, Mapping) or not isinstance(accounts.get("flex"), Mapping):
        return ("the account has no multi-collateral (flex) wallet, where the PF_ linear perpetuals trade; "
                "enable it and transfer collateral to it in the Kraken Futures settings")
    return None


def equity(balance: Mapping[str, Any], account_currency: str) -> float | None:
    """``portfolioValue`` of the flex account (USD: collateral value + unrealized PnL), else None."""
    info = balance.get("info")
    accounts = info.get("accounts") if isinstance(info, Mapping) else None
    flex = accounts.get("flex") if isinstance(accounts, Mapping) else None
    value = flex.get("portfolioValue") if isinstance(flex, Mapping) else None
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


PROFILE = VenueProfile(
    exchange_id="krakenfutures",
    settle_currencies=("USD",),
    account_currency="USD",
    credentials=(("API_KEY", "apiKey"), ("SECRET", "secret")),
    options={},
    one_way_fix="Kraken Futures nets positions per contract; no setting to change",
    lookup=lookup,
    cancel=cancel,
    refusal=refusal,
    position_in_scope=position_in_scope,
    account_problem=account_problem,
    equity=equity,
)
