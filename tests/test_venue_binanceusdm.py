"""Binance USD-M (ccxt ``binanceusdm``) through the venue fault matrix (tests/fakes/venue_matrix.py)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from fakes import venue_matrix as vm
from fakes.fake_binanceusdm import FakeBinanceUsdm
from fakes.workspace import reconciler_for
from reconciler.errors import VenueConfigError

pytestmark = pytest.mark.integration


@pytest.fixture
def fake(monkeypatch):
    with vm.serving(FakeBinanceUsdm, monkeypatch) as server:
        yield server


class TestFaultMatrix(vm.FaultMatrix):
    """Timeouts, 5xx, 429, margin and reduce-only refusals, status-less answers, crashes (tests/fakes/venue_matrix.py)."""


def test_orders_carry_the_client_id_amount_in_contracts_and_reduce_only(fake, tmp_path):
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    vm.run_until_on_target(rec, fake)
    sent = vm.order_requests(fake, "/fapi/v1/order")
    intents = [r for r in vm.journal_lines(tmp_path) if r["event"] == "intent"]
    assert [p["newClientOrderId"] for p in sent] == [r["client_order_id"] for r in intents]
    # amounts in contracts (contract size 1 here), as journaled
    assert [Decimal(p["quantity"]) for p in sent] == [Decimal(r["amount"]) for r in intents]
    (tmp_path / "strategies" / "a" / "state.json").write_text('{"symbol": "BTC/USDT:USDT", "position": 0.0}')
    rec.run_cycle()
    close = vm.order_requests(fake, "/fapi/v1/order")[-1]
    assert close["side"] == "SELL" and close["reduceOnly"] == "true"


def test_the_self_check_refuses_a_venue_whose_lookup_does_not_work(fake, tmp_path):
    """A lookup by client id that answers anything but "not found" for a never-used id (here: a request the
    venue refuses, as Bybit's did) makes the venue unusable: refused at start, naming the step."""
    cfg = vm.workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    fake.add_canned("GET", "/fapi/v1/order", 400, {"code": -1102, "msg": "Mandatory parameter 'orderId' was not "
                                                   "sent, was empty/null, or malformed."})
    with pytest.raises(VenueConfigError, match="self-check, order lookup by client id"):
        rec.venue(fake.exchange_id)
    fake.add_canned("GET", "/fapi/v1/order", 200, {"orderId": 1, "clientOrderId": "someone-else", "status": "NEW",
                                                   "symbol": "BTCUSDT", "executedQty": "0", "origQty": "1"})
    rec = reconciler_for(cfg, *vm.venue_args(tmp_path, fake))
    with pytest.raises(VenueConfigError, match="self-check"):
        rec.venue(fake.exchange_id)
    report = reconciler_for(cfg, *vm.venue_args(tmp_path, fake)).run_cycle()
    assert report.status == "ok" and fake.fills  # with the lookup working again, it trades
