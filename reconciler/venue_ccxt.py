"""A ccxt exchange as a reconciler venue.

- API keys come only from the environment: ``<ID>_API_KEY``, ``<ID>_SECRET``,
  ``<ID>_PASSWORD`` (``ID`` = upper-cased ccxt id, e.g. ``BINANCEUSDM_API_KEY``).
- Settings (``--exchange-config`` JSON or ``exchange_settings`` in the
  config): ``options`` is merged into ccxt's ``options``; ``api_base_url``
  sends every API call to another scheme+host keeping each path (testnets,
  proxies, the tests' fake server); every other key is a ccxt constructor
  parameter (``timeout``, ``enableRateLimit``, ...).
- fastopt defaults: rate limiting on, ``fetchCurrencies`` off (a private,
  needless call on binance), ccxt's own retries off (``maxRetriesOnFailure`` 0:
  an order is never resent by the library).
- Reads (markets, positions, prices, order lookups) retry with exponential
  backoff on :class:`TemporaryError`; ``create_order`` is called exactly once
  and any non-definitive failure becomes :class:`OrderOutcomeUnknown`.
- Markets are loaded once and refreshed every ``markets_ttl_s`` seconds.
- Prices: mark prices (``fetch_mark_prices``, binance premiumIndex: weight 1)
  when the exchange has them, else the tickers' mark/last price.
"""
from __future__ import annotations

import os
import time
import types
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

from fastopt.errors import InputError
from reconciler.errors import (
    AuthenticationError,
    DDosProtection,
    OrderNotFound,
    TemporaryError,
    translate_ccxt_error,
)
from reconciler.model import Market, OrderResult

T = TypeVar("T")

FASTOPT_DEFAULT_OPTIONS: dict[str, Any] = {
    "fetchCurrencies": False,
    "maxRetriesOnFailure": 0,
    "adjustForTimeDifference": False,
}


#: ccxt constructor parameters that are credentials: only ever taken from the environment
CREDENTIAL_PARAMS = frozenset({"apiKey", "secret", "password", "uid", "login", "twofa", "privateKey",
                               "walletAddress", "token", "accountId"})


def credentials_from_env(exchange_id: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """ccxt credential parameters from ``<ID>_API_KEY`` / ``_SECRET`` / ``_PASSWORD``."""
    env = os.environ if env is None else env
    prefix = exchange_id.upper()
    out: dict[str, str] = {}
    for suffix, param in (("API_KEY", "apiKey"), ("SECRET", "secret"), ("PASSWORD", "password")):
        value = env.get(f"{prefix}_{suffix}")
        if value:
            out[param] = value
    return out


def rebase_urls(api_urls: Any, base_url: str) -> tuple[Any, dict[str, str]]:
    """Replace scheme+host of every URL in ccxt's ``urls['api']`` (keeping paths).

    Returns the new structure and a map new-url -> original url.
    """
    base = urlsplit(base_url)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise ValueError(f"api_base_url must look like http(s)://host[:port], got {base_url!r}")
    mapping: dict[str, str] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, str) and "://" in node:
            parts = urlsplit(node)
            new = f"{base.scheme}://{base.netloc}{parts.path}"
            mapping[new] = node
            return new
        return node

    return walk(api_urls), mapping


