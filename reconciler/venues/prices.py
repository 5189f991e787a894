"""Where the paper exchange gets prices.

Order of sources: ccxt public mark prices (else tickers) when online (one quick attempt, default
venue ``binanceusdm``; skipped when ``FASTOPT_OFFLINE=1``; on failure the
source goes offline for ``retry_online_s`` seconds), then a local price file
(JSON object symbol -> price), or a folder of OHLCV ``*.csv`` files whose
last ``close`` is used (``BTC-USD.csv`` prices BTC/USDT:USDT, BTC/USDT, BTC/USD).
Without a price file: the last daily close exactly as the strategies' backtests
resolve prices (:func:`fastopt.backtest.prices.load_prices` offline: env
``FASTOPT_PRICES_DIR``, the local price cache, the real history embedded in
fastopt, the seeded synthetic market only with ``FASTOPT_SYNTHETIC=1``), so the
offline demo trades at the prices its strategies saw.
A symbol found in neither has no price and is skipped by the plan, never
traded blind. No price at all for any symbol is an error naming the file.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from fastopt.errors import InputError
from fastopt.backtest.prices import DNS_TIMEOUT_S, resolves


def offline_requested() -> bool:
    """True when ``FASTOPT_OFFLINE`` is set to a true value."""
    return os.environ.get("FASTOPT_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def read_price_file(path: str | os.PathLike[str]) -> dict[str, float]:
    """Read a JSON ``{symbol: price}`` file; InputError naming the file when invalid."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("price file not found", path=path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable price file: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise InputError("price file must be a JSON object of symbol -> price", path=path)
    prices: dict[str, float] = {}
    for symbol, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise InputError(f"price of {symbol!r} must be a positive number, got {value!r}", path=path)
        prices[str(symbol)] = float(value)
    return prices


