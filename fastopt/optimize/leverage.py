"""Volatility targeting: annualized portfolio vol and the leverage that hits a target.

Conventions: vols are annualized fractions (0.30 = 30 %/yr), computed as
std(daily portfolio returns, ddof=1) * sqrt(periods_per_year); leverage is
target_vol / ann_vol, capped at ``max_leverage``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastopt.errors import InputError
from fastopt.options import check_max_leverage, check_target_vol

DEFAULT_MAX_LEVERAGE = 5.0


@dataclass(frozen=True)
class LeverageDecision:
    """``leverage`` (capped), ``leverage_uncapped`` (None when ann_vol == 0), ``capped``."""

    ann_vol: float
    target_vol: float
    leverage: float
    leverage_uncapped: float | None
    max_leverage: float
    capped: bool


def portfolio_ann_vol(returns: np.ndarray, weights: np.ndarray, *, periods_per_year: float = 365) -> float:
    """std(returns @ weights, ddof=1) * sqrt(periods_per_year); returns is T x N daily."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise InputError(f"need a T x N window with T >= 2 to measure volatility, got shape {arr.shape}")
    r = arr @ np.asarray(weights, dtype=np.float64)
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def target_leverage(
    ann_vol: float,
    target_vol: float,
    *,
    max_leverage: float = DEFAULT_MAX_LEVERAGE,
) -> LeverageDecision:
    """leverage = min(target_vol / ann_vol, max_leverage).

    With ann_vol == 0 the uncapped leverage is undefined (infinite): the
    decision records None and the cap applies.
    """
    check_target_vol(target_vol)  # the rule and words of every command's --target-vol / --max-leverage
    check_max_leverage(max_leverage)
    if not (math.isfinite(ann_vol) and ann_vol >= 0):
        raise InputError(f"annual volatility must be finite and >= 0, got {ann_vol!r}")
    if ann_vol == 0:
        return LeverageDecision(ann_vol, target_vol, max_leverage, None, max_leverage, True)
    uncapped = target_vol / ann_vol
    capped = uncapped > max_leverage
    return LeverageDecision(ann_vol, target_vol, min(uncapped, max_leverage), uncapped, max_leverage, capped)
