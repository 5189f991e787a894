"""The Python API speaks names: frames, Panels and arrays in, weights by name out (issue 14, item 4)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastopt
from fastopt import metrics
from fastopt.cli import main
from fastopt.errors import InputError
from fastopt.optimize.objective import window_stats
from fastopt.optimize.solver import solve_ratio

REPO_ROOT = Path(__file__).resolve().parents[1]
START = np.datetime64("2024-01-01")


def factor_returns(seed: int, n_days: int, n_assets: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    market = rng.standard_normal(n_days) * 0.02
    beta = rng.uniform(-0.5, 1.0, n_assets)
    noise = rng.standard_normal((n_days, n_assets)) * rng.uniform(0.005, 0.03, n_assets)
    return rng.normal(5e-4, 1e-3, n_assets) + np.outer(market, beta) + noise


def day_range(n: int, start: np.datetime64 = START) -> np.ndarray:
    return start + np.arange(n).astype("timedelta64[D]")


# ------------------------------------------------------------------ frames

names_strategy = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC_-0123456789 ", min_size=1, max_size=12)
    .filter(lambda s: s not in ("Date", "date")),
    min_size=1, max_size=6, unique=True,
)


@given(names=names_strategy, n_days=st.integers(20, 300), seed=st.integers(0, 2**16), date_name=st.sampled_from(["Date", "date"]))
def test_polars_frame_with_date_column_gives_the_array_weights_by_name(names, n_days, seed, date_name):
    returns = factor_returns(seed, n_days, len(names))
    frame = pl.DataFrame({date_name: day_range(n_days), **{n: returns[:, k] for k, n in enumerate(names)}})
    alloc = fastopt.optimize(frame)
    reference = fastopt.optimize(returns)  # < 365 days: the whole window either way
    assert alloc.names == tuple(names)  # the Date column is not a strategy
    assert alloc.weights.size == len(names)
    np.testing.assert_array_equal(alloc.weights, reference.weights)
    assert alloc.score == reference.score
    by_name = alloc.weights_by_name()
    assert list(by_name) == names
    assert by_name == {n: float(reference.weights[k]) for k, n in enumerate(names)}
    series = alloc.to_series()
    assert list(series.index) == names
    np.testing.assert_array_equal(series.to_numpy(), reference.weights)


@given(names=names_strategy, n_days=st.integers(20, 300), seed=st.integers(0, 2**16),
       where=st.sampled_from(["column", "index", "tz_column"]))
def test_pandas_frame_dates_from_column_or_index(names, n_days, seed, where):
    returns = factor_returns(seed, n_days, len(names))
    frame = pd.DataFrame({n: returns[:, k] for k, n in enumerate(names)})
    stamps = pd.to_datetime(day_range(n_days))
    if where == "index":
        frame.index = stamps
    else:
        frame.insert(0, "date", stamps.tz_localize("Europe/Paris") if where == "tz_column" else stamps)
    alloc = fastopt.optimize(frame)
    assert alloc.names == tuple(names)
    np.testing.assert_array_equal(alloc.weights, fastopt.optimize(returns).weights)
    assert alloc.diagnostics["window_start"] == str(START)
    assert alloc.diagnostics["window_end"] == str(day_range(n_days)[-1])


def test_dated_frames_use_the_last_365_calendar_days_like_the_cli():
    returns = factor_returns(3, 500, 4)
    names = ["a", "b", "c", "d"]
    frame = pl.DataFrame({"Date": day_range(500), **{n: returns[:, k] for k, n in enumerate(names)}})
    alloc = fastopt.optimize(frame)
    np.testing.assert_array_equal(alloc.weights, fastopt.optimize(returns[-365:]).weights)
    assert alloc.diagnostics["n_days"] == 365
    everything = fastopt.optimize(frame, lookback="all")
    np.testing.assert_array_equal(everything.weights, fastopt.optimize(returns).weights)
    short = fastopt.optimize(frame, lookback=100)
    np.testing.assert_array_equal(short.weights, fastopt.optimize(returns[-100:]).weights)
    # a gap in the calendar: the window counts calendar days, not rows
    gapped = frame.filter(pl.int_range(pl.len()) % 2 == 0)
    assert fastopt.optimize(gapped).diagnostics["n_days"] == (365 + 1) // 2
    with pytest.raises(InputError, match="lookback"):
        fastopt.optimize(frame, lookback=0)


def test_the_api_lookback_default_is_the_cli_default():
    import argparse

    from fastopt.commands.optimize import configure
    from fastopt.files.panel import DEFAULT_LOOKBACK_DAYS

    parser = argparse.ArgumentParser()
    configure(parser)
    assert parser.get_default("lookback") == DEFAULT_LOOKBACK_DAYS


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_a_non_numeric_column_is_refused_by_name_in_one_line(kind):
    returns = factor_returns(1, 50, 2)
    data = {"date": day_range(50), "x": returns[:, 0], "ticker": ["BTC"] * 50, "y": returns[:, 1]}
    frame = pd.DataFrame(data) if kind == "pandas" else pl.DataFrame(data)
    for call in (fastopt.optimize, lambda f: fastopt.walkforward(f, lookback=10, random_n=0)):
        with pytest.raises(InputError) as caught:
            call(frame)
        message = str(caught.value)
        assert "'ticker'" in message and "non-numeric" in message
        assert "\n" not in message
    flags = pd.DataFrame({"x": returns[:, 0], "flag": returns[:, 1] > 0})
    with pytest.raises(InputError, match="'flag'"):
        fastopt.optimize(flags)


def test_frame_input_errors_are_input_errors():
    returns = factor_returns(1, 50, 2)
    both = pl.DataFrame({"Date": day_range(50), "date": day_range(50), "x": returns[:, 0]})
    with pytest.raises(InputError, match="'Date' and 'date'"):
        fastopt.optimize(both)
    unsorted = pl.DataFrame({"date": day_range(50)[::-1], "x": returns[:, 0]})
    with pytest.raises(InputError, match="sorted and unique"):
        fastopt.optimize(unsorted)
    with pytest.raises(InputError, match="Series"):
        fastopt.optimize(pd.Series(returns[:, 0]))
    holes = pd.DataFrame({"x": returns[:, 0], "y": np.where(np.arange(50) == 7, np.nan, returns[:, 1])})
    with pytest.raises(InputError, match="non-finite value at day 7, strategy 1"):
        fastopt.optimize(holes)


# ------------------------------------------------------------------ numpy


def test_numpy_input_is_unchanged():
    returns = factor_returns(7, 800, 5)  # longer than 365 days: an undated array is used whole
    alloc = fastopt.optimize(returns)
    stats = window_stats(returns)
    inner = solve_ratio(stats.g, stats.cov, n_days=stats.n_days)
    np.testing.assert_array_equal(alloc.weights, inner.weights)
    assert alloc.names is None
    assert alloc.diagnostics["n_days"] == 800
    assert list(alloc.weights_by_name()) == [f"s{k}" for k in range(5)]
    named = fastopt.optimize(returns, names=list("vwxyz"))
    np.testing.assert_array_equal(named.weights, alloc.weights)
    assert named.names == tuple("vwxyz")
    assert fastopt.optimize(returns, lookback=200).diagnostics["n_days"] == 200
    with pytest.raises(InputError, match="3 names for 5 strategies"):
        fastopt.optimize(returns, names=["a", "b", "c"])


# ------------------------------------------------------------------ Allocation


def test_summary_repr_and_held_only():
    returns = factor_returns(11, 300, 200)
    names = [f"strategy_{k:03d}" for k in range(200)]
    alloc = fastopt.optimize(returns, names=names, shrinkage=0.2)
    text = repr(alloc)
    assert "array" not in text and "\n" not in text and len(text) < 400
    assert alloc.status in text
    top = names[int(np.argmax(alloc.weights))]
    assert top in text
    summary = alloc.summary()
    port = returns @ alloc.weights
    assert summary["sharpe"] == pytest.approx(float(metrics.sharpe(port, 365)), rel=1e-12)
    assert summary["vol"] == pytest.approx(float(np.std(port, ddof=1) * np.sqrt(365)), rel=1e-12)
    assert summary["score"] == alloc.score and summary["status"] == alloc.status
    assert summary["n_strategies"] == 200
    held = alloc.weights_by_name(held_only=True)
    assert summary["n_held"] == len(held) and all(w > 0 for w in held.values())
    assert sum(alloc.weights_by_name().values()) == pytest.approx(1.0, abs=1e-12)


def test_allocation_refuses_names_of_the_wrong_length():
    with pytest.raises(ValueError, match="2 names for 3 weights"):
        fastopt.Allocation(weights=np.ones(3) / 3, score=1.0, status="optimal", solver="search", names=("a", "b"))


# ------------------------------------------------------------------ Panel and the CLI


def write_stats(root: Path, name: str, days: np.ndarray, returns: np.ndarray) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "stats.json").write_text(json.dumps(
        {"strategy": name, "daily_dates": [str(d) for d in days], "daily_returns": returns.tolist()}))


@pytest.fixture()
def mixed_folder(tmp_path):
    """Strategies of unequal histories: full, recent, fading (25 days in the last 365), ended long ago."""
    root = tmp_path / "strategies"
    full = factor_returns(5, 700, 6)
    days = day_range(700)
    for k in range(6):
        write_stats(root, f"full{k}", days, full[:, k])
    recent = factor_returns(6, 120, 1)[:, 0] + 1e-3
    write_stats(root, "recent", days[-120:], recent)
    write_stats(root, "fading", days[:360], factor_returns(8, 360, 1)[:, 0] + 0.01)
    write_stats(root, "ended", days[:200], factor_returns(9, 200, 1)[:, 0])
    return root


def test_optimize_accepts_a_panel_and_matches_the_cli(mixed_folder, tmp_path, capsys):
    panel = fastopt.load_panel(mixed_folder)
    assert {"fading", "ended"} <= set(panel.names)  # whole history by default (walkforward needs it)
    alloc = fastopt.optimize(panel)
    assert isinstance(alloc, fastopt.Allocation)
    # "ended" stopped long before the panel's last day (stale, screened like the CLI does), "fading"
    # has too little history in the window (dropped)
    gone = {**alloc.diagnostics.get("dropped", {}), **alloc.diagnostics.get("screened", {})}
    assert set(gone) == {"fading", "ended"}
    assert "fading" not in alloc.names and "recent" in alloc.names
    code = main(["optimize", "--strategies", str(mixed_folder), "--config", str(tmp_path / "cfg.json"),
                 "--target-vol", "0.3", "--dry-run", "--json", "--allow-implausible"])
    assert code == 0
    cli = json.loads(capsys.readouterr().out)
    api = alloc.weights_by_name(held_only=True)
    assert set(api) == set(cli["weights"])
    for name, weight in cli["weights"].items():
        assert api[name] == pytest.approx(weight, rel=1e-12, abs=1e-15)
    assert alloc.score == pytest.approx(cli["score"], rel=1e-9)
    # the same window loaded by the CLI's rule gives the same weights through the array path
    windowed = fastopt.load_panel(mixed_folder, lookback=365)
    again = fastopt.optimize(windowed.returns, names=windowed.names)
    assert again.weights_by_name(held_only=True) == api


def test_panel_options_follow_the_kept_columns(mixed_folder):
    panel = fastopt.load_panel(mixed_folder)
    caps = [0.3 if n == "recent" else 1.0 for n in panel.names]
    alloc = fastopt.optimize(panel, max_weight=caps)
    assert alloc.weights_by_name()["recent"] <= 0.3 + 1e-12
    by_map = fastopt.optimize(panel, max_weight={"recent": 0.3})
    np.testing.assert_allclose(by_map.weights, alloc.weights, atol=1e-12)


def test_walkforward_takes_panels_and_frames(mixed_folder):
    panel = fastopt.load_panel(mixed_folder)
    from_panel = fastopt.walkforward(panel, lookback=60, rebalance=30, random_n=0)
    assert from_panel.names == panel.names
    np.testing.assert_array_equal(from_panel.dates, panel.dates[60:])
    frame = pd.DataFrame(panel.returns, columns=panel.names, index=pd.to_datetime(panel.dates))
    from_frame = fastopt.walkforward(frame, lookback=60, rebalance=30, random_n=0)
    assert from_frame.names == panel.names
    np.testing.assert_array_equal(from_frame.dates, from_panel.dates)
    np.testing.assert_array_equal(from_frame.returns, from_panel.returns)


# ------------------------------------------------------------------ the package


IMPORT_ORDERS = {
    "result_type_first": "import fastopt\nfastopt.WalkForwardResult\n",
    "submodule_first": "import fastopt.walkforward.core as wf\nassert wf.walkforward\nimport fastopt\n",
    "from_submodule_first": "from fastopt.walkforward.core import WalkForwardResult\nimport fastopt\n",
    "function_first": "import fastopt\nfastopt.walkforward\nimport fastopt.walkforward.core as wf\nassert wf.WalkForwardResult\n",
    "from_package": "from fastopt import walkforward\nimport fastopt\nassert fastopt.walkforward is walkforward\n",
    "optimize_first": "import fastopt\nfastopt.optimize\nfastopt.Panel\n",
}


@pytest.mark.parametrize("order", sorted(IMPORT_ORDERS))
def test_walkforward_is_callable_whatever_was_imported_first(order):
    code = IMPORT_ORDERS[order] + (
        "import numpy as np\n"
        "r = np.random.default_rng(0).normal(0.001, 0.02, (40, 3))\n"
        "result = fastopt.walkforward(r, lookback=20, random_n=0)\n"
        "assert isinstance(result, fastopt.WalkForwardResult), type(result)\n"
        "import fastopt.walkforward.core as wf\n"
        "assert wf.walkforward(r, lookback=20, random_n=0).names == result.names\n"
        "print('ok', result.n_days)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "20"]


def test_dir_lists_the_public_api():
    listed = dir(fastopt)
    for name in ("optimize", "walkforward", "load_panel", "score", "Panel", "Allocation", "WalkForwardResult",
                 "InputError", "NothingToDo", "FastoptError", "__version__"):
        assert name in listed
    assert all(hasattr(fastopt, name) for name in listed)
    import inspect

    assert "lookback" in inspect.signature(fastopt.walkforward).parameters


def test_the_readme_python_example_runs(mixed_folder, monkeypatch, capsys):
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("In Python:")
    block = text[text.index("```python\n", start) + len("```python\n"):]
    block = block[: block.index("```")]
    assert len(block.strip().splitlines()) <= 10
    monkeypatch.chdir(mixed_folder.parent)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert isinstance(scope["alloc"], fastopt.Allocation)
    assert scope["weights"] == scope["alloc"].weights_by_name(held_only=True) and scope["weights"]
    assert isinstance(scope["result"], fastopt.WalkForwardResult)
    assert "Allocation(status=" in capsys.readouterr().out
