"""Hyperliquid (ccxt ``hyperliquid``): linear perpetuals settled in USDC, one net position per coin.

Where it departs from plain ccxt (checked against ccxt 4.5.90, ``ccxt/hyperliquid.py``):

- **symbols**: perps are ``BTC/USDC:USDC`` (``parse_market``: quote/settle ``USDC``, ``contractSize`` 1,
  amount step ``10**-szDecimals``), so ``settle_currencies`` and the account currency are ``USDC``; a
  strategy's ``BTC/USDT:USDT`` is the ``BTC/USDC:USDC`` perp (the engine maps by base asset). Only the main
  perp dex is loaded (forced ``fetchMarkets.types = ["swap"]``): HIP-3 builder-deployed perps (``xyz:...``,
  own oracle and collateral) and spot are never fastopt's, and each would add ``POST /info`` requests to
  every market load and every price read (ccxt's ``fetch_tickers`` reloads the markets of every type).
- **credentials**: no API key/secret; an EVM wallet: ``HYPERLIQUID_WALLET_ADDRESS`` -> ``walletAddress``
  (the account: positions, balance and order lookups are read for it) and ``HYPERLIQUID_PRIVATE_KEY`` ->
  ``privateKey`` (the account's key or an approved API wallet's key; signs every ``POST /exchange``
  action as an EIP-712 ``Agent`` message, chainId 1337).
- **no builder fee, no referral** (forced options): with ccxt's defaults, the first ``load_markets``
  (``fetch_currencies`` -> ``initialize_client``), ``create_order`` and ``cancel_order`` sign and send
  ``approveBuilderFee`` (max 0.01 %) and ``setReferrer`` (code ``CCXT1``), and every order then carries
  ``builder: {b: 0x6530..., f: 10}`` (1 bp of notional paid to ccxt). ``refSet: True`` makes ``set_ref``
  return before sending; ``approvedBuilderFee: False`` keeps ``create_orders_request`` from attaching a
  ``builder`` field; ``builderFee: False`` and a ``builder`` that is not an address make
  ``handle_builder_fee_approval`` fail while *signing* the approval (``ethabi`` cannot encode it), before
  anything is sent, which ccxt catches (it then leaves ``approvedBuilderFee`` false). ccxt has no option that
  skips the approval outright; tests/test_venue_hyperliquid.py proves from the fake's log that neither
  action is ever sent and no order has a ``builder`` field.
- **client order ids**: a ``cloid`` is ``0x`` + 32 hex (16 bytes). fastopt's ``fo`` + 30 hex becomes
  ``0xf0`` + the same 30 hex (:func:`client_id`): one-to-one, deterministic, all of fastopt's ids start
  with ``0xf0``. Sent by ccxt's ``clientOrderId`` as the order's ``c``.
- **market orders need a price**: ccxt refuses a market order without one (``ArgumentsRequired``: every
  order was journaled rejected) and sends an IOC limit order at ``price x (1 +/- slippage)`` rounded by
  ``price_to_precision`` (5 significant digits, at most ``6 - szDecimals`` decimals).
  :func:`market_order_price` gives the last mark price and :func:`order_params` the slippage
  (:data:`SLIPPAGE`, 5 %): a buy fills at most 5 % above the mark, a sell at most 5 % below; what cannot
  fill inside the bound is cancelled by the venue (IOC), never left working.
- **lookup**: ``POST /info {"type": "orderStatus", "user": walletAddress, "oid": cloid}`` (ccxt
  ``fetch_order(None, symbol, {"clientOrderId": cloid})``); ``{"status": "unknownOid"}`` is ccxt's
  ``OrderNotFound`` -> None. **cancel**: ``POST /exchange`` action ``cancelByCloid``; "Order was never placed,
  already canceled, or filled." is ``OrderNotFound`` -> None. **open orders**: ``POST /info
  {"type": "frontendOpenOrders", "user"}`` (whole account, main dex).
- **answers**: an order's answer (``{"filled": {"totalSz", "avgPx", "oid"}}`` / ``{"resting": {"oid"}}``)
  has no status in ccxt's parse (``parse_order``: status None), which made every order an unknown outcome
  (one order per cycle, resolved by lookup). :func:`reply_status` reads it (filled -> closed, or canceled
  with the filled part for a partial IOC; resting -> open); a bare ``"waitingForFill"`` stays unknown.
- **prices**: ccxt's ticker (``POST /info {"type": "metaAndAssetCtxs"}``) has no ``markPrice``; fastopt
  gets ``markPx`` as the mark and ``oraclePx`` as the reference price (:func:`ticker_prices`).
- **refusals by message** (:data:`REFUSALS`): Hyperliquid answers HTTP 200 ``{"status": "ok", ...
  "statuses": [{"error": "..."}]}`` for a refused order, and ``{"status": "err", "response": "..."}``
  for a refused action; ccxt classifies by message. Pinned here: insufficient margin, reduce-only
  refusals, IOC without liquidity inside the bound, the $10 minimum, size/price/tick errors, the
  address-based rate limit ("Too many cumulative requests sent", ccxt ``RateLimitExceeded``: an order
  that is not applied), and "User or API Wallet ... does not exist" (ccxt ``InvalidOrder``: really an
  unknown signer, i.e. a wrong key, an :class:`AuthenticationError`).
- **equity**: ``marginSummary.accountValue`` of ``POST /info {"type": "clearinghouseState"}`` (USDC:
  cross + isolated margin accounts incl. unrealized PnL); for unified accounts (ccxt reads
  ``spotClearinghouseState``) the ``total`` USDC.
- **account modes**: Hyperliquid has no hedge mode (rows are ``"type": "oneWay"``); options that send
  orders to another account than the one read (a ``vaultAddress``, per-method ``subAccountAddress``) are
  refused at start; a global ``subAccountAddress`` (reads and orders for the sub-account) is fine.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from reconciler.errors import AuthenticationError, InsufficientFunds, InvalidOrder, VenueError
from reconciler.venues.profile import (
    VenueProfile,
    default_lookup,
    default_position_in_scope,
    equity_or_total,
    info_value,
)

#: slippage bound of a market order (fraction of the mark price): ccxt sends an IOC limit order there
SLIPPAGE = "0.05"

#: forced ccxt options (win over the user's): no builder-fee approval, no builder field, no referral,
#: main perp dex only; see the module docstring
OPTIONS: dict[str, Any] = {
    "builderFee": False,
    "approvedBuilderFee": False,
    "builder": "none (disabled by fastopt)",
    "refSet": True,
    "defaultSlippage": SLIPPAGE,
    "fetchMarkets": {"types": ["swap"]},
}

_FASTOPT_ID = re.compile(r"^fo([0-9a-f]{30})$")


def client_id(client_order_id: str) -> str:
    """fastopt's ``fo`` + 30 hex -> the cloid ``0xf0`` + the same 30 hex (``0x`` + 32 hex, 16 bytes).

    One-to-one and deterministic; every fastopt id on Hyperliquid starts with ``0xf0``. Raises
    ValueError for an id that is not ``fo`` + 30 lowercase hex (it has no valid cloid).
    """
    match = _FASTOPT_ID.match(client_order_id)
    if match is None:
        raise ValueError(f"not a fastopt client order id (fo + 30 hex): {client_order_id!r}")
    return "0xf0" + match.group(1)


def reply_status(order: Mapping[str, Any], amount: Any) -> str | None:
    """The ccxt status of Hyperliquid's answer to one IOC order (ccxt's ``parse_order`` leaves it None):

    - ``{"filled": {"totalSz", "avgPx", "oid"}}``: final; ``closed`` when ``totalSz`` is the whole ``amount``
      (coins), else ``canceled`` (IOC: the rest was cancelled by the venue; ``filled`` keeps the part);
    - ``{"resting": {"oid"}}``: ``open``;
    - anything else (``"waitingForFill"``, an unknown shape): None, the order is looked up by its cloid.
    """
    info = order.get("info")
    if not isinstance(info, Mapping):
        return None
    filled = info.get("filled")
    if isinstance(filled, Mapping):
        try:
            done, wanted = Decimal(str(filled["totalSz"])), Decimal(str(amount))
        except (KeyError, ArithmeticError, ValueError):
            return None
        return "closed" if done >= wanted else "canceled"
    if isinstance(info.get("resting"), Mapping):
        return "open"
    return None


def ticker_prices(ticker: Mapping[str, Any]) -> tuple[Any, Any]:
    """``(mark, reference)``: the venue's ``markPx`` (margin, liquidations) and ``oraclePx`` (the oracle: an
    independent reference for the plausibility check), from the ticker's raw answer; ccxt's ``last`` is the
    mid price and it sets no mark or index price."""
    info = ticker.get("info")
    if not isinstance(info, Mapping):
        return ticker.get("markPrice"), ticker.get("indexPrice")
    return info.get("markPx", ticker.get("markPrice")), info.get("oraclePx", ticker.get("indexPrice"))


def order_params(exchange: Any, *, symbol: str, side: str, reduce_only: bool,
                 client_order_id: str) -> dict[str, Any]:
    """ccxt params: ``clientOrderId`` (the cloid, sent as ``c``), ``reduceOnly`` (sent as ``r``) and the
    market order's ``slippage`` bound (:data:`SLIPPAGE`)."""
    params: dict[str, Any] = {"clientOrderId": client_order_id, "slippage": SLIPPAGE}
    if reduce_only:
        params["reduceOnly"] = True
    return params