def build_ccxt_exchange(exchange_id: str, settings: Mapping[str, Any], env: Mapping[str, str] | None = None,
                        *, public_only: bool = False):
    """Construct the ccxt client (see module doc for how settings are applied).

    ``public_only``: no keys needed (public market data only, e.g. paper prices).
    """
    import ccxt

    cls = getattr(ccxt, exchange_id, None)
    if exchange_id not in ccxt.exchanges or cls is None:
        raise InputError(f"unknown exchange {exchange_id!r} (not a ccxt exchange id, and not 'paper')")
    settings = dict(settings)
    secrets = sorted(k for k in settings if k in CREDENTIAL_PARAMS)
    if secrets:
        prefix = exchange_id.upper()
        raise InputError(f"exchange settings must not hold credentials ({', '.join(secrets)}): set "
                         f"{prefix}_API_KEY / {prefix}_SECRET / {prefix}_PASSWORD in the environment")
    if settings.get("verbose"):
        raise InputError("exchange setting 'verbose' is refused: ccxt would print request headers (the API key)")
    if not isinstance(settings.get("options") or {}, dict):
        raise InputError(f"exchange setting 'options' must be an object, got {settings['options']!r}")
    retries = (settings.get("options") or {}).get("maxRetriesOnFailure", 0)
    if retries:
        raise InputError(f"options.maxRetriesOnFailure must stay 0 (got {retries!r}): ccxt would resend orders "
                         "blindly; reads are retried by fastopt (--read-retries)")
    base_url = settings.pop("api_base_url", None)
    settings.pop("paper", None)
    options = {**FASTOPT_DEFAULT_OPTIONS, **dict(settings.pop("options", None) or {})}
    credentials = {} if public_only else credentials_from_env(exchange_id, env)
    params: dict[str, Any] = {"enableRateLimit": True, **settings, **credentials}
    params["options"] = options
    exchange = cls(params)
    if not public_only and not exchange.check_required_credentials(False):
        prefix = exchange_id.upper()
        wanted = [f"{prefix}_{suffix}" for key, suffix in (("apiKey", "API_KEY"), ("secret", "SECRET"),
                                                            ("password", "PASSWORD"))
                  if exchange.requiredCredentials.get(key)]
        raise InputError(f"{exchange_id} needs API keys: set {', '.join(wanted)} in the environment")
    if base_url:
        try:
            new_api, mapping = rebase_urls(exchange.urls["api"], str(base_url))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        exchange.urls["api"] = new_api
        _keep_error_tables(exchange, mapping)
    return exchange


def _keep_error_tables(exchange: Any, mapping: dict[str, str]) -> None:
    """Exchanges that pick their error table by URL (binance: fapi vs api) must see the original URL."""
    original = getattr(exchange, "get_exceptions_by_url", None)
    if original is None:
        return
    prefixes = sorted(mapping, key=len, reverse=True)

    def by_original_url(self: Any, url: Any, exact_or_broad: str) -> dict:
        if isinstance(url, str):
            for prefix in prefixes:
                if url.startswith(prefix):
                    url = mapping[prefix] + url[len(prefix):]
                    break
        return original(url, exact_or_broad)

    exchange.get_exceptions_by_url = types.MethodType(by_original_url, exchange)


def _step_of(exchange: Any, market: Mapping[str, Any]) -> Decimal | None:
    from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS

    raw = (market.get("precision") or {}).get("amount")
    if raw is None:
        return None
    if exchange.precisionMode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(raw))
    if exchange.precisionMode == SIGNIFICANT_DIGITS:
        return None
    return Decimal(str(raw))


