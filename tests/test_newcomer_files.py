"""Files users share: modes of atomic writes, the user cache directory, `fastopt init`, the quick bench's outputs."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastopt
from fastopt.files import atomic
from fastopt.backtest import prices as prices_mod
from fastopt.cli import main
from fastopt.commands import init as init_cmd
from fastopt.files.stats import read_stats

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(fastopt.__file__).resolve().parent
MODES = st.integers(min_value=0, max_value=0o777)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class _Umask:
    def __init__(self, mask: int) -> None:
        self.mask = mask

    def __enter__(self) -> None:
        self.saved = os.umask(self.mask)

    def __exit__(self, *exc: object) -> None:
        os.umask(self.saved)


# -- atomic writes keep modes ------------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(mode=MODES, umask=MODES, writer=st.sampled_from(["bytes", "text", "json"]))
def test_existing_file_keeps_its_mode_whatever_the_umask(mode, umask, writer):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "portfolio_config.json"
        path.write_text("{}\n")
        os.chmod(path, mode)
        with _Umask(umask):
            {"bytes": lambda: atomic.atomic_write_bytes(path, b"{\"a\": 1}\n"),
             "text": lambda: atomic.atomic_write_text(path, "{\"a\": 1}\n"),
             "json": lambda: atomic.atomic_write_json(path, {"a": 1})}[writer]()
        assert _mode(path) == mode, f"{mode:o} became {_mode(path):o} (umask {umask:o})"
        os.chmod(path, 0o600)
        assert json.loads(path.read_text()) == {"a": 1}
        assert os.listdir(folder) == [path.name]  # no temp file left behind


@settings(max_examples=150, deadline=None)
@given(umask=MODES)
def test_new_file_gets_the_umask_mode_like_open(umask):
    with tempfile.TemporaryDirectory() as folder:
        ours, plain = Path(folder) / "ours.json", Path(folder) / "plain.json"
        with _Umask(umask):
            assert atomic.current_umask() == umask
            atomic.atomic_write_json(ours, {"w": 0.5})
            with open(plain, "w") as handle:
                handle.write("{}")
        assert _mode(ours) == 0o666 & ~umask == _mode(plain)


@settings(max_examples=40, deadline=None)
@given(umask=MODES)
def test_umask_read_without_proc_is_restored(umask):
    """Where /proc is unreadable the umask is read by set-and-restore: same value, left unchanged."""

    def no_proc(*args, **kwargs):
        raise OSError("no /proc here")

    atomic.open = no_proc  # shadows the builtin inside fastopt.files.atomic only
    try:
        with _Umask(umask):
            assert atomic.current_umask() == umask
            assert atomic.current_umask() == umask
            assert os.umask(umask) == umask  # still the one we set
    finally:
        del atomic.open


def test_common_modes_are_kept(tmp_path):
    """The issue's case: a 644 config comes back 644 (and a shared 664 one 664), not 600."""
    for mode in (0o644, 0o664, 0o640, 0o600):
        path = tmp_path / f"c{mode:o}.json"
        path.write_text("{}")
        os.chmod(path, mode)
        atomic.atomic_write_json(path, {"weights": {"a": 1.0}})
        assert _mode(path) == mode