def market_order_price(exchange: Any, *, symbol: str, side: str, mark: float | None) -> float | None:
    """The reference price of a market order: the last mark price (``markPx``, USDC per coin) fastopt read
    for ``symbol``; ccxt applies ``x (1 + 5 %)`` for a buy, ``x (1 - 5 %)`` for a sell and rounds to the
    venue's price precision. None when no price was read (ccxt then refuses the order before sending it:
    ``ArgumentsRequired``, a rejection, nothing reaches the venue)."""
    if mark is None or not mark > 0:
        return None
    return float(mark)


def lookup(exchange: Any, *, symbol: str, client_order_id: str) -> Mapping[str, Any] | None:
    """The order with this cloid: ``POST /info {"type": "orderStatus", "user": walletAddress, "oid": cloid}``
    (ccxt ``fetch_order(None, symbol, {"clientOrderId": cloid})``); ``{"status": "unknownOid"}`` (ccxt
    ``OrderNotFound``) is None. Any other answer is returned as parsed (the caller checks it carries the
    cloid) or raised: never taken for "no such order".

    orderStatus has no average fill price, only ``limitPx`` (for fastopt's orders the 5 % bound): the
    order's ``price`` is dropped so that the bound is never recorded as the fill price.
    """
    order = default_lookup(exchange, symbol=symbol, client_order_id=client_order_id)
    if order is None or order.get("average") is not None:
        return order
    return {**order, "price": None}


