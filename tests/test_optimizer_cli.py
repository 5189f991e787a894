"""`fastopt optimize` / `fastopt warmup` end to end (in process), plus allocators and leverage."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from fakes.allocators import write_blaveclaw_allocator
from hypothesis import given
from hypothesis import strategies as st

from fastopt.optimize.allocators import AllocatorError, get_allocator
from fastopt.cli import main
from fastopt.errors import InputError
from fastopt.optimize.leverage import portfolio_ann_vol, target_leverage

START = np.datetime64("2024-01-01")


def write_strategies(root: Path, returns: np.ndarray, prefix: str = "s") -> list[str]:
    names = []
    days = [str(START + np.timedelta64(k, "D")) for k in range(returns.shape[0])]
    for j in range(returns.shape[1]):
        name = f"{prefix}{j:02d}"
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "stats.json").write_text(json.dumps(
            {"strategy": name, "daily_dates": days, "daily_returns": returns[:, j].tolist()}))
        names.append(name)
    return names


def factor_returns(seed: int, n_days: int, n_assets: int, drift: float = 5e-4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    market = rng.standard_normal(n_days) * 0.02
    beta = rng.uniform(-0.5, 1.0, n_assets)
    noise = rng.standard_normal((n_days, n_assets)) * rng.uniform(0.005, 0.03, n_assets)
    return rng.normal(drift, 1e-3, n_assets) + np.outer(market, beta) + noise


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_strategies(tmp_path / "strategies", factor_returns(1, 400, 12))
    return tmp_path


def run_cli(*argv: str) -> int:
    return main(["optimize", "--strategies", "strategies", "--config", "portfolio_config.json", *argv])


def test_writes_config_with_all_keys_and_preserves_foreign_keys(workspace, capsys):
    cfg = workspace / "portfolio_config.json"
    cfg.write_text(json.dumps({"account_value": 25000, "exchanges": {"s00": "binance"},
                               "asset_specs": {"BTC": {"step": 0.001}}, "custom": [1, 2]}))
    assert run_cli("--target-vol", "0.30") == 0
    data = json.loads(cfg.read_text())
    assert data["account_value"] == 25000
    assert data["exchanges"] == {"s00": "binance"}
    assert data["asset_specs"] == {"BTC": {"step": 0.001}}
    assert data["custom"] == [1, 2]
    for key in ("weights", "ann_volatility_pct", "target_vol_pct", "leverage", "sharpe_ratio", "score",
                "objective", "allocator", "lookback_days", "window_start", "window_end",
                "leverage_uncapped", "max_leverage", "strategies_used", "skipped", "generated_at", "seed"):
        assert key in data, key
    weights = data["weights"]
    assert all(v > 0 for v in weights.values())
    assert abs(math.fsum(weights.values()) - 1.0) <= 1e-12
    assert data["target_vol_pct"] == pytest.approx(30.0)
    if data["leverage_uncapped"] is not None and data["leverage_uncapped"] <= data["max_leverage"]:
        assert data["leverage"] * data["ann_volatility_pct"] / 100 == pytest.approx(0.30, rel=1e-12)
    out = capsys.readouterr().out
    assert "portfolio: score" in out


def test_new_config_gets_default_account_value_and_flag_sets_it(workspace):
    assert run_cli("--target-vol", "0.2") == 0
    assert json.loads((workspace / "portfolio_config.json").read_text())["account_value"] == 10000
    assert run_cli("--target-vol", "0.2", "--account-value", "5000") == 0
    assert json.loads((workspace / "portfolio_config.json").read_text())["account_value"] == 5000


def test_dry_run_writes_nothing_and_json_parses(workspace, capsys):
    assert run_cli("--target-vol", "0.3", "--dry-run", "--json") == 0
    assert not (workspace / "portfolio_config.json").exists()
    result = json.loads(capsys.readouterr().out)
    assert result["written"] is False
    assert result["status"] == "optimal"
    assert abs(math.fsum(result["weights"].values()) - 1) <= 1e-12
    assert len(result["strategies"]) == 12


def _snapshot(path: Path) -> bytes:
    return path.read_bytes()


def test_failed_runs_leave_config_byte_identical(workspace, capsys):
    cfg = workspace / "portfolio_config.json"
    assert run_cli("--target-vol", "0.3") == 0
    before = _snapshot(cfg)
    assert run_cli("--target-vol", "0.3", "--max-weight", "0.01") == 2  # infeasible bounds
    assert run_cli("--target-vol", "-1") == 2
    assert run_cli("--target-vol", "0.3", "--allocator", "no_such_allocator") == 2
    assert run_cli("--target-vol", "0.3", "--end", "not-a-date") == 2
    assert _snapshot(cfg) == before
    err = capsys.readouterr().err
    assert "infeasible" in err and "Traceback" not in err


def test_no_rising_curve_exit_3_unless_allow_negative(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    falling = -np.abs(factor_returns(2, 200, 4, drift=0.0)) - 2e-3
    write_strategies(tmp_path / "strategies", falling)
    cfg = tmp_path / "portfolio_config.json"
    cfg.write_text('{"account_value": 1, "keep": true}\n')
    before = _snapshot(cfg)
    assert run_cli("--target-vol", "0.3") == 3
    assert _snapshot(cfg) == before
    assert "rising curve" in capsys.readouterr().err
    assert run_cli("--target-vol", "0.3", "--allow-negative") == 0
    data = json.loads(cfg.read_text())
    assert data["keep"] is True and abs(math.fsum(data["weights"].values()) - 1) <= 1e-12


def test_unbounded_window_exit_3_unless_allow_unbounded(tmp_path, monkeypatch, capsys):
    """200 strategies with positive and negative market betas on 50 days: a long-only mix with
    ~zero in-sample variance exists, slope/std is unbounded; writing it would set the leverage
    from a near-zero vol, so the config is left alone unless --allow-unbounded."""
    monkeypatch.chdir(tmp_path)
    write_strategies(tmp_path / "strategies", factor_returns(3, 50, 200))
    cfg = tmp_path / "portfolio_config.json"
    cfg.write_text('{"account_value": 1, "keep": true}\n')
    before = _snapshot(cfg)
    # the sample covariance (the default risk model takes the factor model on this N > T window)
    assert run_cli("--target-vol", "0.3", "--risk-model", "sample") == 3
    assert _snapshot(cfg) == before
    err = capsys.readouterr().err
    assert "unbounded" in err and "--allow-unbounded" in err and "Traceback" not in err
    # the best-effort weights are also implausible (near-zero in-sample vol): both flags write them
    assert run_cli("--target-vol", "0.3", "--risk-model", "sample", "--allow-unbounded") == 3
    assert "implausible" in capsys.readouterr().err and _snapshot(cfg) == before
    assert run_cli("--target-vol", "0.3", "--risk-model", "sample", "--allow-unbounded",
                   "--allow-implausible") == 0
    data = json.loads(cfg.read_text())
    assert data["keep"] is True and abs(math.fsum(data["weights"].values()) - 1) <= 1e-12
    assert "warning: unbounded" in capsys.readouterr().err
    # shrinkage makes the same window well-posed (no unbounded status), but 200 strategies fitted on
    # 50 days still show an in-sample Sharpe near 100: refused as implausible, written with the flag
    assert run_cli("--target-vol", "0.3", "--shrinkage", "auto") == 3
    assert "Sharpe" in capsys.readouterr().err
    assert run_cli("--target-vol", "0.3", "--shrinkage", "auto", "--allow-implausible") == 0


def test_nothing_to_do_and_bad_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "strategies").mkdir()
    assert run_cli("--target-vol", "0.3") == 3
    assert main(["optimize", "--strategies", "missing", "--target-vol", "0.3"]) == 2
    write_strategies(tmp_path / "strategies", factor_returns(3, 100, 3))
    (tmp_path / "portfolio_config.json").write_text("{broken")
    assert run_cli("--target-vol", "0.3") == 2
    assert (tmp_path / "portfolio_config.json").read_text() == "{broken"
    err = capsys.readouterr().err
    assert "portfolio_config.json" in err and "Traceback" not in err


def test_help_has_examples(capsys):
    assert main(["optimize", "--help"]) == 0
    assert "examples:" in capsys.readouterr().out
    assert main(["warmup", "--help"]) == 0


def test_options_reach_the_solver(workspace, capsys):
    assert run_cli("--target-vol", "0.3", "--max-weight", "0.2", "--min-weight", "0.05",
                   "--max-strategies", "6", "--json", "--dry-run") == 0
    result = json.loads(capsys.readouterr().out)
    weights = np.array(list(result["weights"].values()))
    assert weights.size <= 6
    assert (weights <= 0.2 + 1e-15).all() and (weights >= 0.05 * (1 - 1e-12)).all()
    assert run_cli("--target-vol", "0.3", "--shrinkage", "auto", "--json", "--dry-run") == 0
    assert json.loads(capsys.readouterr().out)["diagnostics"]["shrinkage"] > 0
    assert run_cli("--target-vol", "0.3", "--allocator", "inverse_vol", "--json", "--dry-run") == 0
    assert len(json.loads(capsys.readouterr().out)["weights"]) == 12


def test_blaveclaw_allocator_folder_and_failures(workspace, capsys):
    write_blaveclaw_allocator(workspace, "half", (
        "DISPLAY_NAME = 'two'\n"
        "def allocate(returns, lookback):\n"
        "    cols = list(returns.columns)\n"
        "    return {cols[0]: 3.0, cols[1]: 1.0}\n"))
    assert run_cli("--target-vol", "0.3", "--allocator", "half", "--json", "--dry-run") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["weights"] == {"s00": 0.75, "s01": 0.25}
    write_blaveclaw_allocator(workspace, "bad", "def allocate(returns, lookback):\n    return {'s00': -1.0, 's01': 2.0}\n")
    assert run_cli("--target-vol", "0.3", "--allocator", "bad") == 1
    assert "negative weight" in capsys.readouterr().err


def test_plugin_file_and_validation(tmp_path):
    plugin = tmp_path / "mine.py"
    plugin.write_text("import numpy as np\ndef allocate(returns_window, names):\n"
                      "    return np.full(len(names), 1.0 / len(names))\n")
    alloc = get_allocator(str(plugin))
    w = alloc.allocate(np.random.default_rng(0).normal(0, 0.01, (50, 4)), list("abcd"))
    assert abs(math.fsum(w.tolist()) - 1) <= 1e-15 and w.size == 4
    off = tmp_path / "off.py"
    off.write_text("def allocate(returns_window, names):\n    return [0.5, 0.4, 0.0, 0.0]\n")
    with pytest.raises(AllocatorError, match="summing to"):
        get_allocator(str(off)).allocate(np.zeros((5, 4)) + 0.01, list("abcd"))
    unknown = tmp_path / "unk.py"
    unknown.write_text("def allocate(returns_window, names):\n    return {'zz': 1.0}\n")
    with pytest.raises(AllocatorError, match="unknown"):
        get_allocator(str(unknown)).allocate(np.zeros((5, 2)), ["a", "b"])
    boom = tmp_path / "boom.py"
    boom.write_text("def allocate(returns_window, names):\n    raise RuntimeError('nope')\n")
    with pytest.raises(AllocatorError, match="nope"):
        get_allocator(str(boom)).allocate(np.zeros((5, 2)), ["a", "b"])
    with pytest.raises(InputError):
        get_allocator(str(tmp_path / "missing.py"))


@pytest.mark.parametrize("spec", ["slope_std", "slope_std_compound", "equal", "inverse_vol", "max_sharpe"])
def test_builtin_allocators_return_valid_weights(spec):
    returns = factor_returns(4, 200, 8)
    w = get_allocator(spec).allocate(returns, [f"n{k}" for k in range(8)])
    assert w.shape == (8,) and (w >= 0).all() and abs(math.fsum(w.tolist()) - 1) <= 1e-12


@given(target=st.floats(0.01, 2.0), seed=st.integers(0, 1000), cap=st.floats(0.5, 20))
def test_leverage_hits_target_when_uncapped(target, seed, cap):
    returns = factor_returns(seed, 60, 3)
    w = np.array([0.5, 0.3, 0.2])
    vol = portfolio_ann_vol(returns, w)
    decision = target_leverage(vol, target, max_leverage=cap)
    if decision.capped:
        assert decision.leverage == cap and decision.leverage_uncapped > cap
    else:
        assert decision.leverage * vol == pytest.approx(target, rel=1e-12)
    assert target_leverage(0.0, target, max_leverage=cap).leverage_uncapped is None


def test_warmup_reports_every_kernel(capsys):
    assert main(["warmup", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    import fastopt.optimize.active_set_kernels as active_set_kernels
    import fastopt.optimize.kernels as kernels
    import fastopt.walkforward.rolling_kernels as rolling_kernels

    assert report["modules_without_warmup"] == []
    for module in (kernels, rolling_kernels, active_set_kernels):
        names = {
            row["kernel"].split("[")[0] for row in report["kernels"] if row["module"] == module.__name__
        }
        defined_here = {name for name in dir(module) if name.endswith("_nb")
                        and getattr(module, name).py_func.__module__ == module.__name__}
        assert names == defined_here


def test_short_window_and_ignored_options(workspace, capsys):
    assert run_cli("--target-vol", "0.3", "--lookback", "1") == 2  # the rule of every command: >= 2 days
    assert "whole number of days >= 2" in capsys.readouterr().err
    assert run_cli("--target-vol", "0.3", "--allocator", "equal", "--max-weight", "0.5", "--dry-run") == 0
    assert "--max-weight ignored" in capsys.readouterr().err
    assert run_cli("--target-vol", "0.3", "--solver", "exact", "--max-strategies", "3", "--dry-run") == 2


def test_per_strategy_max_weight(workspace, capsys):
    assert run_cli("--target-vol", "0.3", "--json", "--dry-run") == 0
    free = json.loads(capsys.readouterr().out)["weights"]
    top = max(free, key=free.get)
    assert run_cli("--target-vol", "0.3", "--max-weight", f"{top}=0.05", "--json", "--dry-run") == 0
    capped = json.loads(capsys.readouterr().out)["weights"]
    assert capped.get(top, 0.0) <= 0.05 + 1e-15
    assert abs(math.fsum(capped.values()) - 1) <= 1e-12
    assert run_cli("--target-vol", "0.3", "--max-weight", "nope=0.1", "--dry-run") == 2
    assert run_cli("--target-vol", "0.3", "--max-weight", "abc", "--dry-run") == 2
    assert "unknown strategies" in capsys.readouterr().err


def test_exact_solver_agrees_with_search_through_the_cli(workspace, capsys):
    assert run_cli("--target-vol", "0.3", "--json", "--dry-run") == 0
    search = json.loads(capsys.readouterr().out)
    assert run_cli("--target-vol", "0.3", "--solver", "exact", "--json", "--dry-run") == 0
    exact = json.loads(capsys.readouterr().out)
    assert exact["solver"] == "exact"
    assert search["score"] >= exact["score"] * (1 - 1e-12)
    assert search["score"] == pytest.approx(exact["score"], rel=1e-8)


@given(raw=st.lists(st.floats(0, 10, allow_nan=False), min_size=2, max_size=12), flip=st.integers(0, 11),
       bad=st.sampled_from(["none", "negative", "nan", "unknown", "unnormalized"]))
def test_validate_weights_accepts_only_valid_output(raw, flip, bad):
    from fastopt.optimize.allocators import validate_weights

    names = [f"s{k}" for k in range(len(raw))]
    w = np.array(raw)
    if w.sum() == 0:
        w[0] = 1.0
    w = w / w.sum()
    k = flip % len(raw)
    if bad == "none":
        out = validate_weights(dict(zip(names, w.tolist())), names, allocator="t")
        assert abs(math.fsum(out.tolist()) - 1) <= 1e-15 * len(raw) and (out >= 0).all()
        np.testing.assert_allclose(out, w, rtol=1e-9, atol=1e-15)
        return
    if bad == "negative":
        w[k] = -0.5
    elif bad == "nan":
        w[k] = np.nan
    elif bad == "unnormalized":
        w = w * 1.5
    mapping = dict(zip(names, w.tolist()))
    if bad == "unknown":
        mapping["zz"] = 0.0
    with pytest.raises(AllocatorError):
        validate_weights(mapping, names, allocator="t")
    # raw scores are accepted (normalized) only for BlaveClaw allocators, never negatives/NaN/unknown
    if bad == "unnormalized":
        out = validate_weights(mapping, names, allocator="t", normalize_raw=True)
        assert abs(math.fsum(out.tolist()) - 1) <= 1e-15 * len(raw)


def test_lookback_beyond_the_history_uses_all_of_it(workspace, capsys):
    """--lookback / --vol-window longer than the data (even 10**20 days) = the whole history, no overflow."""
    assert run_cli("--target-vol", "0.3", "--lookback", "400", "--dry-run", "--json") == 0
    whole = json.loads(capsys.readouterr().out)
    for flags in (("--lookback", str(10**20)), ("--lookback", "400", "--vol-window", str(10**20))):
        assert run_cli("--target-vol", "0.3", *flags, "--dry-run", "--json") == 0
        captured = capsys.readouterr()
        result = json.loads(captured.out)
        assert "internal error" not in captured.err
        assert result["weights"] == whole["weights"] and result["n_days"] == 400
        assert result["window_start"] == whole["window_start"] and result["ann_vol"] == whole["ann_vol"]


def test_allocator_on_falling_curves_is_no_rising_curve(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    falling = -np.abs(factor_returns(3, 120, 4)) * np.linspace(0.1, 2.0, 120)[:, None]
    write_strategies(tmp_path / "strategies", falling)
    assert run_cli("--target-vol", "0.3", "--allocator", "equal", "--dry-run") == 3
    assert "no allocation has a rising curve" in capsys.readouterr().err
    assert run_cli("--target-vol", "0.3", "--allocator", "equal", "--dry-run", "--allow-negative", "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "no_rising_curve"
    rising = falling.copy()
    rising[:, 0] = np.abs(rising[:, 0])
    write_strategies(tmp_path / "strategies", rising)
    assert run_cli("--target-vol", "0.3", "--allocator", "equal", "--dry-run", "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "allocator"


def test_unwritable_config_is_a_one_line_error(workspace, monkeypatch, capsys):
    import fastopt.files.config

    def refuse(path, config):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(fastopt.files.config, "write_config", refuse)
    assert run_cli("--target-vol", "0.3") == 2
    err = capsys.readouterr().err
    assert err == "fastopt optimize: error: portfolio_config.json: cannot write the config: Permission denied\n"
    assert not (workspace / "portfolio_config.json").exists()
