"""`fastopt backtest` and the example strategies on the real prices."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fastopt.cli import main
from fastopt.files.loader import load_panel
from fastopt.files.state import read_state
from fastopt.files.stats import read_stats

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = ["btc_ti_24h", "btc_ti_24h_short", "eth_trend", "sol_trend", "bnb_meanrev", "btc_breakout"]

OK_SCRIPT = "print('fine')\n"
FAIL_SCRIPT = "import sys\nprint('about to fail', file=sys.stderr)\nraise SystemExit('boom: bad rule')\n"
HANG_SCRIPT = "import sys, time\nprint('hanging', file=sys.stderr, flush=True)\ntime.sleep(120)\n"


def _make(root: Path, name: str, code: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "strategy.py").write_text(code)


@pytest.mark.integration
def test_failing_and_hanging_strategies_are_reported(tmp_path, capsys):
    _make(tmp_path, "good", OK_SCRIPT)
    _make(tmp_path, "bad", FAIL_SCRIPT)
    _make(tmp_path, "stuck", HANG_SCRIPT)
    (tmp_path / "not_a_strategy").mkdir()
    code = main(["backtest", "--strategies", str(tmp_path), "--timeout", "3", "--jobs", "3", "--json"])
    assert code == 1
    payload = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in payload["results"]}
    assert set(by_name) == {"good", "bad", "stuck"}
    assert by_name["good"]["status"] == "ok"
    assert by_name["bad"]["status"] == "failed" and by_name["bad"]["returncode"] == 1
    assert "boom: bad rule" in by_name["bad"]["stderr_tail"]
    assert by_name["stuck"]["status"] == "timeout" and by_name["stuck"]["seconds"] < 60
    assert "hanging" in by_name["stuck"]["stderr_tail"] and "killed" in by_name["stuck"]["stderr_tail"]
    # human report: the failures' stderr tails go to stderr
    code = main(["backtest", "--strategies", str(tmp_path), "--timeout", "3", "--only", "bad"])
    captured = capsys.readouterr()
    assert code == 1 and "boom: bad rule" in captured.err and "failed" in captured.out


def test_exit_codes_for_bad_and_empty_folders(tmp_path, capsys):
    assert main(["backtest", "--strategies", str(tmp_path / "missing")]) == 2
    assert main(["backtest", "--strategies", str(tmp_path)]) == 3
    _make(tmp_path, "good", OK_SCRIPT)
    assert main(["backtest", "--strategies", str(tmp_path), "--only", "nope"]) == 2
    assert main(["backtest", "--strategies", str(tmp_path), "--timeout", "0"]) == 2
    assert main(["backtest", "--strategies", str(tmp_path), "--prices-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "strategies folder not found" in err and "no */strategy.py found" in err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def example_run(tmp_path_factory, shared_prices):
    """Copy the example strategies to a temp folder and backtest them (then --live) on the real prices."""
    root = tmp_path_factory.mktemp("examples")
    for name in EXAMPLES:
        (root / name).mkdir()
        shutil.copy(REPO / "strategies" / name / "strategy.py", root / name / "strategy.py")
    backtest_code = main(["backtest", "--strategies", str(root), "--prices-dir", str(shared_prices), "--jobs", "2"])
    live_code = main(["backtest", "--strategies", str(root), "--prices-dir", str(shared_prices), "--jobs", "2", "--live"])
    return root, backtest_code, live_code


@pytest.mark.integration
def test_examples_write_valid_stats_and_state(example_run):
    root, backtest_code, live_code = example_run
    assert backtest_code == 0 and live_code == 0
    for name in EXAMPLES:
        stats = read_stats(root / name / "stats.json")
        assert stats.metadata["strategy"] == name
        assert stats.last_date == np.datetime64("2024-12-31")
        assert stats.metadata["Total Trades"] > 0
        assert (stats.returns > -1).all() and np.count_nonzero(stats.returns) > 100
        assert (root / name / "pnl.png").stat().st_size > 1000
        state = read_state(root / name / "state.json")
        (symbol, position), = state.positions.items()
        assert symbol.endswith("/USDT:USDT") and -1.0 <= position <= 1.0
        assert state.extra["as_of"] == "2024-12-31"


@pytest.mark.integration
def test_btc_trend_returns_match_independent_pandas(example_run, shared_prices):
    """Re-derive btc_ti_24h from the CSV with pandas and compare day by day."""
    root, _, _ = example_run
    frame = pd.read_csv(shared_prices / "BTC-USD.csv", parse_dates=["date"]).set_index("date")
    close = frame["close"]
    trend = close.ewm(span=24, adjust=False).mean()
    momentum = close.pct_change(24)
    signal = pd.Series(np.nan, index=close.index)
    signal[(close > trend) & (momentum > 0)] = 1.0
    signal[close < trend] = 0.0
    held = signal.ffill().fillna(0.0)
    previous = held.shift(1).fillna(0.0)
    expected = (previous * close.pct_change().fillna(0.0) - (held - previous).abs() * 5 / 10_000).to_numpy()
    stats = read_stats(root / "btc_ti_24h" / "stats.json")
    assert np.array_equal(stats.dates, close.index.values.astype("datetime64[D]"))
    np.testing.assert_allclose(stats.returns, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.integration
def test_panel_of_examples_equals_pandas_join(example_run):
    root, _, _ = example_run
    panel = load_panel(root, lookback=1000)
    columns = {}
    for name in EXAMPLES:
        data = json.loads((root / name / "stats.json").read_text())
        columns[name] = pd.Series(data["daily_returns"], index=pd.to_datetime(data["daily_dates"]))
    wide = pd.concat(columns, axis=1).sort_index()
    wide = wide[wide.index > wide.index.max() - pd.Timedelta(days=1000)].fillna(0.0)
    assert panel.names == sorted(EXAMPLES)
    assert np.array_equal(panel.dates, wide.index.values.astype("datetime64[D]"))
    assert panel.returns.tobytes() == np.ascontiguousarray(wide[panel.names].to_numpy()).tobytes()


@pytest.mark.integration
def test_interrupt_kills_running_strategies(tmp_path):
    """Ctrl-C during a run kills the strategies' process groups (they run in their own sessions)."""
    import os
    import signal
    import threading
    import time

    from fastopt.commands.backtest import discover_strategies, run_all

    pid_file = tmp_path / "pid"
    _make(tmp_path / "s", "sleeper", f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n")

    def interrupt_when_started():
        deadline = time.time() + 30
        while not pid_file.exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)  # a real signal, like Ctrl-C (interrupts blocking waits)

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    started = time.time()
    with pytest.raises(KeyboardInterrupt):
        run_all(discover_strategies(tmp_path / "s"), extra_args=[], timeout_s=30, jobs=1, show_progress=False)
    assert time.time() - started < 25  # interrupted, not waited out
    pid = int(pid_file.read_text())
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"strategy process {pid} still alive after the interrupt")


