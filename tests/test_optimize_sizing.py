"""`fastopt optimize` sizes the leverage on the estimator's vol (default: the one-factor model), not on
the biased-low in-sample vol of the weights it just fitted; both numbers are in the config."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastopt.cli import main
from fastopt.files.loader import load_panel
from fastopt.optimize.vol_estimate import DEFAULT_VOL_ESTIMATOR, VOL_ESTIMATORS, portfolio_vol

START = np.datetime64("2024-01-01")


def _workspace(root, n_strategies: int, n_days: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0004, 0.02, n_days)
    for k in range(n_strategies):
        returns = 0.6 * market * rng.uniform(0.2, 1.0) + rng.normal(0.0009, 0.012, n_days)
        folder = root / "strategies" / f"s{k}"
        folder.mkdir(parents=True)
        days = [str(START + np.timedelta64(d, "D")) for d in range(n_days)]
        (folder / "stats.json").write_text(json.dumps({"strategy": f"s{k}", "daily_dates": days,
                                                       "daily_returns": [float(v) for v in returns]}))


def _run(tmp_path, capsys, *extra: str) -> dict:
    argv = ["optimize", "--strategies", str(tmp_path / "strategies"), "--config", str(tmp_path / "pc.json"),
            "--target-vol", "0.3", "--allow-implausible", "--json", *extra]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _window(tmp_path, summary):
    panel = load_panel(tmp_path / "strategies", lookback=365)
    returns = np.ascontiguousarray(panel.returns[-summary["n_days"]:])
    weights = np.array([summary["weights"].get(name, 0.0) for name in panel.names])
    return returns, weights


def test_default_sizes_on_the_factor_vol_and_records_both(tmp_path, capsys):
    _workspace(tmp_path, 8, 400, 0)
    summary = _run(tmp_path, capsys)
    config = json.loads((tmp_path / "pc.json").read_text())
    returns, weights = _window(tmp_path, summary)
    factor = portfolio_vol(returns, weights, estimator="factor")
    in_sample = float(np.std(returns @ weights, ddof=1) * math.sqrt(365))
    assert DEFAULT_VOL_ESTIMATOR == "factor" and summary["vol_estimator"] == "factor"
    assert summary["ann_vol"] == pytest.approx(factor, rel=1e-9)
    assert summary["ann_vol_in_sample"] == pytest.approx(in_sample, rel=1e-9)
    assert config["ann_volatility_pct"] == pytest.approx(factor * 100, rel=1e-9)
    assert config["ann_volatility_in_sample_pct"] == pytest.approx(in_sample * 100, rel=1e-9)
    assert config["vol_estimator"] == "factor" and config["options"]["vol_estimator"] == "factor"
    assert config["options"]["risk_model"] == "sample"
    assert config["leverage"] == pytest.approx(min(0.3 / factor, 5.0), rel=1e-9)
    # the fitted weights hide risk in-sample: the factor model sees at least as much vol here
    assert factor >= in_sample * 0.98


def test_in_sample_estimator_is_the_old_sizing(tmp_path, capsys):
    _workspace(tmp_path, 6, 400, 1)
    summary = _run(tmp_path, capsys, "--vol-estimator", "in_sample")
    config = json.loads((tmp_path / "pc.json").read_text())
    assert config["ann_volatility_pct"] == pytest.approx(config["ann_volatility_in_sample_pct"], rel=1e-12)
    assert config["leverage"] == pytest.approx(min(30.0 / config["ann_volatility_pct"], 5.0), rel=1e-9)
    assert summary["vol_estimator"] == "in_sample"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(estimator=st.sampled_from(VOL_ESTIMATORS), seed=st.integers(0, 50))
def test_leverage_times_the_recorded_vol_is_the_target(tmp_path_factory, capsys, estimator, seed):
    """Whatever the estimator, the config is self-consistent: leverage x ann_volatility_pct = target
    (or the cap binds), and the estimator used is the one recorded."""
    root = tmp_path_factory.mktemp("ws")
    _workspace(root, 5, 380, seed)
    _run(root, capsys, "--vol-estimator", estimator)
    config = json.loads((root / "pc.json").read_text())
    assert config["vol_estimator"] == estimator
    product = config["leverage"] * config["ann_volatility_pct"]
    assert product == pytest.approx(30.0, rel=1e-9) or config["leverage"] == pytest.approx(5.0)


def test_unknown_estimator_is_a_usage_error(tmp_path, capsys):
    _workspace(tmp_path, 3, 100, 2)
    code = main(["optimize", "--strategies", str(tmp_path / "strategies"), "--target-vol", "0.3",
                 "--vol-estimator", "garch"])
    assert code == 2
    assert "--vol-estimator" in capsys.readouterr().err


def test_walkforward_cli_sizes_with_the_chosen_estimator(tmp_path, capsys):
    """`fastopt walkforward --target-vol` levers each fit by the --vol-estimator's vol (default
    factor), recorded in the result's settings; in_sample is the old sizing."""
    _workspace(tmp_path, 6, 140, 3)
    leverage = {}
    for estimator in ("factor", "in_sample"):
        out = tmp_path / f"wf_{estimator}"
        argv = ["walkforward", "--strategies", str(tmp_path / "strategies"), "--lookback", "60",
                "--rebalance", "7", "--target-vol", "0.3", "--random-n", "0", "--no-plot", "--output", str(out),
                "--json"]
        if estimator != "factor":
            argv += ["--vol-estimator", estimator]
        assert main(argv) == 0, capsys.readouterr().err
        capsys.readouterr()
        stats = json.loads((out / "stats.json").read_text())
        assert stats["settings"]["vol_estimator"] == estimator
        leverage[estimator] = np.asarray(stats["leverage_history"], dtype=float)
    assert leverage["factor"].shape == leverage["in_sample"].shape
    assert not np.allclose(leverage["factor"], leverage["in_sample"])


def test_factor_estimator_on_a_too_short_window_is_a_clear_usage_error(tmp_path, capsys):
    _workspace(tmp_path, 4, 100, 4)
    base = ["--strategies", str(tmp_path / "strategies"), "--target-vol", "0.3"]
    assert main(["optimize", *base, "--vol-window", "2", "--dry-run"]) == 2
    assert "--vol-estimator factor needs at least 3 days" in capsys.readouterr().err
    assert main(["walkforward", *base, "--lookback", "2", "--no-plot", "--random-n", "0",
                 "--output", str(tmp_path / "wf")]) == 2
    err = capsys.readouterr().err
    assert "vol_estimator='factor' needs a lookback of at least 3 days" in err and "Traceback" not in err
    assert not (tmp_path / "wf" / "stats.json").exists()


@pytest.mark.parametrize("target, cap", [(30.0, 5.0), (0.0, 5.0), (float("nan"), 5.0), (0.3, 0.0), (0.3, float("inf"))])
def test_target_leverage_refuses_with_the_commands_words(target, cap):
    """The library's leverage rule is the CLI's (fastopt.options): same verdict, same reason."""
    from fastopt.errors import InputError
    from fastopt.optimize.leverage import target_leverage
    from fastopt.options import max_leverage_problem, target_vol_problem

    reason = target_vol_problem(target) or max_leverage_problem(cap)
    assert reason is not None
    with pytest.raises(InputError) as exc:
        target_leverage(0.2, target, max_leverage=cap)
    assert reason in str(exc.value)
