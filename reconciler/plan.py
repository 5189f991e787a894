"""Orders = target - live, sized to each market's rules (pure functions).

Conventions: positions are signed amounts in *base units* (contracts x
contract size); order amounts are in *contracts*, truncated (never rounded up)
to the market's amount step with Decimal arithmetic; notionals and the
threshold are in account currency.

Per symbol:

- target and live on the same side (or one of them flat): one order of
  ``target - live``; reduce-only when it only shrinks the position;
- target on the other side of a live position (a flip): a reduce-only close of
  the whole live position, then an opening order of the target (when the live
  side is dust, below one tradable amount, a single order for the difference);
- target zero (symbol no longer targeted): a reduce-only close.

A difference is skipped when its notional is under ``threshold``, when the
truncated amount is under the market's minimum amount, or when an order that
adds exposure is under the market's minimum cost (dust). After the orders of a
plan are applied, every symbol sits within one amount step, the threshold or
the dust limit of its target (property-tested).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal

from reconciler.model import Market, Plan, PlannedOrder, Skipped

VenueSymbol = tuple[str, str]
_ZERO = Decimal(0)


def truncate_to_step(amount: float, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` not above ``amount`` (``amount`` >= 0)."""
    if amount <= 0.0 or not math.isfinite(amount):
        return _ZERO
    units = (Decimal(repr(amount)) / step).to_integral_value(rounding=ROUND_DOWN)
    return units * step


def _side(sign: float) -> str:
    return "buy" if sign > 0 else "sell"


def plan_symbol(
    *,
    venue: str,
    symbol: str,
    target_base: float,
    live_base: float,
    price: float,
    market: Market,
    threshold: float,
    max_order_notional: float | None = None,
) -> Plan:
    """Orders bringing ``live_base`` to ``target_base`` for one symbol (see module doc)."""
    out = Plan()
    cs = market.contract_size
    diff = target_base - live_base
    if abs(diff) * price < threshold:
        if diff != 0.0:
            out.skipped.append(Skipped(venue, symbol, f"below threshold {threshold:g}", diff * price))
        return out

    def cap(amount: Decimal) -> tuple[Decimal, bool]:
        if max_order_notional is None:
            return amount, False
        limit = truncate_to_step(max_order_notional / (price * cs), market.amount_step)
        return (limit, True) if amount > limit else (amount, False)

    def add(amount: Decimal, sign: float, reduce_only: bool, leg: str, exempt_min_cost: bool) -> bool:
        """Append one order unless dust; True when appended uncapped."""
        amount, capped = cap(amount)
        notional = float(amount) * cs * price
        if amount <= _ZERO or amount < market.min_amount:
            reason = "dust: below one amount step" if amount <= _ZERO else "dust: below min amount"
            out.skipped.append(Skipped(venue, symbol, reason, sign * abs(diff) * price))
            return False
        if not exempt_min_cost and notional < market.min_cost:
            out.skipped.append(Skipped(venue, symbol, f"dust: below min cost {market.min_cost:g}", sign * notional))
            return False
        out.orders.append(PlannedOrder(venue, symbol, _side(sign), amount, reduce_only, leg, price, capped))
        return not capped

    live_is_dust = abs(live_base) * price < threshold
    flip = live_base != 0.0 and target_base * live_base < 0.0 and not live_is_dust
    close_amount = truncate_to_step(abs(live_base) / cs, market.amount_step)
    closable = close_amount > _ZERO and close_amount >= market.min_amount
    # a flip whose live side is below one tradable amount cannot be closed on its own:
    # it falls through to a single order for the whole difference
    if (flip and closable) or (target_base == 0.0 and live_base != 0.0):
        closed = add(close_amount, -live_base, True, "close", True)
        if target_base != 0.0:
            if closed:
                open_amount = truncate_to_step(abs(target_base) / cs, market.amount_step)
                add(open_amount, target_base, False, "open", False)
            else:
                out.skipped.append(Skipped(venue, symbol, "open leg waits for the close", target_base * price))
        return out
    shrinking = live_base != 0.0 and abs(target_base) < abs(live_base) and target_base * live_base >= 0.0
    amount = truncate_to_step(abs(diff) / cs, market.amount_step)
    add(amount, diff, shrinking, "adjust" if live_base != 0.0 else "open", False)
    return out


def plan_orders(
    *,
    target_notional: Mapping[VenueSymbol, float],
    live_base: Mapping[VenueSymbol, float],
    prices: Mapping[VenueSymbol, float],
    markets: Mapping[VenueSymbol, Market],
    threshold: float,
    max_order_notional: float | None = None,
) -> tuple[Plan, dict[VenueSymbol, float]]:
    """Plan every (venue, symbol) that is targeted or held.

    Returns the plan and the target amounts in base units (target notional /
    price) for the snapshot. Symbols without a price or market are skipped
    (reason given), never traded blind. Output order is sorted by key, so the
    plan is deterministic.
    """
    plan = Plan()
    target_base: dict[VenueSymbol, float] = {}
    for key in sorted(set(target_notional) | {k for k, v in live_base.items() if v != 0.0}):
        venue, symbol = key
        notional = target_notional.get(key, 0.0)
        live = live_base.get(key, 0.0)
        price = prices.get(key)
        market = markets.get(key)
        if price is None or not math.isfinite(price) or price <= 0.0:
            plan.skipped.append(Skipped(venue, symbol, "no price", notional))
            continue
        if market is None:
            plan.skipped.append(Skipped(venue, symbol, "unknown market on this exchange", notional))
            continue
        target = notional / price
        target_base[key] = target
        part = plan_symbol(
            venue=venue,
            symbol=symbol,
            target_base=target,
            live_base=live,
            price=price,
            market=market,
            threshold=threshold,
            max_order_notional=max_order_notional,
        )
        plan.orders.extend(part.orders)
        plan.skipped.extend(part.skipped)
    return plan, target_base
