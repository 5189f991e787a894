"""`orders.jsonl`: the append-only order journal that makes orders exactly-once.

Every order *intent* is appended (and fsynced) with its deterministic client
order id before the order is sent; its *outcome* is appended after. An intent
without an outcome is "unfinished": the process died or lost the answer
between the two, and the order must be looked up by client order id before
anything else is sent.

File format: UTF-8, one JSON object per line, every line ends with ``\\n``::

    {"event": "intent", "ts": ..., "client_order_id": "fo...", "venue": "paper",
     "symbol": "BTC/USDT:USDT", "side": "buy", "amount": "0.012", "reduce_only": false,
     "leg": "open", "price": 95000.0, "action": "BUY", "signed_diff": 1140.0,
     "contract_size": 1.0, "cycle": "..."}
    {"event": "outcome", "ts": ..., "client_order_id": "fo...", "status": "filled",
     "filled": 0.012, "average": 95010.0, "exchange_order_id": "123", "error": null}
    {"event": "meta", "ts": ..., "venues": ["binanceusdm", "paper"], "compacted_at": ...,
     "archived_to": "orders.archive/orders-20261124T101500Z.jsonl.gz", "archived_records": 40000}
    {"event": "repair", "ts": ..., "damaged_lines": 2, "moved_to": "orders.jsonl.damaged-20261124T101500Z",
     "salvaged_ids": ["fo..."], "unresolved_ids": ["fo..."]}

``ts`` is ISO 8601 UTC with milliseconds. ``status`` of an outcome: an exchange
status (filled, partially_filled, open, canceled, rejected), ``not_found``
(looked up after a crash or lost answer and the exchange has no such order: it
was never applied) or ``not_sent`` (the cycle stopped before sending it). An
intent may carry ``"salvaged": true`` (re-created by a repair from a damaged
line: only its id, venue and symbol are trustworthy; it is looked up like any
unfinished intent). ``meta`` is the first record after a compaction (every venue
ever traded, where the removed records went); ``repair`` records what
``repair_journal`` did. Blank lines are ignored.

Guarantees:

* **Appends** are one ``os.write`` loop on an ``O_APPEND`` descriptor. On any
  write or fsync error the file is cut back to its size before the append and
  :class:`JournalWriteError` is raised with the in-memory state unchanged: a
  failed intent is not registered (the caller does not send it), a failed
  outcome leaves its intent unfinished (looked up later). Intents are fsynced
  before ``record_intents`` returns.
* **Torn tail** (a last line without ``\\n``: a crash or a full disk mid-append)
  is moved to ``orders.jsonl.torn-<UTC stamp>`` and the journal cut back to its
  last newline, on load and before any append, so a new record is never glued
  onto a fragment. Such a fragment was never acknowledged: an intent is sent only
  after its append completed.
* **Damage** anywhere else (invalid JSON, NUL bytes, not an object, an intent or
  outcome without ``client_order_id``, an intent without venue/symbol, an
  unknown event) is never skipped: loading raises :class:`JournalDamaged`
  (exit 2) until ``fastopt reconcile --repair-journal`` (:func:`repair_journal`)
  has run.
* **Identity**: every append first checks (:meth:`OrderJournal.check`) that the
  path still names the file this object loaded; otherwise :class:`JournalMissing`
  (exit 1), so nothing is appended to a renamed or deleted file.
* **Compaction** (:meth:`OrderJournal.compact`) archives old records to
  ``orders.archive/orders-<stamp>.jsonl.gz`` (written and fsynced first) and then
  atomically replaces the journal: a crash leaves the old or the new journal, each
  complete.
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from fastopt.files.atomic import atomic_write_bytes, fsync_dir
from fastopt.errors import FastoptError, InputError
from reconciler.model import PlannedOrder

#: default prefix of client order ids ("fo" + 30 hex = 32 chars)
CLIENT_ID_PREFIX = "fo"
#: folder (next to the journal) holding the gzip archives written by compaction
ARCHIVE_DIR = "orders.archive"
_CLIENT_ID_LEN = 32
_GONE = "the journal was {how} while in use; nothing more is appended: restore it, then restart"
_APPEARED = ("a journal appeared after this process found none; nothing is appended to a file it did not load: "
             "restart")
_REPLACED = "the journal was replaced by another file while in use; nothing more is appended: restart to load it"


class JournalDamaged(InputError):
    """A journal line other than a torn last one is unreadable (exit 2): repair before trading."""


class JournalMissing(FastoptError):
    """The journal path no longer names the file this object loaded (renamed, deleted, replaced; exit 1)."""


class JournalWriteError(FastoptError):
    """An append failed (disk full, I/O error, ...); the file was cut back to its size before (exit 1)."""


def client_order_id(*, cycle_id: str, order: PlannedOrder, index: int, prefix: str = CLIENT_ID_PREFIX) -> str:
    """Deterministic client order id: ``prefix`` + hex of sha256, 32 chars of [A-Za-z0-9] in all.

    Valid on Binance/Bybit/OKX. ``prefix`` is 1 to 8 alphanumeric characters (at least 24 hex = 96 bits
    remain); with the default ``"fo"`` the id is ``fo`` + 30 hex.
    """
    if not (prefix.isascii() and prefix.isalnum() and 1 <= len(prefix) <= 8):
        raise ValueError(f"client order id prefix must be 1 to 8 ASCII letters or digits, not {prefix!r}")
    basis = f"{cycle_id}|{index}|{order.venue}|{order.symbol}|{order.side}|{order.amount}|{order.leg}"
    return prefix + hashlib.sha256(basis.encode()).hexdigest()[: _CLIENT_ID_LEN - len(prefix)]


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
    """Append-only journal file; keeps the unfinished intents, known ids and venues in memory.

    ``warn`` receives one-line warnings (default: stderr). ``read_only`` (dry runs) never writes: a torn
    tail is ignored in memory only, and appends raise :class:`JournalWriteError`.

    ``known`` covers the ids of the records in the file, so after a compaction only the retained ones:
    that is enough to never reuse an id because ids hash a cycle id made of a microsecond UTC timestamp,
    the pid and a counter; an archived id could only come back if the clock stepped back past it with the
    same pid and counter.
    """

    def __init__(self, path: str | os.PathLike[str], *, warn: Callable[[str], None] | None = None,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        self.warn = warn or _to_stderr
        self.read_only = read_only
        #: True when no journal existed at load: the caller decides whether history is unknown
        self.was_missing = False
        #: True when the file holds a ``repair`` record: its history may be incomplete
        self.repaired = False
        self._fd: int | None = None  # O_RDWR | O_APPEND, opened at the first append (or a torn-tail cut)
        self._new_entry = False  # created by this object: its directory entry is fsynced after the first write
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file loaded or created
        self._pending: dict[str, dict[str, Any]] = {}
        self._seen: set[str] = set()
        self._venues: set[str] = set()
        self._unresolved: dict[str, None] = {}  # ids a repair could not make lookable, until an outcome
        # (venue, symbol) -> (ts, side, amount, streak) of the last rejected order, until a fill there
        self._rejections: dict[tuple[str, str], tuple[str, str, str, int]] = {}
        self._records = 0
        self._load()

    # -- loading ----------------------------------------------------------
    def _load(self) -> None:
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            self.was_missing = True
            return
        with handle:
            st = os.fstat(handle.fileno())
            self._identity = (st.st_dev, st.st_ino)
            data = handle.read()
        lines = data.split(b"\n")
        fragment = lines.pop()  # b"" when the file ends with a newline
        # hot loop (100k lines in ~0.2 s): valid intents/outcomes inline, everything else through
        # _parse_line/_absorb (blank lines, meta/repair records, damage)
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        pending, seen, venues, by_hand = self._pending, self._seen, self._venues, self._unresolved
        fast = 0
        for n, raw in enumerate(lines, 1):
            try:
                rec = loads(raw)
            except decode_error:
                rec = None
            if type(rec) is dict:
                event, cid = rec.get("event"), rec.get("client_order_id")
                if type(cid) is str and cid:
                    if event == "outcome" and cid not in by_hand:
                        seen.add(cid)
                        intent = pending.pop(cid, None)
                        if intent is not None and rec.get("status") in _REJECTION_STATES:
                            self._note_outcome(intent, rec)
                        fast += 1
                        continue
                    venue, symbol = rec.get("venue"), rec.get("symbol")
                    if event == "intent" and type(venue) is str and venue and type(symbol) is str and symbol:
                        seen.add(cid)
                        pending[cid] = rec
                        venues.add(venue)
                        fast += 1
                        continue
            rec, problem = _parse_line(raw)
            if problem is not None:
                raise _damaged(self.path, n, problem, lines[n:])
            if rec is not None:
                self._absorb(rec)
        self._records += fast
        if fragment:  # only once the rest loaded: a damaged journal is left exactly as found for the repair
            if self.read_only:
                self.warn(f"{self.path}: torn last line ({len(fragment)} bytes) ignored (read-only: left in place)")
            else:
                self._cut_torn_tail(self._open(), len(data) - len(fragment), fragment)

    def _absorb(self, rec: dict[str, Any]) -> None:
        """Apply one valid record to the in-memory state."""
        self._records += 1
        event = rec["event"]
        if event == "intent":
            cid = rec["client_order_id"]
            self._seen.add(cid)
            self._pending[cid] = rec
            self._venues.add(rec["venue"])
        elif event == "outcome":
            cid = rec["client_order_id"]
            self._seen.add(cid)
            intent = self._pending.pop(cid, None)
            self._unresolved.pop(cid, None)
            if intent is not None and rec.get("status") in _REJECTION_STATES:
                self._note_outcome(intent, rec)
        elif event == "meta":
            self._venues.update(rec["venues"])
        elif rec.get("verified") is True:  # a repair record appended by record_history_verified
            self.repaired = False
        else:  # repair
            self.repaired = True
            self._unresolved.update(dict.fromkeys(rec.get("unresolved_ids", ())))

    def _note_outcome(self, intent: dict[str, Any], outcome: dict[str, Any]) -> None:
        """Track the last rejection per (venue, symbol) at load (a fill there clears it)."""
        key = (str(intent.get("venue")), str(intent.get("symbol")))
        if outcome.get("status") != "rejected":
            self._rejections.pop(key, None)
            return
        side, amount = str(intent.get("side")), str(intent.get("amount"))
        previous = self._rejections.get(key)
        streak = previous[3] + 1 if previous is not None and previous[1:3] == (side, amount) else 1
        self._rejections[key] = (str(outcome.get("ts")), side, amount, streak)

    # -- queries ----------------------------------------------------------
    def rejections(self) -> dict[tuple[str, str], tuple[str, str, str, int]]:
        """Per (venue, symbol), the last rejected order found at load and not followed by a fill there:
        ``(outcome ts ISO 8601 UTC, side, amount, consecutive rejections of that same order)``. A new
        process uses it to keep backing off a rejected order (``--reject-backoff``)."""
        return dict(self._rejections)

    def unfinished(self) -> list[Intent]:
        """Intents with no outcome yet, oldest first."""
        return [_intent_from(rec) for rec in self._pending.values()]

    def known(self, cid: str) -> bool:
        """True when ``cid`` is the id of an intent or outcome in the file (see the class docstring)."""
        return cid in self._seen

    def venues(self) -> set[str]:
        """Every venue named by an intent, including those a compaction moved into the ``meta`` record."""
        return set(self._venues)

    @property
    def unresolved_ids(self) -> list[str]:
        """Ids a repair found without venue/symbol and no outcome since: they cannot be looked up.

        Check them on the exchange by hand, then append an outcome for each (see docs/reconciler.md).
        """
        return list(self._unresolved)

    # -- identity ---------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`JournalMissing` unless the path still names the file this object loaded or created.

        Missing at load and still missing is fine (the first append creates it); a file that appeared since,
        a missing file, another inode/device, or an open handle whose file has no link left is not.
        """
        gone = self._fd is not None and os.fstat(self._fd).st_nlink == 0  # the file we hold has no name left
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._identity is None:
                return
            how = "deleted" if gone else "renamed or deleted"
            raise JournalMissing(_GONE.format(how=how), path=self.path) from None
        if self._identity is None:
            raise JournalMissing(_APPEARED, path=self.path)
        if gone or (st.st_dev, st.st_ino) != self._identity:
            raise JournalMissing(_REPLACED, path=self.path)

    def _open(self) -> int:
        """The append descriptor (O_RDWR | O_APPEND) of the file this object loaded, or of a new file."""
        if self._fd is not None:
            return self._fd
        if self.read_only:
            raise JournalWriteError("opened read-only (dry run): nothing is written", path=self.path)
        try:
            if self._identity is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    raise JournalMissing(_APPEARED, path=self.path) from None
                self._new_entry = True
            else:
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
                except FileNotFoundError:
                    raise JournalMissing(_GONE.format(how="renamed or deleted"), path=self.path) from None
        except OSError as err:
            raise JournalWriteError(f"cannot open for appending: {_errno_text(err)}", path=self.path) from err
        st = os.fstat(fd)
        if self._identity is not None and (st.st_dev, st.st_ino) != self._identity:
            os.close(fd)
            raise JournalMissing(_REPLACED, path=self.path)
        self._identity = (st.st_dev, st.st_ino)
        self._fd = fd
        return fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- appending --------------------------------------------------------
    def _cut_torn_tail(self, fd: int, cut: int, fragment: bytes) -> None:
        """Move the bytes after the last newline aside (fsynced), then truncate the journal to ``cut``."""
        aside = _create_new(self.path.with_name(f"{self.path.name}.torn-{_stamp()}"), fragment)
        try:
            os.ftruncate(fd, cut)
            os.fsync(fd)
        except OSError as err:
            raise JournalWriteError(f"cannot cut off its torn last line (copied to {aside}): {_errno_text(err)}",
                                    path=self.path) from err
        self.warn(f"{self.path}: torn last line ({len(fragment)} bytes: an append cut short by a crash or a full "
                  f"disk, never acknowledged) moved to {aside}")

    def _append(self, records: list[dict[str, Any]], *, sync: bool, what: str, then: str) -> None:
        """Append whole lines or nothing: on an OSError the file is cut back and JournalWriteError raised."""
        for rec in records:
            if (problem := _problem(rec)) is not None:
                raise ValueError(f"refusing to journal a record that would not load back: {problem}")
        data = b"".join(_dumps(rec) for rec in records)
        if not data:
            return
        self.check()
        fd = self._open()
        try:
            size = os.fstat(fd).st_size
            torn = size and os.pread(fd, 1, size - 1) != b"\n"  # a fragment left by another writer or a crash
            whole = _pread_all(fd, size) if torn else b""
        except OSError as err:
            raise JournalWriteError(f"cannot read its end before appending {what}: {_errno_text(err)}",
                                    path=self.path) from err
        if torn:
            size = whole.rfind(b"\n") + 1
            self._cut_torn_tail(fd, size, whole[size:])
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if sync:
                os.fsync(fd)
        except OSError as err:
            note = ""
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError:
                note = "; cutting off the partial line failed too (it is set aside at the next load or append)"
            raise JournalWriteError(f"cannot append {what}: {_errno_text(err)}{note}; {then}",
                                    path=self.path) from err
        if self._new_entry:  # the new file's directory entry too, or a power cut can lose the whole journal
            fsync_dir(self.path.parent)
            self._new_entry = False

    def record_intents(self, items: list[tuple[str, PlannedOrder, float, str]]) -> None:
        """Durably append intents ``(client_order_id, order, contract_size, cycle_id)`` (one write, one fsync).

        On :class:`JournalWriteError` / :class:`JournalMissing` none of them is recorded: do not send them.
        """
        records = []
        for cid, order, contract_size, cycle_id in items:
            records.append({
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
            })
        self._append(records, sync=True, what=f"{len(records)} intent(s)",
                     then="none is recorded: do not send them")
        for rec in records:
            self._absorb(rec)

    def record_history_verified(self, note: str) -> None:
        """Append a ``{"event": "repair", "verified": true}`` record (fsynced): the history a repair or a
        missing journal left unknown was checked on the venues (no open orders of this reconciler, late
        fills waited out), so later processes need not wait again. Creates the journal when missing.
        Compaction keeps it, like every repair record, after the repair it closes."""
        rec = {"event": "repair", "ts": _now(), "verified": True, "note": note}
        self._append([rec], sync=True, what="the history check", then="the check runs again next start")
        self._absorb(rec)

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
        """Append the outcome of an intent (written to the OS; fsynced with ``sync``).

        On :class:`JournalWriteError` the intent stays unfinished in memory and on disk (looked up later).
        """
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
        self._append([rec], sync=sync, what=f"the outcome of {cid}",
                     then="the order stays unfinished and is looked up before anything else is sent")
        self._absorb(rec)

    # -- compaction -------------------------------------------------------
    def compact(self, *, keep_last: int = 10_000) -> int | None:
        """Archive old records; returns how many were archived (None: nothing to remove).

        The new journal is a ``meta`` record (every venue ever seen, the archive's path), then in their
        original order: every unfinished intent, every ``repair`` record and the last ``keep_last`` records.
        Everything removed goes to ``orders.archive/orders-<stamp>.jsonl.gz`` (gzip, fsynced) *before* the
        journal is replaced atomically; a crash leaves the old journal (and maybe a redundant archive) or
        the new one. This object then follows the new file. Raises :class:`JournalDamaged` (nothing is
        compacted) or :class:`JournalWriteError` (the old journal stays in place, complete).
        """
        if keep_last < 0:
            raise ValueError(f"keep_last must be >= 0, not {keep_last}")
        self.check()
        if self._identity is None:  # no journal yet
            return None
        fd = self._open()
        try:
            size = os.fstat(fd).st_size
            data = _pread_all(fd, size)
        except OSError as err:
            raise JournalWriteError(f"cannot read it to compact it: {_errno_text(err)}", path=self.path) from err
        cut = data.rfind(b"\n") + 1
        if cut < size:
            self._cut_torn_tail(fd, cut, data[cut:])
        lines = data[:cut].split(b"\n")[:-1]
        entries: list[tuple[bytes, dict[str, Any]]] = []
        for n, raw in enumerate(lines, 1):
            rec, problem = _parse_line(raw)
            if problem is not None:
                raise _damaged(self.path, n, problem, lines[n:])
            if rec is not None:
                entries.append((raw, rec))
        open_at: dict[str, int] = {}  # unfinished intent id -> its index
        venues: set[str] = set()
        by_hand: set[str] = set()  # ids a repair could not resolve: their outcomes stay with the repair record
        for i, (_, rec) in enumerate(entries):
            event = rec["event"]
            if event == "repair":
                by_hand.update(rec.get("unresolved_ids", ()))
            elif event == "intent":
                open_at[rec["client_order_id"]] = i
                venues.add(rec["venue"])
            elif event == "outcome":
                open_at.pop(rec["client_order_id"], None)
            elif event == "meta":
                venues.update(rec["venues"])
        keep_from = len(entries) - keep_last
        kept: list[tuple[bytes, dict[str, Any]]] = []
        removed: list[bytes] = []
        for i, (raw, rec) in enumerate(entries):
            event = rec["event"]
            if event != "meta" and (i >= keep_from or event == "repair"
                                    or (event == "intent" and open_at.get(rec["client_order_id"]) == i)
                                    or (event == "outcome" and rec["client_order_id"] in by_hand)):
                kept.append((raw, rec))
            else:
                removed.append(raw)
        if len(kept) + 1 >= len(entries):  # at most one old meta record would go: nothing to gain
            return None
        now = datetime.now(timezone.utc)
        archive = _create_new(self.path.parent / ARCHIVE_DIR / f"orders-{_stamp(now)}.jsonl.gz",
                              gzip.compress(b"\n".join(removed) + b"\n", mtime=0))
        meta = {"event": "meta", "ts": _iso(now), "venues": sorted(venues), "compacted_at": _iso(now),
                "archived_to": archive.relative_to(self.path.parent).as_posix(), "archived_records": len(removed)}
        try:
            atomic_write_bytes(self.path, b"".join([_dumps(meta), *(raw + b"\n" for raw, _ in kept)]))
        except OSError as err:
            raise JournalWriteError(f"cannot replace it by its compacted version ({archive} holds a copy of the "
                                    f"archived records; the journal is unchanged): {_errno_text(err)}",
                                    path=self.path) from err
        self.close()  # the replacement is ours: follow it
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        except OSError as err:
            raise JournalMissing(f"cannot reopen the compacted journal: {_errno_text(err)}", path=self.path) from err
        st = os.fstat(fd)
        self._fd, self._identity = fd, (st.st_dev, st.st_ino)
        self._seen = {rec["client_order_id"] for _, rec in kept if rec["event"] in ("intent", "outcome")}
        self._records = len(kept) + 1
        return len(removed)

    def compact_if_needed(self, max_records: int = 50_000, *, keep_last: int = 10_000) -> int | None:
        """:meth:`compact` when the file holds more than ``max_records`` records; else None."""
        if keep_last >= max_records:
            raise ValueError(f"keep_last ({keep_last}) must be below max_records ({max_records})")
        return self.compact(keep_last=keep_last) if self._records > max_records else None


