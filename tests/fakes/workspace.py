"""A throw-away reconciler workspace: config, strategies' states, prices."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reconciler.cli import build_reconciler, configure
from reconciler.report import Reporter

PRICES = {"BTC/USDT:USDT": 95000.0, "ETH/USDT:USDT": 3500.0, "SOL/USDT:USDT": 190.0}


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def make_workspace(root: Path, *, weights: dict[str, float], states: dict[str, Any], account_value: float = 10_000.0,
                   leverage: float = 1.0, prices: dict[str, float] | None = None, **config_extra: Any) -> Path:
    """Write portfolio_config.json, strategies/<name>/state.json and prices.json; returns the config path."""
    write_json(root / "portfolio_config.json",
               {"account_value": account_value, "leverage": leverage, "weights": weights, **config_extra})
    for name, state in states.items():
        folder = root / "strategies" / name
        folder.mkdir(parents=True, exist_ok=True)
        if state is not None:
            write_json(folder / "state.json", state)
    for name in weights:
        (root / "strategies" / name).mkdir(parents=True, exist_ok=True)
    write_json(root / "prices.json", prices or PRICES)
    return root / "portfolio_config.json"


def parse_args(config: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    # no pause before the read that confirms a surprising position read (tests that need one pass their own)
    return parser.parse_args(["--config", str(config), "--strategies", str(config.parent / "strategies"),
                              "--prices", str(config.parent / "prices.json"), "--quiet", "--confirm-delay", "0",
                              *extra])


def reconciler_for(config: Path, *extra: str, after_send_hook=None):
    args = parse_args(config, *extra)
    return build_reconciler(args, reporter=Reporter(quiet=True), after_send_hook=after_send_hook)


def journal_lines(folder: Path) -> list[dict[str, Any]]:
    path = folder / "orders.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
