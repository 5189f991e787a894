"""The fault matrix every venue must pass, run with the real ccxt class against the venue's fake server.

A venue fake (``tests/fakes/fake_<venue>.py``) is a context manager serving the
venue's endpoints on 127.0.0.1 and exposing (the :class:`VenueFake` protocol):

- ``exchange_id`` (ccxt id), ``base_url``, ``env`` (the credential variables the
  real ccxt class needs, e.g. ``{"BYBIT_API_KEY": ..., "BYBIT_SECRET": ...}``),
  ``symbols`` (base -> the unified symbol fastopt trades there, e.g.
  ``{"BTC": "BTC/USDT:USDT", "ETH": ..., "SOL": ...}``), ``prices`` (base -> price,
  account currency), ``steps`` (base -> one amount step in *base units*);
- ``position(base) -> float`` (signed, base units), ``fills`` (a list of dicts with
  ``client_order_id``, ``symbol``, ``side``, ``qty`` in contracts);
- ``inject(kind)`` queues a fault on the next order request; kinds (:data:`FAULTS`):
  ``timeout_applied`` (applied, the answer comes after the client's timeout),
  ``error_applied`` (applied, answered 5xx), ``rate_limited`` (not applied, HTTP 429
  or the venue's rate-limit code), ``insufficient_margin`` (not applied, the venue's
  margin refusal), ``statusless`` (applied, an answer that says nothing of the
  order's state) and ``reduce_only_refusal`` (the next reduce-only order is refused
  with the venue's reduce-only code);
- ``requests_full``: every request as ``{"method", "path", "params"}`` (params: query
  and body merged), to check what reached the venue.

The scenarios drive ``fastopt reconcile``'s engine (``reconciler_for``) on a workspace of
two strategies over BTC, ETH and SOL and check: positions end on target (within one
step), one fill per intended order (never two), nothing blocks forever.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import pytest

from fakes.workspace import journal_lines, make_workspace, reconciler_for

FAULTS = ("timeout_applied", "error_applied", "rate_limited", "insufficient_margin", "statusless",
          "reduce_only_refusal")


class VenueFake(Protocol):
    exchange_id: str
    base_url: str
    env: dict[str, str]
    symbols: dict[str, str]
    prices: dict[str, float]
    steps: dict[str, float]
    fills: list[dict[str, Any]]
    requests_full: list[dict[str, Any]]

    def position(self, base: str) -> float: ...
    def inject(self, kind: str) -> None: ...


class Crash(BaseException):
    """A process death (kill -9) between two steps of a cycle."""


def workspace(tmp_path: Path, fake: VenueFake, *, states: dict[str, Any] | None = None,
              account_value: float = 10_000.0, timeout_ms: int = 1500) -> Path:
    """Config (account_value, leverage 1, a: BTC long, b: ETH short + SOL half long) and exchange.json."""
    sym = fake.symbols
    states = states or {"a": {"symbol": sym["BTC"], "position": 1.0},
                        "b": {"positions": {sym["ETH"]: -1.0, sym["SOL"]: 0.5}}}
    cfg = make_workspace(tmp_path, weights={"a": 0.5, "b": 0.5}, states=states, account_value=account_value,
                         prices={sym[b]: p for b, p in fake.prices.items()})
    (tmp_path / "exchange.json").write_text(json.dumps({"api_base_url": fake.base_url, "timeout": timeout_ms,
                                                        "enableRateLimit": False}))
    return cfg


def venue_args(tmp_path: Path, fake: VenueFake, *, settle_s: float = 1.0) -> tuple[str, ...]:
    return ("--exchange", fake.exchange_id, "--exchange-config", str(tmp_path / "exchange.json"),
            "--backoff", "0.01", "--order-settle", str(settle_s), "--reject-backoff", "0.01",
            "--cancel-after", "1")


def expected(fake: VenueFake, account_value: float = 10_000.0) -> dict[str, float]:
    """Targets of :func:`workspace`'s default states in base units."""
    half = account_value * 0.5
    return {"BTC": half / fake.prices["BTC"], "ETH": -half / fake.prices["ETH"], "SOL": half * 0.5 / fake.prices["SOL"]}


def assert_on_target(fake: VenueFake, targets: dict[str, float] | None = None) -> None:
    for base, target in (targets or expected(fake)).items():
        held = fake.position(base)
        assert abs(held - target) <= fake.steps[base] * 1.000001 + 1e-12, (base, held, target)


def assert_one_fill_per_order(fake: VenueFake, tmp_path: Path) -> None:
    """Every fill carries a client id fastopt journaled, and no id filled twice."""
    ids = Counter(f["client_order_id"] for f in fake.fills)
    assert all(n == 1 for n in ids.values()), ids
    journaled = {r["client_order_id"] for r in journal_lines(tmp_path) if r["event"] == "intent"}
    assert set(ids) <= journaled, set(ids) - journaled


