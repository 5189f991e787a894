"""The examples in docs/formats.md are valid under the implementations they document."""
from __future__ import annotations

import json
import re
from pathlib import Path

from fastopt.files.config import OPTIMIZER_KEYS, validate_for_trading
from fastopt.files.state import parse_state
from fastopt.files.stats import parse_stats

DOC = Path(__file__).resolve().parents[1] / "docs" / "formats.md"


def _json_blocks() -> list[object]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)]


def test_every_json_example_parses_under_its_contract():
    kinds = {"stats": 0, "state": 0, "config": 0}
    for obj in _json_blocks():
        if "daily_returns" in obj:
            assert parse_stats(obj).returns.size >= 2
            kinds["stats"] += 1
        elif "position" in obj or "positions" in obj:
            assert parse_state(obj).positions
            kinds["state"] += 1
        else:
            assert set(OPTIMIZER_KEYS) <= set(obj)
            config = validate_for_trading(obj, max_leverage=obj["max_leverage"])
            assert abs(config.leverage - obj["target_vol_pct"] / obj["ann_volatility_pct"]) < 1e-3
            kinds["config"] += 1
    assert kinds == {"stats": 3, "state": 2, "config": 1}
