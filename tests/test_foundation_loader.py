"""load_panel: alignment vs an independent pandas construction, window semantics, skips."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.universe import build_universe, generate_universe, write_universe
from fastopt.errors import InputError
from fastopt.files.loader import load_panel
from fastopt.files.panel import Panel
from fastopt.files.stats import write_stats

DAY0 = np.datetime64("2023-01-01", "D")


def pandas_panel(series: dict[str, tuple[np.ndarray, np.ndarray]], *, lookback=None, end=None, min_history=0):
    """Independent reference: outer-join per-strategy pandas Series, window, fill 0."""
    frames = {
        name: pd.Series(r, index=pd.DatetimeIndex(d.astype("datetime64[ns]")), dtype="float64")
        for name, (d, r) in series.items()
    }
    wide = pd.concat(frames, axis=1, sort=True) if frames else pd.DataFrame()
    last = pd.Timestamp(end) if end is not None else wide.index.max()
    mask = wide.index <= last
    if lookback is not None:
        mask &= wide.index > last - pd.Timedelta(days=lookback)
    wide = wide.loc[mask]
    required = min_history if lookback is None else min(min_history, lookback)
    keep = [c for c in sorted(wide.columns) if wide[c].notna().sum() >= max(required, 1)]
    wide = wide[keep].dropna(how="all")
    return wide.fillna(0.0)


@st.composite
def universes(draw):
    n = draw(st.integers(min_value=1, max_value=6))
    out = {}
    for j in range(n):
        offsets = draw(st.lists(st.integers(0, 90), min_size=1, max_size=40, unique=True))
        values = draw(
            st.lists(
                st.floats(-0.5, 0.5, allow_nan=False, width=64), min_size=len(offsets), max_size=len(offsets)
            )
        )
        out[f"strat_{j}"] = (DAY0 + np.array(sorted(offsets), dtype="timedelta64[D]"), np.array(values))
    return out


def _write(root, series, shape="lists"):
    for name, (dates, returns) in series.items():
        write_stats(root / name / "stats.json", strategy=name, symbol="BTC/USDT:USDT", dates=dates, returns=returns, shape=shape)


@given(
    universes(),
    st.one_of(st.none(), st.integers(1, 100)),
    st.one_of(st.none(), st.integers(0, 100)),
    st.integers(0, 40),
    st.sampled_from(["lists", "mapping", "records"]),
)
def test_panel_equals_pandas_reference(tmp_path_factory, series, lookback, end_offset, min_history, shape):
    root = tmp_path_factory.mktemp("u")
    _write(root, series, shape)
    end = None if end_offset is None else str(DAY0 + end_offset)
    panel = load_panel(root, lookback=lookback, end=end, min_history_days=min_history)
    expected = pandas_panel(series, lookback=lookback, end=end, min_history=min_history)
    assert panel.names == list(expected.columns)
    if panel.n_strategies:
        assert np.array_equal(panel.dates, expected.index.values.astype("datetime64[D]"))
        assert panel.returns.tobytes() == np.ascontiguousarray(expected.to_numpy()).tobytes()
    assert panel.returns.dtype == np.float64 and panel.returns.flags.c_contiguous
    assert set(panel.skipped) == set(series) - set(panel.names)
    for j, name in enumerate(panel.names):
        assert panel.first_date[j] == series[name][0][0]
        assert panel.last_date[j] == series[name][0][-1]


def test_generated_universe_round_trips_through_files(tmp_path):
    write_universe(tmp_path, n=40, days=120, seed=3)
    dates, names, returns = generate_universe(40, 120, 3)
    panel = load_panel(tmp_path, min_history_days=0)
    assert panel.names == names
    assert np.array_equal(panel.dates, dates)
    assert panel.returns.tobytes() == returns.tobytes()
    assert panel.metadata[names[0]]["interval"] == "1d"


def test_window_semantics(tmp_path):
    days = DAY0 + np.arange(100).astype("timedelta64[D]")
    _write(tmp_path, {"a": (days, np.full(100, 0.01)), "b": (days[50:], np.full(50, 0.02))})
    panel = load_panel(tmp_path, lookback=10)  # the 30-day minimum is capped at the window
    assert panel.names == ["a", "b"]
    assert panel.dates[0] == days[90] and panel.dates[-1] == days[99] and panel.n_days == 10
    panel = load_panel(tmp_path, lookback=10, end=str(days[59]))
    assert panel.dates[-1] == days[59] and panel.n_days == 10
    assert panel.returns[:, 1].tolist() == [0.02] * 10
    # b starts on day 50: with the default 30-day minimum it is skipped in an early window
    panel = load_panel(tmp_path, lookback=40, end=str(days[60]))
    assert panel.names == ["a"] and "only 11 day(s)" in panel.skipped["b"]
    panel = load_panel(tmp_path, lookback=40, end=str(days[60]), min_history_days=5)
    assert panel.names == ["a", "b"]
    assert panel.returns[:, 1].tolist() == [0.0] * 29 + [0.02] * 11  # 0 before b's own history
    assert panel.active_mask()[:, 1].sum() == 11
    # window before any data of b
    panel = load_panel(tmp_path, end=str(days[10]), min_history_days=1)
    assert panel.names == ["a"] and panel.skipped["b"] == "no daily return inside the window"


def test_malformed_files_are_skipped_with_reason(tmp_path, caplog):
    days = DAY0 + np.arange(40).astype("timedelta64[D]")
    _write(tmp_path, {"good": (days, np.full(40, 0.001))})
    bad = {
        "broken_json": b"{\"daily_returns\": [",
        "empty": b"",
        "nan": b"{\"daily_dates\": [\"2023-01-01\"], \"daily_returns\": [NaN]}",
        "total_loss": b"{\"daily_dates\": [\"2023-01-01\"], \"daily_returns\": [-1.0]}",
        "dup": b"{\"daily_dates\": [\"2023-01-01\", \"2023-01-01\"], \"daily_returns\": [0, 0]}",
        "not_object": b"[]",
    }
    for name, content in bad.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "stats.json").write_bytes(content)
    (tmp_path / "no_stats_here").mkdir()
    (tmp_path / "stray_file.txt").write_text("x")
    with caplog.at_level(logging.WARNING, logger="fastopt.files.loader"):
        panel = load_panel(tmp_path)
    assert panel.names == ["good"]
    assert set(panel.skipped) == set(bad)
    assert "invalid JSON" in panel.skipped["broken_json"]
    assert "empty file" in panel.skipped["empty"]
    assert "<= -1" in panel.skipped["total_loss"]
    assert "duplicate date" in panel.skipped["dup"]
    assert "expected a JSON object" in panel.skipped["not_object"]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == len(bad)
    assert all("\n" not in m and "stats.json" in m for m in messages)
    with pytest.raises(InputError) as err:
        load_panel(tmp_path, strict=True)
    assert "stats.json" in str(err.value)


def test_percent_warning_is_reported(tmp_path):
    days = DAY0 + np.arange(40).astype("timedelta64[D]")
    _write(tmp_path, {"pct": (days, np.full(40, 1.5))})
    panel = load_panel(tmp_path)
    assert panel.names == ["pct"]
    assert any("percent" in w for w in panel.warnings)


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_panel(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="not a folder"):
        load_panel(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    panel = load_panel(tmp_path / "empty")
    assert isinstance(panel, Panel) and panel.shape == (0, 0) and panel.skipped == {}


@pytest.mark.parametrize("kwargs", [{"lookback": 0}, {"lookback": -3}, {"end": "2024-13-01"}, {"min_history_days": -1}])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(InputError):
        load_panel(tmp_path, **kwargs)


def test_universe_features():
    universe = build_universe(200, 400, seed=1)
    kinds = set(k.split("_")[0] for k in universe.kinds)
    assert {"trend", "dup", "short", "loser"} <= kinds
    assert (universe.first_index > 0).sum() == 40
    assert (universe.returns > -1).all() and np.isfinite(universe.returns).all()
    assert universe.names == sorted(universe.names)
    # reproducible, and the seed matters
    assert np.array_equal(build_universe(200, 400, seed=1).returns, universe.returns)
    assert not np.array_equal(build_universe(200, 400, seed=2).returns, universe.returns)
    # mirrored twins are (minus fees) the negative of some other strategy
    twin = universe.kinds.index("short")
    corr = np.corrcoef(universe.returns.T)[twin]
    assert corr.min() < -0.99
    # ill-posed case: no market factor, N > T -> a long-only portfolio with ~zero variance exists
    flat = build_universe(120, 60, seed=0, market_factor=False).returns
    cov = np.cov(flat.T)
    eigenvalues = np.linalg.eigvalsh(cov)
    assert eigenvalues[0] < 1e-12 * eigenvalues[-1]


def test_panel_helpers_and_validation():
    dates = DAY0 + np.arange(3).astype("timedelta64[D]")
    returns = np.array([[0.1, 0.0], [0.2, -0.1], [0.0, 0.3]])
    panel = Panel(dates=dates, names=["a", "b"], returns=returns, first_date=dates[[0, 1]], last_date=dates[[1, 2]])
    assert panel.shape == (3, 2) and panel.start == dates[0] and panel.end == dates[-1]
    assert panel.column("b").tolist() == [0.0, -0.1, 0.3]
    with pytest.raises(KeyError):
        panel.column("zzz")
    assert panel.active_mask().tolist() == [[True, False], [True, True], [False, True]]
    sub = panel.select(["b"])
    assert sub.names == ["b"] and sub.returns.flags.c_contiguous and sub.returns[:, 0].tolist() == [0.0, -0.1, 0.3]
    frame = panel.to_polars()
    assert frame.columns == ["date", "a", "b"] and frame["b"].to_list() == [0.0, -0.1, 0.3]
    with pytest.raises(ValueError, match="names"):
        Panel(dates=dates, names=["a"], returns=returns, first_date=dates[:2], last_date=dates[:2])
    with pytest.raises(ValueError, match="sorted"):
        Panel(dates=dates[::-1], names=["a", "b"], returns=returns, first_date=dates[:2], last_date=dates[:2])
    with pytest.raises(ValueError, match="unique"):
        Panel(dates=dates, names=["a", "a"], returns=returns, first_date=dates[:2], last_date=dates[:2])


def test_universe_cli(tmp_path, capsys):
    from bench.universe import main as universe_main

    assert universe_main(["--n", "12", "--days", "40", "--seed", "5", "--out", str(tmp_path / "u")]) == 0
    panel = load_panel(tmp_path / "u", min_history_days=0)
    dates, names, returns = generate_universe(12, 40, 5)
    assert panel.names == names and panel.returns.tobytes() == returns.tobytes()
    assert universe_main(["--n", "0", "--out", str(tmp_path / "v")]) == 2
    assert universe_main(["--n", "5", "--days", "40", "--no-market-factor", "--out", str(tmp_path / "w")]) == 0
    assert len(list((tmp_path / "w").glob("*/stats.json"))) == 5


def test_lookback_longer_than_the_data_is_all_of_it(tmp_path):
    """A lookback past the first day (even 10**20 days) selects the same days as one reaching it exactly."""
    days = DAY0 + np.arange(100).astype("timedelta64[D]")
    _write(tmp_path, {"a": (days, np.linspace(-0.01, 0.01, 100)), "b": (days[20:], np.full(80, 0.02))})
    exact = load_panel(tmp_path, lookback=100)
    for lookback in (101, 10**6, 10**20):
        panel = load_panel(tmp_path, lookback=lookback)
        assert panel.names == exact.names and np.array_equal(panel.dates, exact.dates)
        assert np.array_equal(panel.returns, exact.returns)
