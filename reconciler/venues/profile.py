"""Venue profiles: what differs from one ccxt venue to the next, as data plus a few small functions.

:class:`reconciler.venues.ccxt_venue.CcxtVenue` speaks ccxt's unified API; a
:class:`VenueProfile` says where a venue departs from it, so that the engine's
rules (journal before send, look up by client id, settle windows, refusals are
rejections) hold on every venue:

- **credentials**: which environment variables hold the keys (``<ID>_API_KEY``
  ...) and which ccxt parameter each fills; ccxt ``options`` that a venue needs
  or that would cost the user money otherwise (``options``);
- **client order ids**: the venue's format (:attr:`VenueProfile.client_id`, from
  fastopt's ``fo`` + 30 hex id) and the prefix that marks this reconciler's
  orders (:attr:`VenueProfile.client_id_prefix`);
- **orders**: the create parameters (client-id field, reduce-only flag,
  :attr:`VenueProfile.order_params`), how an order is found by client id
  (:attr:`VenueProfile.lookup`: None when the venue has no such order; the
  returned order must carry that id), cancelled and listed when open;
- **errors**: venue error codes or messages that are definitive refusals
  (:attr:`VenueProfile.refusal`), whatever ccxt's tables say;
- **positions and equity**: which position rows are in scope (linear perps of the
  settle currencies, :attr:`VenueProfile.position_in_scope`), hedge-mode rows,
  the account mode check and the equity figure.

:data:`DEFAULT` is plain ccxt (what binanceusdm needs apart from its own
functions); :func:`profile_for` returns the registered profile of a ccxt id (each
venue module registers one), else :data:`DEFAULT` with that id. Functions take
the ccxt client (``exchange``) and never hold state.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.errors import VenueError

Order = Mapping[str, Any]


def _same_id(client_order_id: str) -> str:
    return client_order_id


def default_order_params(exchange: Any, *, symbol: str, side: str, reduce_only: bool,
                         client_order_id: str) -> dict[str, Any]:
    """ccxt unified create_order params: ``clientOrderId`` and ``reduceOnly``."""
    params: dict[str, Any] = {"clientOrderId": client_order_id}
    if reduce_only:
        params["reduceOnly"] = True
    return params


def default_lookup(exchange: Any, *, symbol: str, client_order_id: str) -> Order | None:
    """``fetch_order(None, symbol, {"clientOrderId": id})``; ccxt's OrderNotFound means None."""
    import ccxt

    try:
        return exchange.fetch_order(None, symbol, {"clientOrderId": client_order_id})
    except ccxt.OrderNotFound:
        return None


def default_cancel(exchange: Any, *, symbol: str, client_order_id: str) -> Order | None:
    """``cancel_order_with_client_order_id``; ccxt's OrderNotFound means None (none, or already final)."""
    import ccxt

    try:
        return exchange.cancel_order_with_client_order_id(client_order_id, symbol)
    except ccxt.OrderNotFound:
        return None


def default_open_orders(exchange: Any) -> list[Order]:
    """Every open order of the account in one request (``fetch_open_orders()`` without a symbol)."""
    return list(exchange.fetch_open_orders() or [])


def default_position_in_scope(row: Mapping[str, Any], market: Mapping[str, Any] | None,
                              settle_currencies: tuple[str, ...]) -> bool:
    """A linear perpetual (swap) settled in one of ``settle_currencies``; other rows are not fastopt's."""
    if market is None:
        return False
    return bool(market.get("swap") and market.get("linear") and market.get("settle") in settle_currencies)


def default_hedge_row(row: Mapping[str, Any]) -> bool:
    """A position row of a hedge-mode account (ccxt ``hedged``)."""
    return row.get("hedged") is True


def default_account_problem(exchange: Any) -> str | None:
    """Hedge mode via ccxt ``fetch_position_mode`` where the venue has it; None when fine or unknown."""
    import ccxt

    if not exchange.has.get("fetchPositionMode"):
        return None
    try:
        mode = exchange.fetch_position_mode()
    except (ccxt.NotSupported, ccxt.ArgumentsRequired):
        return None
    if isinstance(mode, Mapping) and mode.get("hedged") is True:
        return "the account is in hedge mode (separate long and short positions per symbol)"
    return None


def default_equity(balance: Mapping[str, Any], account_currency: str) -> float | None:
    """``total`` of the account currency in ccxt's fetch_balance answer; None when absent."""
    total = (balance.get("total") or {}).get(account_currency)
    try:
        return None if total is None else float(total)
    except (TypeError, ValueError):
        return None


def no_refusal(exc: BaseException, message: str) -> VenueError | None:
    return None


def coded_refusal(exc: BaseException, message: str, code_pattern: re.Pattern[str],
                  table: Mapping[str, tuple[type[VenueError], str]]) -> VenueError | None:
    """The error class ``table`` gives for the venue code that ``code_pattern`` (one group) finds in a ccxt
    exception's text (ccxt puts the answer's body there), built with ``message`` and the code's meaning;
    None for anything else. A timeout or a connection failure carries no body, so no code: never a refusal."""
    import ccxt

    if not isinstance(exc, ccxt.BaseError):
        return None
    match = code_pattern.search(str(exc))
    if match is None or match.group(1) not in table:
        return None
    cls, meaning = table[match.group(1)]
    return cls(f"{message} ({meaning})")