#: outcomes that change the rejection record of a symbol at load: a rejection, or a fill that clears it
_REJECTION_STATES = frozenset({"rejected", "filled", "partially_filled", "canceled"})


# -- repair ------------------------------------------------------------------

_RECORD_START = re.compile(rb'\{\s*"event"\s*:')
_INTENT_LIKE = re.compile(rb'"event"\s*:\s*"intent"|"side"\s*:|"amount"\s*:')


def _string_field(name: str) -> re.Pattern[bytes]:
    return re.compile(rb'"' + name.encode() + rb'"\s*:\s*"([^"\\\x00-\x1f]{1,200})"')


_FIELDS = {name: _string_field(name) for name in ("client_order_id", "venue", "symbol", "side", "amount", "ts")}


def repair_journal(path: str | os.PathLike[str], *, now: datetime | None = None) -> str:
    """Make a damaged journal loadable again; returns a one-line summary (``fastopt reconcile --repair-journal``).

    Every valid line is kept as is. Every damaged line goes verbatim to ``orders.jsonl.damaged-<stamp>``
    (fsynced; a torn last line too). From damaged lines, whole records glued behind debris are kept, and an
    intent whose ``client_order_id``, ``venue`` and ``symbol`` are still readable and which has no outcome is
    re-added in place with ``"salvaged": true`` (looked up before anything is sent; its ``ts`` is the
    original one if readable, else the repair time so the settle wait applies). Ids found with neither an
    outcome nor a lookable intent are listed as ``unresolved_ids`` in the summary and the appended ``repair``
    record: check them on the exchange by hand. The journal is replaced atomically; a reconciler still
    holding the old file then stops with :class:`JournalMissing`. Run it with no reconciler running.
    """
    path = Path(path)
    now = now or datetime.now(timezone.utc)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return f"{path}: no journal, nothing to repair"
    except OSError as err:
        raise JournalWriteError(f"cannot read it: {_errno_text(err)}", path=path) from err
    lines = data.split(b"\n")
    tail = lines.pop()
    parsed = [(n, raw, *_parse_line(raw)) for n, raw in enumerate(lines, 1)]
    damaged = [(n, raw, problem) for n, raw, _, problem in parsed if problem is not None]
    if not damaged:
        torn = "; its torn last line is set aside when it is loaded" if tail else ""
        return f"{path}: nothing to repair: it loads cleanly{torn}"

    # what survives: valid lines, and the pieces of damaged lines (whole records or readable fields)
    pieces: list[tuple[int, dict[str, Any] | None, dict[str, str], bool]] = []  # line, record, fields, intent?
    for n, raw, rec, problem in parsed:
        if problem is None:
            if rec is not None:
                pieces.append((n, rec, {}, False))
            continue
        for segment in _segments(raw):
            whole, bad = _parse_line(segment.strip(b"\x00 \t\r"))
            if whole is not None and bad is None:
                pieces.append((n, whole, {}, False))
                continue
            found = {k: m.group(1).decode("utf-8", "replace") for k, rx in _FIELDS.items() if (m := rx.search(segment))}
            if "client_order_id" in found:
                pieces.append((n, None, found, bool(_INTENT_LIKE.search(segment))))
    outcomes = {r["client_order_id"] for _, r, _, _ in pieces if r is not None and r["event"] == "outcome"}
    intents = {r["client_order_id"] for _, r, _, _ in pieces if r is not None and r["event"] == "intent"}
    damaged_lines = {n for n, _, _ in damaged}

    out: list[bytes] = []
    salvaged: list[str] = []
    mentioned: list[str] = []
    for n, rec, found, intent_like in pieces:
        if rec is not None:
            if n in damaged_lines and rec["event"] == "intent":
                rec = {**rec, "salvaged": True}
                if rec["client_order_id"] not in outcomes:
                    salvaged.append(rec["client_order_id"])
            out.append(_dumps(rec) if n in damaged_lines else lines[n - 1] + b"\n")
            continue
        cid = found["client_order_id"]
        mentioned.append(cid)
        if (intent_like and found.get("venue") and found.get("symbol")
                and cid not in outcomes and cid not in intents):
            intents.add(cid)
            salvaged.append(cid)
            out.append(_dumps({"event": "intent", "ts": found.get("ts") or _iso(now), "client_order_id": cid,
                               "venue": found["venue"], "symbol": found["symbol"], "side": found.get("side", ""),
                               "amount": found.get("amount", "0"), "salvaged": True, "salvaged_from_line": n}))
    unresolved = sorted({cid for cid in mentioned if cid not in outcomes and cid not in intents})

    moved = _create_new(path.with_name(f"{path.name}.damaged-{_stamp(now)}"),
                        b"".join(raw + b"\n" for _, raw, _ in damaged) + tail)
    out.append(_dumps({"event": "repair", "ts": _iso(now), "damaged_lines": len(damaged), "moved_to": moved.name,
                       "salvaged_ids": salvaged, "unresolved_ids": unresolved}))
    try:
        atomic_write_bytes(path, b"".join(out))
    except OSError as err:
        raise JournalWriteError(f"cannot replace it by its repaired version (unchanged; the damaged lines are "
                                f"copied in {moved}): {_errno_text(err)}", path=path) from err
    first_n, _, first_problem = damaged[0]
    summary = (f"{path}: {len(damaged)} damaged line(s) (first: line {first_n}, {first_problem}) moved to {moved}; "
               f"{len(salvaged)} intent(s) salvaged, looked up before anything is sent")
    if salvaged:
        summary += f" ({', '.join(salvaged)})"
    if unresolved:
        summary += (f"; {len(unresolved)} order id(s) cannot be looked up (no venue/symbol left), check them on "
                    f"the exchange by hand: {', '.join(unresolved)}")
    return summary


