"""Binance USD-M futures (ccxt ``binanceusdm``): linear USDT perpetuals, one-way mode.

Where it departs from plain ccxt:

- **hedge mode**: ``GET /fapi/v1/positionSide/dual`` at start (ccxt ``fetch_position_mode``), and
  position rows with ``positionSide`` LONG/SHORT, are refused (fastopt holds one net position per symbol
  and sends no ``positionSide``);
- **equity**: ``totalMarginBalance`` of ``GET /fapi/v3/account`` (wallet balance + unrealized PnL of the
  whole futures account);
- **refusals by code** (:data:`REFUSALS`), where ccxt's tables would make a refused order an unknown
  outcome (checked against ccxt 4.5.90; ccxt picks its table by URL).

Client ids: ``fo`` + 30 hex (Binance allows 36 characters of ``[.A-Z:/a-z0-9_-]``), sent as
``newClientOrderId`` by ccxt's unified ``clientOrderId``; looked up with ``origClientOrderId``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.errors import InsufficientFunds, InvalidOrder, VenueError
from reconciler.venues.profile import VenueProfile, coded_refusal, equity_or_total, info_value

#: Binance USD-M futures codes that are definitive refusals, whatever ccxt's tables say:
#:
#: - -4061 position side does not match (hedge mode): ccxt generic table -> OperationRejected (not a refusal)
#: - -2027 max position at current leverage, -4131 PERCENT_PRICE counterparty price: OperationRejected
#: - -2028 leverage too small / insufficient margin balance: OperationRejected -> InsufficientFunds
#: - -2019 margin is insufficient: portfolio-margin table -> OperationFailed (a *temporary* error class)
#: - -4005 quantity greater than max quantity: spot table -> RateLimitExceeded; generic table -> BadRequest
#: - -2022 reduce-only rejected, -4164 notional under the minimum: correct in the linear table, pinned here
#:   so they stay refusals whichever table a rebased URL selects.
REFUSALS: dict[str, tuple[type[InvalidOrder], str]] = {
    "-4061": (InvalidOrder, "the order's position side does not match the account: the account is in hedge "
                            "mode; switch to one-way mode in the Binance futures settings"),
    "-2019": (InsufficientFunds, "margin is insufficient"),
    "-2028": (InsufficientFunds, "leverage too small for the margin balance"),
    "-2027": (InvalidOrder, "position would exceed the maximum allowed at the current leverage"),
    "-4005": (InvalidOrder, "quantity greater than the market's max quantity"),
    "-2022": (InvalidOrder, "reduce-only order rejected (it would not reduce the position)"),
    "-4164": (InvalidOrder, "order notional under the market minimum"),
    "-4131": (InvalidOrder, "counterparty's best price outside the PERCENT_PRICE filter"),
}
_CODE = re.compile(r'"code"\s*:\s*(-?\d+)')


def refusal(exc: BaseException, message: str) -> VenueError | None:
    """A refusal for a Binance futures error code in ``exc``'s message (``{"code":-4061,...}``), else None."""
    return coded_refusal(exc, message, _CODE, REFUSALS)


def hedge_row(row: Mapping[str, Any]) -> bool:
    """A row of a hedge-mode account: ccxt ``hedged``, or ``positionSide`` LONG/SHORT."""
    if row.get("hedged") is True:
        return True
    info = row.get("info")
    side = str(info.get("positionSide", "")).upper() if isinstance(info, Mapping) else ""
    return side in ("LONG", "SHORT")


def equity(balance: Mapping[str, Any], account_currency: str) -> float | None:
    """``totalMarginBalance`` (wallet + unrealized PnL; USDT in single-asset mode, the USD value of all
    collateral in multi-assets mode), else the balance's ``total`` of ``account_currency``."""
    return equity_or_total(info_value(balance, "totalMarginBalance"), balance, account_currency)


PROFILE = VenueProfile(
    exchange_id="binanceusdm",
    settle_currencies=("USDT",),
    account_currency="USDT",
    credentials=(("API_KEY", "apiKey"), ("SECRET", "secret")),
    options={"warnOnFetchOpenOrdersWithoutSymbol": False},
    one_way_fix="switch to one-way mode in the Binance futures settings (Preferences > Position Mode)",
    refusal=refusal,
    hedge_row=hedge_row,
    equity=equity,
)