def no_reply_status(order: Mapping[str, Any], amount: Any) -> str | None:
    return None


def default_ticker_prices(ticker: Mapping[str, Any]) -> tuple[Any, Any]:
    """``(mark, reference)`` of a ccxt ticker: the mark price (else last/close) and an independent price (the
    index price; else the last trade when the mark was used); raw values, validated by the venue."""
    mark = ticker.get("markPrice")
    value = mark if mark is not None else (ticker.get("last") if ticker.get("last") is not None
                                           else ticker.get("close"))
    reference = ticker.get("indexPrice") if ticker.get("indexPrice") is not None else (
        ticker.get("last") if mark is not None else None)
    return value, reference


def no_market_max(market: Mapping[str, Any]) -> Any:
    return None


def info_value(answer: Mapping[str, Any], *path: str) -> Any:
    """``answer["info"][path[0]][path[1]]...``: a field of the venue's raw answer that ccxt keeps in ``info``;
    None when any level is missing or not an object."""
    node: Any = answer.get("info")
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def equity_or_total(value: Any, balance: Mapping[str, Any], account_currency: str) -> float | None:
    """``value`` (the venue's own equity figure) as a float, else :func:`default_equity` of ``balance``."""
    try:
        if value is not None:
            return float(value)
    except (TypeError, ValueError):
        pass
    return default_equity(balance, account_currency)


@dataclass(frozen=True)
class VenueProfile:
    """How one venue departs from plain ccxt (see the module docstring). Units: amounts in contracts."""

    exchange_id: str
    #: settle currencies of the linear perpetuals fastopt trades there; the account currency of the equity
    settle_currencies: tuple[str, ...] = ("USDT",)
    account_currency: str = "USDT"
    #: (environment variable suffix, ccxt parameter); required ones must be set
    credentials: tuple[tuple[str, str], ...] = (("API_KEY", "apiKey"), ("SECRET", "secret"),
                                                ("PASSWORD", "password"))
    #: ccxt options fastopt sets on this venue (merged over the user's: money-safety first)
    options: Mapping[str, Any] = field(default_factory=dict)
    #: how to leave hedge mode on this venue (said when it is refused)
    one_way_fix: str = "switch the account to one-way (net) position mode in the exchange's settings"
    client_id_prefix: str = "fo"
    client_id: Callable[[str], str] = _same_id
    order_params: Callable[..., dict[str, Any]] = default_order_params
    #: a price for a market order (venues that need one, e.g. a slippage bound); None: no price sent
    market_order_price: Callable[..., float | None] | None = None
    lookup: Callable[..., Order | None] = default_lookup
    cancel: Callable[..., Order | None] = default_cancel
    open_orders: Callable[[Any], list[Order]] = default_open_orders
    #: the venue's own reading of an error: a definitive refusal (InvalidOrder, InsufficientFunds,
    #: VenueConfigError), or OrderOutcomeUnknown where ccxt calls "an order with that id exists" a refusal;
    #: None leaves it to ccxt's classes
    refusal: Callable[[BaseException, str], VenueError | None] = no_refusal
    #: the ccxt status of a create reply that ccxt parsed without one (``(order, amount)``); None: unknown
    #: (the order is then looked up once at once, then by the engine)
    reply_status: Callable[[Mapping[str, Any], Any], str | None] = no_reply_status
    #: ``(mark, reference)`` prices of a ticker (account currency per base unit)
    ticker_prices: Callable[[Mapping[str, Any]], tuple[Any, Any]] = default_ticker_prices
    #: the largest market order of a market (contracts; a raw number or numeric string, converted and
    #: checked by the venue) where ccxt does not put it in ``limits``; None: none
    market_max_amount: Callable[[Mapping[str, Any]], Any] = no_market_max
    position_in_scope: Callable[..., bool] = default_position_in_scope
    hedge_row: Callable[[Mapping[str, Any]], bool] = default_hedge_row
    account_problem: Callable[[Any], str | None] = default_account_problem
    equity: Callable[[Mapping[str, Any], str], float | None] = default_equity


DEFAULT = VenueProfile(exchange_id="")


def venue_id_prefix(profile: VenueProfile) -> str:
    """How this reconciler's client ids start in the venue's format (the part every id shares)."""
    import os.path

    return os.path.commonprefix([profile.client_id(profile.client_id_prefix + digit * 30) for digit in "0f"])

#: ccxt id -> module under reconciler.venues that defines ``PROFILE``
_MODULES = {"binanceusdm": "binanceusdm", "bybit": "bybit", "okx": "okx", "bitget": "bitget",
            "hyperliquid": "hyperliquid", "krakenfutures": "krakenfutures"}


def profile_for(exchange_id: str) -> VenueProfile:
    """The venue's profile (its module's ``PROFILE``), else plain ccxt under that id."""
    module_name = _MODULES.get(exchange_id)
    if module_name is not None:
        try:
            module = importlib.import_module(f"reconciler.venues.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"reconciler.venues.{module_name}":
                raise
        else:
            return module.PROFILE
    return replace(DEFAULT, exchange_id=exchange_id)
