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

An amount above the market's ``max_amount`` (the largest market order the
venue accepts) is split into orders of at most ``max_amount`` each. The
per-order cap ``max_order_notional`` is converted to an amount at ``cap_price``
(the highest plausible price of the symbol, >= the sizing price): when the
sizing price is doubtful the cap still holds at every plausible price.
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


def split_amount(amount: Decimal, market: Market) -> list[Decimal]:
    """``amount`` as parts of at most ``market.max_amount`` (each a multiple of the step), largest first.

    A remainder below the market's minimum amount takes what it lacks from the last full part when
    that part stays tradable; otherwise (a max amount under twice the min amount) it is dropped, which
    leaves the symbol within the dust limit of its target.
    """
    top = market.max_amount
    if top is None or amount <= top:
        return [amount]
    top = (top / market.amount_step).to_integral_value(rounding=ROUND_DOWN) * market.amount_step
    if top <= _ZERO or top < market.min_amount:  # inconsistent limits: one order, the venue decides
        return [amount]
    count, rest = divmod(amount, top)
    parts = [top] * int(count)
    if rest > _ZERO:
        if rest < market.min_amount:  # take from the last full part so the remainder is tradable
            moved = market.min_amount - rest
            if parts[-1] - moved < market.min_amount:
                return parts
            parts[-1] -= moved
            rest += moved
        parts.append(rest)
    return parts


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
    cap_price: float | None = None,
) -> Plan:
    """Orders bringing ``live_base`` to ``target_base`` for one symbol (see module doc).

    ``cap_price`` (account currency per base unit, default ``price``) converts
    ``max_order_notional`` to an amount; the larger of the two prices is used.
    """
    out = Plan()
    cs = market.contract_size
    diff = target_base - live_base
    if abs(diff) * price < threshold:
        if diff != 0.0:
            out.skipped.append(Skipped(venue, symbol, f"below threshold {threshold:g}", diff * price))
        return out
    dearest = price if cap_price is None or not math.isfinite(cap_price) else max(price, cap_price)

    def cap(amount: Decimal) -> tuple[Decimal, bool]:
        if max_order_notional is None:
            return amount, False
        limit = truncate_to_step(max_order_notional / (dearest * cs), market.amount_step)
        return (limit, True) if amount > limit else (amount, False)

    def add(amount: Decimal, sign: float, reduce_only: bool, leg: str, exempt_min_cost: bool) -> bool:
        """Append one order (split at the market's max amount) unless dust; True when appended uncapped."""
        amount, capped = cap(amount)
        notional = float(amount) * cs * price
        if amount <= _ZERO or amount < market.min_amount:
            reason = "dust: below one amount step" if amount <= _ZERO else "dust: below min amount"
            out.skipped.append(Skipped(venue, symbol, reason, sign * abs(diff) * price))
            return False
        if not exempt_min_cost and notional < market.min_cost:
            out.skipped.append(Skipped(venue, symbol, f"dust: below min cost {market.min_cost:g}", sign * notional))
            return False
        for part in split_amount(amount, market):
            out.orders.append(PlannedOrder(venue, symbol, _side(sign), part, reduce_only, leg, price, capped))
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
    cap_prices: Mapping[VenueSymbol, float] | None = None,
) -> tuple[Plan, dict[VenueSymbol, float]]:
    """Plan every (venue, symbol) that is targeted or held.

    Returns the plan and the target amounts in base units (target notional /
    price) for the snapshot. Symbols without a price or market are skipped
    (reason given), never traded blind. ``cap_prices`` (optional, per key): the
    highest plausible price, used for the per-order cap (see :func:`plan_symbol`). Output order is sorted by key, so the
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
            cap_price=None if cap_prices is None else cap_prices.get(key),
        )
        plan.orders.extend(part.orders)
        plan.skipped.extend(part.skipped)
    return plan, target_base
