"""A ccxt exchange as a reconciler venue.

- API keys come only from the environment: ``<ID>_API_KEY``, ``<ID>_SECRET``,
  ``<ID>_PASSWORD`` (``ID`` = upper-cased ccxt id, e.g. ``BINANCEUSDM_API_KEY``).
  A value with leading/trailing whitespace (a newline from ``echo`` or a file)
  is refused with an :class:`~fastopt.errors.InputError` naming the variable
  (never the value).
- Settings (``--exchange-config`` JSON or ``exchange_settings`` in the
  config): ``options`` is merged into ccxt's ``options``; ``api_base_url``
  sends every API call to another scheme+host keeping each path (testnets,
  proxies, the tests' fake server); every other key is a ccxt constructor
  parameter (``timeout``, ``enableRateLimit``, ...).
- fastopt defaults: rate limiting on, ``fetchCurrencies`` off (a private,
  needless call on binance), ccxt's own retries off (``maxRetriesOnFailure`` 0:
  an order is never resent by the library), ``warnOnFetchOpenOrdersWithoutSymbol``
  off (:meth:`CcxtVenue.open_orders` lists the whole account on purpose).
- Rate limiting: ccxt's sync throttle measures the spacing on the wall clock; a
  clock stepped back 600 s froze the loop 600 s. Every exchange built here gets
  :class:`MonotonicThrottle` instead (same ``rateLimit x cost`` spacing on the
  monotonic clock, never more than ``5 x rateLimit``).
- Reads (markets, positions, prices, balance, order lookups, open orders,
  cancels) retry with exponential backoff on :class:`TemporaryError`;
  ``create_order`` is called exactly once and any non-definitive failure
  becomes :class:`OrderOutcomeUnknown`. Error messages are scrubbed of signed
  query strings and keys (:func:`reconciler.errors.scrub`).
- Markets are loaded once and refreshed every ``markets_ttl_s`` seconds.
- Prices: mark prices (``fetch_mark_prices``, binance premiumIndex: weight 10)
  when the exchange has them, else the tickers' mark/last price. The same
  answer gives the reference price of :meth:`CcxtVenue.reference_prices`
  (binance: ``indexPrice``), without another request.

Units: amounts and ``Market`` limits are in contracts (the exchange's order
unit), positions in base units (contracts x contract size), prices and equity in
the account currency (USDT on binanceusdm).

Venue-specific behaviour lives in small helpers named after the venue
(``_binance_*``) and in :data:`reconciler.errors.BINANCE_FUTURES_REFUSALS`.
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
    InvalidOrder,
    OrderNotFound,
    TemporaryError,
    VenueConfigError,
    VenueError,
    translate_ccxt_error,
)
from reconciler.model import Market, OrderResult

T = TypeVar("T")

FASTOPT_DEFAULT_OPTIONS: dict[str, Any] = {
    "fetchCurrencies": False,
    "maxRetriesOnFailure": 0,
    "adjustForTimeDifference": False,
    "warnOnFetchOpenOrdersWithoutSymbol": False,
}


#: ccxt constructor parameters that are credentials: only ever taken from the environment
CREDENTIAL_PARAMS = frozenset({"apiKey", "secret", "password", "uid", "login", "twofa", "privateKey",
                               "walletAddress", "token", "accountId"})
#: env var suffix -> ccxt credential parameter
CREDENTIAL_ENV = (("API_KEY", "apiKey"), ("SECRET", "secret"), ("PASSWORD", "password"))


def _whitespace_problem(name: str, value: str) -> str | None:
    """Why a credential value with whitespace is refused (names the variable, never the value), else None."""
    if not value.strip():
        return f"{name} is only whitespace; set the key itself"
    if value[-1].isspace():
        return f"{name} ends with whitespace (a newline?); remove it"
    if value[0].isspace():
        return f"{name} starts with whitespace; remove it"
    if any(c.isspace() for c in value):
        return f"{name} contains whitespace; API keys never do, check the value"
    return None


def credentials_from_env(exchange_id: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """ccxt credential parameters from ``<ID>_API_KEY`` / ``_SECRET`` / ``_PASSWORD``.

    Raises :class:`InputError` for a value with whitespace (e.g. a trailing newline): the
    exchange would refuse the signature with a confusing message.
    """
    env = os.environ if env is None else env
    prefix = exchange_id.upper()
    out: dict[str, str] = {}
    for suffix, param in CREDENTIAL_ENV:
        name = f"{prefix}_{suffix}"
        value = env.get(name)
        if value:
            problem = _whitespace_problem(name, value)
            if problem:
                raise InputError(problem)
            out[param] = value
    return out


class MonotonicThrottle:
    """Drop-in for ccxt's sync ``Exchange.throttle(cost)``, timed on the monotonic clock.

    ccxt waits until ``rateLimit x cost`` ms have passed since the previous request, measured
    with ``Exchange.milliseconds()`` (wall clock): a clock stepped back by 600 s makes that
    600 s. This waits the same spacing measured on ``time.monotonic`` (which never steps) and
    never longer than ``max_factor x rateLimit`` per request: fastopt sends a handful of
    requests per cycle, far below the venues' weight limits (Binance USD-M: 2400 per minute),
    so the cap costs nothing, and 429/418 answers are backed off by the reads anyway.
    """

    def __init__(self, exchange: Any, *, max_factor: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.exchange = exchange
        self.max_factor = max_factor
        self.clock = clock
        self.sleep = sleep
        self.last: float | None = None

    def __call__(self, cost: Any = None) -> None:
        rate_s = max(0.0, float(getattr(self.exchange, "rateLimit", 0) or 0)) / 1000.0
        weight = 1.0 if cost is None else max(0.0, float(cost))
        now = self.clock()
        if self.last is not None:
            delay = min(rate_s * weight - (now - self.last), self.max_factor * rate_s)
            if delay > 0:
                self.sleep(delay)
                now = self.clock()
        self.last = now


def install_monotonic_throttle(exchange: Any) -> MonotonicThrottle:
    """Replace ``exchange.throttle`` (ccxt sync client) by a :class:`MonotonicThrottle` (idempotent)."""
    current = exchange.__dict__.get("throttle")
    if isinstance(current, MonotonicThrottle):
        return current
    throttle = MonotonicThrottle(exchange)
    exchange.throttle = throttle  # an instance attribute: ccxt's fetch2 calls self.throttle(cost)
    return throttle


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
    The client's throttle is a :class:`MonotonicThrottle`.
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
    install_monotonic_throttle(exchange)
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


def _max_amount_of(market: Mapping[str, Any]) -> Decimal | None:
    """Largest amount of one *market* order (contracts), None when the market sets none.

    ccxt puts the LOT_SIZE maxQty in ``limits.amount.max`` and, on binance, the
    MARKET_LOT_SIZE maxQty (the one that binds market orders, usually smaller) in
    ``limits.market.max``; the smaller of those given is used.
    """
    limits = market.get("limits") or {}
    found = []
    for key in ("market", "amount"):
        value = (limits.get(key) or {}).get("max")
        if value is not None:
            try:
                number = Decimal(str(value))
            except ArithmeticError:
                continue
            if number.is_finite() and number > 0:
                found.append(number)
    return min(found) if found else None


def _is_binance(exchange: Any) -> bool:
    return str(getattr(exchange, "id", "")).startswith("binance")


def _one_way_fix(exchange: Any) -> str:
    """How to leave hedge mode on this venue (said in the VenueConfigError)."""
    if _is_binance(exchange):
        return "switch to one-way mode in the Binance futures settings (Preferences > Position Mode)"
    return "switch the account to one-way (net) position mode in the exchange's settings"


def _binance_equity(balance: Mapping[str, Any]) -> float | None:
    """Binance futures account equity from ccxt's fetch_balance answer (GET /fapi/v3/account).

    ``totalMarginBalance`` = wallet balance + unrealized PnL of the whole futures account (USDT in
    single-asset mode, the USD value of all collateral in multi-assets mode); None when absent.
    """
    info = balance.get("info")
    value = info.get("totalMarginBalance") if isinstance(info, Mapping) else None
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _hedge_row(row: Mapping[str, Any]) -> bool:
    """A position row of a hedge-mode account (one side of a long/short pair)."""
    if row.get("hedged") is True:
        return True
    info = row.get("info")
    side = str(info.get("positionSide", "")).upper() if isinstance(info, Mapping) else ""
    return side in ("LONG", "SHORT")  # binance


class CcxtVenue:
    """One ccxt exchange behind the reconciler's venue interface (see ``reconciler.engine.Venue``).

    ``account_currency``: the currency :meth:`fetch_equity` reports in, when the venue has
    no account-wide total (binance has: ``totalMarginBalance``).
    """

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
        account_currency: str = "USDT",
    ) -> None:
        self.name = exchange_id
        #: an order not found this long after it was sent was never applied (recvWindow 10 s + margin)
        self.order_settle_s = order_settle_s
        self.exchange = exchange if exchange is not None else build_ccxt_exchange(exchange_id, settings or {}, env)
        install_monotonic_throttle(self.exchange)
        self.env = env
        self.read_attempts = max(1, read_attempts)
        self.backoff_s = backoff_s
        self.markets_ttl_s = markets_ttl_s
        self.sleep = sleep
        self.account_currency = account_currency
        self._markets_loaded_at: float | None = None
        #: symbol -> reference price from the last fetch_prices answer (see reference_prices)
        self._reference: dict[str, float] = {}
        self._symbol_index: tuple[int, dict[str, str]] | None = None

    # -- plumbing -----------------------------------------------------------
    def _translate(self, exc: BaseException, *, during_order: bool = False) -> VenueError:
        ex = self.exchange
        return translate_ccxt_error(
            exc, during_order=during_order, exchange_id=str(getattr(ex, "id", self.name)),
            secrets=[getattr(ex, "apiKey", None), getattr(ex, "secret", None), getattr(ex, "password", None)])

    def _read(self, what: str, fn: Callable[[], T]) -> T:
        """Run a read with retries on temporary failures; raises the translated (scrubbed) error."""
        delay = self.backoff_s
        for attempt in range(1, self.read_attempts + 1):
            try:
                return fn()
            except Exception as exc:  # ccxt raises many types; translated below
                err = exc if isinstance(exc, VenueError) else self._translate(exc)
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

    # -- account ------------------------------------------------------------
    def check_account(self) -> None:
        """Start-up check, before any order.

        Raises :class:`InputError` when the client's keys carry whitespace, and
        :class:`VenueConfigError` when the account is in hedge mode (binance:
        ``GET /fapi/v1/positionSide/dual`` says ``dualSidePosition: true``): fastopt
        holds one net position per symbol and sends orders without a position side.
        Exchanges without ``fetchPositionMode`` are checked on every positions read
        instead (:meth:`fetch_positions`).
        """
        prefix = self.name.upper()
        for suffix, param in CREDENTIAL_ENV:
            value = getattr(self.exchange, param, None)
            problem = _whitespace_problem(f"{prefix}_{suffix}", value) if isinstance(value, str) and value else None
            if problem:
                raise InputError(problem)
        if not self.exchange.has.get("fetchPositionMode"):
            return
        import ccxt

        def read_mode() -> Any:
            try:
                return self.exchange.fetch_position_mode()
            except (ccxt.NotSupported, ccxt.ArgumentsRequired):  # per-symbol modes: left to fetch_positions
                return None

        mode = self._read("position mode", read_mode)
        if isinstance(mode, Mapping) and mode.get("hedged") is True:
            raise VenueConfigError(self._hedge_message())

    def _hedge_message(self) -> str:
        return (f"{self.name}: the account is in hedge mode (separate long and short positions per symbol); "
                f"fastopt trades one net position per symbol and cannot trade it safely: {_one_way_fix(self.exchange)}")

    def fetch_positions(self) -> dict[str, float]:
        """Signed positions in base units (contracts x contract size); flat symbols absent.

        Raises :class:`VenueConfigError` when a non-zero row belongs to a hedge-mode
        account (ccxt ``hedged``, binance ``positionSide`` LONG/SHORT) instead of
        netting the two sides.
        """
        self._ensure_markets()
        rows = self._read("positions", lambda: self.exchange.fetch_positions())
        out: dict[str, float] = {}
        for row in rows or []:
            contracts = float(row.get("contracts") or 0.0)
            if contracts == 0.0:
                continue
            if _hedge_row(row):
                raise VenueConfigError(self._hedge_message())
            size = contracts * float(row.get("contractSize") or 1.0)
            side = row.get("side")
            signed = -abs(size) if side == "short" else (abs(size) if side == "long" else size)
            symbol = row["symbol"]
            out[symbol] = out.get(symbol, 0.0) + signed
        return {s: v for s, v in out.items() if v != 0.0}

    def fetch_equity(self) -> float | None:
        """Account equity in the account currency: wallet balance + unrealized PnL of the account.

        One ``fetch_balance`` (binanceusdm: ``GET /fapi/v3/account``, weight 5), retried
        like every read. Binance: ``totalMarginBalance``; other venues: the balance's
        ``total`` of ``account_currency``. None when the answer has neither.
        """
        balance = self._read("balance", lambda: self.exchange.fetch_balance())
        if not isinstance(balance, Mapping):
            return None
        if _is_binance(self.exchange):
            value = _binance_equity(balance)
            if value is not None:
                return value
        total = (balance.get("total") or {}).get(self.account_currency)
        return None if total is None else float(total)

    # -- market data ----------------------------------------------------------
    def fetch_prices(self, symbols: Iterable[str]) -> dict[str, float]:
        """Mark prices (account currency per base unit) of the listed ``symbols``; unlisted ones absent.

        Also keeps each symbol's reference price from the same answer (see :meth:`reference_prices`).
        """
        self._ensure_markets()
        wanted = sorted(s for s in set(symbols) if s in self.exchange.markets)
        if not wanted:
            return {}
        if self.exchange.has.get("fetchMarkPrices"):  # mark prices: cheapest call, and what margin uses
            tickers = self._read("prices", lambda: self.exchange.fetch_mark_prices(wanted))
        else:
            tickers = self._read("prices", lambda: self.exchange.fetch_tickers(wanted))
        out: dict[str, float] = {}
        for symbol in wanted:
            self._reference.pop(symbol, None)
        for symbol, t in (tickers or {}).items():
            if symbol not in wanted or not isinstance(t, Mapping):
                continue
            mark = _positive(t.get("markPrice"))
            value = mark or _positive(t.get("last")) or _positive(t.get("close"))
            if value:
                out[symbol] = value
            # an independent price: the index, else the last trade when the mark was used
            reference = _positive(t.get("indexPrice")) or (_positive(t.get("last")) if mark else None)
            if reference:
                self._reference[symbol] = reference
        return out

    def reference_prices(self, symbols: Iterable[str]) -> dict[str, float]:
        """An independent price per symbol for plausibility checks, from the last :meth:`fetch_prices`
        answer (no request): binance the ``indexPrice`` of the premiumIndex answer that gave the mark
        price, else a ticker's last price when its mark price was used; ``{}`` when none."""
        return {s: self._reference[s] for s in symbols if s in self._reference}

    def resolve_symbol(self, raw: str) -> str | None:
        """The unified ccxt symbol of the market a strategy's symbol names, or None.

        Case-insensitive, in this order: a listed unified symbol (``BTC/USDT:USDT``); an exchange
        market id (``BTCUSDT``, via ``markets_by_id``; the linear swap when the id names several);
        ``BASE/QUOTE`` or ``BASE-QUOTE`` for the ``BASE/QUOTE:QUOTE`` linear swap when no market
        has that symbol itself (a futures-only venue such as binanceusdm).
        """
        if not isinstance(raw, str) or not raw.strip():
            return None
        self._ensure_markets()
        text = raw.strip()
        markets = self.exchange.markets or {}
        if text in markets:
            return text
        return self._symbols_by_key().get(text.upper())

    def _symbols_by_key(self) -> dict[str, str]:
        markets = self.exchange.markets or {}
        if self._symbol_index is not None and self._symbol_index[0] == id(markets):
            return self._symbol_index[1]
        index: dict[str, str] = {}
        for symbol in markets:
            index.setdefault(symbol.upper(), symbol)

        def preference(m: Mapping[str, Any]) -> tuple[bool, bool, str]:
            return (not (m.get("swap") and m.get("linear")), m.get("active") is False, str(m.get("symbol")))

        by_id: dict[str, list[Mapping[str, Any]]] = {}
        for m in markets.values():
            if m.get("id") is not None:
                by_id.setdefault(str(m["id"]).upper(), []).append(m)
        for key, candidates in by_id.items():
            index.setdefault(key, str(sorted(candidates, key=preference)[0]["symbol"]))
        for m in sorted(markets.values(), key=preference):
            if m.get("swap") and m.get("linear") and m.get("base") and m.get("quote") and m.get("settle") == m["quote"]:
                for alias in (f"{m['base']}/{m['quote']}", f"{m['base']}-{m['quote']}"):
                    index.setdefault(alias.upper(), str(m["symbol"]))
        self._symbol_index = (id(markets), index)
        return index

    def load_markets(self, symbols: Iterable[str], prices: Mapping[str, float]) -> dict[str, Market]:
        """Trading rules of the listed ``symbols`` (amounts in contracts; see :class:`Market`).

        ``max_amount``: the smaller of ``limits.market.max`` (binance MARKET_LOT_SIZE maxQty) and
        ``limits.amount.max`` (LOT_SIZE maxQty); None when the market gives neither.
        """
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
                max_amount=_max_amount_of(m),
            )
        return out

    # -- orders -----------------------------------------------------------------
    def create_order(
        self, *, symbol: str, side: str, amount: Decimal, reduce_only: bool, client_order_id: str
    ) -> OrderResult:
        """Send one market order of ``amount`` contracts, once (never retried).

        Raises :class:`InvalidOrder` / :class:`InsufficientFunds` (refused, not applied),
        :class:`AuthenticationError`, or :class:`OrderOutcomeUnknown` (anything else: look it
        up). An answer without a status is ``OrderResult(status="unknown")``.
        """
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        if reduce_only:
            params["reduceOnly"] = True
        try:
            order = self.exchange.create_order(symbol, "market", side, float(amount), None, params)
        except Exception as exc:
            raise self._translate(exc, during_order=True) from None
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

    def cancel_order_by_client_id(self, *, symbol: str, client_order_id: str) -> OrderResult | None:
        """Cancel a working order; its final state, or None when the venue has no such order.

        binance: ``DELETE /fapi/v1/order`` with ``origClientOrderId``. The answer is the order
        as canceled (``status`` "canceled", ``filled`` the part that filled before). When the
        venue answers "unknown order" (binance -2011: none, or already final) or with no status,
        the order is looked up: "filled" if it filled meanwhile, None if it never existed.
        Retried like a read (cancelling twice is harmless).
        """
        try:
            order = self._read("cancel", lambda: self.exchange.cancel_order_with_client_order_id(
                client_order_id, symbol))
        except (OrderNotFound, InvalidOrder):
            return self.fetch_order_by_client_id(symbol=symbol, client_order_id=client_order_id)
        result = _result(order, client_order_id)
        if result.status == "unknown":
            return self.fetch_order_by_client_id(symbol=symbol, client_order_id=client_order_id) or result
        return result

    def open_orders(self, prefix: str) -> list[tuple[str, OrderResult]]:
        """``(symbol, order)`` for every open order on the account whose client id starts with ``prefix``.

        One request for the whole account (binance: ``GET /fapi/v1/openOrders`` without a symbol,
        weight 40), retried like a read.
        """
        self._ensure_markets()
        orders = self._read("open orders", lambda: self.exchange.fetch_open_orders())
        out: list[tuple[str, OrderResult]] = []
        for order in orders or []:
            cid = str(order.get("clientOrderId") or "")
            if cid and cid.startswith(prefix):
                out.append((str(order.get("symbol")), _result(order, cid)))
        return out


