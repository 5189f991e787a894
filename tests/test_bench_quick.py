"""`python -m bench --quick` completes and fastopt reaches the exact optimum (never asserts timings)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
GAP_TOLERANCE = 1e-6


@pytest.mark.slow
@pytest.mark.integration
def test_quick_bench_completes_and_fastopt_matches_the_optimum(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads((tmp_path / "latest.json").read_text())
    markdown = (tmp_path / "BENCHMARKS.md").read_text()
    assert payload["quick"] is True
    assert [case["name"] for case in payload["cases"]] == payload["cases_selected"]
    for case in payload["cases"]:
        assert case["title"] in markdown
        if case["status"] != "measured":
            assert case["reason"], f"{case['name']} not measured without a reason"
            assert "crashed" not in case["reason"], case["reason"]
    optimize = next(case for case in payload["cases"] if case["name"] == "optimize")
    assert optimize["status"] == "measured", optimize["reason"]
    search = [r for r in optimize["records"] if r["key"] == "fastopt_search"]
    exact = {r["n_strategies"]: r for r in optimize["records"] if r["key"] == "fastopt_exact"}
    assert search, "no fastopt search record"
    for record in search:
        assert record["status"] == "ok", record
        # The anchor ran on this window: the gap is measured against the exact (cvxpy + Clarabel) optimum.
        assert exact[record["n_strategies"]]["status"] == "ok", exact[record["n_strategies"]]
        assert record["gap"] <= GAP_TOLERANCE, record
    assert (tmp_path / "bench_scaling.png").read_bytes()[:4] == b"\x89PNG"
