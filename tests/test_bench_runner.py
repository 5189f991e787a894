"""The bench machinery: timing protocol, extrapolation, parity marking, reports (never timings)."""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import runner  # noqa: E402
from bench.__main__ import parse_args  # noqa: E402
from bench.cases import optimize as optimize_case  # noqa: E402


def test_measure_warms_up_once_untimed_and_bounds_repeats():
    calls = []

    def fn():
        calls.append(1)
        return len(calls)

    result, timing = runner.measure(fn, max_repeats=4, budget_s=10.0)
    assert result == 1  # the warm-up's result is the one returned (checked for parity)
    assert timing.repeats == 4 and len(calls) == 5
    assert timing.median_s == statistics.median(timing.times_s)
    _, one = runner.measure(fn, max_repeats=4, budget_s=0.0)
    assert one.repeats == 1


@given(size=st.floats(1, 1e3), exponent=st.floats(1, 3), factor=st.floats(1.5, 50), scale=st.floats(1e-6, 10))
def test_power_law_extrapolation_recovers_an_exact_power_law(size, exponent, factor, scale):
    sizes = [size, size * factor]
    times = [scale * s**exponent for s in sizes]
    predicted, fitted = runner.extrapolate_power_law(sizes, times, size * factor * 3)
    assert fitted == pytest.approx(exponent, rel=1e-6)
    assert predicted == pytest.approx(scale * (size * factor * 3) ** exponent, rel=1e-6)


def test_power_law_extrapolation_clamps_and_defaults():
    assert runner.extrapolate_power_law([10], [1.0], 100) == (pytest.approx(100.0), 2.0)
    _, exponent = runner.extrapolate_power_law([10, 100], [1.0, 1.0], 1000)  # flat: overhead-dominated
    assert exponent == 1.0
    _, exponent = runner.extrapolate_power_law([10, 20], [1.0, 1000.0], 40)
    assert exponent == 3.0
    with pytest.raises(ValueError):
        runner.extrapolate_power_law([], [], 10)


def test_relative_gap():
    assert runner.relative_gap(2.0, 2.0) == 0.0
    assert runner.relative_gap(2.0, 1.0) == 0.5
    assert runner.relative_gap(-2.0, -3.0) == 0.5
    assert runner.relative_gap(1.0, float("nan")) == float("inf")


def _record(key: str, score: float, *, violation: float = 0.0, claims: bool = True, kkt: float = 0.0,
            status: str | None = None) -> dict:
    return {"method": key, "key": key, "status": runner.STATUS_OK, "score": score, "simplex_violation": violation,
            "claims_optimum": claims, "note": "", "kkt_residual": kkt, "fastopt_status": status}


def test_parity_marks_fastopt_wrong_and_baselines_inexact():
    records = [_record("fastopt_search", 1.0 - 1e-4), _record("slsqp_analytic", 1.0 - 1e-4),
               _record("pypfopt", 1.0), _record("random", 0.5, claims=False),
               _record("fastopt_exact", 1.0, violation=1e-3)]
    optimize_case._parity(records)
    by_key = {r["key"]: r for r in records}
    assert by_key["fastopt_search"]["status"] == runner.STATUS_WRONG
    assert by_key["slsqp_analytic"]["status"] == runner.STATUS_OK
    assert "inexact" in by_key["slsqp_analytic"]["note"]
    assert by_key["random"]["status"] == runner.STATUS_OK and by_key["random"]["gap"] == pytest.approx(0.5)
    # Off the simplex: wrong, and not allowed to define the best score.
    assert by_key["fastopt_exact"]["status"] == runner.STATUS_WRONG
    assert by_key["pypfopt"]["gap"] == 0.0


def test_parity_needs_the_kkt_certificate_and_excuses_flagged_ill_posed_windows():
    records = [_record("fastopt_search", 1.0, kkt=1e-3), _record("pypfopt", 1.0)]
    optimize_case._parity(records)
    assert records[0]["status"] == runner.STATUS_WRONG and "KKT" in records[0]["note"]
    records = [_record("fastopt_search", 10.0, kkt=5.0, status="unbounded"), _record("pypfopt", 1e6)]
    optimize_case._parity(records)
    assert records[0]["status"] == runner.STATUS_OK and "ill-posed" in records[0]["note"]
    records = [_record("fastopt_search", 10.0, kkt=5.0, status="optimal"), _record("pypfopt", 1e6)]
    optimize_case._parity(records)
    assert records[0]["status"] == runner.STATUS_WRONG


def test_measure_after_a_probe_times_without_another_warm_up():
    calls = []

    def fn():
        calls.append(1)
        return len(calls)

    result, timing = runner.measure(fn, max_repeats=3, budget_s=10.0, warmed_up=True)
    assert result == 1 and len(calls) == 3 and timing.repeats == 3 and timing.warmup_s == 0.0