# -- caches in the user cache directory ------------------------------------------------------------------------
@pytest.fixture()
def no_cache_env(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTOPT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_cache_dir_follows_env_then_xdg_then_home(no_cache_env, monkeypatch):
    home = no_cache_env / "home"
    assert prices_mod.default_cache_dir() == home / ".cache" / "fastopt" / "prices"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # XDG: relative paths are ignored
    assert prices_mod.default_cache_dir() == home / ".cache" / "fastopt" / "prices"
    monkeypatch.setenv("XDG_CACHE_HOME", str(no_cache_env / "xdg"))
    assert prices_mod.default_cache_dir() == no_cache_env / "xdg" / "fastopt" / "prices"
    monkeypatch.setenv("FASTOPT_CACHE_DIR", str(no_cache_env / "mine"))
    assert prices_mod.default_cache_dir() == no_cache_env / "mine"


def test_cache_is_never_inside_the_package_or_the_checkout(no_cache_env, monkeypatch):
    for xdg in (None, str(no_cache_env / "xdg")):
        if xdg:
            monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        where = prices_mod.default_cache_dir().resolve()
        assert not where.is_relative_to(PACKAGE_DIR.parent), where


def test_downloaded_candles_are_cached_in_the_user_cache(no_cache_env, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(no_cache_env / "xdg"))
    fresh = prices_mod.synthetic_prices("ETH/USDT:USDT", end=np.datetime64("today") - 1)
    calls = []

    def fake_fetch(symbol, **kwargs):
        calls.append(symbol)
        return fresh

    monkeypatch.setattr(prices_mod, "fetch_ccxt_daily", fake_fetch)
    with _Umask(0o022):
        got = prices_mod.load_prices("ETH/USDT:USDT", offline=False)
    cache_file = no_cache_env / "xdg" / "fastopt" / "prices" / "binanceusdm_ETH-USDT_1d.csv"
    assert calls == ["ETH/USDT:USDT"] and np.array_equal(got.close, fresh.close)
    assert cache_file.is_file() and _mode(cache_file) == 0o644
    # the next call is served from that cache, no download
    again = prices_mod.load_prices("ETH/USDT:USDT", offline=False)
    assert calls == ["ETH/USDT:USDT"] and again.source.startswith("csv:") and np.array_equal(again.close, fresh.close)


# -- fastopt init ------------------------------------------------------------------------------------------------
def test_packaged_example_is_the_repository_strategy():
    shipped = init_cmd.example_strategy()
    assert shipped == (REPO / "strategies" / init_cmd.EXAMPLE_STRATEGY / "strategy.py").read_text(encoding="utf-8")
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"data/examples/*/strategy.py"' in pyproject  # shipped in wheels, not only in a checkout


def test_init_lays_out_a_workspace_that_backtests_on_embedded_prices(tmp_path, monkeypatch, capsys):
    workspace = tmp_path / "my_portfolio"
    assert main(["init", str(workspace)]) == 0
    script = workspace / "strategies" / "sol_trend" / "strategy.py"
    assert script.is_file() and (workspace / "README.md").is_file()
    assert "fastopt backtest" in (workspace / "README.md").read_text()
    assert "created" in capsys.readouterr().out
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("FASTOPT_OFFLINE", "1")
    monkeypatch.delenv("FASTOPT_PRICES_DIR", raising=False)
    monkeypatch.delenv("FASTOPT_SYNTHETIC", raising=False)
    monkeypatch.setenv("FASTOPT_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert main(["backtest", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "[embedded real prices]" in out
    stats = read_stats(workspace / "strategies" / "sol_trend" / "stats.json")
    assert stats.last_date == np.datetime64("2024-12-31") and stats.metadata["Total Trades"] > 0


def test_init_refuses_a_non_empty_folder_and_never_overwrites(tmp_path, capsys):
    workspace = tmp_path / "ws"
    (workspace / "strategies" / "sol_trend").mkdir(parents=True)
    mine = workspace / "strategies" / "sol_trend" / "strategy.py"
    mine.write_text("# my own rules\n")
    before = hashlib.sha256(mine.read_bytes()).hexdigest()
    assert main(["init", str(workspace)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err and err.count("\n") == 1
    assert not (workspace / "README.md").exists()
    assert main(["init", str(workspace), "--force"]) == 0  # adds the README, keeps my strategy
    assert hashlib.sha256(mine.read_bytes()).hexdigest() == before
    assert (workspace / "README.md").is_file()
    assert "kept existing" in capsys.readouterr().err
    assert main(["init", str(workspace), "--force"]) == 3  # every file exists: nothing to do
    assert hashlib.sha256(mine.read_bytes()).hexdigest() == before
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["init", str(a_file)]) == 2
    assert main(["init", str(tmp_path / "empty_ok")]) == 0
    (tmp_path / "existing_empty").mkdir()
    assert main(["init", str(tmp_path / "existing_empty")]) == 0


def test_init_in_an_unwritable_place_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    assert main(["init", str(blocker / "ws")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write the workspace" in err and "Traceback" not in err


# -- the quick bench of `make test` never touches the working tree -----------------------------------------------
def test_quick_bench_test_writes_to_a_temporary_folder():
    """tests/test_bench_quick.py passes --out <tmp_path>: docs/BENCHMARKS.md and bench/results stay as they are."""
    source = (REPO / "tests" / "test_bench_quick.py").read_text()
    assert '"--out", str(tmp_path)' in source
    assert "docs" not in source.replace("docstring", "")


@pytest.mark.slow
@pytest.mark.integration
def test_quick_bench_leaves_docs_untouched(tmp_path):
    watched = [REPO / "docs" / "BENCHMARKS.md", REPO / "docs" / "bench_scaling.png", REPO / "bench" / "results" / "latest.json"]
    before = {p: (p.read_bytes() if p.exists() else None) for p in watched}
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "optimize", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "BENCHMARKS.md").is_file()
    assert {p: (p.read_bytes() if p.exists() else None) for p in watched} == before
