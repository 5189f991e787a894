"""Mechanics of ``tests/test_reconciler_chaos.py``: timestamped fake logs, the history of the state
files, journal tampering (torn tails, truncation, mid-file damage) and the ledger checks that define
"no duplicate fill".

Nothing here knows the reconciler's internals beyond its file formats (``orders.jsonl``, the state
files, the cycle id's leading UTC timestamp) and the targets' arithmetic (account_value x leverage x
weight x position, netted per symbol with ``math.fsum``, divided by the mark price): the checks judge
the reconciler from the outside, by what the (fake) exchange shows.
"""
from __future__ import annotations

import gzip
import itertools
import json
import math
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

JOURNAL = "orders.jsonl"
ARCHIVE_DIR = "orders.archive"
ORDER_PATH = ("POST", "/fapi/v1/order")


# -- the fake's logs, with times ------------------------------------------------

class TimedList(list):
    """A list whose ``append`` also records the wall time (``times[i]`` for item i).

    The fake appends to ``fills`` and ``requests_full`` under its lock, so order and times agree.
    """

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: Any) -> None:  # noqa: D102 - list API
        self.times.append(time.time())
        super().append(item)


def instrument(fake: Any) -> None:
    """Give a fresh FakeBinance timestamped ``fills`` and ``requests_full`` (receipt / apply times)."""
    with fake.lock:
        assert not fake.fills and not fake.requests_full, "instrument a fresh fake"
        fake.fills = TimedList()
        fake.requests_full = TimedList()


def base_of(exchange_symbol: str) -> str:
    """``BTCUSDT`` -> ``BTC``."""
    return exchange_symbol[:-4] if exchange_symbol.endswith("USDT") else exchange_symbol


def unified_base(symbol: str) -> str:
    """``BTC/USDT:USDT`` -> ``BTC``."""
    return symbol.split("/", 1)[0]


# -- state files and the targets they imply ------------------------------------------

@dataclass
class StateVersion:
    written_from: float  # wall time just before os.replace
    written_by: float  # wall time just after os.replace
    state: dict[str, Any]


class StateHistory:
    """Every version of every ``strategies/<name>/state.json`` this test wrote, with when.

    Writes are atomic (temp file + ``os.replace``), so a reader sees one whole version of each
    file. Version i of a file may have been read at any time in
    ``[written_from(i), written_by(i + 1)]``.
    """

    def __init__(self, strategies_dir: Path, *, weights: Mapping[str, float], scale: float,
                 prices: Mapping[str, float]) -> None:
        self.dir = strategies_dir
        self.weights = dict(weights)
        self.scale = scale
        self.prices = dict(prices)  # base -> mark price (constant on the fake)
        self.versions: dict[str, list[StateVersion]] = defaultdict(list)
        self.writes = 0

    def write(self, name: str, state: dict[str, Any]) -> None:
        path = self.dir / name / "state.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".state.json.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        before = time.time()
        os.replace(tmp, path)
        after = time.time()
        self.versions[name].append(StateVersion(before, after, state))
        self.writes += 1

    def current(self) -> dict[str, dict[str, Any]]:
        return {name: versions[-1].state for name, versions in self.versions.items()}

    def versions_between(self, start: float, end: float) -> dict[str, list[dict[str, Any]]]:
        """Per strategy, every version that may have been read at some time in ``[start, end]``."""
        out: dict[str, list[dict[str, Any]]] = {}
        for name, versions in self.versions.items():
            keep = []
            for i, v in enumerate(versions):
                until = versions[i + 1].written_by if i + 1 < len(versions) else math.inf
                if v.written_from <= end and until >= start:
                    keep.append(v.state)
            out[name] = keep or [versions[0].state]
        return out

    def targets(self, states: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
        """Target positions (base units) per base asset, as the reconciler computes them."""
        parts: dict[str, list[float]] = defaultdict(list)
        for name, weight in self.weights.items():
            state = states.get(name)
            if state is None or weight == 0.0:
                continue
            positions = state.get("positions") or {state["symbol"]: state["position"]}
            for symbol, position in positions.items():
                parts[unified_base(symbol)].append(self.scale * weight * position)
        return {base: math.fsum(amounts) / self.prices[base] for base, amounts in parts.items()}

    def target_candidates(self, start: float, end: float) -> dict[str, set[float]]:
        """Per base asset, every target a cycle reading the states during ``[start, end]`` may have computed
        (any combination of the versions each file had then)."""
        per_file = self.versions_between(start, end)
        names = sorted(per_file)
        out: dict[str, set[float]] = defaultdict(set)
        for combo in itertools.product(*(per_file[n] for n in names)):
            for base, target in self.targets(dict(zip(names, combo))).items():
                out[base].add(target)
        return out


# -- the journal ------------------------------------------------------------------

def parse_lines(data: bytes) -> list[dict[str, Any]]:
    """Valid JSON objects among the complete lines of ``data`` (damage and a torn tail skipped)."""
    out = []
    for raw in data.split(b"\n")[:-1]:
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def count_complete_intents(path: Path) -> int:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    return data[: data.rfind(b"\n") + 1].count(b'"event":"intent"')


def iso_to_epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cycle_start(cycle: str) -> float | None:
    """Wall time a cycle started, from its id ``YYYYmmddTHHMMSS.ffffff-<pid>-<n>[#salt]`` (UTC)."""
    try:
        stamp = cycle.split("-", 1)[0]
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=timezone.utc).timestamp()
    except (ValueError, AttributeError):
        return None