#: message fragments of Hyperliquid refusals (order not applied, final) -> (class, meaning)
REFUSALS: tuple[tuple[str, type[VenueError], str], ...] = (
    ("Insufficient margin to place order", InsufficientFunds, "insufficient margin"),
    ("Reduce only order would increase position", InvalidOrder,
     "reduce-only order rejected (it would not reduce the position)"),
    ("Order could not immediately match against any resting orders", InvalidOrder,
     "nothing to match inside the 5 % price bound (IOC cancelled, nothing filled)"),
    ("No liquidity available for market order", InvalidOrder, "no liquidity for the market order"),
    ("Order must have minimum value of", InvalidOrder, "order value under the $10 minimum"),
    ("Order has invalid size", InvalidOrder, "invalid order size (amount step)"),
    ("Order has zero size", InvalidOrder, "order size rounds to zero"),
    ("Order has invalid price", InvalidOrder, "invalid order price"),
    ("Price must be divisible by tick size", InvalidOrder, "price not on the tick size"),
    ("Order price cannot be more than 80% away from the reference price", InvalidOrder,
     "price bound more than 80 % from the reference price"),
    ("Too many cumulative requests sent", InvalidOrder,
     "address-based rate limit: the action was refused (more trading volume frees requests)"),
    ("User or API Wallet", AuthenticationError,
     "the signer is not the account nor one of its API wallets: check HYPERLIQUID_WALLET_ADDRESS and "
     "HYPERLIQUID_PRIVATE_KEY"),
)


