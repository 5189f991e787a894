"""Parity helpers of the bench cases judge correctly (they decide what the report calls wrong)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.baselines.exact_cvxpy import exact_cvxpy  # noqa: E402
from bench.cases import Unavailable, require  # noqa: E402
from bench.cases.end_to_end import _find_weights  # noqa: E402
from bench.cases.load import _max_diff  # noqa: E402
from bench.cases.reconcile import _targets_from_files  # noqa: E402
from bench.cases.walkforward import check_days  # noqa: E402


def _returns(seed: int, n_days: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(rng.normal(0.001, 0.02, (n_days, n)) + rng.normal(0, 0.01, (n_days, 1)))


def test_walkforward_check_days_uses_the_trailing_window_and_sees_bad_weights():
    lookback, n_oos, n = 60, 5, 6
    r = _returns(1, lookback + n_oos, n)
    exact = np.vstack([exact_cvxpy(r[d: d + lookback]) for d in range(n_oos)])
    gap, checked = check_days(r, exact, list(range(n_oos)), lookback)
    assert checked == n_oos and gap < 1e-6
    shifted = np.vstack([exact[1:], exact[-1:]])  # off by one day: fitted on the wrong window
    equal = np.full((n_oos, n), 1.0 / n)
    assert check_days(r, equal, list(range(n_oos)), lookback)[0] > 1e-4
    assert check_days(r, shifted, list(range(n_oos - 1)), lookback)[0] > 0.0
    cash = exact.copy()
    cash[2] = 0.0
    assert check_days(r, cash, [2], lookback) == (0.0, 0)  # a cash day has nothing to compare


def test_find_weights_digs_the_mapping_out_of_nested_json():
    assert _find_weights({"result": {"weights": {"a": 0.4, "b": 0.6}}}) == {"a": 0.4, "b": 0.6}
    assert _find_weights([{"x": 1}, {"weights": {"a": 1.0}}]) == {"a": 1.0}
    assert _find_weights({"weights": [0.5, 0.5]}) is None
    assert _find_weights({"weights": {}}) is None


def test_load_max_diff_flags_shape_and_values():
    a = np.zeros((3, 2))
    assert _max_diff(a, a.copy()) == 0.0
    assert _max_diff(a, np.zeros((2, 3))) == float("inf")
    b = a.copy()
    b[1, 1] = 1e-9
    assert _max_diff(a, b) == pytest.approx(1e-9)


def test_reconcile_targets_are_account_times_leverage_times_weight_times_position(tmp_path):
    (tmp_path / "portfolio_config.json").write_text(json.dumps(
        {"account_value": 1000.0, "leverage": 2.0, "weights": {"a": 0.25, "b": 0.75}}))
    for name, state in {"a": {"symbol": "BTC/USDT:USDT", "position": 1.0},
                        "b": {"positions": {"BTC/USDT:USDT": -0.5, "ETH/USDT:USDT": 1.0}}}.items():
        (tmp_path / "strategies" / name).mkdir(parents=True)
        (tmp_path / "strategies" / name / "state.json").write_text(json.dumps(state))
    targets = _targets_from_files(tmp_path)
    assert targets == {"BTC/USDT:USDT": pytest.approx(2000 * (0.25 - 0.375)), "ETH/USDT:USDT": pytest.approx(1500.0)}


def test_require_names_what_is_missing():
    with pytest.raises(Unavailable, match="fastopt.nope"):
        require("fastopt.nope", "thing")
    with pytest.raises(Unavailable, match="missing_attribute"):
        require("bench.runner", "missing_attribute")
    assert require("bench.runner", "measure").__name__ == "measure"
