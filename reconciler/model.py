"""Plain data types shared by the reconciler modules (no I/O)."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Market:
    """Trading rules of one market.

    ``amount_step`` and ``min_amount`` are in the exchange's order unit
    (contracts; for linear perps with ``contract_size`` 1 that is the base
    coin). ``min_cost`` is the minimum order notional in account currency
    (0 = none). One contract is ``contract_size`` base units. ``max_amount`` is
    the largest amount one market order may have (contracts; None = no limit):
    the plan splits a larger difference into several orders.
    """

    symbol: str
    amount_step: Decimal
    min_amount: Decimal = Decimal(0)
    min_cost: float = 0.0
    contract_size: float = 1.0
    max_amount: Decimal | None = None


@dataclass(frozen=True)
class PlannedOrder:
    """One market order the plan wants sent.

    ``amount`` is in contracts (a multiple of the market's step), ``price`` the
    reference price used for sizing (account currency per base unit), and
    ``leg`` is ``"close"`` (reduce-only close of the current position),
    ``"open"`` (opening after a flip or from flat) or ``"adjust"``.
    """

    venue: str
    symbol: str
    side: str  # "buy" | "sell"
    amount: Decimal
    reduce_only: bool
    leg: str
    price: float
    capped: bool = False

    @property
    def signed_amount(self) -> Decimal:
        return self.amount if self.side == "buy" else -self.amount

    def notional(self, contract_size: float = 1.0) -> float:
        """Signed notional in account currency (buy > 0)."""
        return float(self.signed_amount) * contract_size * self.price


@dataclass(frozen=True)
class Skipped:
    """A symbol whose difference was not traded, and why (``reason`` is one short phrase)."""

    venue: str
    symbol: str
    reason: str
    diff_notional: float


@dataclass
class Plan:
    """Output of :func:`reconciler.plan.plan_orders`."""

    orders: list[PlannedOrder] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class OrderResult:
    """What an exchange says about an order.

    ``status``: ``"filled"``, ``"partially_filled"``, ``"open"``, ``"rejected"``,
    ``"canceled"`` or ``"unknown"`` (the reply carried no status: not an outcome,
    the order must be looked up). ``filled`` is in contracts, ``average`` the
    average fill price.
    """

    client_order_id: str
    status: str
    filled: float = 0.0
    average: float | None = None
    exchange_order_id: str | None = None
    info: dict[str, Any] = field(default_factory=dict, compare=False)
