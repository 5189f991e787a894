"""Daily OHLCV for a ccxt symbol, from the best source available, never hanging.

Resolution order of :func:`load_prices`:

1. a prices folder (``prices_dir`` argument, else env ``FASTOPT_PRICES_DIR``)
   holding CSVs named like ``BTC-USD.csv`` (columns ``date,open,high,low,close,volume``,
   one row per UTC day). When a folder is given explicitly, the file must be
   there: a missing or malformed CSV is an InputError (no silent fallback);
2. ccxt public daily candles (no API key; default ``binanceusdm``), with a
   short timeout and a local cache (env ``FASTOPT_CACHE_DIR``, else the user
   cache directory ``$XDG_CACHE_HOME/fastopt/prices`` or ``~/.cache/fastopt/prices``;
   never inside the installed package) written atomically. Skipped when env
   ``FASTOPT_OFFLINE=1``. A fresh cache (last candle no older than yesterday)
   is used without touching the network; a stale cache is used when the
   network fails (or offline);
3. the real daily history embedded in the package (``fastopt/data/prices/``:
   BTC, ETH, BNB, SOL to 2024-12-31, for any USD-like quote: ``BTC/USDT:USDT``,
   ``BTC/USDT``, ``BTC-USD``, ...), source ``embedded:BTC-USD``;
4. only when asked for (``synthetic=True``, else env ``FASTOPT_SYNTHETIC=1``):
   a seeded synthetic market (geometric random walk with volatility and drift
   regimes; the seed derives from the symbol, so it is reproducible), announced
   by a WARNING line on stderr at every use. Not asked for: an InputError in one
   line naming the symbol and the ways to give it prices.

Prices are in quote currency per unit of base; dates are ``datetime64[D]``.
"""
from __future__ import annotations

import functools
import gzip
import importlib.resources
import io
import os
import sys
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fastopt.files.atomic import atomic_write_text
from fastopt.errors import InputError