def refusal(exc: BaseException, message: str) -> VenueError | None:
    """A refusal for a Hyperliquid error message in ``exc`` (ccxt puts the answer's body in it), else None.

    Only answers from the venue carry one of :data:`REFUSALS`' messages; a timeout or a connection error
    carries no body and is never turned into a refusal. "Duplicate cloid"-like answers are not refusals (an
    order with that id exists: it is looked up).
    """
    import ccxt

    if not isinstance(exc, ccxt.BaseError) or isinstance(exc, (ccxt.RequestTimeout, ccxt.OrderNotFound)):
        return None
    text = str(exc)
    for fragment, cls, meaning in REFUSALS:
        if fragment in text:
            return cls(f"{message} ({meaning})")
    return None


def position_in_scope(row: Mapping[str, Any], market: Mapping[str, Any] | None,
                      settle_currencies: tuple[str, ...]) -> bool:
    """A main-dex linear perpetual settled in ``settle_currencies`` (USDC); HIP-3 builder perps (market
    ``info.hip3``), spot and anything else are not fastopt's."""
    if not default_position_in_scope(row, market, settle_currencies):
        return False
    info = (market or {}).get("info")
    return not (isinstance(info, Mapping) and info.get("hip3"))


def hedge_row(row: Mapping[str, Any]) -> bool:
    """Hyperliquid rows are ``{"type": "oneWay", "position": {...}}``; any other type (or ccxt ``hedged``)
    is a mode fastopt does not know and is refused."""
    if row.get("hedged") is True:
        return True
    info = row.get("info")
    kind = info.get("type") if isinstance(info, Mapping) else None
    return kind is not None and kind != "oneWay"


def account_problem(exchange: Any) -> str | None:
    """The account orders go to must be the one fastopt reads. ccxt sends orders and cancels for
    ``vaultAddress`` / ``subAccountAddress`` (options, global or per method) and reads positions, balance and
    order lookups for ``user`` / ``subAccountAddress``, else ``walletAddress``: a ``vaultAddress`` (or a
    per-method option) makes them differ and is refused. None when they agree (one account, or a global
    ``subAccountAddress``)."""

    def norm(address: Any) -> str:
        return str(address or "").lower().removeprefix("0x")

    wallet = getattr(exchange, "walletAddress", None)
    accounts: dict[str, str] = {}
    for method in ("fetchPositions", "fetchBalance", "fetchOrder", "fetchOpenOrders"):
        accounts[f"{method} reads"] = norm(exchange.handle_public_address(method, {})[0])
    for method in ("createOrder", "cancelOrders"):
        target = exchange.handle_option_string_and_params_2({}, method, "vaultAddress", "subAccountAddress")[0]
        accounts[f"{method} sends for"] = norm(target or wallet)
    if len(set(accounts.values())) > 1:
        seen = ", ".join(f"{k} 0x{v}" for k, v in accounts.items())
        return f"orders would go to another account than the one fastopt reads ({seen})"
    return None


def equity(balance: Mapping[str, Any], account_currency: str) -> float | None:
    """Account value in USDC: ``marginSummary.accountValue`` of ``clearinghouseState`` (wallet + unrealized
    PnL of cross and isolated positions), else the balance's ``total`` USDC (unified accounts)."""
    return equity_or_total(info_value(balance, "marginSummary", "accountValue"), balance, account_currency)


PROFILE = VenueProfile(
    exchange_id="hyperliquid",
    settle_currencies=("USDC",),
    account_currency="USDC",
    credentials=(("WALLET_ADDRESS", "walletAddress"), ("PRIVATE_KEY", "privateKey")),
    options=OPTIONS,
    one_way_fix="remove the vaultAddress option (or set subAccountAddress once, globally, in "
                "exchange_settings.hyperliquid.options): fastopt must read the account it trades",
    client_id_prefix="fo",
    client_id=client_id,
    order_params=order_params,
    market_order_price=market_order_price,
    lookup=lookup,
    refusal=refusal,
    position_in_scope=position_in_scope,
    hedge_row=hedge_row,
    account_problem=account_problem,
    equity=equity,
    reply_status=reply_status,
    ticker_prices=ticker_prices,
)
