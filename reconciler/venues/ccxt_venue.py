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

Venue-specific behaviour lives in the venue's profile (:mod:`reconciler.venues.profile`,
one module per venue: :mod:`reconciler.venues.binanceusdm`, ...): credentials, forced
options, client-id format, order parameters, lookup/cancel/open-order calls, refusals by
code, which position rows are in scope, hedge rows, account mode and equity.
Before the first order, :meth:`CcxtVenue.check_account` runs the venue's self-check
(markets, positions, a lookup of a never-used client id that must answer "not found",
account mode) and refuses the venue, naming the step and the fix, when one fails.
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
from reconciler.venues.profile import VenueProfile, profile_for, venue_id_prefix

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
#: env var suffix -> ccxt credential parameter (the default; a venue profile may name others)
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


def credentials_from_env(exchange_id: str, env: Mapping[str, str] | None = None,
                         credentials: tuple[tuple[str, str], ...] = CREDENTIAL_ENV) -> dict[str, str]:
    """ccxt credential parameters from ``<ID>_<SUFFIX>`` variables (``credentials``: (suffix, ccxt
    parameter) pairs, default ``_API_KEY`` / ``_SECRET`` / ``_PASSWORD``).

    Raises :class:`InputError` for a value with whitespace (e.g. a trailing newline): the
    exchange would refuse the signature with a confusing message.
    """
    env = os.environ if env is None else env
    prefix = exchange_id.upper()
    out: dict[str, str] = {}
    for suffix, param in credentials:
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
    profile = profile_for(exchange_id)
    # the profile's options win: they are the ones that keep orders exactly-once or cost the user money
    options = {**FASTOPT_DEFAULT_OPTIONS, **dict(settings.pop("options", None) or {}), **profile.options}
    credentials = {} if public_only else credentials_from_env(exchange_id, env, profile.credentials)
    params: dict[str, Any] = {"enableRateLimit": True, **settings, **credentials}
    params["options"] = options
    exchange = cls(params)
    if not public_only and not exchange.check_required_credentials(False):
        prefix = exchange_id.upper()
        env_of = {param: f"{prefix}_{suffix}" for suffix, param in profile.credentials}
        wanted = [env_of.get(key, f"{prefix}_{key.upper()} (not read by fastopt's profile of {exchange_id})")
                  for key, needed in exchange.requiredCredentials.items() if needed]
        raise InputError(f"{exchange_id} needs credentials: set {', '.join(wanted)} in the environment")
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


