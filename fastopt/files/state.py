"""`strategies/<name>/state.json`: a strategy's current signed position(s).

Accepted shapes (unknown extra keys such as entry, pnl, trades are ignored)::

    {"symbol": "BTC/USDT:USDT", "position": 1.0, "updated_at": "2024-12-31T00:00:00Z"}
    {"positions": {"BTC/USDT:USDT": 1.0, "ETH/USDT:USDT": -0.5}, "updated_at": "..."}

``position`` is the signed fraction of the strategy's allocated capital: +1 fully
long, -1 fully short, 0 flat, fractional when vol-scaled. Symbols are ccxt
unified symbols.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fastopt.files.atomic import atomic_write_json
from fastopt.errors import InputError


@dataclass(frozen=True)
class StrategyState:
    """A parsed state.json: symbol -> signed position (fraction of allocated capital)."""

    positions: dict[str, float]
    updated_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def _as_position(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{where} is not finite ({value!r})")
    return out


def _as_symbol(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a non-empty string (a ccxt unified symbol)")
    return value.strip()


def parse_timestamp(value: Any) -> datetime:
    """Parse an ISO-8601 timestamp (``Z`` allowed); naive times are taken as UTC."""
    if not isinstance(value, str):
        raise ValueError(f"updated_at must be an ISO-8601 string, got {type(value).__name__}")
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"updated_at {value!r} is not ISO-8601") from exc
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def parse_state(data: Any) -> StrategyState:
    """Validate a decoded state.json object. Raises ValueError with the reason."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    positions: dict[str, float] = {}
    if "positions" in data:
        raw = data["positions"]
        if not isinstance(raw, dict):
            raise ValueError("'positions' must be an object of symbol -> position")
        for symbol, value in raw.items():
            positions[_as_symbol(symbol, "a key of 'positions'")] = _as_position(
                value, f"positions[{symbol!r}]"
            )
        if "symbol" in data or "position" in data:
            raise ValueError("give either 'positions' or 'symbol' + 'position', not both")
    elif "symbol" in data or "position" in data:
        if "symbol" not in data:
            raise ValueError("'position' given without 'symbol'")
        if "position" not in data:
            raise ValueError("'symbol' given without 'position'")
        positions[_as_symbol(data["symbol"], "'symbol'")] = _as_position(data["position"], "'position'")
    else:
        raise ValueError("no position: expected 'symbol' + 'position' or 'positions'")
    updated = data.get("updated_at")
    updated_at = None if updated is None else parse_timestamp(updated)
    known = {"positions", "symbol", "position", "updated_at"}
    return StrategyState(positions, updated_at, {k: v for k, v in data.items() if k not in known})


def read_state(path: str | os.PathLike[str]) -> StrategyState:
    """Read and validate a state.json; raises InputError naming the file and the reason."""
    try:
        with open(path, encoding="utf-8") as handle:  # plain open: this runs for every strategy every cycle
            text = handle.read()
    except FileNotFoundError:
        raise InputError("state file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", path=path) from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        reason = "empty file (half-written?)" if not text.strip() else f"invalid JSON: {exc}"
        raise InputError(reason, path=path) from None
    try:
        return parse_state(data)
    except ValueError as exc:
        raise InputError(str(exc), path=path) from None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def write_state(
    path: str | os.PathLike[str],
    *,
    symbol: str | None = None,
    position: float | None = None,
    positions: dict[str, float] | None = None,
    updated_at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Atomically write a state.json (single ``symbol``/``position`` or ``positions``).

    Returns the object written. The object is validated with :func:`parse_state`
    first, so an invalid state is never written.
    """
    stamp = (updated_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    obj: dict[str, Any] = {}
    if positions is not None:
        if symbol is not None or position is not None:
            raise ValueError("give either positions or symbol + position, not both")
        obj["positions"] = {str(k): float(v) for k, v in positions.items()}
    else:
        obj["symbol"] = symbol
        obj["position"] = None if position is None else float(position)
    obj["updated_at"] = stamp.isoformat().replace("+00:00", "Z")
    obj.update(extra)
    parse_state(obj)
    atomic_write_json(path, obj)
    return obj