class PriceSource:
    """Callable ``symbols -> {symbol: price}`` for the paper exchange (see module doc)."""

    def __init__(
        self,
        *,
        price_file: str | os.PathLike[str] | None,
        online_exchange: str = "binanceusdm",
        offline: bool | None = None,
        timeout_ms: int = 3000,
        retry_online_s: float = 300.0,
        use_strategy_prices: bool = True,
        online_settings: dict | None = None,
    ) -> None:
        self.price_file = None if price_file is None else Path(price_file)
        self.online_exchange = online_exchange
        self.offline = offline_requested() if offline is None else offline
        self.timeout_ms = timeout_ms
        self.retry_online_s = retry_online_s
        self._online_down_until = 0.0
        self._client = None
        self._file_cache: tuple[tuple[int, int], dict[str, float]] | None = None
        self.use_strategy_prices = use_strategy_prices
        #: ccxt settings of the online source (``api_base_url``, ``timeout``, ``options``;
        #: see reconciler.venues.ccxt_venue)
        self.online_settings = {"timeout": timeout_ms, **(online_settings or {})}
        self._history_cache: dict[str, float] = {}
        #: why live prices are not used (said in the fallback message), None while online works
        self.online_unavailable: str | None = "FASTOPT_OFFLINE=1 is set" if self.offline and offline is None else (
            "online prices disabled" if self.offline else None)

    def _from_file(self) -> dict[str, float]:
        if self.price_file is None:
            return {}
        try:
            st = self.price_file.stat()
        except FileNotFoundError:
            raise InputError("price file not found", path=self.price_file) from None
        key = (st.st_mtime_ns, st.st_size)
        if self._file_cache is None or self._file_cache[0] != key:
            reader = last_closes_from_csv_dir if self.price_file.is_dir() else read_price_file
            self._file_cache = (key, reader(self.price_file))
        return self._file_cache[1]

    def _online(self, symbols: list[str]) -> dict[str, float]:
        if self.offline or time.monotonic() < self._online_down_until:
            return {}
        base_url = self.online_settings.get("api_base_url")
        host = urlsplit(str(base_url)).hostname if base_url else (
            "fapi.binance.com" if self.online_exchange == "binanceusdm" else "www.google.com")
        if self._client is None and not resolves(host or "", DNS_TIMEOUT_S):
            self._online_down_until = time.monotonic() + self.retry_online_s
            self.online_unavailable = f"no network: {host} does not resolve"
            print(f"reconciler: live prices unavailable ({self.online_unavailable}); "
                  "paper prices from local sources", file=sys.stderr)
            return {}
        try:
            if self._client is None:
                from reconciler.venues.ccxt_venue import build_ccxt_exchange

                client = build_ccxt_exchange(self.online_exchange, self.online_settings, public_only=True)
                client.load_markets()
                self._client = client
            known = [s for s in symbols if s in self._client.markets]
            fetch = (self._client.fetch_mark_prices if self._client.has.get("fetchMarkPrices")
                     else self._client.fetch_tickers)
            tickers = fetch(known) if known else {}
        except Exception as exc:  # any failure: go offline for a while, fall back to the file
            self._online_down_until = time.monotonic() + self.retry_online_s
            first = str(exc).splitlines()[0][:120] if str(exc) else ""
            self.online_unavailable = f"{self.online_exchange} failed: {type(exc).__name__} {first}".rstrip()
            print(f"reconciler: live prices unavailable ({self.online_unavailable}); using local prices",
                  file=sys.stderr)
            return {}
        self.online_unavailable = f"not listed on {self.online_exchange}"
        out: dict[str, float] = {}
        for symbol, ticker in tickers.items():
            value = ticker.get("markPrice") or ticker.get("last") or ticker.get("close")
            if value:
                out[symbol] = float(value)
        return out

    def _from_strategy_prices(self, symbols: list[str]) -> dict[str, float]:
        """Last daily close as the strategies resolve it (FASTOPT_PRICES_DIR, local cache, the embedded real
        history, the synthetic market only with FASTOPT_SYNTHETIC=1); a symbol with none has no price.

        :func:`fastopt.backtest.prices.load_prices` is asked offline (the live attempt already failed or was
        skipped); its own notice would name FASTOPT_OFFLINE even when the user never set it, so it
        is replaced by one line saying why live prices were not used and where the price came from.
        """
        import contextlib
        import io

        from fastopt.backtest.prices import load_prices

        out: dict[str, float] = {}
        why = self.online_unavailable or "no live price"
        for symbol in symbols:
            if symbol not in self._history_cache:
                notices = io.StringIO()
                try:
                    with contextlib.redirect_stderr(notices):
                        history = load_prices(symbol, offline=True)
                except InputError as err:  # unpriced: the engine reports it as a problem of the cycle
                    print(f"reconciler: no paper price for {symbol}: {err.reason} (give --prices FILE)",
                          file=sys.stderr)
                    continue
                for line in notices.getvalue().splitlines():  # keep notices other than the replaced one
                    if "FASTOPT_OFFLINE=1" not in line:
                        print(line, file=sys.stderr)
                self._history_cache[symbol] = float(history.close[-1])
                origin = {"synthetic": "seeded synthetic market (FASTOPT_SYNTHETIC): no real daily candles for it"}.get(
                    history.source, history.source.removeprefix("csv:"))
                if history.source.startswith("embedded:"):
                    origin = (f"the real {history.source.removeprefix('embedded:')} history embedded in fastopt "
                              f"(last day {history.dates[-1]})")
                print(f"reconciler: paper price of {symbol} = {history.close[-1]:.6g}, last daily close from "
                      f"{origin} (live prices: {why})", file=sys.stderr)
            out[symbol] = self._history_cache[symbol]
        return out

    def __call__(self, symbols: list[str]) -> dict[str, float]:
        prices = self._online(symbols)
        missing = [s for s in symbols if s not in prices]
        if missing and self.price_file is not None:
            file_prices = self._from_file()
            prices.update({s: file_prices[s] for s in missing if s in file_prices})
        elif missing and self.use_strategy_prices:
            prices.update(self._from_strategy_prices(missing))
        elif missing and not prices:
            raise InputError("no prices: offline and no price file (give --prices FILE, a JSON object symbol -> price)")
        return prices


_QUOTES = ("USDT", "USDC", "USD", "BUSD")


def aliases_for_stem(stem: str) -> list[str]:
    """Symbols a price-file stem stands for: ``BTC-USD`` -> BTC/USDT:USDT, BTC/USDT, BTC/USD, BTC-USD."""
    cleaned = stem.upper().replace("_", "-")
    base = cleaned
    if "-" in cleaned:
        base = cleaned.split("-")[0]
    else:
        for quote in _QUOTES:
            if cleaned.endswith(quote) and len(cleaned) > len(quote):
                base = cleaned[: -len(quote)]
                break
    return [f"{base}/USDT:USDT", f"{base}/USDT", f"{base}/USD", stem]


def last_closes_from_csv_dir(folder: str | os.PathLike[str]) -> dict[str, float]:
    """Last close of every ``*.csv`` (with a ``close`` column) in ``folder``, under the aliases of its name."""
    out: dict[str, float] = {}
    folder = Path(folder)
    for path in sorted(folder.glob("*.csv")):
        try:
            with open(path, "rb") as handle:
                header = handle.readline().decode("utf-8").strip().lower().split(",")
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 4096))
                tail = handle.read().decode("utf-8", errors="replace").strip().splitlines()
        except OSError as exc:
            raise InputError(f"cannot read: {exc}", path=path) from None
        if "close" not in header or not tail:
            continue
        fields = tail[-1].split(",")
        try:
            close = float(fields[header.index("close")])
        except (ValueError, IndexError):
            raise InputError("last row has no numeric close", path=path) from None
        if math.isfinite(close) and close > 0:
            for alias in aliases_for_stem(path.stem):
                out.setdefault(alias, close)
    if not out:
        raise InputError("no *.csv with a close column", path=folder)
    return out
