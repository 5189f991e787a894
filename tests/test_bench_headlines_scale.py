"""Headline lines of the scale and vol-targeting cases: numbers from the records, verdicts that can fail."""
from __future__ import annotations

from bench.headlines import headlines


def _payload(seconds_20k: float, rss_20k: float, wf_seconds: float, ratios: dict) -> dict:
    scale = {"name": "scale", "status": "measured", "records": [
        {"key": "optimize_cli", "n_strategies": 20_000, "days": 730, "option": "default", "seconds": seconds_20k,
         "peak_rss_mb": rss_20k},
        {"key": "optimize_cli", "n_strategies": 20_000, "days": 730, "option": "--risk-model factor",
         "seconds": 6.0, "peak_rss_mb": 700.0},
        {"key": "optimize_cli", "n_strategies": 5_000, "days": 730, "option": "default", "seconds": 3.0,
         "peak_rss_mb": 400.0},
        {"key": "walkforward", "n_strategies": 2_000, "fits": 1_095, "lookback": 365, "risk_model": "factor",
         "seconds": wf_seconds},
    ]}
    vol = {"name": "vol_targeting", "status": "measured", "records": [
        {"universe": u, "estimator": "factor k=1 (c, default)", "ratio": r} for u, r in ratios.items()
    ] + [{"universe": "real 80", "estimator": "in_sample (a, old)", "ratio": 1.23}]}
    return {"cases": [scale, vol]}


def test_met_targets_say_met():
    lines = headlines(_payload(9.5, 780.0, 17.0, {"real 80": 0.92, "syn 50 s1 held-out": 1.08}))
    text = "\n".join(lines)
    assert "20,000 strategies" in text and "(target < 30 s)" in text and "peak RSS at most 780 MB" in text
    assert text.count("**not met**") == 0 and text.count(": met") == 3
    assert "2 of 2 measured universes inside" in text and "in_sample" not in text


def test_missed_targets_say_not_met():
    lines = headlines(_payload(31.0, 2500.0, 45.0, {"real 80": 0.92, "syn 50 s0": 1.22, "syn 500 s0": None}))
    text = "\n".join(lines)
    assert text.count("**not met**") == 2  # the 20,000 case (time and memory) and the walk-forward
    assert "1 of 2 measured universes inside" in text and "syn 500 s0: capped every day" in text