class CcxtVenue:
    """One ccxt exchange behind the reconciler's venue interface."""

    def __init__(
        self,
        exchange_id: str,
        *,
        settings: Mapping[str, Any] | None = None,
        exchange: Any = None,
        read_attempts: int = 3,
        backoff_s: float = 0.5,
        markets_ttl_s: float = 3600.0,
        sleep: Callable[[float], None] = time.sleep,
        env: Mapping[str, str] | None = None,
        order_settle_s: float = 30.0,
    ) -> None:
        self.name = exchange_id
        #: an order not found this long after it was sent was never applied (recvWindow 10 s + margin)
        self.order_settle_s = order_settle_s
        self.exchange = exchange if exchange is not None else build_ccxt_exchange(exchange_id, settings or {}, env)
        self.read_attempts = max(1, read_attempts)
        self.backoff_s = backoff_s
        self.markets_ttl_s = markets_ttl_s
        self.sleep = sleep
        self._markets_loaded_at: float | None = None

    def _read(self, what: str, fn: Callable[[], T]) -> T:
        """Run a read with retries on temporary failures; raises the translated error."""
        delay = self.backoff_s
        for attempt in range(1, self.read_attempts + 1):
            try:
                return fn()
            except Exception as exc:  # ccxt raises many types; translated below
                err = exc if isinstance(exc, TemporaryError) else translate_ccxt_error(exc)
                if not isinstance(err, TemporaryError) or attempt == self.read_attempts:
                    raise err from None
                self.sleep(delay * (4 if isinstance(err, DDosProtection) else 1))
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _ensure_markets(self) -> None:
        now = time.monotonic()
        if self._markets_loaded_at is None or now - self._markets_loaded_at > self.markets_ttl_s:
            reload = self._markets_loaded_at is not None
            self._read("markets", lambda: self.exchange.load_markets(reload))
            self._markets_loaded_at = now

    def load_markets(self, symbols: Iterable[str], prices: Mapping[str, float]) -> dict[str, Market]:
        self._ensure_markets()
        out: dict[str, Market] = {}
        for symbol in symbols:
            m = self.exchange.markets.get(symbol)
            if not m:
                continue
            step = _step_of(self.exchange, m)
            if step is None or step <= 0:
                continue
            limits = m.get("limits") or {}
            min_amount = (limits.get("amount") or {}).get("min")
            min_cost = (limits.get("cost") or {}).get("min")
            out[symbol] = Market(
                symbol=symbol,
                amount_step=step,
                min_amount=Decimal(str(min_amount)) if min_amount else Decimal(0),
                min_cost=float(min_cost) if min_cost else 0.0,
                contract_size=float(m.get("contractSize") or 1.0),
            )
        return out

    def fetch_positions(self) -> dict[str, float]:
        """Signed positions in base units (contracts x contract size); flat symbols absent."""
        self._ensure_markets()
        rows = self._read("positions", lambda: self.exchange.fetch_positions())
        out: dict[str, float] = {}
        for row in rows or []:
            contracts = float(row.get("contracts") or 0.0)
            if contracts == 0.0:
                continue
            size = contracts * float(row.get("contractSize") or 1.0)
            side = row.get("side")
            signed = -abs(size) if side == "short" else (abs(size) if side == "long" else size)
            symbol = row["symbol"]
            out[symbol] = out.get(symbol, 0.0) + signed
        return {s: v for s, v in out.items() if v != 0.0}

    def fetch_prices(self, symbols: Iterable[str]) -> dict[str, float]:
        self._ensure_markets()
        wanted = sorted(s for s in set(symbols) if s in self.exchange.markets)
        if not wanted:
            return {}
        if self.exchange.has.get("fetchMarkPrices"):  # mark prices: cheapest call, and what margin uses
            tickers = self._read("prices", lambda: self.exchange.fetch_mark_prices(wanted))
        else:
            tickers = self._read("prices", lambda: self.exchange.fetch_tickers(wanted))
        out: dict[str, float] = {}
        for symbol, t in (tickers or {}).items():
            value = t.get("markPrice") or t.get("last") or t.get("close")
            if value and symbol in wanted:
                out[symbol] = float(value)
        return out

    def create_order(
        self, *, symbol: str, side: str, amount: Decimal, reduce_only: bool, client_order_id: str
    ) -> OrderResult:
        """Send one market order, once. Raises InvalidOrder/InsufficientFunds or OrderOutcomeUnknown."""
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        if reduce_only:
            params["reduceOnly"] = True
        try:
            order = self.exchange.create_order(symbol, "market", side, float(amount), None, params)
        except Exception as exc:
            raise translate_ccxt_error(exc, during_order=True) from None
        return _result(order, client_order_id)

    def fetch_order_by_client_id(self, *, symbol: str, client_order_id: str) -> OrderResult | None:
        """The order with this client order id, or None when the exchange has none."""
        try:
            order = self._read(
                "order", lambda: self.exchange.fetch_order(None, symbol, {"clientOrderId": client_order_id})
            )
        except OrderNotFound:
            return None
        return _result(order, client_order_id)


def _result(order: Mapping[str, Any], client_order_id: str) -> OrderResult:
    status = {"closed": "filled", "open": "open", "canceled": "canceled", "rejected": "rejected",
              "expired": "canceled"}.get(str(order.get("status")), str(order.get("status")))
    filled = float(order.get("filled") or 0.0)
    if status == "open" and filled > 0:
        status = "partially_filled"
    average = order.get("average") or order.get("price")
    return OrderResult(
        client_order_id=str(order.get("clientOrderId") or client_order_id),
        status=status,
        filled=filled,
        average=None if average is None else float(average),
        exchange_order_id=None if order.get("id") is None else str(order["id"]),
        info={},
    )


__all__ = ["AuthenticationError", "CcxtVenue", "build_ccxt_exchange", "credentials_from_env", "rebase_urls"]
