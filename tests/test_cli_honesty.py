"""Honest answers at the edges (issue 13): never silent, never implausible, one rule per option.

Through the CLI (``fastopt.cli.main`` in process) and through the library API.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastopt import options
from fastopt.cli import main
from fastopt.errors import InputError, NothingToDo
from fastopt.files.changes import change_lines, weight_changes
from fastopt.files.config import read_config, validate_for_trading
from fastopt.files.loader import load_panel
from fastopt.files.screen import screen_panel
from fastopt.optimize.constant import constant_columns
from fastopt.optimize.solver import optimize

START = np.datetime64("2024-01-01")


def write_stats(root: Path, name: str, returns: np.ndarray, *, start: int = 0, **extra) -> Path:
    days = [str(START + np.timedelta64(start + k, "D")) for k in range(len(returns))]
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "stats.json"
    path.write_text(json.dumps({"strategy": name, "daily_dates": days,
                                "daily_returns": [float(v) for v in returns], **extra}))
    return path


def noisy(seed: int, n_days: int, drift: float = 8e-4, vol: float = 0.015) -> np.ndarray:
    """Daily returns (fractions): Sharpe about drift / vol * sqrt(365), ann vol about vol * 19."""
    return np.random.default_rng(seed).normal(drift, vol, n_days)


@pytest.fixture()
def ws(tmp_path, monkeypatch):
    """Four plausible strategies on 400 days, in the current folder."""
    monkeypatch.chdir(tmp_path)
    for k in range(4):
        write_stats(tmp_path / "strategies", f"s{k}", noisy(k, 400))
    return tmp_path


def optimize_cli(*argv: str) -> int:
    return main(["optimize", "--strategies", "strategies", "--config", "portfolio_config.json", *argv])


def snapshot(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def json_out(capsys) -> tuple[dict, str]:
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


# ------------------------------------------------------------------ never silent


def test_skips_are_grouped_on_stderr_and_listed_in_json(ws, capsys):
    root = ws / "strategies"
    (root / "empty").mkdir()
    (root / "empty" / "stats.json").write_text("")
    (root / "nan").mkdir()
    (root / "nan" / "stats.json").write_text('{"daily_dates": ["2024-01-01", "2024-01-02"], '
                                             '"daily_returns": [NaN, 0.1]}')
    write_stats(root, "stale", noisy(9, 200))  # stops 200 days before the others
    assert optimize_cli("--target-vol", "0.3", "--json") == 0
    doc, err = json_out(capsys)
    by_name = {s["strategy"]: s for s in doc["skipped"]}
    assert set(by_name) == {"empty", "nan", "stale"}
    assert all(set(s) == {"strategy", "file", "reason"} for s in doc["skipped"])
    assert by_name["stale"]["file"] == str(Path("strategies") / "stale" / "stats.json")
    assert "by 200 days" in by_name["stale"]["reason"]
    assert "skipped 3 of 7 strategies" in err
    assert "invalid stats.json (2):" in err and "stale (1):" in err
    assert "stale" not in doc["weights"]
    # the config records the skip reasons too
    assert set(read_config("portfolio_config.json")["skipped"]) == {"empty", "nan", "stale"}


def test_strict_refuses_any_skip_and_writes_nothing(ws, capsys):
    cfg = ws / "portfolio_config.json"
    cfg.write_text('{"account_value": 1234, "weights": {"s0": 1.0}, "leverage": 1}\n')
    before = snapshot(cfg)
    (ws / "strategies" / "bad").mkdir()
    (ws / "strategies" / "bad" / "stats.json").write_text("{}")
    write_stats(ws / "strategies", "stale", noisy(9, 200))
    assert optimize_cli("--target-vol", "0.3", "--strict") == 2
    err = capsys.readouterr().err
    assert snapshot(cfg) == before
    lines = [line for line in err.splitlines() if "error: skipped" in line]
    assert len(lines) == 2 and any("bad" in line for line in lines) and any("stale" in line for line in lines)
    assert "--strict: 2 of 6 strategies skipped" in err
    # without the broken files --strict is silent and writes
    (ws / "strategies" / "bad" / "stats.json").unlink()
    (ws / "strategies" / "stale" / "stats.json").unlink()
    assert optimize_cli("--target-vol", "0.3", "--strict") == 0
    assert snapshot(cfg) != before


def test_stale_strategy_is_skipped_with_how_many_days_it_trails(ws, capsys):
    # a strong strategy whose history stopped 200 days ago: before, its 0-return days made it riskless
    write_stats(ws / "strategies", "stopped", noisy(7, 200, drift=3e-3), start=0)
    assert optimize_cli("--target-vol", "0.3", "--json", "--dry-run") == 0
    doc, err = json_out(capsys)
    assert "stopped" not in doc["weights"] and "trails the panel's last day" in err and "by 200 days" in err
    # within --max-stale-days it is used
    assert optimize_cli("--target-vol", "0.3", "--json", "--dry-run", "--max-stale-days", "250",
                        "--allow-implausible") == 0
    doc, _ = json_out(capsys)
    assert "stopped" not in {s["strategy"] for s in doc["skipped"]}
    assert doc["options"]["max_stale_days"] == 250


def test_screen_panel_api_stale_boundary(tmp_path):
    write_stats(tmp_path, "a", noisy(1, 100))
    write_stats(tmp_path, "b", noisy(2, 95))  # trails by 5 days
    panel = load_panel(tmp_path)
    kept = screen_panel(panel, tmp_path, max_stale_days=5)
    assert kept.panel.names == ["a", "b"] and not kept.skips
    cut = screen_panel(panel, tmp_path, max_stale_days=4)
    assert cut.panel.names == ["a"] and [s.strategy for s in cut.skips] == ["b"]
    assert "by 5 days" in cut.skips[0].reason and cut.skips[0].group == "stale"
    with pytest.raises(InputError, match="max_stale_days"):
        screen_panel(panel, tmp_path, max_stale_days=-1)


def test_synthetic_strategies_refused_unless_allowed_and_marked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_stats(tmp_path / "strategies", "real", noisy(1, 400, drift=-1e-3))
    write_stats(tmp_path / "strategies", "fake", noisy(2, 400, drift=2e-3), price_source="synthetic")
    cfg = tmp_path / "portfolio_config.json"
    # without the flag the synthetic one is skipped; the falling real one alone: no rising curve, exit 3
    assert optimize_cli("--target-vol", "0.3") == 3
    err = capsys.readouterr().err
    assert "synthetic prices (1): strategies/fake/stats.json" in err.replace("\\", "/")
    assert not cfg.exists()
    assert optimize_cli("--target-vol", "0.3", "--allow-synthetic") == 0
    out = capsys.readouterr().out
    assert "fake (synthetic)" in out
    data = read_config(cfg)
    assert data["synthetic"] == ["fake"] and data["options"]["allow_synthetic"] is True
    assert optimize_cli("--target-vol", "0.3", "--allow-synthetic", "--json", "--dry-run") == 0
    doc, _ = json_out(capsys)
    assert doc["synthetic"] == ["fake"]


# ------------------------------------------------------------------ never implausible


def test_low_vol_result_is_refused_unless_allowed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for k in range(3):  # ~0.2 % annual vol, Sharpe ~2: not a Sharpe problem, a vol problem
        write_stats(tmp_path / "strategies", f"q{k}", noisy(k, 400, drift=1e-5, vol=1e-4))
    cfg = tmp_path / "portfolio_config.json"
    cfg.write_text('{"account_value": 5}\n')
    before = snapshot(cfg)
    assert optimize_cli("--target-vol", "0.3") == 3
    err = capsys.readouterr().err
    assert "implausible" in err and "annual vol" in err and "below 1.00%" in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert snapshot(cfg) == before
    assert optimize_cli("--target-vol", "0.3", "--min-ann-vol", "0.001") == 0
    assert read_config(cfg)["options"]["min_ann_vol"] == 0.001
    cfg.write_text('{"account_value": 5}\n')
    assert optimize_cli("--target-vol", "0.3", "--allow-implausible") == 0
    assert "written anyway" in capsys.readouterr().err


def test_high_sharpe_result_is_refused_unless_threshold_raised(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for k in range(3):  # Sharpe ~ 4e-3 / 1e-2 * sqrt(365) ~ 7.6 each
        write_stats(tmp_path / "strategies", f"h{k}", noisy(k, 400, drift=4e-3, vol=1e-2))
    assert optimize_cli("--target-vol", "0.3", "--dry-run") == 3
    assert "Sharpe" in capsys.readouterr().err
    assert optimize_cli("--target-vol", "0.3", "--dry-run", "--max-sharpe", "1000") == 0


def test_constant_column_is_excluded_through_the_cli(ws, capsys):
    # 1e-3 every day: after rounding its variance is ~1e-38; it used to get 100 % at the leverage cap
    write_stats(ws / "strategies", "flat", np.full(400, 1e-3) + np.random.default_rng(0).normal(0, 1e-19, 400))
    assert optimize_cli("--target-vol", "0.3", "--json", "--dry-run") == 0
    doc, err = json_out(capsys)
    flat = [s for s in doc["skipped"] if s["strategy"] == "flat"]
    assert flat and flat[0]["reason"].startswith("constant")
    assert "flat" not in doc["weights"] and "constant (1):" in err
    assert optimize_cli("--target-vol", "0.3", "--dry-run", "--strict") == 2


@settings(max_examples=40)
@given(offset=st.floats(-1e3, 1e3), scale=st.floats(1e-6, 1e6), jitter=st.floats(0, 1e-15))
def test_constant_column_at_any_scale_or_offset_is_excluded(offset, scale, jitter):
    rng = np.random.default_rng(3)
    returns = rng.normal(5e-4, 0.01, (120, 3)) * scale
    level = offset * scale
    returns[:, 1] = level * (1 + jitter * rng.standard_normal(120))  # rounding-level noise around a constant
    assert constant_columns(returns).tolist() == [False, True, False]
    alloc = optimize(returns)
    assert alloc.weights[1] == 0 and alloc.diagnostics["excluded"][1].startswith("constant")


@settings(max_examples=40)
@given(offset=st.floats(-1e3, 1e3), scale=st.floats(1e-6, 1e6), relative=st.floats(1e-9, 1.0))
def test_tiny_but_real_variance_column_is_kept(offset, scale, relative):
    rng = np.random.default_rng(4)
    returns = rng.normal(5e-4, 0.01, (120, 3)) * scale
    level = max(abs(offset), 0.01) * scale  # its own level, or the panel's at least
    returns[:, 1] = offset * scale + relative * level * rng.standard_normal(120)
    assert not constant_columns(returns).any()


def test_only_constant_columns_is_nothing_to_do():
    with pytest.raises(NothingToDo, match="constant"):
        optimize(np.column_stack([np.full(50, 0.01), np.full(50, -2.0)]))


def test_single_falling_strategy_follows_the_no_rising_curve_rule(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    falling = noisy(5, 400, drift=-2e-3)
    write_stats(tmp_path / "strategies", "down", falling)
    write_stats(tmp_path / "strategies", "broken", np.zeros(0))  # unusable: one usable strategy left
    assert optimize(falling[:, None]).status == "no_rising_curve"
    assert optimize_cli("--target-vol", "0.3") == 3
    assert "no allocation has a rising curve" in capsys.readouterr().err
    assert not (tmp_path / "portfolio_config.json").exists()
    assert optimize_cli("--target-vol", "0.3", "--allow-negative") == 0
    assert read_config(tmp_path / "portfolio_config.json")["weights"] == {"down": 1.0}


# ------------------------------------------------------------------ one rule everywhere

BAD_TARGET_VOLS = st.one_of(
    st.floats(min_value=10.0, max_value=1e6, exclude_min=True),
    st.floats(max_value=0.0),
    st.sampled_from([math.inf, -math.inf, math.nan, 30.0, 100.0, 0.0]),
)


def _argparse_message(err: str, option: str) -> str:
    line = [line for line in err.splitlines() if f"argument {option}:" in line][-1]
    return line.split(f"argument {option}: ", 1)[1]


@settings(max_examples=15)
@given(value=BAD_TARGET_VOLS)
def test_bad_target_vol_gets_the_same_message_everywhere(value, capsys):
    text = repr(value) if math.isfinite(value) else str(value)
    reason = options.target_vol_problem(float(text))
    assert reason is not None
    capsys.readouterr()
    messages = []
    for command, option in (("optimize", "--target-vol"), ("walkforward", "--target-vol"),
                            ("sweep", "--target-vols")):
        assert main([command, f"{option}={text}"]) == 2
        messages.append(_argparse_message(capsys.readouterr().err, option))
    assert messages == [reason] * 3
    from fastopt.walkforward.core import walkforward

    with pytest.raises(InputError) as info:
        walkforward(np.random.default_rng(0).normal(0, 0.01, (80, 3)), lookback=30, target_vol=float(text),
                    random_n=0)
    assert str(info.value) == f"target_vol {reason}"


@settings(max_examples=15)
@given(value=st.one_of(st.floats(max_value=0.0), st.sampled_from([math.inf, math.nan, -1.0, 0.0])))
def test_bad_max_leverage_gets_the_same_message_everywhere(value, capsys):
    text = repr(value) if math.isfinite(value) else str(value)
    reason = options.max_leverage_problem(float(text))
    capsys.readouterr()
    messages = []
    for command in ("optimize", "walkforward", "sweep", "reconcile"):
        assert main([command, f"--max-leverage={text}"]) == 2
        messages.append(_argparse_message(capsys.readouterr().err, "--max-leverage"))
    assert messages == [reason] * 4
    from fastopt.walkforward.sweep import SweepSpec

    with pytest.raises(InputError) as info:
        SweepSpec(universes=["strategies"], max_leverage=float(text)).validate()
    assert str(info.value) == f"max_leverage {reason}"


@settings(max_examples=10)
@given(value=st.integers(-1000, 1))
def test_bad_lookback_gets_the_same_message_everywhere(value, capsys):
    reason = options.lookback_problem(value)
    capsys.readouterr()
    messages = []
    for command, option in (("optimize", "--lookback"), ("walkforward", "--lookback"), ("sweep", "--lookbacks")):
        assert main([command, f"{option}={value}"]) == 2
        messages.append(_argparse_message(capsys.readouterr().err, option))
    assert messages == [reason] * 3


def test_new_parsers_accept_their_range_and_refuse_in_one_line():
    assert options.target_vol("0.3") == 0.3 and options.target_vol("10") == 10.0
    assert options.lookback("2") == 2 and options.max_leverage("0.5") == 0.5
    assert options.periods_per_year("252") == 252.0
    for parse, text in ((options.target_vol, "30"), (options.target_vol, "x"), (options.lookback, "1"),
                        (options.lookback, "2.5"), (options.max_leverage, "0"), (options.periods_per_year, "-1")):
        with pytest.raises(argparse.ArgumentTypeError) as info:
            parse(text)
        assert "\n" not in str(info.value)
    assert "looks like a percent" in options.target_vol_problem(30)


def test_short_lookback_warns_it_fits_noise(ws, capsys):
    assert optimize_cli("--target-vol", "0.3", "--lookback", "59", "--dry-run", "--allow-implausible") == 0
    assert "fits noise" in capsys.readouterr().err
    assert optimize_cli("--target-vol", "0.3", "--lookback", "60", "--dry-run", "--allow-implausible") == 0
    assert "fits noise" not in capsys.readouterr().err


def test_walkforward_cli_periods_per_year_warning_skips_and_synthetic(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "strategies"
    for k in range(3):
        write_stats(root, f"w{k}", noisy(k, 150))
    write_stats(root, "syn", noisy(8, 150), price_source="synthetic")
    write_stats(root, "old", noisy(9, 100))
    argv = ["walkforward", "--lookback", "40", "--random-n", "5", "--no-plot", "--output", "wf", "--json"]
    assert main([*argv, "--periods-per-year", "252"]) == 0
    doc, err = json_out(capsys)
    assert "fits noise" in err and "stale (1)" in err and "synthetic prices (1)" in err
    assert {s["strategy"] for s in doc["skipped"]} == {"syn", "old"}
    stats = json.loads((tmp_path / "wf" / "stats.json").read_text())
    assert stats["settings"]["periods_per_year"] == 252.0
    assert main([*argv, "--allow-synthetic"]) == 0
    doc, _ = json_out(capsys)
    assert doc["synthetic"] == ["syn"]
    assert main([*argv[:-1], "--allow-synthetic"]) == 0
    assert "(synthetic)" in capsys.readouterr().out
    assert main([*argv, "--strict"]) == 2
    assert "--strict" in capsys.readouterr().err


# ------------------------------------------------------------------ audit trail


AUDIT_KEYS = {"fastopt_version", "allocator", "objective", "solver", "lookback_days", "vol_window_days",
              "periods_per_year", "target_vol", "max_leverage", "max_weight", "min_weight", "shrinkage",
              "shrinkage_intensity", "max_stale_days", "min_ann_vol", "max_sharpe", "seed"}


def test_config_records_every_option_and_still_trades(ws, capsys):
    assert optimize_cli("--target-vol", "0.25", "--lookback", "200", "--vol-window", "90",
                        "--periods-per-year", "252", "--shrinkage", "0.1", "--max-weight", "0.6") == 0
    data = read_config(ws / "portfolio_config.json")
    audit = data["options"]
    assert AUDIT_KEYS <= set(audit)
    assert audit["lookback_days"] == 200 and audit["vol_window_days"] == 90
    assert audit["periods_per_year"] == 252.0 and audit["shrinkage"] == 0.1 and audit["max_weight"] == 0.6
    assert audit["target_vol"] == 0.25
    from fastopt import __version__

    assert audit["fastopt_version"] == __version__
    trading = validate_for_trading(data, max_leverage=5)
    assert trading.weights == data["weights"]
    # an old config without the new keys still loads and trades
    old = {k: v for k, v in data.items() if k not in ("options", "synthetic")}
    assert validate_for_trading(old, max_leverage=5).weights == data["weights"]


def test_change_against_previous_weights_is_printed_before_writing(ws, capsys):
    cfg = ws / "portfolio_config.json"
    cfg.write_text(json.dumps({"account_value": 100, "leverage": 1.0, "weights": {"s0": 0.5, "gone": 0.5}}))
    assert optimize_cli("--target-vol", "0.3", "--json") == 0
    doc, err = json_out(capsys)
    new = doc["weights"]
    expected = math.fsum(abs(new.get(n, 0.0) - {"s0": 0.5, "gone": 0.5}.get(n, 0.0)) for n in set(new) | {"s0", "gone"})
    change = doc["changes"]
    assert change["turnover"] == pytest.approx(expected, abs=1e-12)
    assert "gone" in change["removed"] and f"turnover {expected:.2%}" in err
    assert "gone: 50.00% -> 0.00% (removed)" in err
    lev = doc["leverage"]
    exposure = math.fsum(abs(new.get(n, 0.0) * lev - {"s0": 0.5, "gone": 0.5}.get(n, 0.0))
                         for n in set(new) | {"s0", "gone"})
    assert change["exposure_change"] == pytest.approx(exposure, abs=1e-12)


weights_maps = st.dictionaries(st.sampled_from(list("abcdef")), st.floats(0, 1), max_size=6)


@given(old=weights_maps, new=weights_maps, lev_old=st.floats(0.1, 5), lev=st.floats(0.1, 5))
def test_weight_changes_properties(old, new, lev_old, lev):
    change = weight_changes({"weights": old, "leverage": lev_old}, new, lev)
    names = set(old) | set(new)
    assert change["turnover"] == pytest.approx(
        math.fsum(abs((new.get(n, 0.0) if new.get(n, 0.0) > 0 else 0.0) - old.get(n, 0.0)) for n in names), abs=1e-12)
    assert change["turnover"] >= 0
    assert set(change["added"]).isdisjoint(change["removed"])
    same = weight_changes({"weights": {k: v for k, v in new.items() if v > 0}, "leverage": lev}, new, lev)
    assert same["turnover"] == 0 and same["exposure_change"] == 0 and not same["changed"]
    assert len(change_lines(change, limit=3)) <= 5 or not change["previous"]


def test_reconciler_trades_a_config_written_with_the_audit_keys(ws, monkeypatch, capsys):
    """The config optimize now writes (options, synthetic) runs a paper reconcile cycle unchanged."""
    from fakes.workspace import make_workspace, reconciler_for

    monkeypatch.setenv("FASTOPT_OFFLINE", "1")
    assert optimize_cli("--target-vol", "0.3") == 0
    written = read_config(ws / "portfolio_config.json")
    extra = {k: written[k] for k in ("options", "synthetic", "skipped", "strategies_used")}
    root = ws / "reconcile"
    states = {name: {"symbol": "BTC/USDT:USDT", "position": 0.1} for name in written["weights"]}
    cfg = make_workspace(root, weights=written["weights"], states=states, leverage=written["leverage"], **extra)
    report = reconciler_for(cfg).run_cycle()
    assert report.status == "ok" and report.plan.orders


def test_the_api_screens_a_panel_like_the_cli(tmp_path, monkeypatch, capsys):
    """optimize(load_panel(folder)) leaves out the stale and the synthetic strategies the CLI skips,
    says why, and finds the CLI's weights."""
    monkeypatch.chdir(tmp_path)
    for k in range(3):
        write_stats(tmp_path / "strategies", f"s{k}", noisy(k, 400, drift=2e-3))
    write_stats(tmp_path / "strategies", "stopped", noisy(9, 200, drift=3e-3))  # ends 200 days early
    write_stats(tmp_path / "strategies", "fake", noisy(8, 400, drift=3e-3), price_source="synthetic")
    alloc = optimize(load_panel(tmp_path / "strategies"))
    screened = alloc.diagnostics["screened"]
    assert set(screened) == {"stopped", "fake"}
    assert "trails" in screened["stopped"] and "synthetic" in screened["fake"]
    assert set(alloc.weights_by_name()) <= {"s0", "s1", "s2"}
    assert optimize_cli("--target-vol", "0.3", "--allow-implausible", "--json") == 0
    cli = json.loads(capsys.readouterr().out)
    for name, weight in cli["weights"].items():
        assert alloc.weights_by_name()[name] == pytest.approx(weight, abs=1e-9)
    kept = optimize(load_panel(tmp_path / "strategies"), max_stale_days=400, allow_synthetic=True)
    assert "screened" not in kept.diagnostics and {"stopped", "fake"} <= set(kept.names)