def _positive(value: Any) -> float | None:
    """``value`` as a finite float > 0, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and number != float("inf") else None


#: ccxt unified order status -> OrderResult status
_STATUS = {"closed": "filled", "open": "open", "canceling": "open", "canceled": "canceled",
           "cancelled": "canceled", "expired": "canceled", "rejected": "rejected"}


def _result(order: Mapping[str, Any], client_order_id: str) -> OrderResult:
    """ccxt order -> OrderResult. ``closed`` -> filled; ``open`` -> open, or partially_filled when
    something filled; ``canceled``/``expired`` -> canceled with the filled part kept; no status (an
    ack without one, e.g. OKX/Bitget) or one not listed -> "unknown" (not an outcome: look it up)."""
    raw = order.get("status")
    status = _STATUS.get(str(raw).lower(), "unknown") if raw is not None else "unknown"
    filled = float(order.get("filled") or 0.0)
    if status == "open" and filled > 0:
        status = "partially_filled"
    average = _positive(order.get("average")) or _positive(order.get("price")) if filled > 0 else None
    return OrderResult(
        client_order_id=str(order.get("clientOrderId") or client_order_id),
        status=status,
        filled=filled,
        average=average,
        exchange_order_id=None if order.get("id") is None else str(order["id"]),
        info={"symbol": order.get("symbol")} if order.get("symbol") else {},
    )


__all__ = ["AuthenticationError", "CcxtVenue", "MonotonicThrottle", "build_ccxt_exchange", "credentials_from_env",
           "install_monotonic_throttle", "rebase_urls"]
