"""Pure core of the reconciler: targets (netting, weights) and the order plan (invariants)."""
from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fastopt.files.config import TradingConfig
from fastopt.files.state import StrategyState
from reconciler.model import Market
from reconciler.plan import plan_orders, plan_symbol, truncate_to_step
from reconciler.targets import cap_gross, compute_targets

STEPS = [Decimal("0.001"), Decimal("0.01"), Decimal("1"), Decimal("0.00001"), Decimal("5")]


@st.composite
def markets(draw):
    step = draw(st.sampled_from(STEPS))
    min_amount = step * draw(st.integers(1, 5))
    min_cost = draw(st.sampled_from([0.0, 5.0, 20.0, 100.0]))
    cs = draw(st.sampled_from([1.0, 0.1, 10.0]))
    return Market("X/USDT:USDT", step, min_amount, min_cost, cs)


def apply(live: float, orders, cs: float) -> float:
    out = Decimal(repr(live))
    for o in orders:
        out += o.signed_amount * Decimal(repr(cs))
    return float(out)


def tolerance(market: Market, price: float, threshold: float) -> float:
    """One amount step, the threshold or the dust limit (min amount / min cost), in base units."""
    cs = market.contract_size
    return (float(market.amount_step) * cs + max(threshold, market.min_cost) / price
            + float(market.min_amount) * cs) * (1 + 1e-9)


amounts = st.floats(-50.0, 50.0, allow_nan=False).map(lambda x: 0.0 if abs(x) < 1e-9 else x)
prices = st.floats(0.5, 100_000.0)


@given(market=markets(), target=amounts, live=amounts, price=prices, threshold=st.sampled_from([0.0, 1.0, 10.0]))
def test_applying_the_plan_lands_within_one_step_threshold_or_dust(market, target, live, price, threshold):
    plan = plan_symbol(venue="v", symbol=market.symbol, target_base=target, live_base=live, price=price,
                       market=market, threshold=threshold)
    final = apply(live, plan.orders, market.contract_size)
    assert abs(final - target) <= tolerance(market, price, threshold) + abs(target) * 1e-12
    for o in plan.orders:
        assert o.amount > 0 and o.amount % market.amount_step == 0
        assert o.amount >= market.min_amount


@given(market=markets(), target=amounts, live=amounts, price=prices)
def test_orders_never_overshoot_and_reduce_only_never_crosses_zero(market, target, live, price):
    plan = plan_symbol(venue="v", symbol=market.symbol, target_base=target, live_base=live, price=price,
                       market=market, threshold=0.0)
    position = Decimal(repr(live))
    cs = Decimal(repr(market.contract_size))
    for o in plan.orders:
        before = position
        position += o.signed_amount * cs
        if o.reduce_only:
            assert before != 0 and abs(position) <= abs(before) and position * before >= 0
    # truncation: |final - live| never exceeds |target - live| (no rounding up)
    assert abs(float(position) - live) <= abs(target - live) + abs(live) * 1e-12 + 1e-12


@given(market=markets(), target=amounts, live=amounts, price=prices)
def test_a_flip_is_a_reduce_only_close_then_an_open(market, target, live, price):
    assume(target * live < 0 and abs(live) * price >= 10.0)
    plan = plan_symbol(venue="v", symbol=market.symbol, target_base=target, live_base=live, price=price,
                       market=market, threshold=10.0)
    closable = truncate_to_step(abs(live) / market.contract_size, market.amount_step) >= max(
        market.min_amount, market.amount_step)
    if not closable:  # live side below one tradable amount: one plain order for the difference
        assert len(plan.orders) <= 1 and all(not o.reduce_only for o in plan.orders)
        assert all((o.side == "buy") == (target > live) for o in plan.orders)
    elif plan.orders:
        first = plan.orders[0]
        assert first.leg == "close" and first.reduce_only
        assert (first.side == "sell") == (live > 0)
        for later in plan.orders[1:]:
            assert later.leg == "open" and not later.reduce_only and (later.side == "buy") == (target > 0)


