"""The reconciler's plausibility guards (pure): prices, position reads, config changes."""
from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from reconciler.guards import agree, judge_config, judge_prices, position_surprises

K = ("binanceusdm", "BTC/USDT:USDT")
prices = st.floats(1e-3, 1e6, allow_nan=False, allow_infinity=False)


def test_a_mark_ten_times_below_the_index_is_refused_and_the_cap_uses_the_dearest_price():
    verdict = judge_prices({K: 6_500.0}, {K: 65_000.0}, {}, now_s=0.0)
    assert K in verdict.refused and "reference" in verdict.refused[K] and K not in verdict.accepted
    ok = judge_prices({K: 65_000.0}, {K: 65_100.0}, {K: (64_000.0, -5.0)}, now_s=0.0)
    assert ok.accepted[K] == 65_000.0 and ok.cap_prices[K] == 65_100.0


def test_a_jump_is_traded_once_the_next_observation_confirms_it():
    first = judge_prices({K: 50_000.0}, {}, {K: (95_000.0, 0.0)}, now_s=5.0)
    assert K in first.refused and "jumped" in first.refused[K]
    second = judge_prices({K: 50_100.0}, {}, {K: (50_000.0, 5.0)}, now_s=10.0)
    assert second.accepted[K] == 50_100.0
    stale = judge_prices({K: 50_000.0}, {}, {K: (95_000.0, 0.0)}, now_s=7200.0)  # an old observation says little
    assert K in stale.accepted


@given(mark=prices, ref=prices, dev=st.sampled_from([0.01, 0.05, 0.1, 0.5]))
def test_accepted_prices_are_within_the_deviation_of_the_reference(mark, ref, dev):
    verdict = judge_prices({K: mark}, {K: ref}, {}, now_s=0.0, max_deviation=dev)
    assert (K in verdict.accepted) == (abs(mark / ref - 1) <= dev)
    if K in verdict.accepted:
        assert verdict.cap_prices[K] >= mark and verdict.cap_prices[K] >= ref


@given(bad=st.sampled_from([0.0, -1.0, math.nan, math.inf]))
def test_non_positive_or_non_finite_prices_are_refused(bad):
    assert K in judge_prices({K: bad}, {}, {}, now_s=0.0).refused


def test_an_empty_read_contradicts_held_positions():
    assert position_surprises({"BTC": 0.076, "ETH": -1.4}, {}) == ["BTC", "ETH"]
    assert position_surprises({"BTC": 0.076}, {"BTC": 0.0760001}) == []


@given(a=st.floats(-1e4, 1e4), b=st.floats(-1e4, 1e4))
def test_agreement_is_symmetric(a, b):
    assert agree(a, b) == agree(b, a)


def _judge(**kw):
    base = dict(account_value=10_000.0, gross_budget=10_000.0, equity=9_900.0, accepted_budget=10_000.0,
                accepted_account_value=10_000.0, same_as_accepted=False, operator_accepts=False)
    return judge_config(**{**base, **kw})


def test_account_value_above_the_equity_is_never_traded():
    decision = _judge(account_value=100_000.0, gross_budget=100_000.0)
    assert decision.use == "accepted" and "equity" in decision.problem
    assert _judge(account_value=100_000.0, gross_budget=100_000.0, operator_accepts=True).use == "accepted"
    assert _judge(account_value=100_000.0, gross_budget=100_000.0, accepted_budget=None).use == "none"
    assert _judge(equity=None).use == "new"


def test_a_leverage_jump_is_held_back_until_the_operator_accepts_it():
    jump = _judge(gross_budget=50_000.0)
    assert jump.use == "accepted" and "accept-config" in jump.problem
    assert _judge(gross_budget=50_000.0, operator_accepts=True).use == "new"
    assert _judge(gross_budget=19_000.0).use == "new"  # under the factor
    assert _judge(gross_budget=1_000.0).use == "new"  # de-risking is never held back
    assert _judge(gross_budget=50_000.0, accepted_budget=None).use == "new"  # the first config


@given(budget=st.floats(1.0, 1e7), accepted=st.floats(1.0, 1e7), factor=st.floats(1.0, 10.0))
def test_a_held_back_config_is_exactly_one_above_the_factor(budget, accepted, factor):
    decision = judge_config(account_value=1.0, gross_budget=budget, equity=None, accepted_budget=accepted,
                            accepted_account_value=1.0, same_as_accepted=False, operator_accepts=False,
                            max_jump=factor)
    assert (decision.use == "new") == (budget <= factor * accepted)
