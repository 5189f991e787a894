"""`portfolio_config.json`: read, validate for trading, and merge-write.

Keys written by ``fastopt optimize`` (``OPTIMIZER_KEYS``) are replaced on each
run; every other key (``exchanges``, ``asset_specs``, ``messages``,
``exchange_settings``, anything else) is preserved untouched. ``account_value``
is only ever changed when the caller passes it explicitly.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastopt.files.atomic import atomic_write_json
from fastopt.errors import InputError

DEFAULT_ACCOUNT_VALUE = 10_000.0
#: Tolerance on sum(weights) == 1 accepted by the reconciler.
WEIGHT_SUM_TOLERANCE = 1e-6

OPTIMIZER_KEYS = (
    "weights",
    "ann_volatility_pct",
    "ann_volatility_in_sample_pct",
    "vol_estimator",
    "target_vol_pct",
    "leverage",
    "sharpe_ratio",
    "score",
    "objective",
    "allocator",
    "lookback_days",
    "window_start",
    "window_end",
    "leverage_uncapped",
    "max_leverage",
    "strategies_used",
    "skipped",
    "generated_at",
    "seed",
    "synthetic",
    "options",
)


def read_config(path: str | os.PathLike[str], *, missing_ok: bool = False) -> dict[str, Any]:
    """Read portfolio_config.json as a dict; InputError (naming the file) when invalid.

    With ``missing_ok`` a missing file reads as ``{}``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise InputError("config not found (run `fastopt optimize` first)", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", path=path) from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        reason = "empty file (half-written?)" if not text.strip() else f"invalid JSON: {exc}"
        raise InputError(reason, path=path) from None
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object, got {type(data).__name__}", path=path)
    return data


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def merge_config(
    existing: Mapping[str, Any],
    updates: Mapping[str, Any],
    *,
    account_value: float | None = None,
) -> dict[str, Any]:
    """Return ``existing`` with ``updates`` applied (pure).

    Keys not in ``updates`` are kept as they are; the key order of ``existing``
    is preserved and new keys are appended. ``account_value`` is set only when
    given, or to the default when the config has none.
    """
    if "account_value" in updates:
        raise ValueError("account_value is changed only through the account_value argument")
    merged: dict[str, Any] = dict(existing)
    if account_value is not None:
        merged["account_value"] = float(account_value)
    elif "account_value" not in merged:
        merged["account_value"] = DEFAULT_ACCOUNT_VALUE
    merged.update(updates)
    return merged


def write_config(path: str | os.PathLike[str], config: Mapping[str, Any]) -> None:
    """Atomically write the config (strict JSON: NaN/inf are refused before any write)."""
    atomic_write_json(path, dict(config))


@dataclass(frozen=True)
class TradingConfig:
    """The parts of portfolio_config.json the reconciler trades on, validated."""

    account_value: float
    leverage: float
    weights: dict[str, float]
    exchanges: dict[str, str] = field(default_factory=dict)
    exchange_settings: dict[str, Any] = field(default_factory=dict)


def validate_for_trading(
    config: Mapping[str, Any],
    *,
    max_leverage: float,
    path: str | os.PathLike[str] | None = None,
) -> TradingConfig:
    """Check a config is safe to trade on; InputError with the reason otherwise.

    Refused: account_value not a positive finite number; leverage not finite,
    <= 0 or above ``max_leverage``; weights not an object of name -> finite
    non-negative number; weights not summing to 1 within 1e-6 (an all-zero or
    empty weights object is refused as well: there is nothing to trade).
    """

    def bad(reason: str) -> InputError:
        return InputError(f"refusing to trade: {reason}", path=path)

    account_value = _finite_number(config.get("account_value"))
    if account_value is None or account_value <= 0:
        raise bad(f"account_value must be a positive number, got {config.get('account_value')!r}")
    leverage = _finite_number(config.get("leverage"))
    if leverage is None or leverage <= 0:
        raise bad(f"leverage must be a positive finite number, got {config.get('leverage')!r}")
    if leverage > max_leverage:
        raise bad(f"leverage {leverage:g} is above the maximum {max_leverage:g}")
    raw_weights = config.get("weights")
    if not isinstance(raw_weights, dict) or not raw_weights:
        raise bad("'weights' must be a non-empty object of strategy -> weight")
    weights: dict[str, float] = {}
    for name, value in raw_weights.items():
        weight = _finite_number(value)
        if weight is None or weight < 0:
            raise bad(f"weight of {name!r} must be a finite number >= 0, got {value!r}")
        weights[str(name)] = weight
    total = math.fsum(weights.values())
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise bad(f"weights sum to {total:.9g}, not 1 (tolerance {WEIGHT_SUM_TOLERANCE:g})")
    exchanges = config.get("exchanges") or {}
    if not isinstance(exchanges, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in exchanges.items()
    ):
        raise bad("'exchanges' must be an object of strategy -> exchange id")
    settings = config.get("exchange_settings") or {}
    if not isinstance(settings, dict):
        raise bad("'exchange_settings' must be an object")
    return TradingConfig(account_value, leverage, weights, dict(exchanges), dict(settings))


def _finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    out = float(value)
    return out if math.isfinite(out) else None
