"""Plausibility guards of the reconciler (pure functions): doubt means no order.

Three inputs can move real money on a single bad value, so each is checked
against independent evidence before a plan is built on it:

- **Prices** (:func:`judge_prices`): the mark price that sizes an order must
  agree with the venue's reference price (index price; or ticker) within
  ``max_deviation``, and must not jump by more than ``max_jump`` from the last
  price observed for the symbol less than ``jump_window_s`` ago. A symbol
  whose price fails is not traded this cycle (an error of the cycle). A real
  jump is confirmed by the next observation (two consecutive observations
  agree), so a crash costs one cycle, a one-off bad print costs nothing.
  The per-order cap is evaluated at the highest of the plausible prices
  (:attr:`PriceVerdict.cap_prices`).
- **Position reads** (:func:`position_surprises`): a read that contradicts the
  last accepted read plus the fills made since (a bogus ``[]`` is "flat
  everywhere") is re-read; only two consecutive reads that agree are used.
- **Config** (:func:`judge_config`): ``account_value`` above the venue's equity
  beyond a tolerance is refused; a gross budget (``account_value x leverage``)
  more than ``max_jump`` times the last accepted one is held back (the last
  accepted config keeps being traded) until the operator accepts it.

Units: prices in account currency per base unit; positions in base units;
tolerances are fractions (0.10 = 10 %); times in seconds (monotonic clock).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

K = TypeVar("K")

#: defaults of the options (fractions, seconds)
DEFAULT_MAX_PRICE_DEVIATION = 0.10
DEFAULT_JUMP_WINDOW_S = 3600.0
DEFAULT_EQUITY_TOLERANCE = 0.10
DEFAULT_MAX_CONFIG_JUMP = 2.0
#: relative tolerance under which two position reads (or a read and its expectation) agree
POSITION_REL_TOL = 0.01


@dataclass
class PriceVerdict:
    """Accepted prices, refused ones with the reason, and the price each order cap is evaluated at."""

    accepted: dict[Any, float] = field(default_factory=dict)
    refused: dict[Any, str] = field(default_factory=dict)
    cap_prices: dict[Any, float] = field(default_factory=dict)


def _rel(a: float, b: float) -> float:
    return abs(a / b - 1.0)


def judge_prices(
    marks: Mapping[K, float],
    references: Mapping[K, float],
    previous: Mapping[K, tuple[float, float]],
    *,
    now_s: float,
    max_deviation: float = DEFAULT_MAX_PRICE_DEVIATION,
    max_jump: float | None = None,
    jump_window_s: float = DEFAULT_JUMP_WINDOW_S,
) -> PriceVerdict:
    """Check every mark price (see the module doc).

    ``references[key]``: the venue's independent price (may be missing);
    ``previous[key]``: ``(price, observed_at_s)`` of the last observation of the key,
    accepted or not; ``max_jump`` defaults to twice ``max_deviation``.
    """
    jump = 2.0 * max_deviation if max_jump is None else max_jump
    out = PriceVerdict()
    for key, price in marks.items():
        if not isinstance(price, (int, float)) or not math.isfinite(price) or price <= 0.0:
            out.refused[key] = f"price {price!r} is not a positive number"
            continue
        ref = references.get(key)
        if ref is not None and math.isfinite(ref) and ref > 0.0 and _rel(price, ref) > max_deviation:
            out.refused[key] = (f"mark price {price:.6g} is {100 * _rel(price, ref):.1f} % away from the reference "
                                f"price {ref:.6g} (limit {100 * max_deviation:g} %)")
            continue
        last = previous.get(key)
        if last is not None and now_s - last[1] <= jump_window_s and _rel(price, last[0]) > jump:
            out.refused[key] = (f"price {price:.6g} jumped {100 * _rel(price, last[0]):.1f} % from {last[0]:.6g} "
                                f"{now_s - last[1]:.0f} s ago (limit {100 * jump:g} %); trading it once the next "
                                "read confirms it")
            continue
        out.accepted[key] = float(price)
        candidates = [price] + [p for p in (ref, None if last is None else last[0])
                                if p is not None and math.isfinite(p) and p > 0.0]
        out.cap_prices[key] = max(candidates)
    return out


def agree(a: float, b: float, *, rel_tol: float = POSITION_REL_TOL, abs_tol: float = 1e-12) -> bool:
    """Two signed position amounts agree (relative tolerance on the larger one)."""
    return abs(a - b) <= abs_tol + rel_tol * max(abs(a), abs(b))


def position_surprises(expected: Mapping[str, float], read: Mapping[str, float], *,
                       rel_tol: float = POSITION_REL_TOL) -> list[str]:
    """Symbols where ``read`` contradicts ``expected`` (both signed base units; absent = flat), sorted."""
    return sorted(s for s in set(expected) | set(read)
                  if not agree(expected.get(s, 0.0), read.get(s, 0.0), rel_tol=rel_tol))


@dataclass(frozen=True)
class ConfigDecision:
    """Which config to trade: ``"new"`` (the file as it is), ``"accepted"`` (the last accepted one) or
    ``"none"`` (refuse to trade); ``problem`` says why the new one is not traded (empty when it is)."""

    use: str
    problem: str = ""


def judge_config(
    *,
    account_value: float,
    gross_budget: float,
    equity: float | None,
    accepted_budget: float | None,
    accepted_account_value: float | None,
    same_as_accepted: bool,
    operator_accepts: bool,
    equity_tolerance: float = DEFAULT_EQUITY_TOLERANCE,
    max_jump: float = DEFAULT_MAX_CONFIG_JUMP,
) -> ConfigDecision:
    """Decide whether the config on disk may be traded (see the module doc).

    ``gross_budget`` = account_value x leverage of the new config; ``accepted_*`` describe the last
    accepted config (None when there is none); ``equity`` the venues' equity (None: unknown, the
    equity check is skipped). The equity check cannot be overridden by ``operator_accepts`` (a typo in
    account_value is never traded); the jump rule can.
    """

    def fallback(problem: str) -> ConfigDecision:
        if accepted_budget is None:
            return ConfigDecision("none", problem)
        if equity is not None and accepted_account_value is not None \
                and accepted_account_value > equity * (1.0 + equity_tolerance):
            return ConfigDecision("none", problem + "; the last accepted config exceeds the equity too")
        return ConfigDecision("accepted", problem)

    if equity is not None and account_value > equity * (1.0 + equity_tolerance):
        return fallback(f"account_value {account_value:,.2f} exceeds the account's equity {equity:,.2f} by more "
                        f"than {100 * equity_tolerance:g} % (--equity-tolerance)")
    if same_as_accepted or accepted_budget is None or operator_accepts:
        return ConfigDecision("new")
    if accepted_budget > 0 and gross_budget > max_jump * accepted_budget:
        return fallback(f"gross budget (account_value x leverage) {gross_budget:,.2f} is "
                        f"{gross_budget / accepted_budget:.2f}x the last accepted {accepted_budget:,.2f} "
                        f"(limit {max_jump:g}x, --max-config-jump); run `fastopt reconcile --accept-config` "
                        "to accept it")
    return ConfigDecision("new")
