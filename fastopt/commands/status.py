"""`fastopt status`: target vs live per symbol from the reconciler's last snapshot."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastopt.atomic import dumps_json
from fastopt.errors import InputError, NothingToDo

SUMMARY = "Show target vs live positions per symbol from the last reconcile snapshot."

# live = the snapshot's live positions (read before that cycle's orders) + that cycle's
# fills from orders.jsonl, i.e. live after the orders.


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = """examples:
  fastopt status                              # table from last_reconcile.json next to the config
  fastopt status --config live/portfolio_config.json --json
"""
    parser.add_argument("--config", default="portfolio_config.json",
                        help="portfolio config; the snapshot is read next to it (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON on stdout")


def read_snapshot(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NothingToDo("no snapshot yet (run `fastopt reconcile` first)", path=path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable snapshot: {exc}", path=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("target"), dict) or not isinstance(data.get("live"), dict):
        raise InputError("not a reconcile snapshot (needs 'target' and 'live' objects)", path=path)
    return data


def fills_of_cycle(journal: Path, snapshot: dict[str, Any], *, tail_bytes: int = 4 << 20) -> dict[str, float]:
    """Signed base amounts filled by the snapshot's cycle, per snapshot key, from the journal's tail.

    The snapshot's ``live`` is read before the orders; adding these fills gives live after them.
    """
    cycle = snapshot.get("cycle")
    if not cycle or not journal.is_file():
        return {}
    with open(journal, "rb") as handle:
        handle.seek(0, 2)
        handle.seek(max(0, handle.tell() - tail_bytes))
        lines = handle.read().splitlines()
    default = snapshot.get("default_exchange")
    intents: dict[str, dict[str, Any]] = {}
    filled: dict[str, float] = {}
    for raw in lines:
        try:
            rec = json.loads(raw)
        except ValueError:
            continue  # a torn line (or the first, cut by the tail window)
        if not isinstance(rec, dict):
            continue
        if rec.get("event") == "intent" and rec.get("cycle") == cycle:
            intents[str(rec.get("client_order_id"))] = rec
        elif rec.get("event") == "outcome" and str(rec.get("client_order_id")) in intents:
            intent = intents[str(rec["client_order_id"])]
            amount = float(rec.get("filled") or 0.0) * float(intent.get("contract_size") or 1.0)
            symbol, venue = str(intent.get("symbol")), intent.get("venue")
            key = symbol if venue == default else f"{symbol}@{venue}"
            filled[key] = filled.get(key, 0.0) + (amount if intent.get("side") == "buy" else -amount)
    return filled


def status_rows(snapshot: dict[str, Any], fills: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """One row per symbol: target and live amounts/notionals and the gap (account currency).

    ``live`` is the snapshot's live position plus the cycle's ``fills`` (live after the orders).
    """
    rows = []
    fills = fills or {}
    target, live = snapshot["target"], snapshot["live"]
    for key in sorted(set(target) | set(live) | set(fills)):
        t = target.get(key) or {}
        lv = live.get(key) or {}
        price = t.get("price") or lv.get("price")
        t_amount = float(t.get("amount") or 0.0)
        l_amount = float(lv.get("amount") or 0.0) + fills.get(key, 0.0)
        t_notional = float(t.get("notional") or 0.0)
        l_notional = l_amount * price if price else float(lv.get("notional") or 0.0)
        rows.append({
            "symbol": key, "exchange": t.get("exchange") or lv.get("exchange") or key.partition("@")[2] or None,
            "price": price,
            "target_amount": t_amount, "live_amount": l_amount, "target_notional": round(t_notional, 2),
            "live_notional": round(l_notional, 2), "gap_notional": round(t_notional - l_notional, 2),
        })
    return rows


def run(args: argparse.Namespace) -> int:
    path = Path(args.config).resolve().parent / "last_reconcile.json"
    snapshot = read_snapshot(path)
    rows = status_rows(snapshot, fills_of_cycle(path.parent / "orders.jsonl", snapshot))
    if args.json:
        sys.stdout.write(dumps_json({"ts": snapshot.get("ts"), "snapshot": str(path), "rows": rows,
                                     "orders": snapshot.get("orders", []), "skipped": snapshot.get("skipped", []),
                                     "results": snapshot.get("results", [])}))
        return 0
    from rich.console import Console
    from rich.table import Table

    age = ""
    try:
        ts = datetime.fromisoformat(str(snapshot.get("ts")).replace("Z", "+00:00"))
        age = f" ({(datetime.now(timezone.utc) - ts).total_seconds() / 60:.1f} min ago)"
    except ValueError:
        pass
    table = Table(title=f"last reconcile {snapshot.get('ts')}{age}")
    for col in ("symbol", "exchange", "price", "target", "live", "target $", "live $", "gap $"):
        table.add_column(col, justify="left" if col in ("symbol", "exchange") else "right")
    for r in rows:
        table.add_row(r["symbol"], str(r["exchange"]), f"{r['price']:,.6g}" if r["price"] else "-",
                      f"{r['target_amount']:.6g}", f"{r['live_amount']:.6g}", f"{r['target_notional']:,.2f}",
                      f"{r['live_notional']:,.2f}", f"{r['gap_notional']:+,.2f}")
    Console(width=None if sys.stdout.isatty() else 140).print(table)  # pipes/logs: no truncated columns
    orders = snapshot.get("orders", [])
    results = snapshot.get("results")
    print(f"{len(orders)} order(s) planned, {len(snapshot.get('skipped', []))} skipped"
          + (f", results: {', '.join(r.get('status', '?') for r in results)}" if results else ""))
    return 0