@dataclass
class Ledger:
    """Every journal record this test ever saw, whichever file it was in at the time.

    ``absorb`` is called after every process and before every tampering, so records that a tampering
    later removes (a truncated outcome, a damaged line) stay known.
    """

    intents: dict[str, dict[str, Any]] = field(default_factory=dict)  # cid -> first full intent seen
    outcomes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    _seen_outcomes: set[bytes] = field(default_factory=set)
    torn_ids: set[str] = field(default_factory=set)  # client ids mentioned in torn-tail files

    def absorb(self, folder: Path) -> None:
        paths = [folder / JOURNAL, *sorted(folder.glob(f"{JOURNAL}.damaged-*"))]
        blobs = []
        for path in paths:
            try:
                blobs.append(path.read_bytes())
            except FileNotFoundError:
                continue
        for path in sorted((folder / ARCHIVE_DIR).glob("*.jsonl.gz")):  # compaction (not reached here)
            blobs.append(gzip.decompress(path.read_bytes()))
        for data in blobs:
            for rec in parse_lines(data):
                cid = rec.get("client_order_id")
                if not isinstance(cid, str):
                    continue
                if rec.get("event") == "intent" and not rec.get("salvaged") and cid not in self.intents:
                    self.intents[cid] = rec
                elif rec.get("event") == "outcome":
                    key = json.dumps(rec, sort_keys=True).encode()
                    if key not in self._seen_outcomes:
                        self._seen_outcomes.add(key)
                        self.outcomes[cid].append(rec)
        for path in folder.glob(f"{JOURNAL}.torn-*"):
            text = path.read_bytes().decode("utf-8", "replace")
            for part in text.split('"client_order_id":"')[1:]:
                self.torn_ids.add(part.split('"', 1)[0])


# -- tampering ----------------------------------------------------------------------

def torn_intent_fragment(rng: random.Random, symbols: list[str]) -> tuple[bytes, str]:
    """The first bytes of an intent record cut short (a crash in the middle of its append): never sent."""
    cid = "fo" + "".join(rng.choice("0123456789abcdef") for _ in range(30))
    rec = {"event": "intent", "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
           .replace("+00:00", "Z"), "client_order_id": cid, "venue": "binanceusdm", "symbol": rng.choice(symbols),
           "side": rng.choice(["buy", "sell"]), "amount": "0.123", "reduce_only": False, "leg": "open",
           "price": 95000.0, "action": "BUY", "signed_diff": 1.0, "contract_size": 1.0, "cycle": "torn"}
    line = json.dumps(rec, separators=(",", ":")).encode()
    return line[: rng.randint(8, len(line) - 2)], cid


