"""Is it running, is it trading, am I on target, what is my PnL: :func:`collect_status`.

One function gathers everything `fastopt status` shows (and a dashboard can show) from the
files next to the config, read-only, without a lock and without any network call:

* ``reconciler.heartbeat`` (touched every poll of the loop, and at the end of a ``--once`` run): its age;
* the run lock: whether a reconciler holds it. **How**: on Linux ``/proc/locks`` is read for an
  ``FLOCK WRITE`` on the config folder's device and inode (exactly the lock
  :mod:`reconciler.runlock` takes). That never touches the lock itself: probing it with
  ``flock(LOCK_SH | LOCK_NB)`` would, for a few microseconds, make a reconciler starting at
  that instant refuse to start. Where ``/proc/locks`` is unavailable, the pid in
  ``reconciler.lock`` is checked with ``kill(pid, 0)`` (``method`` says which was used);
* ``STOP`` and ``HALTED``; the unfinished intents of ``orders.jsonl`` (read-only journal);
* ``last_cycle.json`` (written by the engine at the end of every non-dry-run cycle): time, status,
  message, problems, orders planned and sent, by outcome, equity per venue;
* ``last_reconcile.json``: per symbol target vs live (live after that cycle's fills), its age;
* equity and PnL: the paper book (``paper_exchange.sqlite``: cash + positions x the last prices of
  the snapshot, against its starting cash, rebuilt from the fills) or, for a real venue, the equity
  read by the last cycle against the config's ``account_value``;
* the config's age and each weighted strategy's ``state.json`` age (``updated_at``, else mtime).

Unhealthy (``healthy`` False, each reason one line in ``problems``): no or stale heartbeat, no or
stale last cycle, stale snapshot (all beyond ``stale_after_s``), HALTED, STOP, unfinished intents,
a damaged journal, a last cycle that did not end ``ok`` or had problems or rejections. ``warnings``
(stale states, no lock holder, unreadable paper book) do not change ``healthy``.
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastopt.files.config import read_config
from fastopt.errors import FastoptError
from reconciler.engine import HALTED_NAME, JOURNAL_NAME, LAST_CYCLE_NAME, PAPER_DB_NAME, SNAPSHOT_NAME, STOP_NAME
from reconciler.loop import HEARTBEAT_NAME
from reconciler.runlock import LOCK_NAME

#: exit code of `fastopt status` when the setup is unhealthy
EXIT_UNHEALTHY = 4
#: default seconds after which the heartbeat, the last cycle and the snapshot count as stale
DEFAULT_STALE_AFTER_S = 120.0
#: default hours after which a strategy's state.json is reported (a warning; the reconciler's --stale-after)
DEFAULT_STATE_STALE_AFTER_H = 6.0


def human_age(seconds: float | None) -> str:
    """``"12 s ago"``, ``"4.3 min ago"``, ``"2.0 h ago"``, ``"4.3 d ago"``; ``"never"`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "never"
    if seconds < 0:
        return f"in {human_age(-seconds)[:-4]}"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} d ago"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_ts(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _mtime_age(path: Path, now: datetime) -> float | None:
    try:
        return now.timestamp() - os.stat(path).st_mtime
    except OSError:
        return None


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(data, None), (None, None) when absent, or (None, why) when unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"{path.name} unreadable: {exc}"


def lock_holder(folder: Path) -> dict[str, Any]:
    """``{"held": bool | None, "pid": int | None, "method": "proc_locks" | "pid_file", "info": {...}}``.

    ``held`` None: unknown (neither method could tell). See the module docstring for the method.
    ``info``: the content of ``reconciler.lock`` (pid, host, start time, command), for people only.
    """
    info, _ = _read_json(folder / LOCK_NAME)
    info = info if isinstance(info, dict) else {}
    file_pid = info.get("pid") if isinstance(info.get("pid"), int) and not isinstance(info.get("pid"), bool) else None
    try:
        st = os.stat(folder)
        want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        lines = None
    if lines is not None:
        for line in lines:
            parts = line.split()
            # "1: FLOCK  ADVISORY  WRITE 26291 fe:00:2163290 0 EOF" (blocked waiters carry "->" first)
            if len(parts) >= 6 and parts[1] == "FLOCK" and parts[3] == "WRITE" and parts[5] == want:
                pid = int(parts[4]) if parts[4].isdigit() and int(parts[4]) > 0 else file_pid
                return {"held": True, "pid": pid, "method": "proc_locks", "info": info}
        return {"held": False, "pid": None, "method": "proc_locks", "info": info}
    if file_pid is None:
        return {"held": None, "pid": None, "method": "pid_file", "info": info}
    try:
        os.kill(file_pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    except PermissionError:
        alive = True  # exists, owned by someone else
    return {"held": alive, "pid": file_pid if alive else None, "method": "pid_file", "info": info}


def unfinished_intents(folder: Path, now: datetime) -> tuple[list[dict[str, Any]], str | None]:
    """The journal's intents without an outcome (read-only), or the reason the journal cannot be read."""
    from reconciler.journal import OrderJournal

    path = folder / JOURNAL_NAME
    if not path.exists():
        return [], None
    try:
        journal = OrderJournal(path, read_only=True, warn=lambda line: None)
    except FastoptError as err:
        return [], str(err)
    out = []
    for intent in journal.unfinished():
        ts = _parse_ts(intent.record.get("ts"))
        out.append({"client_order_id": intent.client_order_id, "venue": intent.venue, "symbol": intent.symbol,
                    "side": intent.side, "amount": intent.amount, "ts": intent.record.get("ts"),
                    "age_s": None if ts is None else (now - ts).total_seconds()})
    for cid in journal.unresolved_ids:
        out.append({"client_order_id": cid, "venue": None, "symbol": None, "side": None, "amount": None,
                    "ts": None, "age_s": None, "note": "left by a journal repair: cannot be looked up"})
    return out, None


def _snapshot_prices(snapshot: dict[str, Any]) -> dict[str, float]:
    """Last known price per paper symbol from the snapshot (target/live prices, then observed prices)."""
    prices: dict[str, float] = {}
    for venue, symbol, price in (snapshot.get("observed_prices") or []):
        if venue == "paper" and isinstance(price, (int, float)) and price > 0:
            prices[str(symbol)] = float(price)
    for section in ("live", "target"):
        for entry in (snapshot.get(section) or {}).values():
            if isinstance(entry, dict) and entry.get("exchange") == "paper" \
                    and isinstance(entry.get("price"), (int, float)) and entry["price"] > 0:
                prices[str(entry.get("symbol"))] = float(entry["price"])
    return prices


def paper_equity(db_path: Path, prices: dict[str, float]) -> dict[str, Any]:
    """Paper account from its database, read-only: ``{"equity", "start", "pnl", "pnl_pct", "cash",
    "positions", "fills", "unpriced"}`` in account currency. ``start`` (the starting cash) is rebuilt from
    the fills: cash now + sum(signed notional) + fees. ``equity`` None when a held symbol has no price."""
    uri = f"{db_path.resolve().as_uri()}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=1.0)
    try:
        cash = float(db.execute("SELECT value FROM meta WHERE key = 'cash'").fetchone()[0])
        positions = {s: float(a) for s, a in db.execute("SELECT symbol, amount FROM positions") if float(a) != 0}
        flow, fees, fills = 0.0, 0.0, 0
        for side, amount, price, fee in db.execute("SELECT side, amount, price, fee FROM fills"):
            flow += (1.0 if side == "buy" else -1.0) * float(amount) * float(price)
            fees += float(fee)
            fills += 1
    finally:
        db.close()
    start = cash + flow + fees
    unpriced = sorted(s for s in positions if s not in prices)
    equity = None if unpriced else cash + math.fsum(a * prices[s] for s, a in positions.items())
    pnl = None if equity is None else equity - start
    return {"source": "paper_exchange.sqlite", "equity": equity, "start": start, "pnl": pnl,
            "pnl_pct": None if pnl is None or start <= 0 else 100.0 * pnl / start, "cash": cash,
            "positions": positions, "fills": fills, "fees": fees, "unpriced": unpriced}


def _state_ages(config: dict[str, Any], strategies_dir: Path, now: datetime) -> list[dict[str, Any]]:
    weights = config.get("weights") if isinstance(config.get("weights"), dict) else {}
    out = []
    for name, weight in sorted(weights.items()):
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
            continue
        path = strategies_dir / str(name) / "state.json"
        data, why = _read_json(path)
        stamp = _parse_ts(data.get("updated_at")) if isinstance(data, dict) and data.get("updated_at") else None
        age = (now - stamp).total_seconds() if stamp is not None else _mtime_age(path, now)
        out.append({"strategy": str(name), "weight": float(weight), "path": str(path),
                    "exists": path.exists(), "age_s": age, "error": why})
    return out


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


def collect_status(config_path: str | os.PathLike[str], *, now: datetime | None = None,
                   stale_after_s: float = DEFAULT_STALE_AFTER_S, strategies_dir: str | os.PathLike[str] | None = None,
                   state_stale_after_s: float = DEFAULT_STATE_STALE_AFTER_H * 3600.0) -> dict[str, Any]:
    """Everything `fastopt status` shows, as one JSON-able dict (see the module docstring).

    Units: ages in seconds (``*_age_s``, None when the file is absent), money in the account currency.
    ``now``: the moment ages are measured from (default: the current UTC time); ``stale_after_s``:
    seconds after which the heartbeat, the last cycle and the snapshot are stale; ``strategies_dir``:
    default ``strategies`` next to the config; ``state_stale_after_s``: a state older than this is a warning.

    Keys: ``ts``, ``healthy``, ``problems``, ``warnings``, ``config`` (path, age_s, account_value, error),
    ``folder``, ``heartbeat`` (path, age_s), ``lock`` (:func:`lock_holder`), ``stop`` (bool), ``halted``
    (present, details), ``unresolved_intents`` (list), ``journal_error``, ``last_cycle`` (the file plus
    ``age_s``, or None), ``snapshot`` (path, ts, age_s, or None), ``rows`` (per symbol target vs live),
    ``orders``/``skipped`` (of the snapshot), ``equity`` (``by_venue``: venue -> {source, equity, start,
    pnl, pnl_pct, ...}; ``total``), ``states`` (strategy, weight, path, exists, age_s, error),
    ``stale_after_s``.
    """
    now = now or datetime.now(timezone.utc)
    config_path = Path(config_path)
    folder = config_path.resolve().parent
    strategies = Path(strategies_dir) if strategies_dir is not None else folder / "strategies"
    problems: list[str] = []
    warnings: list[str] = []

    try:
        config = read_config(config_path)
        config_error = None
    except FastoptError as err:
        config, config_error = {}, err.reason
        problems.append(f"config: {err.reason}")
    account_value = config.get("account_value")
    account_value = float(account_value) if isinstance(account_value, (int, float)) and \
        not isinstance(account_value, bool) else None

    heartbeat_age = _mtime_age(folder / HEARTBEAT_NAME, now)
    if heartbeat_age is None:
        problems.append("no heartbeat: the reconciler has never run here (reconciler.heartbeat missing)")
    elif heartbeat_age > stale_after_s:
        problems.append(f"heartbeat stale: last {human_age(heartbeat_age)} (limit {stale_after_s:g} s): "
                        "is the reconciler running?")

    lock = lock_holder(folder)
    if lock["held"] is False and heartbeat_age is not None and heartbeat_age <= stale_after_s:
        warnings.append("no reconciler holds the run lock (fine for cron --once runs)")

    stop = (folder / STOP_NAME).exists()
    if stop:
        problems.append(f"kill switch: {folder / STOP_NAME} exists, no order is sent (delete it to trade)")
    halted_data, _ = _read_json(folder / HALTED_NAME)
    halted_present = (folder / HALTED_NAME).exists()
    if halted_present:
        reason = halted_data.get("reason") if isinstance(halted_data, dict) else None
        problems.append(f"HALTED: trading halted{f' ({reason})' if reason else ''}; delete {folder / HALTED_NAME} "
                        "to resume")

    intents, journal_error = unfinished_intents(folder, now)
    if journal_error:
        problems.append(f"journal: {journal_error}")
    if intents:
        shown = ", ".join(f"{i['client_order_id']} ({i['side']} {i['amount']} {i['symbol']} on {i['venue']})"
                          for i in intents[:3])
        problems.append(f"{len(intents)} unresolved order intent(s): {shown}{' ...' if len(intents) > 3 else ''}")

    last_cycle, why = _read_json(folder / LAST_CYCLE_NAME)
    if why:
        problems.append(why)
    if isinstance(last_cycle, dict):
        ts = _parse_ts(last_cycle.get("ts"))
        last_cycle["age_s"] = None if ts is None else (now - ts).total_seconds()
        status = last_cycle.get("status")
        counts = last_cycle.get("counts") if isinstance(last_cycle.get("counts"), dict) else {}
        if last_cycle["age_s"] is None or last_cycle["age_s"] > stale_after_s:
            problems.append(f"last cycle stale: {human_age(last_cycle['age_s'])} (limit {stale_after_s:g} s)")
        if counts.get("rejected"):
            problems.append(f"last cycle: {counts['rejected']} order(s) rejected")
        message = last_cycle.get("message") or ""
        listed = [p for p in (last_cycle.get("problems") or []) if p != message]
        if status not in ("ok", "dry_run", "degraded") or (status == "degraded" and not listed):
            problems.append(f"last cycle {status}: {message or 'no message'}")
        problems.extend(f"last cycle: {p}" for p in listed[:10])
        if len(listed) > 10:
            problems.append(f"last cycle: ... and {len(listed) - 10} more problem(s)")
    elif last_cycle is None and not why:
        problems.append("no cycle recorded yet (last_cycle.json missing)")
        last_cycle = None

    snapshot_path = folder / SNAPSHOT_NAME
    snapshot, why = _read_json(snapshot_path)
    if why:
        problems.append(why)
    rows: list[dict[str, Any]] = []
    snapshot_info = None
    if isinstance(snapshot, dict) and isinstance(snapshot.get("target"), dict) \
            and isinstance(snapshot.get("live"), dict):
        ts = _parse_ts(snapshot.get("ts"))
        age = None if ts is None else (now - ts).total_seconds()
        snapshot_info = {"path": str(snapshot_path), "ts": snapshot.get("ts"), "age_s": age}
        if age is None or age > stale_after_s:
            problems.append(f"snapshot stale: targets vs live are from {human_age(age)} (limit {stale_after_s:g} s)")
        try:
            rows = status_rows(snapshot, fills_of_cycle(folder / JOURNAL_NAME, snapshot))
        except (OSError, ValueError, TypeError) as exc:
            problems.append(f"snapshot rows unreadable: {exc}")
    else:
        snapshot = None

    by_venue: dict[str, dict[str, Any]] = {}
    if (folder / PAPER_DB_NAME).exists():
        try:
            by_venue["paper"] = paper_equity(folder / PAPER_DB_NAME, _snapshot_prices(snapshot or {}))
        except (sqlite3.Error, OSError, TypeError, ValueError) as exc:
            warnings.append(f"paper book unreadable: {exc}")
    cycle_equity = ((last_cycle or {}).get("equity") or {}).get("by_venue") or {}
    for venue, value in sorted(cycle_equity.items()):
        if venue in by_venue or not isinstance(value, (int, float)):
            continue
        by_venue[venue] = {"source": "last_cycle.json", "equity": float(value), "start": None, "pnl": None,
                           "pnl_pct": None}
    values = [v.get("equity") for v in by_venue.values()]
    total = math.fsum(values) if values and all(isinstance(v, (int, float)) for v in values) else None
    equity: dict[str, Any] = {"by_venue": by_venue, "total": total, "account_value": account_value,
                              "pnl_vs_account_value": None if total is None or account_value is None
                              else total - account_value}

    states = _state_ages(config, strategies, now)
    for state in states:
        if not state["exists"]:
            warnings.append(f"strategy {state['strategy']}: no state.json (counts as flat)")
        elif state["error"]:
            warnings.append(f"strategy {state['strategy']}: {state['error']}")
        elif state["age_s"] is not None and state["age_s"] > state_stale_after_s:
            warnings.append(f"strategy {state['strategy']}: state.json written {human_age(state['age_s'])} "
                            f"(limit {state_stale_after_s / 3600:g} h)")

    return {
        "ts": _iso(now), "healthy": not problems, "problems": problems, "warnings": warnings,
        "stale_after_s": stale_after_s, "folder": str(folder),
        "config": {"path": str(config_path), "age_s": _mtime_age(config_path, now), "account_value": account_value,
                   "leverage": config.get("leverage"), "error": config_error},
        "heartbeat": {"path": str(folder / HEARTBEAT_NAME), "age_s": heartbeat_age},
        "lock": lock, "stop": stop,
        "halted": {"present": halted_present, "details": halted_data if isinstance(halted_data, dict) else None},
        "unresolved_intents": intents, "journal_error": journal_error,
        "last_cycle": last_cycle, "snapshot": snapshot_info, "rows": rows,
        "orders": (snapshot or {}).get("orders", []), "skipped": (snapshot or {}).get("skipped", []),
        "equity": equity, "states": states,
    }
