"""`orders.jsonl`: the append-only order journal that makes orders exactly-once.

Every order *intent* is appended (and fsynced) with its deterministic client
order id before the order is sent; its *outcome* is appended after. An intent
without an outcome is "unfinished": the process died or lost the answer
between the two, and the order must be looked up by client order id before
anything else is sent.

Line format (one JSON object per line)::

    {"event": "intent", "ts": ..., "client_order_id": "fo-...", "venue": "paper",
     "symbol": "BTC/USDT:USDT", "side": "buy", "amount": "0.012", "reduce_only": false,
     "leg": "open", "price": 95000.0, "action": "BUY", "signed_diff": 1140.0, "cycle": "..."}
    {"event": "outcome", "ts": ..., "client_order_id": "fo-...", "status": "filled",
     "filled": 0.012, "average": 95010.0, "exchange_order_id": "123", "error": null}

``status`` of an outcome: an exchange status (filled, partially_filled, open,
canceled, rejected), ``not_found`` (looked up after a crash or lost answer and
the exchange has no such order: it was never applied) or ``not_sent`` (the
cycle stopped before sending it). A torn last line (crash mid-append) is ignored.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reconciler.model import PlannedOrder


def client_order_id(*, cycle_id: str, order: PlannedOrder, index: int) -> str:
    """Deterministic client order id (<= 36 chars of [A-Za-z0-9-], valid on Binance/Bybit/OKX)."""
    basis = f"{cycle_id}|{index}|{order.venue}|{order.symbol}|{order.side}|{order.amount}|{order.leg}"
    return "fo" + hashlib.sha256(basis.encode()).hexdigest()[:30]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Intent:
    client_order_id: str
    venue: str
    symbol: str
    side: str
    amount: str
    reduce_only: bool
    record: dict[str, Any]


class OrderJournal:
    """Append-only journal file; keeps the set of unfinished intents in memory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._pending: dict[str, Intent] = {}
        self._seen: set[str] = set()
        self._handle = None
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as handle:
            for raw in handle:
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue  # torn last line of a crash mid-append
                if not isinstance(rec, dict) or "client_order_id" not in rec:
                    continue
                cid = str(rec["client_order_id"])
                if rec.get("event") == "intent":
                    self._seen.add(cid)
                    self._pending[cid] = _intent_from(rec)
                elif rec.get("event") == "outcome":
                    self._pending.pop(cid, None)

    def unfinished(self) -> list[Intent]:
        """Intents with no outcome yet, oldest first."""
        return list(self._pending.values())

    def known(self, cid: str) -> bool:
        return cid in self._seen

    def _append(self, records: list[dict[str, Any]], *, sync: bool) -> None:
        data = "".join(json.dumps(r, allow_nan=False, separators=(",", ":")) + "\n" for r in records)
        new_file = False
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new_file = not self.path.exists()
            self._handle = open(self.path, "ab")
        self._handle.write(data.encode("utf-8"))
        self._handle.flush()  # in the OS after every record: survives a process crash
        if sync:
            os.fsync(self._handle.fileno())  # on disk: survives a power cut
        if new_file:  # the file's directory entry too, or a power cut can lose the whole new journal
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def record_intents(self, items: list[tuple[str, PlannedOrder, float, str]]) -> None:
        """Durably append intents ``(client_order_id, order, contract_size, cycle_id)`` (one fsync)."""
        records = []
        for cid, order, contract_size, cycle_id in items:
            rec = {
                "event": "intent",
                "ts": _now(),
                "client_order_id": cid,
                "venue": order.venue,
                "symbol": order.symbol,
                "side": order.side,
                "amount": str(order.amount),
                "reduce_only": order.reduce_only,
                "leg": order.leg,
                "price": order.price,
                "action": order.side.upper(),
                "signed_diff": round(order.notional(contract_size), 8),
                "contract_size": contract_size,
                "cycle": cycle_id,
            }
            records.append(rec)
        self._append(records, sync=True)
        for rec in records:
            self._seen.add(rec["client_order_id"])
            self._pending[rec["client_order_id"]] = _intent_from(rec)

    def record_outcome(
        self,
        cid: str,
        *,
        status: str,
        filled: float = 0.0,
        average: float | None = None,
        exchange_order_id: str | None = None,
        error: str | None = None,
        sync: bool = False,
    ) -> None:
        """Append the outcome of an intent (flushed; fsynced with ``sync``)."""
        rec = {
            "event": "outcome",
            "ts": _now(),
            "client_order_id": cid,
            "status": status,
            "filled": filled,
            "average": average,
            "exchange_order_id": exchange_order_id,
            "error": error,
        }
        self._append([rec], sync=sync)
        self._pending.pop(cid, None)


def _intent_from(rec: dict[str, Any]) -> Intent:
    return Intent(
        client_order_id=str(rec["client_order_id"]),
        venue=str(rec.get("venue", "")),
        symbol=str(rec.get("symbol", "")),
        side=str(rec.get("side", "")),
        amount=str(rec.get("amount", "0")),
        reduce_only=bool(rec.get("reduce_only", False)),
        record=rec,
    )