def test_run_config_skips_with_extrapolation_instead_of_running():
    ran = []

    def slow(returns):
        ran.append(returns.shape[1])
        return np.full(returns.shape[1], 1.0 / returns.shape[1])

    method = optimize_case.Method("slow", "slow method", slow, claims_optimum=False)
    history = {"slow": [(10, 1.0), (20, 4.0)]}  # N^2: 100 s predicted at N = 100
    rng = np.random.default_rng(0)
    returns = rng.normal(0.001, 0.01, (50, 100))
    budgets = {"call_limit_s": 5.0, "repeat_budget_s": 0.1, "max_repeats": 2}
    records = optimize_case.run_config(returns, [method], budgets, history, {})
    assert ran == []
    assert records[0]["status"] == runner.STATUS_SKIPPED
    assert records[0]["extrapolated_s"] == pytest.approx(100.0)
    assert "extrapolated" in records[0]["note"]


def test_reports_render_every_case_and_say_not_measured(tmp_path):
    ok = runner.CaseResult(name="optimize", title="1. optimize", tables=[
        runner.Table(title="t", columns=["method", "time"], rows=[["a", "1 ms"]])],
        records=[{"method": "m", "n_strategies": 10, "n_days": 365, "median_s": 0.01},
                 {"method": "m", "n_strategies": 100, "n_days": 365, "median_s": 0.1},
                 {"method": "m", "n_strategies": 1000, "n_days": 365, "median_s": None, "extrapolated_s": 10.0}])
    missing = runner.not_measured("reconcile", "5. reconcile", "bench.reconcile_workspace is not in the tree")
    payload = {"started_at": "2026-01-01 00:00:00", "quick": True, "seed": 0, "elapsed_s": 1.0,
               "machine": runner.machine_info(), "load_average_end": [0.1, 0.1, 0.1],
               "cases": [ok.to_json(), missing.to_json()]}
    markdown = runner.render_markdown(payload, command="python -m bench --quick")
    assert "| a | 1 ms |" in markdown
    assert "**Not measured**: bench.reconcile_workspace is not in the tree" in markdown
    assert payload["machine"]["cpu_model"] in markdown
    runner.write_json(tmp_path / "r.json", payload)
    assert json.loads((tmp_path / "r.json").read_text())["cases"][1]["status"] == "not measured"
    assert runner.plot_scaling(payload, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert not runner.plot_scaling({"cases": [missing.to_json()]}, tmp_path / "none.png")


def test_machine_info_has_the_facts_the_report_promises():
    info = runner.machine_info()
    assert info["logical_cores"] >= 1
    assert info["packages"]["numpy"] == np.__version__
    assert any(pool["user_api"] == "blas" for pool in info["threadpools"])


def test_cli_selects_cases_and_rejects_unknown(capsys):
    args = parse_args(["--quick", "--only", "load,optimize"])
    assert args.cases == ["load", "optimize"] and args.quick
    with pytest.raises(SystemExit) as exc:
        parse_args(["--only", "nope"])
    assert exc.value.code == 2
    assert "unknown case" in capsys.readouterr().err


def test_formatting_helpers():
    assert runner.fmt_time(2.5e-6) == "2.5 µs"
    assert runner.fmt_time(0.0123) == "12.3 ms"
    assert runner.fmt_time(12.0) == "12 s"
    assert runner.fmt_time(None) == "–"
    assert runner.fmt_ratio(52.34) == "52.3×"
    assert runner.fmt_gap(0.0) == "0"


def test_headlines_state_numbers_and_verdicts_only_for_measured_cases():
    from bench.headlines import headlines

    def rec(key, n, days, seconds, **extra):
        return {"key": key, "n_strategies": n, "n_days": days, "median_s": seconds, "status": "ok", "gap": 0.0,
                "note": "", **extra}

    optimize = {"name": "optimize", "status": "measured", "records": [
        rec("fastopt_search", 1000, 365, 0.01), rec("fastopt_exact", 1000, 365, 2.0), rec("floor", 1000, 365, 0.008),
        rec("fastopt_search", 100, 365, 0.002),
        {**rec("fastopt_search", 2000, 365, 0.5), "status": "wrong"}]}
    reconcile = {"name": "reconcile", "status": "measured",
                 "records": [{"n_strategies": 500, "n_symbols": 50, "cycle_median_s": 0.07}]}
    missing = {"name": "walkforward", "status": "not measured", "records": []}
    lines = headlines({"cases": [optimize, reconcile, missing]})
    text = "\n".join(lines)
    assert "200× faster (target >= 50×: met)" in text
    assert "1.2× the time of computing Σ and g with numpy (target <= ~2×: met)" in text
    assert "target < 1 ms: **not met**" in text
    assert "**wrong**: N=2000 T=365" in text
    assert "70 ms per cycle (target < 50 ms: **not met**)" in text
    assert "walk-forward" not in text


def test_render_from_rewrites_the_reports_without_running(tmp_path):
    from bench.__main__ import main

    case = runner.CaseResult(name="reconcile", title="5. reconcile", records=[
        {"n_strategies": 500, "n_symbols": 50, "cycle_median_s": 0.02}])
    payload = {"started_at": "2026-01-01 00:00:00", "quick": False, "seed": 0, "elapsed_s": 1.0,
               "machine": runner.machine_info(), "cases": [case.to_json()], "command": "python -m bench"}
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(payload))
    assert main(["--render-from", str(saved), "--out", str(tmp_path / "out")]) == 0
    markdown = (tmp_path / "out" / "BENCHMARKS.md").read_text()
    assert "20 ms per cycle (target < 50 ms: met)" in markdown
    assert not (tmp_path / "out" / "latest.json").exists()  # results are never rewritten by a re-render
