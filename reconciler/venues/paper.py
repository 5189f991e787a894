"""The embedded paper exchange: market orders filled at the current price, in SQLite.

State (positions, cash, every fill) lives in one SQLite file next to the
config, so it survives restarts. Market orders fill completely at the current
price moved against the trader by ``slippage_bps`` and pay ``fee_bps`` of the
notional; equity = cash + sum(position x price) (positions are linear perps,
contract size 1, account currency = quote currency).

Markets: unless overridden (``markets`` argument, e.g. from the
``exchange_settings.paper.markets`` config key: symbol -> {"amount_step",
"min_amount", "min_cost"}), a symbol priced ``p`` gets the amount step
``10 ** floor(log10(5 / p))`` (worth 0.5 to 5 account-currency units, as on
Binance: BTC 0.00001 at 95k, ETH 0.001 at 3.5k), min amount one step and min
cost 5.

A market spec may also give ``max_amount`` (the largest amount of one order,
contracts = base units here; a larger order is refused like Binance's -4005).

Client order ids are unique (a second order with a known id is refused, like
on a real exchange), and :meth:`PaperExchange.fetch_order_by_client_id` finds
every order ever placed.

Venue interface (same as :class:`reconciler.venues.ccxt_venue.CcxtVenue`): orders are
synchronous (filled or refused at once), so ``order_settle_s`` is 0,
:meth:`~PaperExchange.open_orders` is always empty and
:meth:`~PaperExchange.cancel_order_by_client_id` only looks the order up;
:meth:`~PaperExchange.check_account` has nothing to check;
:meth:`~PaperExchange.reference_prices` has no independent source (``{}``);
:meth:`~PaperExchange.fetch_equity` is cash + sum(position x last known price);
:meth:`~PaperExchange.resolve_symbol` maps ``BTCUSDT`` / ``BTC-USDT`` /
``btc/usdt`` to ``BTC/USDT:USDT``.
"""
from __future__ import annotations

import math
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from reconciler.errors import InsufficientFunds, InvalidOrder, TemporaryError
from reconciler.model import Market, OrderResult

