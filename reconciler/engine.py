"""One reconcile cycle: inputs -> targets -> live -> plan -> snapshot -> journaled orders.

The cycle (:meth:`Reconciler.run_cycle`):

1. resolve unfinished journal intents (look each up by client order id); if
   one cannot be resolved, send nothing this cycle;
2. read and validate the config (refuse to trade on an invalid one) and the
   weighted strategies' state files;
3. target notionals (pure), capped so gross exposure <= account_value x max leverage;
4. per venue: live positions (reads retry; ``halt_after`` consecutive failures
   halt trading), prices and markets;
5. the plan (pure), then the snapshot ``last_reconcile.json`` (atomic);
6. unless dry-run, halted or the kill switch ``STOP`` exists: journal every
   intent (fsync), send each order once, journal its outcome. On an unknown
   outcome the order is looked up by client order id and the rest of the
   cycle is not sent (positions are re-read first, next cycle).
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from fastopt.atomic import atomic_write_json, atomic_write_text
from fastopt.config_file import TradingConfig, read_config, validate_for_trading
from fastopt.errors import FastoptError, InputError
from reconciler.errors import (
    AuthenticationError,
    InvalidOrder,
    OrderOutcomeUnknown,
    VenueError,
)
from reconciler.inputs import StateReader, unknown_weighted
from reconciler.journal import OrderJournal, client_order_id
from reconciler.model import Market, OrderResult, Plan, PlannedOrder
from reconciler.plan import plan_orders
from reconciler.report import Reporter
from reconciler.targets import cap_gross, compute_targets

SNAPSHOT_NAME = "last_reconcile.json"
JOURNAL_NAME = "orders.jsonl"
STOP_NAME = "STOP"
HALTED_NAME = "HALTED"
PAPER_DB_NAME = "paper_exchange.sqlite"
#: order statuses that are not an outcome yet: the intent stays unfinished and blocks sending
NON_FINAL = ("open", "partially_filled")


class Venue(Protocol):
    """What the engine needs from an exchange (paper or ccxt)."""

    name: str

    def fetch_positions(self) -> dict[str, float]: ...
    def fetch_prices(self, symbols: list[str]) -> dict[str, float]: ...
    def load_markets(self, symbols: list[str], prices: Mapping[str, float]) -> dict[str, Market]: ...
    def create_order(self, *, symbol: str, side: str, amount: Any, reduce_only: bool,
                     client_order_id: str) -> OrderResult: ...
    def fetch_order_by_client_id(self, *, symbol: str, client_order_id: str) -> OrderResult | None: ...


@dataclass
class EngineSettings:
    """Options of the reconciler (units: threshold and max order in account currency, times in s)."""

    config_path: Path
    strategies_dir: Path
    default_exchange: str = "paper"
    threshold: float = 10.0
    max_leverage: float = 5.0
    max_order_usd: float | None = None
    stale_after_s: float = 6 * 3600.0
    dry_run: bool = False
    halt_after: int = 3
    manual_resume: bool = False

    @property
    def folder(self) -> Path:
        return self.config_path.resolve().parent


@dataclass
class CycleReport:
    """What one cycle saw and did. ``status``: ok, dry_run, refused, blocked, halted, stopped, incomplete."""

    status: str
    message: str = ""
    target_notional: dict[tuple[str, str], float] = field(default_factory=dict)
    live_base: dict[tuple[str, str], float] = field(default_factory=dict)
    plan: Plan = field(default_factory=Plan)
    results: list[dict[str, Any]] = field(default_factory=list)
    states: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "dry_run")


VenueFactory = Callable[[str, Mapping[str, Any]], Venue]


class Reconciler:
    """Holds the long-lived parts (venues, journal, state cache, halt counters) across cycles."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        venue_factory: VenueFactory,
        exchange_settings: Mapping[str, Any] | None = None,
        reporter: Reporter | None = None,
        after_send_hook: Callable[[PlannedOrder, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.venue_factory = venue_factory
        self.cli_exchange_settings = exchange_settings
        self.report = reporter or Reporter()
        self.after_send_hook = after_send_hook
        self.folder = settings.folder
        self.journal = OrderJournal(self.folder / JOURNAL_NAME)
        self.states = StateReader(settings.strategies_dir, stale_after_s=settings.stale_after_s,
                                  warn=self.report.warn)
        self.venues: dict[str, Venue] = {}
        self.read_failures = 0
        # a HALTED file left by an earlier run keeps trading halted after a restart until it is removed
        self.halted = self.halted_file.exists()
        if self.halted:
            self.report.error(f"trading halted: {self.halted_file} exists (remove it to resume)")
        self.cycle_counter = 0

    # -- venues -----------------------------------------------------------
    def venue(self, name: str, config_settings: Mapping[str, Any] | None = None) -> Venue:
        if name not in self.venues:
            self.venues[name] = self.venue_factory(name, self._settings_for(name, config_settings or {}))
        return self.venues[name]

    def _settings_for(self, name: str, config_settings: Mapping[str, Any]) -> dict[str, Any]:
        """``--exchange-config`` wins; else ``exchange_settings[name]`` or, for the default venue, the whole object."""
        if self.cli_exchange_settings is not None and name == self.settings.default_exchange:
            return dict(self.cli_exchange_settings)
        per_venue = config_settings.get(name)
        if isinstance(per_venue, dict):
            return dict(per_venue)
        if name == self.settings.default_exchange:
            return {k: v for k, v in config_settings.items() if not isinstance(v, dict) or k in ("options", "paper")}
        return {}

    # -- files ------------------------------------------------------------
    @property
    def stop_file(self) -> Path:
        return self.folder / STOP_NAME

    @property
    def halted_file(self) -> Path:
        return self.folder / HALTED_NAME

    def load_config(self) -> tuple[dict[str, Any], TradingConfig]:
        raw = read_config(self.settings.config_path)
        trading = validate_for_trading(raw, max_leverage=self.settings.max_leverage, path=self.settings.config_path)
        unknown = unknown_weighted(self.settings.strategies_dir, [n for n, w in trading.weights.items() if w > 0])
        if unknown:
            shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise InputError(
                f"refusing to trade: {len(unknown)} weighted strateg{'y has' if len(unknown) == 1 else 'ies have'} "
                f"no folder under {self.settings.strategies_dir}: {shown}",
                path=self.settings.config_path,
            )
        return raw, trading

    # -- recovery ---------------------------------------------------------
    def resolve_unfinished(self, config_settings: Mapping[str, Any] | None = None) -> str | None:
        """Look up every intent without an outcome; the reason when one cannot be resolved yet, else None.

        "Not found" is final only ``order_settle_s`` (a venue attribute; 0 for the paper
        exchange) after the intent was journaled: an order whose request timed out may still
        be applied by the exchange a little later, and declaring it never applied too early
        would send it again.
        """
        for intent in self.journal.unfinished():
            if self.settings.dry_run:  # writes nothing: the real run resolves it
                self.report.warn(f"order {intent.client_order_id} {intent.side} {intent.amount} {intent.symbol} "
                                 "has no outcome in the journal yet; a real run looks it up before sending")
                continue
            try:
                venue = self.venue(intent.venue, config_settings)
                found = venue.fetch_order_by_client_id(symbol=intent.symbol, client_order_id=intent.client_order_id)
            except FastoptError as err:
                self.report.error(f"cannot resolve order {intent.client_order_id} ({intent.symbol}): {err}; "
                                  "sending nothing until it is resolved")
                return "unfinished orders could not be looked up"
            if found is None:
                wait_s = _settle_s(venue) - _age_s(intent.record.get("ts"))
                if wait_s > 0:
                    self.report.warn(f"order {intent.client_order_id} {intent.side} {intent.amount} {intent.symbol} "
                                     f"not found yet; it could still be applied late, so nothing is sent for "
                                     f"another {wait_s:.0f} s")
                    return f"an earlier order's outcome settles in {wait_s:.0f} s"
                self.journal.record_outcome(intent.client_order_id, status="not_found", sync=True,
                                            error="looked up after an interruption: the exchange has no such order")
                self.report.warn(f"order {intent.client_order_id} {intent.side} {intent.amount} {intent.symbol} "
                                 "was never applied (resolved on lookup)")
            elif not self._record_result(found, sync=True):
                self.report.warn(f"order {intent.client_order_id} {intent.side} {intent.amount} {intent.symbol} "
                                 f"is still {found.status} on the exchange; nothing is sent until it is final")
                return f"an earlier order is still {found.status}"
            else:
                self.report.warn(f"order {intent.client_order_id} {intent.side} {intent.amount} {intent.symbol} "
                                 f"was applied: {found.status} {found.filled:g} (resolved on lookup)")
        return None

    def _record_result(self, result: OrderResult, *, sync: bool = False) -> bool:
        """Journal a final outcome; False (nothing written, the intent stays unfinished) for an order still
        working (``open``/``partially_filled``): positions may not show it yet, so re-planning now could
        send it again."""
        if result.status in NON_FINAL:
            return False
        self.journal.record_outcome(result.client_order_id, status=result.status, filled=result.filled,
                                    average=result.average, exchange_order_id=result.exchange_order_id, sync=sync)
        return True

    # -- the cycle --------------------------------------------------------
    def run_cycle(self) -> CycleReport:
        """One full cycle (see the module docstring)."""
        started = time.perf_counter()
        s = self.settings
        self.cycle_counter += 1
        now = datetime.now(timezone.utc)
        cycle_id = f"{now.strftime('%Y%m%dT%H%M%S.%f')}-{os.getpid()}-{self.cycle_counter}"

        raw, trading = self.load_config()  # InputError propagates: the caller refuses to trade
        config_settings = trading.exchange_settings
        unresolved = self.resolve_unfinished(config_settings)
        if unresolved is not None:
            return CycleReport("blocked", unresolved)

        weighted = [n for n, w in trading.weights.items() if w > 0]
        states = self.states.read(weighted, now=now)
        targets = compute_targets(trading, states, default_exchange=s.default_exchange)
        gross_limit = trading.account_value * s.max_leverage
        capped, factor = cap_gross(targets.notional, gross_limit=gross_limit)
        if factor < 1.0:
            self.report.warn(f"gross target exposure above account_value x max leverage ({gross_limit:,.0f}); "
                             f"all targets scaled by {factor:.4f}")

        venue_names = sorted({v for v, _ in capped} | {s.default_exchange} | set(trading.exchanges.values()))
        live: dict[tuple[str, str], float] = {}
        prices: dict[tuple[str, str], float] = {}
        markets: dict[tuple[str, str], Market] = {}
        for name in venue_names:
            venue = self.venue(name, config_settings)
            try:
                positions = venue.fetch_positions()
            except VenueError as err:
                return self._read_failed(name, err)
            for symbol, amount in positions.items():
                live[(name, symbol)] = amount
            symbols = sorted({sym for v, sym in capped if v == name} | set(positions))
            try:
                venue_prices = venue.fetch_prices(symbols)
                venue_markets = venue.load_markets(symbols, venue_prices)
            except VenueError as err:
                return self._read_failed(name, err)
            for symbol, price in venue_prices.items():
                prices[(name, symbol)] = price
            for symbol, market in venue_markets.items():
                markets[(name, symbol)] = market
        self._reads_ok()

        plan, target_base = plan_orders(target_notional=capped, live_base=live, prices=prices, markets=markets,
                                        threshold=s.threshold, max_order_notional=s.max_order_usd)
        report = CycleReport("ok", target_notional=capped, live_base=live, plan=plan, states=states)
        contract_sizes = {k: m.contract_size for k, m in markets.items()}
        snapshot = self._snapshot(now, cycle_id, capped, target_base, live, prices, plan, contract_sizes,
                                  targets.contributions, factor, trading)
        if s.dry_run:
            report.status = "dry_run"
            self._print_plan(plan, contract_sizes, prefix="would ")
            self._summary(report, started)
            return report
        write_snapshot(self.folder / SNAPSHOT_NAME, snapshot)
        for skip in plan.skipped:
            self.report.info(f"skip {skip.symbol} on {skip.venue}: {skip.reason} (diff {skip.diff_notional:+,.2f})")
        if self.halted:
            report.status, report.message = "halted", "trading halted; no orders sent"
            self.report.error(f"trading halted: {len(plan.orders)} planned order(s) not sent")
        elif plan.orders and self.stop_file.exists():
            report.status, report.message = "stopped", f"kill switch {self.stop_file} present; no orders sent"
            self.report.warn(f"{report.message} ({len(plan.orders)} planned)")
        elif plan.orders:
            report.results = self._send(plan.orders, cycle_id, contract_sizes, config_settings)
            if any(r["status"] in ("unknown", "not_sent", *NON_FINAL) for r in report.results):
                report.status = "incomplete"
                report.message = "an order outcome was uncertain; positions are re-read before anything else is sent"
        self._summary(report, started)
        return report

    def _read_failed(self, venue: str, err: FastoptError) -> CycleReport:
        self.read_failures += 1
        msg = f"cannot read {venue} ({self.read_failures} consecutive failure(s)): {err}"
        if isinstance(err, AuthenticationError):
            msg += " -- check the API keys in the environment"
        self.report.error(msg)
        if self.read_failures >= self.settings.halt_after and not self.halted:
            self.halted = True
            self.report.error(f"ALERT: halting trading after {self.read_failures} consecutive read failures")
            if self.settings.manual_resume and not self.settings.dry_run:
                atomic_write_json(self.halted_file, {"halted_at": datetime.now(timezone.utc).isoformat(),
                                                     "reason": str(err)})
                self.report.error(f"remove {self.halted_file} to resume trading")
        return CycleReport("halted" if self.halted else "read_failed", msg)

    def _reads_ok(self) -> None:
        self.read_failures = 0
        if self.halted:
            if self.halted_file.exists():
                return
            self.halted = False
            self.report.warn("reads succeed again: trading resumed")

    # -- sending ----------------------------------------------------------
    def _send(self, orders: list[PlannedOrder], cycle_id: str, contract_sizes: Mapping[tuple[str, str], float],
              config_settings: Mapping[str, Any]) -> list[dict[str, Any]]:
        ids: list[str] = []
        for i, o in enumerate(orders):
            cid, salt = client_order_id(cycle_id=cycle_id, order=o, index=i), 0
            while self.journal.known(cid) or cid in ids:  # never reuse an id (clock stepped back, same pid)
                salt += 1
                cid = client_order_id(cycle_id=f"{cycle_id}#{salt}", order=o, index=i)
            ids.append(cid)
        self.journal.record_intents([(cid, o, contract_sizes.get((o.venue, o.symbol), 1.0), cycle_id)
                                     for cid, o in zip(ids, orders)])
        results: list[dict[str, Any]] = []
        stop_reason: str | None = None
        blocked: set[tuple[str, str]] = set()
        for cid, order in zip(ids, orders):
            key = (order.venue, order.symbol)
            base = {"client_order_id": cid, "venue": order.venue, "symbol": order.symbol, "side": order.side,
                    "amount": str(order.amount), "reduce_only": order.reduce_only, "leg": order.leg}
            if stop_reason is None and self.stop_file.exists():
                stop_reason = f"kill switch {self.stop_file} appeared"
            if stop_reason is not None or key in blocked:
                why = stop_reason or "its close leg failed"
                self.journal.record_outcome(cid, status="not_sent", error=why)
                results.append({**base, "status": "not_sent", "error": why})
                continue
            venue = self.venue(order.venue, config_settings)
            try:
                result = venue.create_order(symbol=order.symbol, side=order.side, amount=order.amount,
                                            reduce_only=order.reduce_only, client_order_id=cid)
            except InvalidOrder as err:
                self.journal.record_outcome(cid, status="rejected", error=str(err))
                results.append({**base, "status": "rejected", "error": str(err)})
                self.report.error(f"order {order.side} {order.amount} {order.symbol} rejected: {err}")
                if order.leg == "close":
                    blocked.add(key)
                continue
            except AuthenticationError as err:
                self.journal.record_outcome(cid, status="rejected", error=str(err))
                results.append({**base, "status": "rejected", "error": str(err)})
                self.report.error(f"order {order.symbol} refused (authentication): {err}")
                stop_reason = "authentication failed"
                continue
            except (OrderOutcomeUnknown, VenueError) as err:
                self.report.error(f"order {order.side} {order.amount} {order.symbol}: outcome unknown ({err}); "
                                  "looking it up by client order id")
                stop_reason = "an earlier order's outcome was uncertain"
                results.append({**base, **self._lookup(venue, order, cid)})
                continue
            if self.after_send_hook is not None:
                self.after_send_hook(order, cid)
            self._record_result(result)
            results.append({**base, "status": result.status, "filled": result.filled, "average": result.average})
            avg = f" @ {result.average:,.6g}" if result.average else ""
            self.report.order(f"{order.side.upper()}{' (reduce-only)' if order.reduce_only else ''} {order.amount} "
                              f"{order.symbol} on {order.venue}: {result.status}{avg} [{cid}]")
        # outcomes are flushed, not fsynced: one lost to a power cut is an unfinished
        # intent, resolved by lookup on the next start like any other
        return results

    def _lookup(self, venue: Venue, order: PlannedOrder, cid: str) -> dict[str, Any]:
        try:
            found = venue.fetch_order_by_client_id(symbol=order.symbol, client_order_id=cid)
        except FastoptError as err:
            self.report.error(f"lookup of {cid} failed ({err}); it stays unresolved and blocks sending")
            return {"status": "unknown", "error": str(err)}
        if found is None and _settle_s(venue) > 0:
            self.report.warn(f"order {cid} not found right after the error; it stays unresolved for "
                             f"{_settle_s(venue):g} s (a late fill is still possible) and blocks sending")
            return {"status": "unknown", "error": "not found yet"}
        if found is None:
            self.journal.record_outcome(cid, status="not_found", error="not applied (looked up after an error)")
            self.report.warn(f"order {cid} was not applied (lookup found nothing)")
            return {"status": "not_found"}
        self._record_result(found)
        self.report.warn(f"order {cid} was applied despite the error: {found.status} {found.filled:g}")
        return {"status": found.status, "filled": found.filled, "average": found.average}

    # -- output -----------------------------------------------------------
    def _snapshot(self, now, cycle_id, target, target_base, live, prices, plan, contract_sizes, contributions,
                  factor, trading) -> dict[str, Any]:
        default = self.settings.default_exchange

        def label(key: tuple[str, str]) -> str:
            return key[1] if key[0] == default else f"{key[1]}@{key[0]}"

        target_out = {}
        for key, notional in sorted(target.items()):
            target_out[label(key)] = {
                "exchange": key[0], "symbol": key[1], "notional": _r(notional),
                "amount": _r(target_base.get(key)), "price": prices.get(key),
                "side": "long" if notional > 0 else ("short" if notional < 0 else None),
                "contributors": [{"strategy": n, "position": p, "notional": _r(v)}
                                 for n, p, v in contributions.get(key, [])],
            }
        live_out = {}
        for key, amount in sorted(live.items()):
            price = prices.get(key)
            live_out[label(key)] = {
                "exchange": key[0], "symbol": key[1], "amount": amount, "price": price,
                "notional": None if price is None else _r(amount * price),
                "side": "long" if amount > 0 else "short",
            }
        orders = [{"exchange": o.venue, "symbol": o.symbol, "side": o.side, "amount": str(o.amount),
                   "reduce_only": o.reduce_only, "leg": o.leg, "price": o.price, "capped": o.capped,
                   "notional": _r(o.notional(contract_sizes.get((o.venue, o.symbol), 1.0)))} for o in plan.orders]
        skipped = [{"exchange": k.venue, "symbol": k.symbol, "reason": k.reason, "diff_notional": _r(k.diff_notional)}
                   for k in plan.skipped]
        return {
            "ts": now.isoformat().replace("+00:00", "Z"), "cycle": cycle_id,
            "account_value": trading.account_value, "leverage": trading.leverage,
            "default_exchange": default, "gross_scale": factor, "dry_run": self.settings.dry_run,
            "target": target_out, "live": live_out, "orders": orders, "skipped": skipped,
        }

    def _print_plan(self, plan: Plan, contract_sizes, *, prefix: str = "") -> None:
        for o in plan.orders:
            cs = contract_sizes.get((o.venue, o.symbol), 1.0)
            self.report.order(f"{prefix}{o.side.upper()}{' (reduce-only)' if o.reduce_only else ''} {o.amount} "
                              f"{o.symbol} on {o.venue} ({o.notional(cs):+,.2f}, {o.leg}{', capped' if o.capped else ''})")
        for skip in plan.skipped:
            self.report.info(f"skip {skip.symbol} on {skip.venue}: {skip.reason} (diff {skip.diff_notional:+,.2f})")

    def _summary(self, report: CycleReport, started: float) -> None:
        sent = sum(1 for r in report.results if r.get("status") in ("filled", "partially_filled", "open"))
        gross_t = math.fsum(abs(v) for v in report.target_notional.values())
        self.report.info(
            f"cycle {report.status}: {len(report.target_notional)} target symbol(s) (gross {gross_t:,.2f}), "
            f"{len(report.live_base)} live, {len(report.plan.orders)} planned, {sent} filled, "
            f"{len(report.plan.skipped)} skipped, {1000 * (time.perf_counter() - started):.1f} ms"
        )


def _settle_s(venue: Any) -> float:
    """Seconds after sending before "no such order" is final on this venue (0 when orders are synchronous)."""
    return float(getattr(venue, "order_settle_s", 0.0) or 0.0)


def _age_s(ts: Any) -> float:
    """Seconds since a journal timestamp (ISO 8601, UTC); infinite when missing or unreadable."""
    try:
        then = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return math.inf
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - then).total_seconds()


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 8)


def write_snapshot(path: Path, snapshot: Mapping[str, Any]) -> None:
    """Atomic, compact strict JSON (the C encoder: ~10x faster than indented for 500 strategies)."""
    atomic_write_text(path, json.dumps(snapshot, allow_nan=False, ensure_ascii=False, separators=(",", ":")) + "\n")