@pytest.mark.integration
def test_no_plot_is_forwarded(tmp_path, shared_prices):
    (tmp_path / "sol_trend").mkdir()
    shutil.copy(REPO / "strategies" / "sol_trend" / "strategy.py", tmp_path / "sol_trend" / "strategy.py")
    assert main(["backtest", "--strategies", str(tmp_path), "--prices-dir", str(shared_prices), "--no-plot"]) == 0
    assert (tmp_path / "sol_trend" / "stats.json").is_file()
    assert not (tmp_path / "sol_trend" / "pnl.png").exists()


WARN_SCRIPT = (
    "import sys, warnings\n"
    "print('warner: WARNING: SYNTHETIC PRICES for XRP/USDT:USDT', file=sys.stderr)\n"
    "print('progress 50%', file=sys.stderr)\n"
    "warnings.warn('window shorter than the lookback')\n"
    "print('warner: WARNING: SYNTHETIC PRICES for XRP/USDT:USDT', file=sys.stderr)\n"
    "print('warner: done')\n"
)
SYNTHETIC_STRATEGY = (
    "from fastopt.backtest.strategy import run_strategy\n"
    "import numpy as np, sys\n"
    "sys.exit(run_strategy(name='xrp_flat', symbol='XRP/USDT:USDT', signal=lambda p: np.ones(len(p)),\n"
    "                      here=__file__, description='xrp'))\n"
)


@pytest.mark.integration
def test_warnings_of_successful_strategies_reach_the_human_output(tmp_path, capsys):
    _make(tmp_path, "warner", WARN_SCRIPT)
    _make(tmp_path, "quiet", OK_SCRIPT)
    assert main(["backtest", "--strategies", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    row = next(k for k, line in enumerate(lines) if line.startswith("ok") and "warner" in line)
    shown = lines[row + 1:row + 3]
    assert "WARNING: SYNTHETIC PRICES for XRP/USDT:USDT" in shown[0]
    assert "UserWarning: window shorter than the lookback" in shown[1]
    assert captured.out.count("SYNTHETIC PRICES") == 1  # de-duplicated
    assert "progress 50%" not in captured.out
    quiet_row = next(line for line in lines if "quiet" in line)
    assert lines[lines.index(quiet_row) + 1:] == [] or "!" not in lines[lines.index(quiet_row) + 1]
    assert "1 with warnings" in captured.err
    assert main(["backtest", "--strategies", str(tmp_path), "--json"]) == 0
    by_name = {r["name"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert by_name["quiet"]["warnings"] == []
    assert len(by_name["warner"]["warnings"]) == 2


@pytest.mark.integration
def test_synthetic_prices_and_stale_candle_warnings_are_shown(tmp_path, monkeypatch, capsys):
    """Real strategies: one on the synthetic market (asked for), one --live on history ending 2024-12-31."""
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")
    monkeypatch.setenv("FASTOPT_SYNTHETIC", "1")
    monkeypatch.setenv("FASTOPT_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    root = tmp_path / "s"
    _make(root, "xrp_flat", SYNTHETIC_STRATEGY)
    (root / "sol_trend").mkdir()
    shutil.copy(REPO / "strategies" / "sol_trend" / "strategy.py", root / "sol_trend" / "strategy.py")
    assert main(["backtest", "--strategies", str(root), "--no-plot", "--only", "xrp_flat"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: SYNTHETIC PRICES for XRP/USDT:USDT" in out
    assert main(["backtest", "--strategies", str(root), "--only", "sol_trend", "--live"]) == 0
    out = capsys.readouterr().out
    assert "sol_trend: warning: latest SOL/USDT:USDT candle is 2024-12-31" in out


def test_warning_lines_are_capped_and_deduplicated():
    from fastopt.commands.backtest import MAX_WARNINGS, warning_lines

    text = "\n".join([f"WARNING {k}" for k in range(MAX_WARNINGS + 5)] + ["WARNING 0", "plain line", ""])
    found = warning_lines(text)
    assert len(found) == MAX_WARNINGS + 1 and found[0] == "WARNING 0" and found[-1] == "... and 5 more warning lines"
    assert warning_lines("all good\nfine\n") == ()
