"""The fake Binance USD-M server (``tests/fake_binance.py``) behind the venue-fake protocol of
``tests/fakes/venue_matrix.py``: credentials, traded symbols, prices, steps, fault kinds."""
from __future__ import annotations

from typing import Any

from fake_binance import API_KEY, SECRET, FakeBinance

#: venue-matrix fault kind -> this fake's fault on POST /fapi/v1/order
_FAULTS = {"timeout_applied": "apply_then_timeout", "error_applied": "apply_then_500", "rate_limited": "429",
           "insufficient_margin": "insufficient", "statusless": "apply_then_statusless",
           "reduce_only_refusal": "reduce_only_refusal"}


class FakeBinanceUsdm(FakeBinance):
    exchange_id = "binanceusdm"
    env = {"BINANCEUSDM_API_KEY": API_KEY, "BINANCEUSDM_SECRET": SECRET}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slow_s=kwargs.pop("slow_s", 2.0), **kwargs)
        self.symbols = {m["base"]: f"{m['base']}/USDT:USDT" for m in self.markets.values()}
        self.prices = {m["base"]: float(m["price"]) for m in self.markets.values()}
        self.steps = {m["base"]: float(m["step"]) for m in self.markets.values()}

    def position(self, base: str) -> float:  # type: ignore[override]
        return float(super().position(base))

    def inject(self, kind: str) -> None:
        self.add_fault("POST", "/fapi/v1/order", _FAULTS[kind])