DEFAULT_EXCHANGE = "binanceusdm"
#: Per-request network timeout (seconds) and overall budget for the name lookup.
NETWORK_TIMEOUT_S = 4.0
DNS_TIMEOUT_S = 2.0
#: First day fetched from the exchange / generated synthetically.
DEFAULT_START = np.datetime64("2019-01-01", "D")
CSV_HEADER = "date,open,high,low,close,volume"
#: Rough last prices of the synthetic market (quote currency per unit); other bases get a seeded level.
_ANCHOR_PRICES = {"BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0, "BNB": 600.0, "XRP": 0.6, "DOGE": 0.15}
_COLUMNS = ("open", "high", "low", "close", "volume")
#: Where the embedded real series live inside the package: ``<package>/<folder>/<STEM>.csv.gz``.
EMBEDDED_PACKAGE = "fastopt"
EMBEDDED_FOLDER = ("data", "prices")
EMBEDDED_SUFFIX = ".csv.gz"


@dataclass(frozen=True)
class PriceHistory:
    """Daily candles of one symbol; every array has length T, dates sorted unique."""

    symbol: str
    dates: NDArray[np.datetime64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]
    source: str

    def __len__(self) -> int:
        return int(self.dates.size)

    def to_csv(self) -> str:
        """The canonical CSV text (header + one row per day, repr-exact floats)."""
        out = io.StringIO()
        out.write(CSV_HEADER + "\n")
        day_strings = np.datetime_as_string(self.dates, unit="D")
        columns = [getattr(self, name).tolist() for name in _COLUMNS]  # Python floats: repr-exact
        for i, day in enumerate(day_strings):
            out.write(f"{day},{columns[0][i]!r},{columns[1][i]!r},{columns[2][i]!r},{columns[3][i]!r},{columns[4][i]!r}\n")
        return out.getvalue()


# --------------------------------------------------------------------------- symbols


def base_quote(symbol: str) -> tuple[str, str]:
    """``"BTC/USDT:USDT"`` -> ``("BTC", "USDT")``; ``"ETH-USD"`` -> ``("ETH", "USD")``."""
    core = symbol.split(":")[0]
    for sep in ("/", "-", "_"):
        if sep in core:
            base, quote = core.split(sep, 1)
            return base.upper(), quote.upper()
    raise InputError(f"cannot read base/quote from symbol {symbol!r} (expected like 'BTC/USDT:USDT')")


def csv_candidates(symbol: str) -> list[str]:
    """File names tried in a prices folder, most specific first (e.g. BTC-USDT.csv, BTC-USD.csv)."""
    base, quote = base_quote(symbol)
    names = [f"{base}-{quote}.csv"]
    if quote in ("USDT", "USDC", "BUSD", "USD"):
        names.append(f"{base}-USD.csv")
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- CSV


def parse_price_csv(text: str, *, symbol: str, source: str) -> PriceHistory:
    """Parse and validate CSV text; ValueError with the reason."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty price file")
    header = [h.strip().lower() for h in lines[0].split(",")]
    missing = [c for c in ("date", *_COLUMNS) if c not in header]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)} (need {CSV_HEADER})")
    if len(lines) < 2:
        raise ValueError("no price rows")
    index = {name: header.index(name) for name in ("date", *_COLUMNS)}
    days: list[str] = []
    values = np.empty((len(lines) - 1, len(_COLUMNS)), dtype=np.float64)
    for row_number, line in enumerate(lines[1:]):
        cells = line.split(",")
        if len(cells) != len(header):
            raise ValueError(f"line {row_number + 2}: expected {len(header)} fields, got {len(cells)}")
        days.append(cells[index["date"]].strip()[:10])
        for j, name in enumerate(_COLUMNS):
            cell = cells[index[name]].strip()
            try:
                values[row_number, j] = float(cell) if cell else np.nan
            except ValueError:
                raise ValueError(f"line {row_number + 2}: {name} {cell!r} is not a number") from None
    try:
        dates = np.array(days, dtype="datetime64[D]")
    except ValueError as exc:
        raise ValueError(f"unparseable date: {exc}") from None
    order = np.argsort(dates, kind="stable")
    dates, values = dates[order], values[order]
    if dates.size > 1 and (dates[1:] == dates[:-1]).any():
        raise ValueError("duplicate dates")
    close = values[:, 3]
    # Rows without a usable close (holidays in some exports) are dropped, not invented.
    usable = np.isfinite(close) & (close > 0)
    if not usable.any():
        raise ValueError("no positive finite close price")
    dates, values = dates[usable], values[usable]
    for j in range(4):  # open/high/low fall back to the close when missing
        column = values[:, j]
        bad = ~np.isfinite(column) | (column <= 0)
        column[bad] = values[bad, 3]
    values[~np.isfinite(values[:, 4]), 4] = 0.0
    return PriceHistory(
        symbol=symbol,
        dates=dates,
        open=np.ascontiguousarray(values[:, 0]),
        high=np.ascontiguousarray(values[:, 1]),
        low=np.ascontiguousarray(values[:, 2]),
        close=np.ascontiguousarray(values[:, 3]),
        volume=np.ascontiguousarray(values[:, 4]),
        source=source,
    )


def read_price_csv(path: str | os.PathLike[str], *, symbol: str) -> PriceHistory:
    """Read one price CSV; InputError naming the file and the reason."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("price file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", path=path) from None
    try:
        return parse_price_csv(text, symbol=symbol, source=f"csv:{path}")
    except ValueError as exc:
        raise InputError(str(exc), path=path) from None


def find_price_csv(prices_dir: str | os.PathLike[str], symbol: str) -> Path:
    """The CSV of ``symbol`` in ``prices_dir``; InputError listing the names tried."""
    folder = Path(prices_dir)
    if not folder.is_dir():
        raise InputError("prices folder not found", path=folder)
    names = csv_candidates(symbol)
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"no price file for {symbol} (tried {', '.join(names)})", path=folder)


# --------------------------------------------------------------------------- embedded


def _embedded_root() -> importlib.resources.abc.Traversable:
    return importlib.resources.files(EMBEDDED_PACKAGE).joinpath(*EMBEDDED_FOLDER)