def test_flip_example_exact():
    m = Market("BTC", Decimal("0.001"), Decimal("0.001"), 5.0)
    plan = plan_symbol(venue="v", symbol="BTC", target_base=-0.0305, live_base=0.02, price=100_000.0, market=m,
                       threshold=10.0)
    assert [(o.side, o.amount, o.reduce_only, o.leg) for o in plan.orders] == [
        ("sell", Decimal("0.020"), True, "close"), ("sell", Decimal("0.030"), False, "open")]


def test_symbol_no_longer_targeted_is_closed_reduce_only():
    m = Market("ETH", Decimal("0.01"), Decimal("0.01"), 5.0)
    plan, _ = plan_orders(target_notional={}, live_base={("v", "ETH"): -1.5}, prices={("v", "ETH"): 3000.0},
                          markets={("v", "ETH"): m}, threshold=10.0)
    assert [(o.side, o.amount, o.reduce_only) for o in plan.orders] == [("buy", Decimal("1.50"), True)]


@given(x=st.floats(0.0, 1e6, allow_nan=False), step=st.sampled_from(STEPS))
def test_truncation_never_rounds_up_and_loses_less_than_one_step(x, step):
    out = truncate_to_step(x, step)
    assert out % step == 0
    assert Decimal(repr(x)) - step < out <= Decimal(repr(x))


def test_dust_and_threshold_are_skipped_with_reasons():
    m = Market("SOL", Decimal("1"), Decimal("1"), 5.0)
    under_threshold = plan_symbol(venue="v", symbol="SOL", target_base=0.04, live_base=0.0, price=190.0, market=m,
                                  threshold=10.0)
    assert not under_threshold.orders and "threshold" in under_threshold.skipped[0].reason
    under_step = plan_symbol(venue="v", symbol="SOL", target_base=0.9, live_base=0.0, price=190.0, market=m,
                             threshold=10.0)
    assert not under_step.orders and under_step.skipped[0].reason.startswith("dust")
    m2 = Market("BTC", Decimal("0.001"), Decimal("0.001"), 100.0)
    under_cost = plan_symbol(venue="v", symbol="BTC", target_base=0.0009 + 0.001, live_base=0.0, price=40_000.0,
                             market=m2, threshold=10.0)
    assert not under_cost.orders and "min cost" in under_cost.skipped[0].reason


@given(target=st.floats(-100, 100), live=st.floats(-100, 100), cap=st.floats(10.0, 5000.0))
def test_max_order_notional_caps_every_order(target, live, cap):
    m = Market("X", Decimal("0.01"), Decimal("0.01"), 0.0)
    plan = plan_symbol(venue="v", symbol="X", target_base=target, live_base=live, price=100.0, market=m,
                       threshold=0.0, max_order_notional=cap)
    for o in plan.orders:
        assert float(o.amount) * 100.0 <= cap + 1e-9
    if any(o.capped and o.leg == "close" for o in plan.orders):
        assert all(o.leg == "close" for o in plan.orders)  # no open leg after a partial close


def test_missing_price_or_market_is_skipped_never_traded():
    m = Market("A", Decimal("0.01"))
    plan, _ = plan_orders(target_notional={("v", "A"): 500.0, ("v", "B"): 500.0}, live_base={},
                          prices={("v", "A"): math.nan, ("v", "B"): 10.0}, markets={("v", "A"): m}, threshold=1.0)
    assert not plan.orders
    assert sorted(s.reason for s in plan.skipped) == ["no price", "unknown market on this exchange"]


# -- targets --------------------------------------------------------------
def cfg(weights, *, av=10_000.0, lev=2.0, exchanges=None):
    return TradingConfig(av, lev, weights, exchanges or {}, {})