def _segments(raw: bytes) -> list[bytes]:
    """A damaged line cut before every ``{"event":`` (a record glued behind debris starts a new piece)."""
    starts = [m.start() for m in _RECORD_START.finditer(raw)]
    bounds = sorted({0, *starts, len(raw)})
    return [raw[a:b] for a, b in zip(bounds, bounds[1:])]


# -- helpers -----------------------------------------------------------------

def _parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """``(record, None)`` for a valid line, ``(None, None)`` for a blank one, ``(_, reason)`` for a damaged one."""
    try:
        rec = orjson.loads(raw)
    except orjson.JSONDecodeError:
        if not raw.strip():
            return None, None
        return None, "NUL bytes" if b"\x00" in raw else "not valid JSON"
    return rec, _problem(rec)


def _problem(rec: Any) -> str | None:
    """Why a parsed line is not a usable journal record (None when it is)."""
    if type(rec) is not dict:
        return "not a JSON object"
    event = rec.get("event")
    if event == "intent" or event == "outcome":
        cid = rec.get("client_order_id")
        if type(cid) is not str or not cid:
            return f"{event} without client_order_id"
        if event == "intent":
            venue, symbol = rec.get("venue"), rec.get("symbol")
            if type(venue) is not str or type(symbol) is not str or not venue or not symbol:
                return "intent without venue or symbol"
        return None
    if event == "meta":
        venues = rec.get("venues")
        if type(venues) is not list or not all(type(v) is str for v in venues):
            return "meta record without a list of venues"
        return None
    if event == "repair":
        ids = rec.get("unresolved_ids", [])
        if type(ids) is not list or not all(type(v) is str for v in ids):
            return "repair record with a bad unresolved_ids"
        return None
    return f"unknown event {json.dumps(event)[:40]}"