class CcxtVenue:
    """One ccxt exchange behind the reconciler's venue interface (see ``reconciler.engine.Venue``),
    with the venue's :class:`~reconciler.venues.profile.VenueProfile` (``profile``, default: the one
    registered for ``exchange_id``)."""

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
        profile: VenueProfile | None = None,
    ) -> None:
        self.name = exchange_id
        self.profile = profile if profile is not None else profile_for(exchange_id)
        #: an order not found this long after it was sent was never applied (recvWindow 10 s + margin)
        self.order_settle_s = order_settle_s
        self.exchange = exchange if exchange is not None else build_ccxt_exchange(exchange_id, settings or {}, env)
        install_monotonic_throttle(self.exchange)
        self.env = env
        self.read_attempts = max(1, read_attempts)
        self.backoff_s = backoff_s
        self.markets_ttl_s = markets_ttl_s
        self.sleep = sleep
        self.account_currency = self.profile.account_currency
        #: how this reconciler's client ids start on the venue (its orders are told apart by it)
        self.client_id_prefix = venue_id_prefix(self.profile)
        self._markets_loaded_at: float | None = None
        #: symbol -> reference price from the last fetch_prices answer (see reference_prices)
        self._reference: dict[str, float] = {}
        #: symbol -> last mark price (a market order's price bound on venues that need one)
        self._last_mark: dict[str, float] = {}
        self._symbol_index: tuple[int, dict[str, str]] | None = None
        self._warned_mapping: set[str] = set()

    def format_client_id(self, client_order_id: str) -> str:
        """The venue's form of fastopt's client order id (``fo`` + 30 hex): see the profile."""
        return self.profile.client_id(client_order_id)

    # -- plumbing -----------------------------------------------------------
    def _translate(self, exc: BaseException, *, during_order: bool = False) -> VenueError:
        ex = self.exchange
        return translate_ccxt_error(
            exc, during_order=during_order, refusal=self.profile.refusal,
            secrets=[getattr(ex, "apiKey", None), getattr(ex, "secret", None), getattr(ex, "password", None),
                     getattr(ex, "privateKey", None)])

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

    def _in_scope(self, market: Mapping[str, Any] | None) -> bool:
        return self.profile.position_in_scope({}, market, self.profile.settle_currencies)

    # -- account ------------------------------------------------------------
    def check_account(self) -> None:
        """The venue's self-check, before any order; refuses the venue naming the step and the fix.

        1. keys: a value with whitespace is an :class:`InputError` naming the variable;
        2. markets load and 3. positions read (a read failure propagates as a venue error);
        4. a lookup of a random never-used client id must answer "not found": a venue whose
           lookup by client id raises or returns an order could never resolve an order whose
           answer was lost (:class:`VenueConfigError`);
        5. account mode (hedge mode refused, :class:`VenueConfigError`).
        """
        prefix = self.name.upper()
        for suffix, param in self.profile.credentials:
            value = getattr(self.exchange, param, None)
            problem = _whitespace_problem(f"{prefix}_{suffix}", value) if isinstance(value, str) and value else None
            if problem:
                raise InputError(problem)
        self._ensure_markets()
        self.fetch_positions()
        probe_symbol = next((sym for sym, m in (self.exchange.markets or {}).items()
                             if self._in_scope(m) and m.get("active") is not False), None)
        if probe_symbol is None:
            raise VenueConfigError(f"{self.name} self-check, markets: no linear perpetual settled in "
                                   f"{'/'.join(self.profile.settle_currencies)} is listed; fix: check the venue id "
                                   "and api_base_url")
        probe = self.format_client_id(self.profile.client_id_prefix + os.urandom(15).hex())
        try:
            found = self.fetch_order_by_client_id(symbol=probe_symbol, client_order_id=probe)
        except VenueError as err:
            if isinstance(err, TemporaryError):
                raise
            raise VenueConfigError(f"{self.name} self-check, order lookup by client id ({probe_symbol}): {err}; "
                                   "an order whose answer is lost could never be resolved on this venue; fix: "
                                   "see docs/venues.md for this venue") from None
        if found is not None:
            raise VenueConfigError(f"{self.name} self-check, order lookup by client id: a never-used id {probe} "
                                   f"returned an order ({found.exchange_order_id}); fastopt cannot tell its orders "
                                   "apart on this venue; fix: see docs/venues.md")

        def read_mode() -> str | None:
            return self.profile.account_problem(self.exchange)

        problem = self._read("position mode", read_mode)
        if problem:
            raise VenueConfigError(f"{self.name}: {problem}; fastopt trades one net position per symbol and "
                                   f"cannot trade it safely: {self.profile.one_way_fix}")

    def _hedge_message(self) -> str:
        return (f"{self.name}: the account is in hedge mode (separate long and short positions per symbol); "
                f"fastopt trades one net position per symbol and cannot trade it safely: {self.profile.one_way_fix}")

    def fetch_positions(self) -> dict[str, float]:
        """Signed positions in base units (contracts x contract size) of the linear perpetuals in scope
        (see the profile; margin, spot, futures, options and inverse rows are not fastopt's); flat symbols
        absent.

        Raises :class:`VenueConfigError` when a non-zero row belongs to a hedge-mode account instead of
        netting the two sides.
        """
        self._ensure_markets()
        rows = self._read("positions", lambda: self.exchange.fetch_positions())
        markets = self.exchange.markets or {}
        out: dict[str, float] = {}
        for row in rows or []:
            contracts = float(row.get("contracts") or 0.0)
            if contracts == 0.0:
                continue
            symbol = row.get("symbol")
            if not self.profile.position_in_scope(row, markets.get(symbol), self.profile.settle_currencies):
                continue
            if self.profile.hedge_row(row):
                raise VenueConfigError(self._hedge_message())
            size = contracts * float(row.get("contractSize") or (markets.get(symbol) or {}).get("contractSize")
                                     or 1.0)
            side = row.get("side")
            signed = -abs(size) if side == "short" else (abs(size) if side == "long" else size)
            out[symbol] = out.get(symbol, 0.0) + signed
        return {s: v for s, v in out.items() if v != 0.0}

    def fetch_equity(self) -> float | None:
        """Account equity in the account currency: wallet balance + unrealized PnL (the profile's rule;
        default the balance's ``total`` of the account currency). One ``fetch_balance``, retried like
        every read; None when the answer has no figure."""
        balance = self._read("balance", lambda: self.exchange.fetch_balance())
        if not isinstance(balance, Mapping):
            return None
        return self.profile.equity(balance, self.account_currency)

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
            raw_mark, raw_reference = self.profile.ticker_prices(t)
            value, reference = _positive(raw_mark), _positive(raw_reference)
            if value:
                out[symbol] = value
                self._last_mark[symbol] = value
            if reference:  # an independent price: the index (see the profile), for the plausibility check
                self._reference[symbol] = reference
        return out

    def reference_prices(self, symbols: Iterable[str]) -> dict[str, float]:
        """An independent price per symbol for plausibility checks, from the last :meth:`fetch_prices`
        answer (no request): binance the ``indexPrice`` of the premiumIndex answer that gave the mark
        price, else a ticker's last price when its mark price was used; ``{}`` when none."""
        return {s: self._reference[s] for s in symbols if s in self._reference}

    def resolve_symbol(self, raw: str) -> str | None:
        """The unified symbol of the linear perpetual in scope that a strategy's symbol names, or None
        (:meth:`explain_symbol` says why).

        Case-insensitive, in this order: a listed unified symbol (``BTC/USDT:USDT``); an exchange
        market id (``BTCUSDT``; the linear swap when the id names several); ``BASE/QUOTE`` or
        ``BASE-QUOTE`` for the ``BASE/QUOTE:QUOTE`` swap; then **by base asset**: a strategy's
        ``BTC/USDT:USDT`` on a venue that settles its perps in another currency (Hyperliquid
        ``BTC/USDC:USDC``, Kraken ``BTC/USD:USD``) is the base's perp there, with a warning once.
        Inverse contracts (settled in the coin) and non-contract markets are never a target.
        """
        if not isinstance(raw, str) or not raw.strip():
            return None
        self._ensure_markets()
        markets = self.exchange.markets or {}
        text = raw.strip()
        symbol = text if text in markets else self._symbols_by_key().get(text.upper())
        if symbol is not None:
            return symbol if self._in_scope(markets.get(symbol)) else None
        base = _base_of(text)
        mapped = self._perps_by_base().get(base) if base else None
        if mapped is not None and raw not in self._warned_mapping:
            self._warned_mapping.add(raw)
            import sys

            print(f"reconciler: {self.name}: {raw} is traded as {mapped} (same base asset, settled in "
                  f"{(markets.get(mapped) or {}).get('settle')}); set symbol_map in the config to choose "
                  "explicitly", file=sys.stderr)
        return mapped

    def explain_symbol(self, raw: str) -> str:
        """Why :meth:`resolve_symbol` gives nothing for ``raw`` (one phrase)."""
        markets = self.exchange.markets or {}
        text = str(raw).strip()
        symbol = text if text in markets else self._symbols_by_key().get(text.upper())
        market = markets.get(symbol) if symbol else None
        if market is None:
            return f"names no market on {self.name}"
        if market.get("inverse"):
            return (f"is an inverse contract on {self.name} (settled in {market.get('settle')}, sized in USD): "
                    "fastopt trades linear perpetuals only")
        if not market.get("contract"):
            return f"is not a contract on {self.name} ({market.get('type')}): fastopt trades linear perpetuals only"
        return (f"is not a linear perpetual settled in {'/'.join(self.profile.settle_currencies)} on {self.name} "
                f"({market.get('type')}, settled in {market.get('settle')})")

    def _perps_by_base(self) -> dict[str, str]:
        """Base asset -> the in-scope linear perpetual of that base (settle currencies in profile order)."""
        markets = self.exchange.markets or {}
        out: dict[str, str] = {}
        order = {c: i for i, c in enumerate(self.profile.settle_currencies)}
        for m in sorted(markets.values(), key=lambda m: (order.get(m.get("settle"), 99), str(m.get("symbol")))):
            if self._in_scope(m) and m.get("base") and m.get("active") is not False:
                out.setdefault(str(m["base"]).upper(), str(m["symbol"]))
        return out

    def _symbols_by_key(self) -> dict[str, str]:
        markets = self.exchange.markets or {}
        if self._symbol_index is not None and self._symbol_index[0] == id(markets):
            return self._symbol_index[1]
        index: dict[str, str] = {}
        for symbol in markets:
            index.setdefault(symbol.upper(), symbol)

        def preference(m: Mapping[str, Any]) -> tuple[bool, bool, str]:
            return (not self._in_scope(m), m.get("active") is False, str(m.get("symbol")))

        by_id: dict[str, list[Mapping[str, Any]]] = {}
        for m in markets.values():
            if m.get("id") is not None:
                by_id.setdefault(str(m["id"]).upper(), []).append(m)
        for key, candidates in by_id.items():
            index.setdefault(key, str(sorted(candidates, key=preference)[0]["symbol"]))
        for m in sorted(markets.values(), key=preference):
            if self._in_scope(m) and m.get("base") and m.get("quote") and m.get("settle") == m["quote"]:
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
                max_amount=_smallest(_max_amount_of(m), _decimal_or_none(self.profile.market_max_amount(m))),
            )
        return out

    # -- orders -----------------------------------------------------------------
    def create_order(
        self, *, symbol: str, side: str, amount: Decimal, reduce_only: bool, client_order_id: str
    ) -> OrderResult:
        """Send one market order of ``amount`` contracts, once (never retried), with the profile's params
        (client-id field, reduce-only flag; a price bound on venues that need one).

        Raises :class:`InvalidOrder` / :class:`InsufficientFunds` (refused, not applied),
        :class:`AuthenticationError`, or :class:`OrderOutcomeUnknown` (anything else: look it
        up). An answer without a status is ``OrderResult(status="unknown")``.
        """
        params = self.profile.order_params(self.exchange, symbol=symbol, side=side, reduce_only=reduce_only,
                                           client_order_id=client_order_id)
        price = None
        if self.profile.market_order_price is not None:
            price = self.profile.market_order_price(self.exchange, symbol=symbol, side=side,
                                                    mark=self._last_mark.get(symbol))
        try:
            order = self.exchange.create_order(symbol, "market", side, float(amount), price, params)
        except Exception as exc:
            raise self._translate(exc, during_order=True) from None
        if not isinstance(order, Mapping):
            return OrderResult(client_order_id, "unknown")
        if order.get("status") is None:
            status = self.profile.reply_status(order, amount)
            if status is not None:
                order = {**order, "status": status}
        result = _result(order, client_order_id)
        if result.status == "unknown":
            # an acknowledgement that says nothing of the order's state (Bybit, OKX, Bitget): one lookup
            # now (a read, never a resend); if it fails or finds nothing yet, the outcome stays unknown
            # and the engine resolves it by lookup before anything else is sent on the symbol
            try:  # one attempt, no retry: this is a shortcut, the engine's lookup is the guarantee
                found = self._checked(self.profile.lookup(self.exchange, symbol=symbol,
                                                          client_order_id=client_order_id), client_order_id)
            except Exception:  # noqa: BLE001 - the order was sent; an unconfirmed ack stays unknown
                found = None
            if found is not None and found.status != "unknown":
                return found
        return result

    def _checked(self, order: Mapping[str, Any] | None, client_order_id: str) -> OrderResult | None:
        """An order the venue returned for ``client_order_id``: it must carry that id (a venue that
        returns another order would make fastopt record someone else's fill as its own)."""
        if order is None:
            return None
        carried = order.get("clientOrderId")
        if carried is None or str(carried) != client_order_id:
            raise VenueError(f"{self.name}: the lookup of client order id {client_order_id} returned an order "
                             f"carrying {carried!r}; not trusted")
        return _result(order, client_order_id)

    def fetch_order_by_client_id(self, *, symbol: str, client_order_id: str) -> OrderResult | None:
        """The order with this client order id (the profile's lookup, retried like a read), or None when
        the exchange has none."""
        try:
            order = self._read("order", lambda: self.profile.lookup(self.exchange, symbol=symbol,
                                                                    client_order_id=client_order_id))
        except OrderNotFound:
            return None
        return self._checked(order, client_order_id)

    def cancel_order_by_client_id(self, *, symbol: str, client_order_id: str) -> OrderResult | None:
        """Cancel a working order; its final state, or None when the venue has no such order.

        The answer is the order as canceled (``status`` "canceled", ``filled`` the part that filled
        before). When the venue answers "unknown order" (none, or already final) or with no status,
        the order is looked up: "filled" if it filled meanwhile, None if it never existed.
        Retried like a read (cancelling twice is harmless).
        """
        try:
            order = self._read("cancel", lambda: self.profile.cancel(self.exchange, symbol=symbol,
                                                                     client_order_id=client_order_id))
        except (OrderNotFound, InvalidOrder):
            order = None
        result = None if order is None else _result(order, client_order_id)
        if result is None or result.status == "unknown" or order.get("clientOrderId") != client_order_id:
            return self.fetch_order_by_client_id(symbol=symbol, client_order_id=client_order_id) or result
        return result

    def open_orders(self, prefix: str) -> list[tuple[str, OrderResult]]:
        """``(symbol, order)`` for every open order on the account whose client id starts with ``prefix``
        (the profile's listing; one request where the venue allows it), retried like a read."""
        self._ensure_markets()
        orders = self._read("open orders", lambda: self.profile.open_orders(self.exchange))
        out: list[tuple[str, OrderResult]] = []
        for order in orders or []:
            cid = str(order.get("clientOrderId") or "")
            if cid and cid.startswith(prefix):
                out.append((str(order.get("symbol")), _result(order, cid)))
        return out


def _decimal_or_none(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value)) if value is not None else None
    except ArithmeticError:
        return None
    return number if number is not None and number.is_finite() and number > 0 else None


def _smallest(*values: Decimal | None) -> Decimal | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _base_of(text: str) -> str | None:
    """The base asset of a symbol as strategies write it (``BTC/USDT:USDT``, ``BTC-USD``, ``BTCUSDT``)."""
    cleaned = text.strip().upper().split(":")[0]
    for sep in ("/", "-", "_"):
        if sep in cleaned:
            return cleaned.split(sep)[0] or None
    for quote in ("USDT", "USDC", "BUSD", "USD"):
        if cleaned.endswith(quote) and len(cleaned) > len(quote):
            return cleaned[: -len(quote)]
    return None


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