def test_strategies_on_one_symbol_net_out_and_venues_are_separate():
    states = {"a": StrategyState({"BTC": 1.0}), "b": StrategyState({"BTC": -1.0}),
              "c": StrategyState({"BTC": 0.5, "ETH": -1.0})}
    t = compute_targets(cfg({"a": 0.25, "b": 0.25, "c": 0.5}, exchanges={"c": "bybit"}), states,
                        default_exchange="paper")
    assert t.notional == {("paper", "BTC"): 0.0, ("bybit", "BTC"): 5000.0, ("bybit", "ETH"): -10000.0}


@given(weights=st.lists(st.floats(0, 1), min_size=1, max_size=8),
       positions=st.lists(st.floats(-2, 2), min_size=8, max_size=8))
def test_target_is_the_weighted_sum_and_zero_weights_contribute_nothing(weights, positions):
    names = [f"s{i}" for i in range(len(weights))]
    states = {n: StrategyState({"BTC": p}) for n, p in zip(names, positions)}
    t = compute_targets(cfg(dict(zip(names, weights)), av=1000.0, lev=1.5), states, default_exchange="paper")
    expected = math.fsum(1000.0 * 1.5 * w * p for w, p in zip(weights, positions) if w != 0)
    got = t.notional.get(("paper", "BTC"), 0.0)
    assert got == pytest.approx(expected, abs=1e-9)
    contributors = {c[0] for c in t.contributions.get(("paper", "BTC"), [])}
    assert contributors == {n for n, w in zip(names, weights) if w != 0}


@given(values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), limit=st.floats(1.0, 1e6))
def test_gross_cap_scales_uniformly_to_the_limit(values, limit):
    notional = {("v", f"S{i}"): v for i, v in enumerate(values)}
    capped, factor = cap_gross(notional, gross_limit=limit)
    assert 0 < factor <= 1
    assert math.fsum(abs(v) for v in capped.values()) <= limit * (1 + 1e-9)
    for k, v in notional.items():
        assert capped[k] == pytest.approx(v * factor)


@given(step=st.sampled_from(STEPS), units=st.integers(1, 10_000), max_units=st.integers(1, 500),
       min_units=st.integers(1, 5))
def test_split_parts_respect_the_max_amount_and_sum_to_the_order(step, units, max_units, min_units):
    from reconciler.plan import split_amount

    market = Market("X/USDT:USDT", step, step * min_units, 0.0, 1.0, max_amount=step * max_units)
    amount = step * units
    parts = split_amount(amount, market)
    assert all(p % step == 0 and market.min_amount <= p <= market.max_amount for p in parts) or parts == [amount]
    assert amount - market.min_amount < sum(parts) <= amount


def test_an_order_above_the_market_maximum_is_split():
    m = Market("SOL", Decimal("1"), Decimal("1"), 5.0, 1.0, max_amount=Decimal("100"))
    plan = plan_symbol(venue="v", symbol="SOL", target_base=250.0, live_base=0.0, price=190.0, market=m, threshold=1.0)
    assert [o.amount for o in plan.orders] == [Decimal(100), Decimal(100), Decimal(50)]
    flip = plan_symbol(venue="v", symbol="SOL", target_base=-150.0, live_base=120.0, price=190.0, market=m,
                       threshold=1.0)
    assert [(o.leg, o.reduce_only, o.amount) for o in flip.orders] == [
        ("close", True, Decimal(100)), ("close", True, Decimal(20)), ("open", False, Decimal(100)),
        ("open", False, Decimal(50))]


def test_the_order_cap_holds_at_the_highest_plausible_price():
    """A mark price 10x too low must not let an order worth 10x the cap through (priced at the reference)."""
    m = Market("BTC", Decimal("0.001"), Decimal("0.001"), 5.0, 1.0)
    plan = plan_symbol(venue="v", symbol="BTC", target_base=1.0, live_base=0.0, price=6_500.0, market=m,
                       threshold=1.0, max_order_notional=3_000.0, cap_price=65_000.0)
    (order,) = plan.orders
    assert order.capped and float(order.amount) * 65_000.0 <= 3_000.0
