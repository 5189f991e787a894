"""`fastopt walkforward` end to end, the report files, exit codes and atomicity."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fakes.allocators import write_blaveclaw_allocator

from fastopt.cli import main
from fastopt.files.stats import write_stats
from fastopt.walkforward.core import walkforward
from fastopt.walkforward.report import build_stats, dumps_stats, write_outputs

BLAVECLAW_TOP = {"lookback", "allocator", "start", "end", "managed", "random_benchmark", "daily_dates",
                 "managed_returns", "weights_history"}
BLAVECLAW_MANAGED = {"total_return_%", "sharpe", "max_drawdown_%"}
BLAVECLAW_RANDOM = {"n", "median_sharpe", "p5_sharpe", "p95_sharpe", "managed_beats_pct_sharpe",
                    "median_total_return_%", "p5_total_return_%", "p95_total_return_%"}


def _returns(n: int, days: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, 0.02, size=(days, 1))
    return rng.normal(0.0007, 0.002, size=(1, n)) + rng.uniform(0, 1, (1, n)) * market + rng.normal(
        0, 0.015, size=(days, n))


def _write_strategies(folder: Path, n: int = 10, days: int = 130, seed: int = 0) -> Path:
    returns = _returns(n, days, seed)
    dates = np.arange(np.datetime64("2023-01-01"), np.datetime64("2023-01-01") + days)
    for k in range(n):
        write_stats(folder / f"strat_{k:02d}" / "stats.json", strategy=f"strat_{k:02d}", symbol="BTC/USDT",
                    dates=dates, returns=returns[:, k])
    return folder


def test_walkforward_command_writes_blaveclaw_compatible_outputs(tmp_path, capsys):
    strategies = _write_strategies(tmp_path / "strategies")
    out = tmp_path / "wf"
    code = main(["walkforward", "--strategies", str(strategies), "--lookback", "60", "--random-n", "40",
                 "--target-vol", "0.3", "--cost-bps", "5", "--output", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    doc = json.loads((out / "stats.json").read_text())
    assert BLAVECLAW_TOP <= set(doc)
    assert BLAVECLAW_MANAGED <= set(doc["managed"])
    assert BLAVECLAW_RANDOM <= set(doc["random_benchmark"])
    assert doc["lookback"] == 60 and doc["allocator"] == "slope_std"
    assert doc["start"] == "2023-03-02" and doc["end"] == "2023-05-10"
    assert len(doc["daily_dates"]) == len(doc["managed_returns"]) == 70
    assert set(doc["weights_history"]) == {f"strat_{k:02d}" for k in range(10)}
    assert all(len(v) == 70 for v in doc["weights_history"].values())
    assert doc["managed"]["max_drawdown_%"] <= 0  # BlaveClaw's sign
    assert set(doc["benchmarks"]) == {"equal_weight", "inverse_vol"}
    assert summary["managed"] == doc["managed"]
    assert summary["outputs"]["stats"] == str(out / "stats.json")
    png = (out / "pnl.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # the managed returns in the file are the API's, rounded
    strategies_returns = _returns(10, 130, 0)
    result = walkforward(strategies_returns, lookback=60, random_n=40, target_vol=0.3, cost_bps=5.0)
    np.testing.assert_allclose(doc["managed_returns"], np.round(result.returns, 6), atol=2e-6)
    assert not list(out.glob(".*.tmp"))


def test_human_output_is_a_table(tmp_path, capsys):
    strategies = _write_strategies(tmp_path / "strategies", n=8, days=90)
    code = main(["walkforward", "--strategies", str(strategies), "--lookback", "40", "--random-n", "10",
                 "--no-plot", "--output", str(tmp_path / "wf"), "--allocator", "inverse_vol"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "managed" in captured.out and "equal_weight" in captured.out and "Sharpe" in captured.out
    assert not (tmp_path / "wf" / "pnl.png").exists()


def test_too_few_days_is_nothing_to_do(tmp_path, capsys):
    strategies = _write_strategies(tmp_path / "strategies", n=8, days=50)
    code = main(["walkforward", "--strategies", str(strategies), "--lookback", "50",
                 "--output", str(tmp_path / "wf")])
    err = capsys.readouterr().err
    assert code == 3
    assert "not enough history" in err and "51" in err and "Traceback" not in err
    assert not (tmp_path / "wf").exists()


def test_unknown_allocator_is_a_usage_error(tmp_path, capsys):
    strategies = _write_strategies(tmp_path / "strategies", n=8, days=90)
    code = main(["walkforward", "--strategies", str(strategies), "--allocator", "no_such_method_xyz",
                 "--output", str(tmp_path / "wf")])
    err = capsys.readouterr().err
    assert code == 2
    assert "no_such_method_xyz" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["--strategies", "/nonexistent/strategies"],
    ["--lookback", "0"],
    ["--rebalance", "x"],
    ["--target-vol", "-1"],
    ["--cost-bps", "-5"],
    ["--when-negative", "panic"],
])
def test_bad_input_exits_2(argv, capsys):
    assert main(["walkforward", *argv]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_failed_run_leaves_existing_outputs_untouched(tmp_path, monkeypatch, capsys):
    strategies = _write_strategies(tmp_path / "strategies", n=8, days=90)
    out = tmp_path / "wf"
    out.mkdir()
    (out / "stats.json").write_text("previous stats\n")
    (out / "pnl.png").write_bytes(b"previous png")

    def broken_render(*args, **kwargs):
        raise RuntimeError("disk full while plotting")

    monkeypatch.setattr("fastopt.walkforward.report.render_pnl_png", broken_render)
    code = main(["walkforward", "--strategies", str(strategies), "--lookback", "40", "--random-n", "5",
                 "--output", str(out)])
    assert code == 1
    assert (out / "stats.json").read_text() == "previous stats\n"
    assert (out / "pnl.png").read_bytes() == b"previous png"
    assert sorted(p.name for p in out.iterdir()) == ["pnl.png", "stats.json"]


def test_ctrl_c_stops_cleanly_and_writes_nothing(tmp_path, monkeypatch, capsys):
    strategies = _write_strategies(tmp_path / "strategies", n=8, days=90)
    out = tmp_path / "wf"
    import fastopt.walkforward.core as wf

    real = wf.walkforward

    def interrupted(*args, **kwargs):
        progress = kwargs.get("progress")

        def stop(done, total):
            if progress is not None:
                progress(done, total)
            if done == 5:
                raise KeyboardInterrupt

        kwargs["progress"] = stop
        return real(*args, **kwargs)

    monkeypatch.setattr(wf, "walkforward", interrupted)
    code = main(["walkforward", "--strategies", str(strategies), "--lookback", "40", "--output", str(out)])
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    assert not out.exists()


def test_stats_document_is_strict_json_and_round_trips():
    result = walkforward(_returns(9, 100, 4), lookback=40, random_n=20, when_negative="previous")
    doc = build_stats(result)
    text = dumps_stats(doc)
    assert json.loads(text) == json.loads(json.dumps(doc))
    assert text.count("\n") == len(doc) + 2  # one line per top-level key
    assert doc["daily_dates"][0] == "40"  # no dates given: day indexes
    assert doc["random_benchmark"]["managed_beats_pct_sharpe"] == pytest.approx(
        result.random.managed_beats_pct_sharpe, abs=0.01)


def test_write_outputs_is_atomic_and_parses_back(tmp_path):
    result = walkforward(_returns(9, 100, 5), lookback=40, random_n=0)
    paths = write_outputs(result, tmp_path / "out", plot=False)
    doc = json.loads(paths["stats"].read_text())
    assert doc["random_benchmark"] == {"n": 0}
    assert doc["managed"]["cash_days"] == result.cash_days
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["stats.json"]


def test_blaveclaw_allocator_outputs_default_next_to_it(tmp_path, monkeypatch, capsys):
    _write_strategies(tmp_path / "strategies", n=8, days=80)
    folder = write_blaveclaw_allocator(tmp_path, "flat_mix", (
        "DISPLAY_NAME = 'flat mix'\n"
        "def allocate(ret_df, lookback):\n"
        "    return {name: 1.0 for name in ret_df.columns}\n"
    )).parent
    monkeypatch.chdir(tmp_path)
    code = main(["walkforward", "--strategies", "strategies", "--lookback", "40", "--allocator", "flat_mix",
                 "--random-n", "5", "--no-plot"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((folder / "stats.json").read_text())
    assert doc["allocator"] == "flat_mix"
    np.testing.assert_allclose([v[0] for v in doc["weights_history"].values()], 1 / 8, atol=1e-4)
    assert not (tmp_path / "walkforward").exists()