def torn_outcome_fragment(rng: random.Random, folder: Path) -> bytes | None:
    """The first bytes of an outcome of the journal's last intent, cut short (the intent stays unfinished)."""
    records = parse_lines((folder / JOURNAL).read_bytes()) if (folder / JOURNAL).exists() else []
    intents = [r for r in records if r.get("event") == "intent"]
    if not intents:
        return None
    cid = intents[-1]["client_order_id"]
    rec = {"event": "outcome", "ts": "2030-01-01T00:00:00.000Z", "client_order_id": cid, "status": "filled",
           "filled": 1.0, "average": 1.0, "exchange_order_id": "1", "error": None}
    line = json.dumps(rec, separators=(",", ":")).encode()
    return line[: rng.randint(8, len(line) - 2)]


def append_raw(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def truncate_after_last_intent(rng: random.Random, path: Path) -> str | None:
    """Cut the journal mid-line somewhere after its last intent (what a power cut can lose: outcomes are
    written without fsync, and every intent is fsynced, which also flushes what was written before it).
    None when the last line is an intent (nothing after it may be lost)."""
    if not path.exists():
        return None
    data = path.read_bytes()
    start = data.rfind(b'{"event":"intent"')
    if start < 0:
        return None
    start = data.index(b"\n", start) + 1  # just after the last intent line
    if start >= len(data):
        return None
    newlines = {i + 1 for i, b in enumerate(data) if b == 0x0A}
    cuts = [i for i in range(start + 1, len(data)) if i not in newlines]
    if not cuts:
        return None
    cut = rng.choice(cuts)
    with open(path, "r+b") as handle:
        handle.truncate(cut)
        os.fsync(handle.fileno())
    return f"cut at byte {cut} of {len(data)} ({len(data) - cut} bytes of outcomes lost)"


def damage_mid_file(rng: random.Random, path: Path) -> str | None:
    """Damage one outcome line that is not the last line (a bad block): half of it overwritten with NULs,
    or the line cut short (newline kept). The reconciler must refuse to load it (exit 2)."""
    data = path.read_bytes()
    lines = data.split(b"\n")[:-1]
    candidates = [i for i, raw in enumerate(lines[:-1]) if b'"event":"outcome"' in raw]
    if not candidates:
        candidates = list(range(len(lines) - 1))
    if not candidates:
        return None
    i = rng.choice(candidates)
    raw = lines[i]
    if rng.random() < 0.5:
        a = rng.randint(1, max(1, len(raw) // 2))
        lines[i] = raw[:a] + b"\x00" * (len(raw) - a)
        how = f"NUL bytes from byte {a}"
    else:
        lines[i] = raw[: rng.randint(5, len(raw) - 5)]
        how = "cut short"
    with open(path, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return f"line {i + 1} of {len(lines)} ({how})"


# -- the checks -------------------------------------------------------------------

@dataclass
class Verdict:
    violations: list[str]
    harness: list[str]  # the test's own preconditions, not the reconciler's fault
    stats: dict[str, Any]


def check_ledger(*, fills: list[dict[str, Any]], fill_times: list[float], requests: list[dict[str, Any]],
                 request_times: list[float], ledger: Ledger, history: StateHistory, settle_s: float,
                 pad_s: float = 0.05) -> Verdict:
    """The duplicate-fill invariants (see the test module docstring for the definitions)."""
    violations: list[str] = []
    harness: list[str] = []
    fills_by_cid: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(fills):
        fills_by_cid[f["client_order_id"]].append(i)

    # D1: one fill per client order id (market orders fill at once; the fake refuses a reused id)
    for cid, idx in fills_by_cid.items():
        if len(idx) > 1:
            violations.append(f"D1: client id {cid} filled {len(idx)} times: {[fills[i] for i in idx]}")

    # D2: every fill belongs to an intent that was durably journaled (a complete line), not a torn fragment
    for cid in fills_by_cid:
        if cid not in ledger.intents:
            where = " (only in a torn-tail fragment)" if cid in ledger.torn_ids else ""
            violations.append(f"D2: fill of {cid} has no journaled intent{where}")

    # D3: the journal never says "not applied" about an order that filled, nor misstates a fill
    filled_qty = {cid: float(sum((fills[i]["qty"] for i in idx), Decimal(0))) for cid, idx in fills_by_cid.items()}
    for cid, outs in ledger.outcomes.items():
        qty = filled_qty.get(cid, 0.0)
        for out in outs:
            status = out.get("status")
            if status in ("not_found", "rejected", "not_sent") and qty > 0:
                violations.append(f"D3: journal says {cid} {status} but the exchange filled {qty}")
            elif status == "filled" and not math.isclose(float(out.get("filled") or 0.0), qty, rel_tol=1e-9,
                                                          abs_tol=1e-12):
                violations.append(f"D3: journal says {cid} filled {out.get('filled')} but the exchange filled {qty}")

    # D4: no fill pushes a position past every target that was current while its order was planned
    position: dict[str, Decimal] = defaultdict(Decimal)
    traded: dict[str, Decimal] = defaultdict(Decimal)
    for i, f in enumerate(fills):
        base = base_of(f["symbol"])
        signed = f["qty"] if f["side"] == "BUY" else -f["qty"]
        before = position[base]
        after = before + signed
        position[base] = after
        traded[base] += abs(signed)
        intent = ledger.intents.get(f["client_order_id"])
        if intent is None:
            continue
        end = iso_to_epoch(intent["ts"]) + 0.001 + pad_s
        start = cycle_start(str(intent.get("cycle", ""))) or 0.0
        candidates = history.target_candidates(start - pad_s, end).get(base, {0.0})
        lo, hi = float(min(before, after)), float(max(before, after))
        eps = 1e-9
        ok = any(min(float(before), t) - eps <= float(after) <= max(float(before), t) + eps for t in candidates)
        if not ok:
            shown = ", ".join(f"{t:.6f}" for t in sorted(candidates))
            violations.append(
                f"D4: fill #{i} {f['side']} {f['qty']} {base} [{f['client_order_id']}, cycle {intent.get('cycle')}] "
                f"moved the position {before} -> {after} past every target valid while it was planned ({shown}): "
                f"an order for a difference that was already closed (range {lo}..{hi})")

    # D5: no two filled intents of one cycle are the same order (symbol, side, amount, leg)
    same: Counter[tuple] = Counter()
    for cid in fills_by_cid:
        intent = ledger.intents.get(cid)
        if intent is not None:
            same[(intent.get("cycle"), intent["symbol"], intent.get("side"), intent.get("amount"),
                  intent.get("leg"))] += 1
    for key, n in same.items():
        if n > 1:
            violations.append(f"D5: {n} filled intents for the same order {key}")

    # harness precondition: every order is applied within the settle window after it reached the exchange
    receipt: dict[str, float] = {}
    for req, t in zip(requests, request_times):
        if (req["method"], req["path"]) == ORDER_PATH:
            receipt.setdefault(req["params"].get("newClientOrderId", ""), t)
    lags = [fill_times[i] - receipt[f["client_order_id"]] for i, f in enumerate(fills)
            if f["client_order_id"] in receipt]
    max_lag = max(lags, default=0.0)
    if max_lag > settle_s - 0.2:
        harness.append(f"an order was applied {max_lag:.2f} s after it reached the fake (settle window "
                       f"{settle_s} s): the fake broke the venue contract the reconciler relies on")

    statuses = Counter(out.get("status") for outs in ledger.outcomes.values() for out in outs)
    stats = {"fills": len(fills), "distinct_fill_ids": len(fills_by_cid), "intents": len(ledger.intents),
             "outcomes": dict(sorted(statuses.items())), "max_apply_lag_s": round(max_lag, 3),
             "traded": {b: str(q) for b, q in sorted(traded.items())},
             "positions": {b: str(q) for b, q in sorted(position.items())}}
    return Verdict(violations, harness, stats)


def target_path_variation(history: StateHistory) -> dict[str, float]:
    """Sum over the (sequential) state writes of |change of each symbol's target|, from flat."""
    events = sorted(((v.written_by, name, v.state) for name, vs in history.versions.items() for v in vs),
                    key=lambda e: e[0])
    current: dict[str, dict[str, Any]] = {}
    last: dict[str, float] = defaultdict(float)
    total: dict[str, float] = defaultdict(float)
    for _, name, state in events:
        current[name] = state
        for base, target in history.targets(current).items():
            total[base] += abs(target - last[base])
            last[base] = target
    return dict(total)

