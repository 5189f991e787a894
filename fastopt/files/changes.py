"""What a new portfolio_config.json changes against the previous one (printed before writing).

Weights are fractions of the portfolio (sum 1); exposure is weight x leverage, a multiple of
the account value. ``turnover`` = sum |new - old| over every strategy in either config
(0 = same weights, 2 = all sold and something else bought); ``exposure_change`` = sum
|new w x new leverage - old w x old leverage|.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["weight_changes", "change_lines"]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _weights(config: Mapping[str, Any]) -> dict[str, float]:
    raw = config.get("weights")
    if not isinstance(raw, Mapping):
        return {}
    out = {}
    for name, value in raw.items():
        number = _number(value)
        if number is not None:
            out[str(name)] = number
    return out


def weight_changes(previous: Mapping[str, Any], weights: Mapping[str, float], leverage: float) -> dict[str, Any]:
    """The change from the ``previous`` config (a dict, ``{}`` for none) to ``weights`` at ``leverage``.

    Returns {"previous": bool, "changed": {name: {"old", "new"}} (every strategy whose weight moves,
    sorted by the size of the move), "added": [...], "removed": [...], "turnover": float,
    "exposure_change": float, "old_leverage": float | None, "new_leverage": float}.
    """
    old = _weights(previous)
    new = {str(k): float(v) for k, v in weights.items() if float(v) > 0}
    old_leverage = _number(previous.get("leverage"))
    names = sorted(set(old) | set(new))
    moves = {n: (old.get(n, 0.0), new.get(n, 0.0)) for n in names}
    changed = {n: {"old": o, "new": w} for n, (o, w) in sorted(moves.items(), key=lambda kv: -abs(kv[1][1] - kv[1][0]))
               if o != w}
    lev_old = old_leverage if old_leverage is not None else 0.0
    return {
        "previous": bool(old),
        "changed": changed,
        "added": [n for n in names if old.get(n, 0.0) <= 0 < new.get(n, 0.0)],
        "removed": [n for n in names if new.get(n, 0.0) <= 0 < old.get(n, 0.0)],
        "turnover": math.fsum(abs(w - o) for o, w in moves.values()),
        "exposure_change": math.fsum(abs(w * leverage - o * lev_old) for o, w in moves.values()),
        "old_leverage": old_leverage,
        "new_leverage": float(leverage),
    }


def change_lines(change: Mapping[str, Any], limit: int = 20) -> list[str]:
    """Human lines for :func:`weight_changes` (at most ``limit`` per-strategy lines); none without
    previous weights (a first config changes nothing)."""
    if not change["previous"]:
        return []
    old_lev = change["old_leverage"]
    lines = [f"change vs the previous config: turnover {change['turnover']:.2%} of weights, exposure change "
             f"{change['exposure_change']:.3f}x the account (leverage "
             f"{'n/a' if old_lev is None else f'{old_lev:.3f}'} -> {change['new_leverage']:.3f}); "
             f"{len(change['added'])} added, {len(change['removed'])} removed"]
    added, removed = set(change["added"]), set(change["removed"])
    items = list(change["changed"].items())
    for name, move in items[:limit]:
        tag = " (added)" if name in added else " (removed)" if name in removed else ""
        lines.append(f"  {name}: {move['old']:.2%} -> {move['new']:.2%}{tag}")
    if len(items) > limit:
        lines.append(f"  ... {len(items) - limit} more changes (all in --json 'changes')")
    return lines
