"""`fastopt sweep` on a 2-worker Dask LocalCluster: same numbers as direct walk-forward calls."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from fastopt.cli import main
from fastopt.errors import InputError
from fastopt.files.stats import write_stats
from fastopt.walkforward.sweep import SweepSpec, grid_points, rows_to_csv, rows_to_jsonable, run_point, run_sweep, sort_rows
from fastopt.walkforward.core import walkforward


def _universe(n: int, days: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0, 0.02, size=(days, 1))
    returns = rng.normal(0.0006, 0.002, size=(1, n)) + rng.uniform(0, 1, (1, n)) * market + rng.normal(
        0, 0.015, size=(days, n))
    dates = np.arange(np.datetime64("2023-01-01"), np.datetime64("2023-01-01") + days)
    return {"returns": np.ascontiguousarray(returns), "names": [f"s{k}" for k in range(n)], "dates": dates}


def test_grid_is_the_full_product_in_order():
    spec = SweepSpec(universes=["a", "b"], lookbacks=[30, 60], allocators=["slope_std", "equal"],
                     target_vols=[None, 0.2], rebalances=[1, 7])
    points = grid_points(spec)
    assert len(points) == 32
    assert points[0] == {"universe": "a", "lookback": 30, "allocator": "slope_std", "target_vol": None,
                         "rebalance": 1}
    assert points[-1]["universe"] == "b" and points[-1]["rebalance"] == 7
    assert len({tuple(sorted(p.items(), key=lambda kv: kv[0])) for p in points}) == 32
    with pytest.raises(InputError):
        SweepSpec(universes=["a"], lookbacks=[]).validate()
    with pytest.raises(InputError):
        SweepSpec(universes=["a"], target_vols=[-0.1]).validate()


def test_sweep_on_a_two_worker_local_cluster_matches_direct_calls():
    data = {"u1": _universe(10, 120, 1), "u2": _universe(12, 100, 2)}
    spec = SweepSpec(universes=["u1", "u2"], lookbacks=[40, 110], allocators=["slope_std", "inverse_vol"],
                     target_vols=[None, 0.25], rebalances=[1, 5], random_n=16, seed=3, cost_bps=2.0)
    seen = []
    rows = run_sweep(spec, workers=2, processes=False, universes_data=data,
                     progress=lambda done, total: seen.append((done, total)))
    points = grid_points(spec)
    assert len(rows) == len(points) == 32
    assert seen[-1] == (32, 32)
    for point, row in zip(points, rows):
        assert {k: row[k] for k in point} == point
        payload = data[point["universe"]]
        if point["lookback"] == 110 and point["universe"] == "u2":  # 100 days < 111 needed
            assert row["status"] == "error" and "not enough history" in row["error"]
            continue
        assert row["status"] == "ok", row["error"]
        direct = walkforward(
            payload["returns"], lookback=point["lookback"], rebalance=point["rebalance"],
            allocator=point["allocator"], target_vol=point["target_vol"], random_n=16, seed=3, cost_bps=2.0,
        )
        assert row["sharpe"] == direct.managed.sharpe
        assert row["total_return"] == direct.managed.total_return
        assert row["max_drawdown"] == direct.managed.max_drawdown
        assert row["avg_turnover"] == direct.managed.avg_turnover
        assert row["managed_beats_pct_sharpe"] == direct.random.managed_beats_pct_sharpe
        assert row["oos_days"] == direct.n_days
        assert row["start"] == str(payload["dates"][point["lookback"]])
    ordered = sort_rows(rows)
    sharpes = [r["sharpe"] for r in ordered if r["status"] == "ok"]
    assert sharpes == sorted(sharpes, reverse=True)
    assert all(r["status"] == "error" for r in ordered[len(sharpes):])
    parsed = list(csv.DictReader(io.StringIO(rows_to_csv(rows_to_jsonable(ordered)))))
    assert len(parsed) == 32 and float(parsed[0]["sharpe"]) == pytest.approx(sharpes[0], rel=1e-15)
    json.dumps(rows_to_jsonable(rows), allow_nan=False)


def test_run_point_directly_equals_the_api():
    payload = _universe(9, 90, 4)
    point = {"universe": "x", "lookback": 30, "allocator": "slope_std", "target_vol": 0.3, "rebalance": 2}
    row = run_point(payload, point, {"random_n": 8, "seed": 1})
    direct = walkforward(payload["returns"], lookback=30, rebalance=2, target_vol=0.3, random_n=8, seed=1)
    assert row["sharpe"] == direct.managed.sharpe and row["cash_days"] == direct.cash_days


def _write_universe(folder: Path, payload: dict) -> Path:
    for k, name in enumerate(payload["names"]):
        write_stats(folder / name / "stats.json", strategy=name, symbol=None, dates=payload["dates"],
                    returns=payload["returns"][:, k])
    return folder


def test_sweep_command_writes_csv_and_json(tmp_path, capsys):
    strategies = _write_universe(tmp_path / "strategies", _universe(8, 80, 5))
    out = tmp_path / "sweep"
    code = main(["sweep", "--universes", str(strategies), "--lookbacks", "30,50", "--allocators",
                 "slope_std,equal", "--target-vols", "none,0.3", "--random-n", "8", "--workers", "2",
                 "--threads", "--output", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    printed = json.loads(captured.out)
    rows = printed["rows"]
    assert len(rows) == 8 and all(skips == [] for skips in printed["skipped"].values())
    doc = json.loads((out / "sweep.json").read_text())
    assert doc == printed
    assert doc["grid"]["target_vols"] == [None, 0.3]
    with (out / "sweep.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [r["allocator"] for r in table] == [r["allocator"] for r in rows]
    sharpes = [r["sharpe"] for r in rows]
    assert sharpes == sorted(sharpes, reverse=True)


def test_sweep_command_errors(tmp_path, capsys):
    assert main(["sweep", "--lookbacks", "30,x"]) == 2
    assert main(["sweep", "--target-vols", "0.3,-1"]) == 2
    assert main(["sweep", "--universes", str(tmp_path / "missing"), "--threads"]) == 2
    strategies = _write_universe(tmp_path / "strategies", _universe(8, 40, 6))
    assert main(["sweep", "--universes", str(strategies), "--allocators", "nope_xyz", "--threads"]) == 2
    out = tmp_path / "sweep"
    assert main(["sweep", "--universes", str(strategies), "--lookbacks", "60", "--threads", "--workers", "1",
                 "--output", str(out)]) == 3  # every run lacks history
    assert (out / "sweep.csv").exists()
    assert "Traceback" not in capsys.readouterr().err
