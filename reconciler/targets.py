"""Target positions from the config and the strategies' states (pure functions).

Target notional per (venue, symbol), in account currency::

    sum over strategies s trading symbol on venue of
        account_value * leverage * weight[s] * position[s][symbol]

Strategies on one symbol net out; a zero or missing weight contributes
nothing; the venue of a strategy is ``config.exchanges[s]``, else the default.
Symbols are first resolved to the venue's market (``resolve(venue, symbol)``:
``BTCUSDT`` and ``BTC/USDT:USDT`` name one market on Binance and net out); a
symbol that resolves to nothing is listed in ``Targets.unresolved`` and never
traded.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fastopt.files.config import TradingConfig
from fastopt.files.state import StrategyState

VenueSymbol = tuple[str, str]


@dataclass(frozen=True)
class Targets:
    """Signed target notionals (account currency) and who contributed them.

    ``contributions[(venue, symbol)]`` lists ``(strategy, position, notional)``.
    """

    notional: dict[VenueSymbol, float]
    contributions: dict[VenueSymbol, list[tuple[str, float, float]]]
    #: (venue, symbol as written, strategy, notional) of positions whose symbol names no market
    unresolved: list[tuple[str, str, str, float]] = field(default_factory=list)


def compute_targets(
    config: TradingConfig,
    states: Mapping[str, StrategyState],
    *,
    default_exchange: str,
    resolve: Callable[[str, str], str | None] | None = None,
) -> Targets:
    """Net target notional per (venue, resolved symbol); see the module docstring.

    ``resolve(venue, symbol)`` returns the venue's unified symbol or None; without it
    symbols are taken as written.
    """
    scale = config.account_value * config.leverage
    notional: dict[VenueSymbol, float] = {}
    contributions: dict[VenueSymbol, list[tuple[str, float, float]]] = {}
    unresolved: list[tuple[str, str, str, float]] = []
    for name, weight in config.weights.items():
        if weight == 0.0:
            continue
        state = states.get(name)
        if state is None:
            continue
        venue = config.exchanges.get(name, default_exchange)
        for raw_symbol, position in state.positions.items():
            amount = scale * weight * position
            symbol = raw_symbol if resolve is None else resolve(venue, raw_symbol)
            if symbol is None:
                unresolved.append((venue, raw_symbol, name, amount))
                continue
            key = (venue, symbol)
            notional[key] = notional.get(key, 0.0) + amount
            contributions.setdefault(key, []).append((name, position, amount))
    for key, parts in contributions.items():  # exact netting, independent of order
        notional[key] = math.fsum(part[2] for part in parts)
    return Targets(notional, contributions, unresolved)


def cap_gross(
    notional: Mapping[VenueSymbol, float], *, gross_limit: float
) -> tuple[dict[VenueSymbol, float], float]:
    """Scale all targets down by one factor so sum |notional| <= ``gross_limit``.

    Returns ``(capped, factor)`` with ``factor`` in (0, 1] (1 = untouched).
    """
    gross = math.fsum(abs(v) for v in notional.values())
    if gross <= gross_limit or gross == 0.0:
        return dict(notional), 1.0
    factor = gross_limit / gross
    return {k: v * factor for k, v in notional.items()}, factor