def run_until_on_target(rec: Any, fake: VenueFake, *, cycles: int = 8, pause: Callable[[], None] | None = None
                        ) -> list[str]:
    """Cycles until a cycle is ``ok`` and positions are on target (bounded); the statuses seen."""
    statuses: list[str] = []
    for _ in range(cycles):
        statuses.append(rec.run_cycle().status)
        if statuses[-1] == "ok":
            try:
                assert_on_target(fake)
                return statuses
            except AssertionError:
                pass
        if pause is not None:
            pause()
    raise AssertionError(f"never on target: {statuses}")


def fault_case(fake: VenueFake, tmp_path: Path, kind: str) -> list[str]:
    """One fault on the first order of a fresh account: the cycles end on target with one fill per order."""
    import time

    cfg = workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *venue_args(tmp_path, fake))
    rec.venue(fake.exchange_id)  # the start-up self-check passes before any fault
    if kind == "reduce_only_refusal":
        # reach target first, then flip BTC: its reduce-only close is refused once
        run_until_on_target(rec, fake)
        (tmp_path / "strategies" / "a" / "state.json").write_text(
            json.dumps({"symbol": fake.symbols["BTC"], "position": -1.0}))
        fake.inject(kind)
        targets = {**expected(fake), "BTC": -expected(fake)["BTC"]}
        statuses = []
        for _ in range(8):
            statuses.append(rec.run_cycle().status)
            try:
                assert_on_target(fake, targets)
                break
            except AssertionError:
                time.sleep(0.05)
        assert_on_target(fake, targets)
    else:
        fake.inject(kind)
        statuses = run_until_on_target(rec, fake, pause=lambda: time.sleep(0.3))
    assert_one_fill_per_order(fake, tmp_path)
    assert not rec.journal.unfinished()
    return statuses


def crash_between_journal_and_send(fake: VenueFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = workspace(tmp_path, fake)
    rec = reconciler_for(cfg, *venue_args(tmp_path, fake))
    venue = rec.venue(fake.exchange_id)

    def die(**kwargs: Any) -> Any:
        raise Crash("killed before sending")

    monkeypatch.setattr(venue, "create_order", die)
    with pytest.raises(Crash):
        rec.run_cycle()
    assert rec.journal.unfinished() and fake.fills == []
    import time

    restarted = reconciler_for(cfg, *venue_args(tmp_path, fake))
    run_until_on_target(restarted, fake, cycles=10, pause=lambda: time.sleep(0.3))
    assert_one_fill_per_order(fake, tmp_path)


def crash_between_send_and_outcome(fake: VenueFake, tmp_path: Path) -> None:
    cfg = workspace(tmp_path, fake)

    def die(order: Any, cid: str) -> None:
        raise Crash("killed after sending")

    rec = reconciler_for(cfg, *venue_args(tmp_path, fake), after_send_hook=die)
    with pytest.raises(Crash):
        rec.run_cycle()
    assert len(fake.fills) == 1 and len(rec.journal.unfinished()) == 3
    import time

    restarted = reconciler_for(cfg, *venue_args(tmp_path, fake))
    run_until_on_target(restarted, fake, cycles=10, pause=lambda: time.sleep(0.3))
    assert_one_fill_per_order(fake, tmp_path)
    assert len(fake.fills) == 3


def order_requests(fake: VenueFake, path_fragment: str) -> list[dict[str, Any]]:
    """Params of the requests whose path contains ``path_fragment`` (the venue's create-order path)."""
    return [r["params"] for r in fake.requests_full if path_fragment in r["path"] and r["method"] != "GET"]


@contextmanager
def serving(fake_cls: Callable[[], VenueFake], monkeypatch: pytest.MonkeyPatch) -> Iterator[VenueFake]:
    """The fake running, with its credentials in the environment and fastopt offline (no public prices)."""
    with fake_cls() as server:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("FASTOPT_OFFLINE", "1")
        yield server


class FaultMatrix:
    """The matrix every venue passes: ``class TestFaultMatrix(FaultMatrix): pass`` in the venue's test module,
    which provides the ``fake`` fixture (see :func:`serving`)."""

    @pytest.mark.parametrize("kind", FAULTS)
    def test_fault(self, fake: VenueFake, tmp_path: Path, kind: str) -> None:
        fault_case(fake, tmp_path, kind)

    def test_crash_between_journal_and_send(self, fake: VenueFake, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
        crash_between_journal_and_send(fake, tmp_path, monkeypatch)

    def test_crash_between_send_and_outcome(self, fake: VenueFake, tmp_path: Path) -> None:
        crash_between_send_and_outcome(fake, tmp_path)

