"""The real daily prices embedded in the package (fastopt/data/prices): shipped, resolved, honest, exact."""
from __future__ import annotations

import gzip
import importlib.resources
import tomllib
from pathlib import Path

import numpy as np
import pytest

from fastopt.backtest import prices as prices_mod
from fastopt.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The project's shared price folder beside the repo: read by the provenance check only (skipped without it).
SHARED_PRICES = REPO_ROOT.parent / "shared" / "data" / "prices"
FILES = ["BNB-USD.csv", "BTC-USD.csv", "ETH-USD.csv", "SOL-USD.csv"]
FIRST_DAY = {"BTC-USD": "2014-09-17", "ETH-USD": "2017-11-09", "BNB-USD": "2017-11-09", "SOL-USD": "2020-04-10"}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No prices folder, no network, an empty cache, synthetic not asked for."""
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    monkeypatch.delenv("FASTOPT_SYNTHETIC", raising=False)
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")
    monkeypatch.setenv("FASTOPT_CACHE_DIR", str(tmp_path / "empty-cache"))


def test_embedded_data_is_package_data():
    """Inside the installed package (importlib.resources), small, and declared for a non-editable install."""
    root = importlib.resources.files("fastopt").joinpath("data", "prices")
    names = sorted(entry.name for entry in root.iterdir() if entry.name.endswith(".csv.gz"))
    assert names == [f"{name}.gz" for name in FILES]
    assert sorted(prices_mod.embedded_files()) == FILES
    total = sum(len(root.joinpath(name).read_bytes()) for name in names)
    assert total < 400_000  # a compact copy: a few hundred KB
    assert importlib.resources.files("fastopt").joinpath("data", "README.md").is_file()
    package_data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "data/prices/*.csv.gz" in package_data["fastopt"]


@pytest.mark.parametrize("name", FILES)
def test_embedded_series_are_whole_daily_ohlcv(name):
    text = prices_mod.embedded_csv_text(name)
    assert text.splitlines()[0] == prices_mod.CSV_HEADER
    stem = name.removesuffix(".csv")
    history = prices_mod.parse_price_csv(text, symbol=stem, source="t")
    assert len(history) == len(text.splitlines()) - 1  # no row dropped by the parser
    assert str(history.dates[0]) == FIRST_DAY[stem] and str(history.dates[-1]) == "2024-12-31"
    assert (np.diff(history.dates.astype(np.int64)) == 1).all()  # one row per UTC day, no gaps
    for column in ("open", "high", "low", "close"):
        assert (getattr(history, column) > 0).all()
    assert (history.volume >= 0).all()


def test_embedded_series_equal_the_shared_folder_exactly():
    """Provenance: byte-for-byte the project's shared price CSVs (only this check needs ../shared)."""
    if not SHARED_PRICES.is_dir():
        pytest.skip(f"{SHARED_PRICES} is absent (a plain clone): provenance check only")
    assert sorted(p.name for p in SHARED_PRICES.glob("*.csv")) == FILES
    for name in FILES:
        shared_text = (SHARED_PRICES / name).read_text(encoding="utf-8")
        assert prices_mod.embedded_csv_text(name) == shared_text, name
        embedded = prices_mod.load_embedded(name.replace(".csv", ""))
        shared = prices_mod.read_price_csv(SHARED_PRICES / name, symbol=name)
        for column in ("dates", "open", "high", "low", "close", "volume"):
            assert np.array_equal(getattr(embedded, column), getattr(shared, column)), (name, column)


def test_export_writes_plain_csvs_usable_as_a_prices_dir(tmp_path):
    folder = prices_mod.export_embedded_prices(tmp_path / "prices")
    assert sorted(p.name for p in folder.iterdir()) == FILES
    gz = importlib.resources.files("fastopt").joinpath("data", "prices", "SOL-USD.csv.gz").read_bytes()
    assert (folder / "SOL-USD.csv").read_bytes() == gzip.decompress(gz)
    from_dir = prices_mod.load_prices("SOL/USDT:USDT", prices_dir=folder)
    embedded = prices_mod.load_embedded("SOL/USDT:USDT")
    assert np.array_equal(from_dir.close, embedded.close) and np.array_equal(from_dir.dates, embedded.dates)


@pytest.mark.parametrize(
    "symbol,stem",
    [("BTC/USDT:USDT", "BTC-USD"), ("BTC/USDT", "BTC-USD"), ("BTC-USD", "BTC-USD"), ("eth/usdc:usdc", "ETH-USD"),
     ("BNB/USDT:USDT", "BNB-USD"), ("SOL/USD", "SOL-USD")],
)
def test_offline_resolves_to_the_embedded_history(offline, capsys, symbol, stem):
    history = prices_mod.load_prices(symbol)
    assert history.source == f"embedded:{stem}" and history.symbol == symbol
    assert str(history.dates[-1]) == "2024-12-31"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "embedded real" in err and "synthetic" not in err.lower()


def test_prices_folder_and_cache_come_before_the_embedded_history(offline, tmp_path, shared_prices):
    assert prices_mod.load_prices("BTC/USDT:USDT", prices_dir=shared_prices).source.startswith("csv:")
    stale = prices_mod.synthetic_prices("BTC/USDT:USDT", end=np.datetime64("2025-03-01"))
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    (cache / "binanceusdm_BTC-USDT_1d.csv").write_text(stale.to_csv())
    got = prices_mod.load_prices("BTC/USDT:USDT")
    assert got.source.startswith("csv:") and got.dates[-1] == np.datetime64("2025-03-01")


def test_no_embedded_series_is_one_clear_line_unless_synthetic_asked(offline, monkeypatch, capsys):
    for symbol in ("XRP/USDT:USDT", "BTC/EUR"):  # no series / no USD-like quote: never served USD prices
        with pytest.raises(InputError) as err:
            prices_mod.load_prices(symbol)
        message = str(err.value)
        assert "\n" not in message and f"no price data for {symbol}" in message
        assert "BTC-USD" in message and "FASTOPT_SYNTHETIC=1" in message
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("FASTOPT_SYNTHETIC", "1")
    assert prices_mod.load_prices("XRP/USDT:USDT").source == "synthetic"
    assert prices_mod.load_prices("BTC/USDT:USDT").source == "embedded:BTC-USD"  # real data still first
    err = capsys.readouterr().err
    assert err.count("WARNING: SYNTHETIC PRICES for XRP/USDT:USDT") == 1


def test_online_keeps_ccxt_first(offline, monkeypatch):
    monkeypatch.setenv("FASTOPT_OFFLINE", "0")
    fresh = prices_mod.synthetic_prices("BTC/USDT:USDT", end=np.datetime64("today") - 1)
    fetched = prices_mod.PriceHistory(**{**fresh.__dict__, "source": "ccxt:binanceusdm"})
    monkeypatch.setattr(prices_mod, "fetch_ccxt_daily", lambda symbol, **kwargs: fetched)
    assert prices_mod.load_prices("BTC/USDT:USDT").source == "ccxt:binanceusdm"


def test_reconciler_paper_price_names_the_embedded_source(offline, capsys):
    from reconciler.venues.prices import PriceSource

    btc = "BTC/USDT:USDT"
    prices = PriceSource(price_file=None)([btc])
    assert prices[btc] == prices_mod.load_embedded(btc).close[-1]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "BTC-USD history embedded in fastopt (last day 2024-12-31)" in err