DEFAULT_MIN_COST = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (symbol TEXT PRIMARY KEY, amount TEXT NOT NULL, entry_price REAL NOT NULL);
CREATE TABLE IF NOT EXISTS fills (
    client_order_id TEXT PRIMARY KEY, ts TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    amount TEXT NOT NULL, price REAL NOT NULL, fee REAL NOT NULL, reduce_only INTEGER NOT NULL
);
"""


def default_market(symbol: str, price: float) -> Market:
    """Default paper trading rules for a symbol priced ``price`` (see module doc)."""
    exponent = math.floor(math.log10(5.0 / price)) if price > 0 else 0
    step = Decimal(1).scaleb(exponent)
    return Market(symbol=symbol, amount_step=step, min_amount=step, min_cost=DEFAULT_MIN_COST)


def _decimal(symbol: str, key: str, value: Any, *, positive: bool) -> Decimal:
    """A finite decimal (> 0 with ``positive``, else >= 0) from a spec value; ValueError naming it."""
    try:
        out = Decimal(str(value)) if not isinstance(value, bool) else Decimal("NaN")
    except ArithmeticError:
        out = Decimal("NaN")
    if not out.is_finite() or out < 0 or (positive and out == 0):
        raise ValueError(f"{key} of {symbol} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return out


def market_from_spec(symbol: str, spec: Mapping[str, Any]) -> Market:
    """A Market from a ``{"amount_step", "min_amount", "min_cost", "max_amount"}`` mapping (all but
    amount_step optional; max_amount None = no limit); ValueError on a bad value."""
    if not isinstance(spec, Mapping) or "amount_step" not in spec:
        raise ValueError(f"market {symbol!r} must be an object with amount_step (min_amount, min_cost, "
                         "max_amount optional)")
    step = _decimal(symbol, "amount_step", spec["amount_step"], positive=True)
    max_amount = spec.get("max_amount")
    return Market(
        symbol=symbol,
        amount_step=step,
        min_amount=_decimal(symbol, "min_amount", spec.get("min_amount", step), positive=False),
        min_cost=float(_decimal(symbol, "min_cost", spec.get("min_cost", DEFAULT_MIN_COST), positive=False)),
        max_amount=None if max_amount is None else _decimal(symbol, "max_amount", max_amount, positive=True),
    )


#: quote currencies resolve_symbol recognises, longest first (BTCBUSD is BTC/BUSD, not BTCB/USD)
PAPER_QUOTES = ("USDT", "USDC", "BUSD", "USD")
_ASSET = re.compile(r"[A-Z0-9]+")


def canonical_symbol(raw: Any) -> str | None:
    """``BASE/QUOTE:QUOTE`` (upper case) for ``BASE/QUOTE:QUOTE``, ``BASE/QUOTE``, ``BASE-QUOTE`` or
    ``BASEQUOTE`` with QUOTE one of :data:`PAPER_QUOTES`; None for anything else."""
    if not isinstance(raw, str):
        return None
    text = raw.strip().upper()
    settle = None
    if ":" in text:
        text, settle = text.split(":", 1)
    if "/" in text or "-" in text:
        parts = re.split(r"[/-]", text)
        if len(parts) != 2:
            return None
        base, quote = parts
    else:
        if settle is not None:
            return None
        quote = next((q for q in PAPER_QUOTES if text.endswith(q) and len(text) > len(q)), "")
        base = text[: -len(quote)] if quote else ""
    if quote not in PAPER_QUOTES or settle not in (None, quote) or base == quote:
        return None
    if not _ASSET.fullmatch(base):
        return None
    return f"{base}/{quote}:{quote}"


class PaperExchange:
    """Paper venue with the same interface as :class:`reconciler.venues.ccxt_venue.CcxtVenue`."""

    name = "paper"
    #: orders are synchronous: "no such order" is final at once
    order_settle_s = 0.0

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        price_source: Callable[[list[str]], dict[str, float]],
        initial_cash: float,
        fee_bps: float = 4.0,
        slippage_bps: float = 2.0,
        markets: Mapping[str, Mapping[str, Any]] | None = None,
        check_margin: bool = False,
        read_only: bool = False,
    ) -> None:
        """``read_only`` (dry runs): work on an in-memory copy of the database; the file is never created
        or changed."""
        if markets is not None and not isinstance(markets, Mapping):
            raise ValueError("markets must be an object of symbol -> {amount_step, min_amount, min_cost, max_amount}")
        for key, value in (("fee_bps", fee_bps), ("slippage_bps", slippage_bps)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")
        self.db_path = Path(db_path)
        self.price_source = price_source
        self.fee_rate = fee_bps / 1e4
        self.slippage = slippage_bps / 1e4
        self.check_margin = check_margin
        self._market_specs = {s: market_from_spec(s, spec) for s, spec in (markets or {}).items()}
        self._markets: dict[str, Market] = {}
        self._last_prices: dict[str, float] = {}
        if read_only:
            self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            if self.db_path.exists():
                source = sqlite3.connect(f"{self.db_path.resolve().as_uri()}?mode=ro", uri=True)
                try:
                    source.backup(self._db)
                finally:
                    source.close()
        else:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if self._meta("cash") is None:
            self._db.execute("INSERT INTO meta VALUES ('cash', ?)", (repr(float(initial_cash)),))
            self._db.execute(
                "INSERT INTO meta VALUES ('created_at', ?)", (datetime.now(timezone.utc).isoformat(),)
            )

    def close(self) -> None:
        self._db.close()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    @property
    def cash(self) -> float:
        return float(self._meta("cash") or 0.0)

    # -- reads ------------------------------------------------------------
    def check_account(self) -> None:
        """Nothing to check: the paper account is always one-way, in the account currency."""

    def reference_prices(self, symbols: Iterable[str]) -> dict[str, float]:
        """No independent price source: ``{}``."""
        return {}

    #: this reconciler's client ids on the paper book: fastopt's own (``fo`` + 30 hex)
    client_id_prefix = "fo"

    def format_client_id(self, client_order_id: str) -> str:
        """Paper takes fastopt's client order ids as they are."""
        return client_order_id

    def resolve_symbol(self, raw: str) -> str | None:
        """The canonical symbol a strategy's symbol names (see :func:`canonical_symbol`), or None."""
        return canonical_symbol(raw)

    def explain_symbol(self, raw: str) -> str:
        """Why :meth:`resolve_symbol` gives nothing for ``raw``."""
        return ("names no market on paper (expected BASE/QUOTE:QUOTE, BASE/QUOTE, BASE-QUOTE or BASEQUOTE with "
                "QUOTE one of USDT, USDC, BUSD, USD)")

    def fetch_equity(self) -> float | None:
        """Equity in the account currency: cash + sum(position x last known price).

        A held symbol without a known price is priced once through the price source;
        None when one is still unpriced.
        """
        positions = self.fetch_positions()
        missing = [s for s in positions if s not in self._last_prices]
        if missing:
            self.fetch_prices(missing)
        if any(s not in self._last_prices for s in positions):
            return None
        return self.cash + math.fsum(a * self._last_prices[s] for s, a in positions.items())

    def fetch_prices(self, symbols: Iterable[str]) -> dict[str, float]:
        wanted = sorted(set(symbols))
        prices = self.price_source(wanted) if wanted else {}
        self._last_prices.update(prices)
        return prices

    def load_markets(self, symbols: Iterable[str], prices: Mapping[str, float]) -> dict[str, Market]:
        out: dict[str, Market] = {}
        for symbol in symbols:
            market = self._market_specs.get(symbol) or self._markets.get(symbol)
            if market is None and symbol in prices:
                market = self._markets[symbol] = default_market(symbol, prices[symbol])
            if market is not None:
                out[symbol] = market
        return out

    def fetch_positions(self) -> dict[str, float]:
        """Signed positions in base units; flat symbols absent."""
        try:
            rows = self._db.execute("SELECT symbol, amount FROM positions").fetchall()
        except sqlite3.Error as exc:
            raise TemporaryError(f"paper database {self.db_path}: {exc}") from None
        return {symbol: float(amount) for symbol, amount in rows if Decimal(amount) != 0}

    def equity(self, prices: Mapping[str, float]) -> float:
        positions = self.fetch_positions()
        return self.cash + math.fsum(a * prices.get(s, 0.0) for s, a in positions.items())

    # -- orders -----------------------------------------------------------
    def create_order(
        self, *, symbol: str, side: str, amount: Decimal, reduce_only: bool, client_order_id: str
    ) -> OrderResult:
        """Fill a market order completely, atomically with its bookkeeping."""
        if side not in ("buy", "sell"):
            raise InvalidOrder(f"paper: side must be buy or sell, got {side!r}")
        price = self._last_prices.get(symbol)
        if price is None:
            price = self.fetch_prices([symbol]).get(symbol)
        if price is None:
            raise InvalidOrder(f"paper: no price for {symbol}")
        market = self.load_markets([symbol], {symbol: price})[symbol]
        if amount <= 0 or amount % market.amount_step != 0:
            raise InvalidOrder(f"paper: amount {amount} of {symbol} is not a positive multiple of {market.amount_step}")
        if market.max_amount is not None and amount > market.max_amount:
            raise InvalidOrder(f"paper: amount {amount} of {symbol} is above the market's max {market.max_amount}")
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # reads and writes in one transaction: safe with two processes
        try:
            row = db.execute("SELECT amount, entry_price FROM positions WHERE symbol = ?", (symbol,)).fetchone()
            held = Decimal(row[0]) if row else Decimal(0)
            sign = 1 if side == "buy" else -1
            if reduce_only:
                if held == 0 or (held > 0) == (sign > 0):
                    raise InvalidOrder(f"paper: reduce-only {side} of {symbol} would not reduce the position {held}")
                amount = min(amount, abs(held))
            elif amount < market.min_amount or float(amount) * price < market.min_cost:
                raise InvalidOrder(f"paper: {amount} {symbol} is below the market minimum")
            fill_price = price * (1.0 + sign * self.slippage)
            notional = float(amount) * fill_price
            fee = notional * self.fee_rate
            new_held = held + sign * amount
            cash = float(db.execute("SELECT value FROM meta WHERE key = 'cash'").fetchone()[0]) - sign * notional - fee
            if self.check_margin and cash < 0 and not reduce_only:
                raise InsufficientFunds(f"paper: not enough cash for {amount} {symbol}")
            flipped = held == 0 or (held > 0) != (new_held > 0)
            entry = fill_price if flipped else row[1]
            db.execute(
                "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (client_order_id, datetime.now(timezone.utc).isoformat(), symbol, side, str(amount), fill_price, fee,
                 int(reduce_only)),
            )
            db.execute(
                "INSERT INTO positions VALUES (?, ?, ?) ON CONFLICT(symbol) DO UPDATE SET amount = excluded.amount, "
                "entry_price = excluded.entry_price",
                (symbol, str(new_held), entry),
            )
            db.execute("UPDATE meta SET value = ? WHERE key = 'cash'", (repr(cash),))
            db.execute("COMMIT")
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK")
            raise InvalidOrder(f"paper: duplicate client order id {client_order_id}") from None
        except sqlite3.Error as exc:  # disk full, I/O error, locked: rolled back, so the order was not applied
            _rollback(db)
            raise TemporaryError(f"paper database {self.db_path}: {exc}") from None
        except BaseException:
            _rollback(db)
            raise
        return OrderResult(client_order_id, "filled", float(amount), fill_price, client_order_id)

    def fetch_order_by_client_id(self, *, symbol: str, client_order_id: str) -> OrderResult | None:
        try:
            row = self._db.execute(
                "SELECT amount, price FROM fills WHERE client_order_id = ?", (client_order_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise TemporaryError(f"paper database {self.db_path}: {exc}") from None
        if row is None:
            return None
        return OrderResult(client_order_id, "filled", float(row[0]), float(row[1]), client_order_id)

    def cancel_order_by_client_id(self, *, symbol: str, client_order_id: str) -> OrderResult | None:
        """Orders fill at once, so there is nothing to cancel: the order as it is (filled), or None."""
        return self.fetch_order_by_client_id(symbol=symbol, client_order_id=client_order_id)

    def open_orders(self, prefix: str) -> list[tuple[str, OrderResult]]:
        """Never any open order (orders are synchronous): ``[]``."""
        return []

    def fills(self) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM fills ORDER BY ts")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back the open transaction; a connection that has none (or cannot) is left as it is."""
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error:
        pass