def _damaged(path: Path, n: int, problem: str, rest: list[bytes]) -> JournalDamaged:
    more = sum(1 for raw in rest if _parse_line(raw)[1] is not None)
    others = f" and {more} more damaged line(s)" if more else ""
    return JournalDamaged(
        f"damaged at line {n} ({problem}){others}: orders may be missing from it, so nothing is sent; run "
        f"`fastopt reconcile --repair-journal --config <config>` with the config in {path.parent}", path=path)


def _create_new(path: Path, data: bytes) -> Path:
    """Write ``data`` to a new file (``-2``, ``-3``, ... appended when the name exists), fsync it and its folder."""
    new_folder = not path.parent.is_dir()
    path.parent.mkdir(parents=True, exist_ok=True)
    if new_folder:
        fsync_dir(path.parent.parent)
    k = 1
    while True:
        candidate = path if k == 1 else path.with_name(f"{path.name}-{k}")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            k += 1
        except OSError as err:
            raise JournalWriteError(f"cannot create: {_errno_text(err)}", path=candidate) from err
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as err:
        os.close(fd)
        os.unlink(candidate)
        raise JournalWriteError(f"cannot write: {_errno_text(err)}", path=candidate) from err
    os.close(fd)
    fsync_dir(candidate.parent)
    return candidate


def _pread_all(fd: int, size: int) -> bytes:
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _errno_text(err: OSError) -> str:
    name = errno.errorcode.get(err.errno, "EUNKNOWN") if err.errno else type(err).__name__
    return f"{name} ({err.strerror or err})"


def _dumps(rec: dict[str, Any]) -> bytes:
    return json.dumps(rec, allow_nan=False, separators=(",", ":")).encode() + b"\n"


def _now() -> str:
    return _iso(datetime.now(timezone.utc))


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stamp(moment: datetime | None = None) -> str:
    """UTC ``YYYYmmddTHHMMSSZ`` for the names of set-aside files."""
    return (moment or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _to_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


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