@functools.cache
def embedded_files() -> dict[str, str]:
    """CSV file name -> resource name of every embedded series, e.g. ``{"BTC-USD.csv": "BTC-USD.csv.gz"}``."""
    root = _embedded_root()
    if not root.is_dir():
        return {}
    return {
        entry.name[: -len(".gz")]: entry.name
        for entry in sorted(root.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(EMBEDDED_SUFFIX) and entry.is_file()
    }


def embedded_symbols() -> list[str]:
    """Stems of the embedded series, e.g. ``["BNB-USD", "BTC-USD", "ETH-USD", "SOL-USD"]``."""
    return [name[: -len(".csv")] for name in embedded_files()]


@functools.cache
def embedded_csv_text(file_name: str) -> str:
    """The CSV text of one embedded series (``"BTC-USD.csv"``), exactly as it was packaged."""
    try:
        resource = embedded_files()[file_name]
    except KeyError:
        raise InputError(f"no embedded price series {file_name!r} (have {', '.join(embedded_files()) or 'none'})") from None
    return gzip.decompress(_embedded_root().joinpath(resource).read_bytes()).decode("utf-8")


def load_embedded(symbol: str) -> PriceHistory | None:
    """The embedded real daily history of ``symbol`` (any USD-like quote), or None when it has none."""
    available = embedded_files()
    for name in csv_candidates(symbol):
        if name in available:
            stem = name[: -len(".csv")]
            return parse_price_csv(embedded_csv_text(name), symbol=symbol, source=f"embedded:{stem}")
    return None


def export_embedded_prices(folder: str | os.PathLike[str]) -> Path:
    """Write every embedded series as a plain CSV (``BTC-USD.csv``, ...) into ``folder``; returns it.

    The files are byte-for-byte the packaged text, so they work as a ``--prices-dir``.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name in embedded_files():
        atomic_write_text(out / name, embedded_csv_text(name))
    return out


# --------------------------------------------------------------------------- synthetic


def synthetic_prices(
    symbol: str,
    *,
    start: np.datetime64 = DEFAULT_START,
    end: np.datetime64 | None = None,
) -> PriceHistory:
    """A seeded synthetic daily market for ``symbol`` (same symbol -> same prices).

    Geometric random walk with Student-t shocks, calm/stormy volatility regimes
    (about 2.2 % / 4.5 % daily) and bull/bear drift regimes, scaled so the last
    close is a plausible price for the asset. ``end`` defaults to yesterday (UTC).
    """
    last = np.datetime64(end, "D") if end is not None else _today() - np.timedelta64(1, "D")
    first = np.datetime64(start, "D")
    n_days = int((last - first).astype(np.int64)) + 1
    if n_days < 2:
        raise ValueError("synthetic range needs at least 2 days")
    base, _quote = base_quote(symbol)
    rng = np.random.default_rng(zlib.crc32(base.encode("utf-8")))
    regime_switch = rng.random((n_days, 2)) < np.array([1 / 120, 1 / 200])
    regimes = np.cumsum(regime_switch, axis=0) % 2 == 1
    stormy, bear = regimes[:, 0], regimes[:, 1]
    vol = np.where(stormy, 0.045, 0.022)
    drift = np.where(bear, -0.0012, 0.0015)
    log_returns = drift + vol * rng.standard_t(df=4, size=n_days) / np.sqrt(2.0)
    # The path ends at a plausible price for the asset (what a reconciler would trade at).
    last_price = _ANCHOR_PRICES.get(base, float(10 ** rng.uniform(-1.0, 3.0)))
    path = np.exp(np.cumsum(log_returns))
    start_price = last_price / path[-1]
    close = start_price * path
    previous = np.concatenate([[start_price], close[:-1]])
    spread = np.abs(rng.normal(0.0, vol * 0.6, size=n_days))
    high = np.maximum(previous, close) * (1 + spread)
    low = np.minimum(previous, close) / (1 + spread)
    volume = np.exp(rng.normal(18, 0.5, size=n_days))
    return PriceHistory(
        symbol=symbol,
        dates=first + np.arange(n_days).astype("timedelta64[D]"),
        open=previous,
        high=high,
        low=low,
        close=close,
        volume=volume,
        source="synthetic",
    )


# --------------------------------------------------------------------------- network


def _today() -> np.datetime64:
    return np.datetime64("today", "D")


def resolves(host: str, timeout_s: float) -> bool:
    """Whether ``host`` resolves within ``timeout_s`` (DNS can block longer than socket timeouts)."""
    import socket

    result: list[bool] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, 443)
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(result and result[0])


def fetch_ccxt_daily(
    symbol: str,
    *,
    exchange_id: str = DEFAULT_EXCHANGE,
    start: np.datetime64 = DEFAULT_START,
    timeout_s: float = NETWORK_TIMEOUT_S,
) -> PriceHistory:
    """Public daily candles from a ccxt exchange (no key). Raises OSError-like errors on failure.

    Only closed candles are kept (today's forming candle is dropped).
    """
    import ccxt  # imported lazily: it is slow to import

    exchange = getattr(ccxt, exchange_id)({"timeout": int(timeout_s * 1000), "enableRateLimit": False})
    host = "fapi.binance.com" if exchange_id == "binanceusdm" else None
    if host and not resolves(host, DNS_TIMEOUT_S):
        raise ConnectionError(f"cannot resolve {host}")
    since = int(np.datetime64(start, "ms").astype(np.int64))
    rows: list[list[float]] = []
    for _page in range(20):
        batch = exchange.fetch_ohlcv(symbol, timeframe="1d", since=since, limit=1000)
        if not batch:
            break
        rows.extend(batch)
        next_since = int(batch[-1][0]) + 86_400_000
        if next_since <= since or len(batch) < 2:
            break
        since = next_since
    if not rows:
        raise ConnectionError(f"{exchange_id} returned no candles for {symbol}")
    data = np.array(rows, dtype=np.float64)
    dates = data[:, 0].astype("int64").astype("datetime64[ms]").astype("datetime64[D]")
    dates, unique_index = np.unique(dates, return_index=True)
    data = data[unique_index]
    closed = dates < _today()
    return PriceHistory(
        symbol=symbol,
        dates=dates[closed],
        open=data[closed, 1].copy(),
        high=data[closed, 2].copy(),
        low=data[closed, 3].copy(),
        close=data[closed, 4].copy(),
        volume=data[closed, 5].copy(),
        source=f"ccxt:{exchange_id}",
    )


def default_cache_dir() -> Path:
    """``$FASTOPT_CACHE_DIR``, else ``$XDG_CACHE_HOME/fastopt/prices`` (an absolute XDG_CACHE_HOME only, as
    the XDG spec says), else ``~/.cache/fastopt/prices``: the user's cache, never the installed package."""
    env = os.environ.get("FASTOPT_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "fastopt" / "prices"


def is_offline() -> bool:
    """True when env ``FASTOPT_OFFLINE`` is set to a true value (1, true, yes)."""
    return _env_flag("FASTOPT_OFFLINE")


def synthetic_requested() -> bool:
    """True when env ``FASTOPT_SYNTHETIC`` is set to a true value (1, true, yes): synthetic fallback allowed."""
    return _env_flag("FASTOPT_SYNTHETIC")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _say(message: str) -> None:
    print(f"fastopt: {message}", file=sys.stderr)


def load_prices(
    symbol: str,
    *,
    prices_dir: str | os.PathLike[str] | None = None,
    exchange_id: str = DEFAULT_EXCHANGE,
    offline: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    start: np.datetime64 = DEFAULT_START,
    synthetic: bool | None = None,
) -> PriceHistory:
    """Daily candles of ``symbol`` (see the module docstring for the resolution order).

    ``offline`` defaults to env ``FASTOPT_OFFLINE``; ``synthetic`` (allow the seeded
    synthetic market as the last resort) defaults to env ``FASTOPT_SYNTHETIC``.
    """
    folder = prices_dir if prices_dir is not None else os.environ.get("FASTOPT_PRICES_DIR") or None
    if folder is not None:
        return read_price_csv(find_price_csv(folder, symbol), symbol=symbol)
    offline = is_offline() if offline is None else offline
    synthetic = synthetic_requested() if synthetic is None else synthetic
    base, quote = base_quote(symbol)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = cache / f"{exchange_id}_{base}-{quote}_1d.csv"
    cached: PriceHistory | None = None
    if cache_file.is_file():
        try:
            cached = read_price_csv(cache_file, symbol=symbol)
        except InputError as err:
            _say(f"ignoring unreadable price cache ({err})")
    yesterday = _today() - np.timedelta64(1, "D")
    if cached is not None and cached.dates[-1] >= yesterday:
        return cached
    if not offline:
        try:
            fetched = fetch_ccxt_daily(symbol, exchange_id=exchange_id, start=start)
        except Exception as exc:  # network errors of every kind: fall back, never hang
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        else:
            try:
                atomic_write_text(cache_file, fetched.to_csv())
            except OSError as exc:
                _say(f"could not write price cache {cache_file}: {exc}")
            return fetched
    else:
        reason = "FASTOPT_OFFLINE=1"
    if cached is not None:
        _say(f"using cached {symbol} prices up to {cached.dates[-1]} ({reason})")
        return cached
    embedded = load_embedded(symbol)
    if embedded is not None:
        _say(f"using the embedded real {symbol} daily history up to {embedded.dates[-1]} ({reason})")
        return embedded
    have = ", ".join(embedded_symbols()) or "none"
    if synthetic:
        asked = "FASTOPT_SYNTHETIC is set" if synthetic_requested() else "synthetic prices were asked for"
        _say(
            f"WARNING: SYNTHETIC PRICES for {symbol}: no real price data ({reason}; embedded: {have}), "
            f"using a seeded random-walk market ({asked}), not market history"
        )
        return synthetic_prices(symbol, start=start)
    raise InputError(
        f"no price data for {symbol} ({reason}; no cache; the embedded real history has {have} only): "
        "give --prices-dir DIR / FASTOPT_PRICES_DIR, go online, or set FASTOPT_SYNTHETIC=1 for a synthetic market"
    )
