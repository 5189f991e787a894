"""orders.jsonl under faults: torn tails, damaged lines and their repair, a renamed or deleted journal,
a full disk, 100k-record loads and compaction (including a crash between its steps)."""
from __future__ import annotations

import errno
import gzip
import json
import os
import re
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastopt.errors import FastoptError, InputError
from reconciler.journal import (
    ARCHIVE_DIR,
    JournalDamaged,
    JournalMissing,
    JournalWriteError,
    OrderJournal,
    repair_journal,
)
from reconciler.model import PlannedOrder

STAMP = r"\d{8}T\d{6}Z"


def order(i: int, venue: str = "paper") -> PlannedOrder:
    return PlannedOrder(venue, f"S{i % 3}/USDT:USDT", "buy" if i % 2 else "sell", Decimal(i + 1) / 100, False,
                        "adjust", 100.0 + i)


def open_journal(path: Path, warnings: list[str] | None = None, **kw) -> OrderJournal:
    return OrderJournal(path, warn=(warnings if warnings is not None else []).append, **kw)


def intent(journal: OrderJournal, cid: str, i: int = 0, venue: str = "paper") -> None:
    journal.record_intents([(cid, order(i, venue), 1.0, "c")])


def ids(journal: OrderJournal) -> list[str]:
    return [i.client_order_id for i in journal.unfinished()]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- 1. torn tail ----------------------------------------------------------------------------------

def test_a_torn_tail_is_set_aside_on_load_and_the_next_intent_is_not_glued_onto_it(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    intent(journal, "foA")
    intent(journal, "foB", 1)
    journal.record_outcome("foA", status="filled")
    journal.close()
    clean = path.read_bytes()
    fragment = b'{"event":"intent","ts":"x","client_order_id":"foZ'
    path.write_bytes(clean + fragment)

    warnings: list[str] = []
    journal = open_journal(path, warnings)
    torn = list(tmp_path.glob("orders.jsonl.torn-*"))
    assert len(torn) == 1 and re.fullmatch(rf"orders\.jsonl\.torn-{STAMP}", torn[0].name)
    assert torn[0].read_bytes() == fragment and path.read_bytes() == clean
    assert len(warnings) == 1 and str(path) in warnings[0] and str(torn[0]) in warnings[0]
    intent(journal, "foC", 2)
    journal.close()
    assert ids(open_journal(path)) == ["foB", "foC"]  # old code: foC glued onto the fragment, skipped, sent again


def test_a_fragment_appended_after_load_is_set_aside_before_the_next_append(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    intent(journal, "foA")
    with open(path, "ab") as handle:  # another writer (or a hand edit) leaves a line without newline
        handle.write(b'{"event":"outcome","client_order_id":"foA"')
    warnings: list[str] = []
    journal.warn = warnings.append
    intent(journal, "foB", 1)
    assert len(warnings) == 1 and ".torn-" in warnings[0]
    assert ids(open_journal(path)) == ["foA", "foB"]


def test_read_only_journal_ignores_a_torn_tail_without_touching_the_file(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_bytes(b'{"event":"intent","client_order_id":"foA","venue":"paper","symbol":"X"}\n{"event":"out')
    before = path.read_bytes()
    warnings: list[str] = []
    journal = open_journal(path, warnings, read_only=True)
    assert ids(journal) == ["foA"] and path.read_bytes() == before and len(warnings) == 1
    assert not list(tmp_path.glob("*.torn-*"))
    with pytest.raises(JournalWriteError, match="read-only"):
        journal.record_outcome("foA", status="filled")
    assert path.read_bytes() == before


# -- 2. damage in the middle -----------------------------------------------------------------------

GOOD = b'{"event":"intent","client_order_id":"foA","venue":"paper","symbol":"X","side":"buy","amount":"1"}'


@pytest.mark.parametrize("bad, reason", [
    (b'{"event":"outcome","client_order_id":"foA","status"', "not valid JSON"),
    (b'\x00\x00\x00\x00\x00\x00', "NUL bytes"),
    (b'{"event":"intent"\x00\x00,"client_order_id":"foB"}', "NUL bytes"),
    (b'[1, 2]', "not a JSON object"),
    (b'"text"', "not a JSON object"),
    (b'{"event":"intent","venue":"paper","symbol":"X"}', "intent without client_order_id"),
    (b'{"event":"outcome","client_order_id":""}', "outcome without client_order_id"),
    (b'{"event":"intent","client_order_id":"foB","symbol":"X"}', "intent without venue or symbol"),
    (b'{"event":"cancel","client_order_id":"foB"}', 'unknown event "cancel"'),
    (b'{"client_order_id":"foB"}', "unknown event null"),
])
def test_damage_before_the_last_line_stops_the_load_with_the_repair_command(tmp_path, bad, reason):
    path = tmp_path / "orders.jsonl"
    path.write_bytes(GOOD + b"\n" + bad + b"\n" + b'{"event":"outcome","client_order_id":"foA"}\n')
    with pytest.raises(JournalDamaged) as info:
        OrderJournal(path)
    err = info.value
    message = str(err)
    assert isinstance(err, InputError) and err.exit_code == 2 and "\n" not in message
    assert str(path) in message and "line 2" in message and reason in message
    assert "fastopt reconcile --repair-journal --config <config>" in message and str(tmp_path) in message


def test_a_last_line_with_its_newline_that_does_not_parse_is_damage_not_a_torn_tail(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_bytes(GOOD + b"\n" + b'{"event":"outcome","client_o\n')
    with pytest.raises(JournalDamaged, match="line 2 .not valid JSON"):
        OrderJournal(path)
    assert not list(tmp_path.glob("*.torn-*"))


def test_damage_message_counts_the_other_damaged_lines_and_blank_lines_are_not_damage(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_bytes(GOOD + b"\n\n   \n" + b"x\n" + GOOD + b"\n" + b"y\n" + b"z\n")
    with pytest.raises(JournalDamaged, match="line 4 .not valid JSON. and 2 more damaged line"):
        OrderJournal(path)
    path.write_bytes(GOOD + b"\n\n  \r\n")
    assert ids(OrderJournal(path)) == ["foA"]


# -- 3. repair -------------------------------------------------------------------------------------

def test_repair_keeps_valid_lines_salvages_intents_and_lists_ids_it_cannot_look_up(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    for k, cid in enumerate(["foA", "foB", "foC", "foD", "foE"]):
        intent(journal, cid, k, venue="bybit" if cid == "foB" else "paper")
    journal.record_outcome("foA", status="filled")
    journal.record_outcome("foE", status="filled")
    journal.close()
    lines = path.read_bytes().split(b"\n")[:-1]  # A B C D E outcome(A) outcome(E)
    cut_b = lines[1][:lines[1].index(b'"side"')]  # cid, venue, symbol readable: salvaged as an intent
    cut_c = lines[2][:lines[2].index(b'"venue"')]  # only the id is left: cannot be looked up
    glued_d = b'{"event":"outcome","client_o' + lines[3]  # an append glued onto a fragment: D is whole
    cut_outcome_e = lines[6][:lines[6].index(b'"status"')]  # E's outcome lost: E becomes unfinished again
    damaged = [cut_b, cut_c, glued_d, b"\x00" * 40, cut_outcome_e]
    path.write_bytes(b"\n".join([lines[0], cut_b, cut_c, glued_d, b"\x00" * 40, lines[4], lines[5], cut_outcome_e])
                     + b"\n" + b'{"event":"intent","client_order_id":"foTORN"')
    before = path.read_bytes()
    with pytest.raises(JournalDamaged):
        OrderJournal(path)
    assert path.read_bytes() == before  # left exactly as found (torn tail included) for the repair

    from datetime import datetime, timezone
    summary = repair_journal(path, now=datetime(2026, 11, 24, 10, 15, 0, tzinfo=timezone.utc))
    moved = tmp_path / "orders.jsonl.damaged-20261124T101500Z"
    torn = b'{"event":"intent","client_order_id":"foTORN"'
    assert moved.read_bytes() == b"".join(line + b"\n" for line in damaged) + torn
    assert "\n" not in summary and "5 damaged line(s) (first: line 2, not valid JSON)" in summary
    assert str(moved) in summary and "foC" in summary and "by hand" in summary

    repaired = open_journal(path)
    assert ids(repaired) == ["foB", "foD", "foE"]  # foC: no venue/symbol, so not an intent to look up
    assert repaired.repaired and repaired.unresolved_ids == ["foC"]
    assert repaired.venues() == {"paper", "bybit"}
    salvaged = {r["client_order_id"]: r for r in records(path) if r.get("salvaged")}
    assert salvaged["foB"]["venue"] == "bybit" and salvaged["foB"]["symbol"] == "S1/USDT:USDT"
    assert salvaged["foB"]["ts"] == json.loads(lines[1])["ts"]  # the original time: the settle wait is right
    last = records(path)[-1]
    assert last["event"] == "repair" and last["damaged_lines"] == 5 and last["moved_to"] == moved.name
    assert last["unresolved_ids"] == ["foC"] and set(last["salvaged_ids"]) == {"foB", "foD"}
    # an outcome appended by hand after checking the exchange resolves it
    repaired.record_outcome("foC", status="not_found", error="checked by hand")
    assert open_journal(path).unresolved_ids == [] and open_journal(path).repaired


def test_repair_of_a_journal_that_loads_changes_nothing(tmp_path):
    path = tmp_path / "orders.jsonl"
    assert "no journal" in repair_journal(path) and not path.exists()
    path.write_bytes(GOOD + b"\n" + b'{"event":"out')
    before = path.read_bytes()
    summary = repair_journal(path)
    assert "nothing to repair" in summary and "torn last line" in summary and path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.jsonl"]


def test_repair_replaces_the_journal_atomically(tmp_path, monkeypatch):
    path = tmp_path / "orders.jsonl"
    path.write_bytes(GOOD + b"\nxx\n")
    before = path.read_bytes()

    def no_replace(src, dst):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(JournalWriteError, match="EIO"):
        repair_journal(path)
    assert path.read_bytes() == before and not list(tmp_path.glob(".orders.jsonl.*"))
    monkeypatch.undo()
    repair_journal(path)
    assert ids(OrderJournal(path)) == ["foA"]


def test_a_running_journal_stops_after_another_process_repaired_the_file(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    intent(journal, "foA")
    with open(path, "ab") as handle:
        handle.write(b"garbage\n")
    repair_journal(path)
    with pytest.raises(JournalMissing, match="replaced"):
        journal.record_outcome("foA", status="filled")


DAMAGE = st.sampled_from(["none", "none", "nul", "cut", "glue"])


@given(ops=st.lists(st.tuples(st.sampled_from(["intent", "outcome"]), st.integers(0, 7)), min_size=1, max_size=30),
       damage=st.lists(DAMAGE, min_size=30, max_size=30), tail=st.integers(0, 60))
def test_repair_round_trip_gives_exactly_the_unfinished_intents_that_survive(tmp_path_factory, ops, damage, tail):
    """Random journals, random damaged lines (lost, cut after the readable fields, glued behind debris) and a
    random torn tail: after the repair the journal loads, and its unfinished intents are exactly those whose
    intent survived (whole or salvaged) and whose outcome did not, in order."""
    path = tmp_path_factory.mktemp("r") / "orders.jsonl"
    journal = open_journal(path)
    written: list[tuple[str, str]] = []  # (event, cid) per line
    for op, i in ops:
        cid = f"fo{i}"
        if op == "intent" and not journal.known(cid):
            intent(journal, cid, i, venue=f"v{i % 2}")
            written.append(("intent", cid))
        elif op == "outcome" and journal.known(cid) and cid in ids(journal):
            journal.record_outcome(cid, status="filled")
            written.append(("outcome", cid))
    journal.close()
    if not written:
        return
    lines = path.read_bytes().split(b"\n")[:-1]
    out, survivors, cut_outcomes = [], [], []
    for (event, cid), line, kind in zip(written, lines, damage):
        if kind == "nul":
            out.append(b"\x00" * len(line))
        elif kind == "cut":
            out.append(line[:line.index(b'"side"' if event == "intent" else b'"status"')])
            if event == "intent":
                survivors.append((event, cid))
            else:
                cut_outcomes.append(cid)
        elif kind == "glue":
            out.append(b'{"event":"outcome","ts":"2026' + line)
            survivors.append((event, cid))
        else:
            out.append(line)
            survivors.append((event, cid))
    fragment = b'{"event":"intent","ts":"2026-01-01T00:00:00.000Z","client_order_id":"foT","venue":"v0"'[:tail]
    path.write_bytes(b"".join(line + b"\n" for line in out) + fragment)
    repair_journal(path)

    expected: dict[str, None] = {}
    for event, cid in survivors:
        if event == "intent":
            expected[cid] = None
        else:
            expected.pop(cid, None)
    intents = {cid for event, cid in survivors if event == "intent"}
    outcomes = {cid for event, cid in survivors if event == "outcome"}
    loaded = open_journal(path)
    assert ids(loaded) == list(expected)
    assert loaded.unresolved_ids == sorted(c for c in set(cut_outcomes) if c not in intents | outcomes)
    assert loaded.repaired == any(kind != "none" for kind in damage[:len(written)])


# -- 4. renamed or deleted journal -----------------------------------------------------------------

def test_a_renamed_journal_is_never_appended_to_and_the_restart_sees_it_missing(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    assert journal.was_missing
    intent(journal, "foA")
    assert not open_journal(path).was_missing
    os.rename(path, tmp_path / "orders.jsonl.bak")
    before = (tmp_path / "orders.jsonl.bak").read_bytes()
    with pytest.raises(JournalMissing, match="renamed or deleted") as info:
        journal.record_outcome("foA", status="filled")
    assert info.value.exit_code == 1 and isinstance(info.value, FastoptError) and str(path) in str(info.value)
    assert (tmp_path / "orders.jsonl.bak").read_bytes() == before and not path.exists()
    assert ids(journal) == ["foA"]
    restarted = open_journal(path)
    assert restarted.was_missing and ids(restarted) == []


def test_a_journal_deleted_while_the_loop_runs_is_detected_before_the_next_append(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    intent(journal, "foA")
    journal.check()
    path.unlink()
    with pytest.raises(JournalMissing, match="deleted"):
        journal.check()
    with pytest.raises(JournalMissing):
        intent(journal, "foB", 1)
    assert not journal.known("foB") and not path.exists()


def test_a_journal_replaced_by_another_file_is_detected(tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_bytes(GOOD + b"\n")
    journal = open_journal(path)  # loaded, handle not open yet
    other = tmp_path / "other.jsonl"
    other.write_bytes(GOOD + b"\n")
    os.replace(other, path)
    with pytest.raises(JournalMissing, match="replaced"):
        journal.record_outcome("foA", status="filled")
    assert path.read_bytes() == GOOD + b"\n"


def test_a_journal_created_by_the_first_append_becomes_the_identity(tmp_path):
    path = tmp_path / "sub" / "orders.jsonl"
    journal = open_journal(path)
    journal.check()  # missing and still missing: fine
    intent(journal, "foA")
    journal.check()
    journal.close()
    journal.record_outcome("foA", status="filled")  # reopened by path: same file
    assert ids(open_journal(path)) == [] and journal.was_missing


def test_a_journal_that_appears_after_a_missing_load_is_not_appended_to(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    path.write_bytes(GOOD + b"\n")  # e.g. restored from a backup by hand
    with pytest.raises(JournalMissing, match="appeared"):
        intent(journal, "foB", 1)
    assert path.read_bytes() == GOOD + b"\n"


# -- 5. disk full / write errors -------------------------------------------------------------------

def failing_write(monkeypatch, journal: OrderJournal, *, code: int = errno.ENOSPC, after: int = 1):
    """os.write on the journal's descriptor writes half its buffer ``after`` times, then fails with ``code``."""
    real = os.write
    calls = {"n": 0}

    def fake(fd, data):
        if fd != journal._fd:
            return real(fd, data)
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(code, os.strerror(code))
        return real(fd, bytes(data[: max(1, len(data) // 2)]))

    monkeypatch.setattr(os, "write", fake)
    return calls


def test_a_full_disk_mid_batch_leaves_the_file_and_the_memory_as_before(tmp_path, monkeypatch):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    intent(journal, "foA")
    before = path.read_bytes()
    calls = failing_write(monkeypatch, journal)
    with pytest.raises(JournalWriteError) as info:
        journal.record_intents([("foB", order(1), 1.0, "c"), ("foC", order(2), 1.0, "c")])
    message = str(info.value)
    assert calls["n"] == 2 and "ENOSPC" in message and str(path) in message and "\n" not in message
    assert info.value.exit_code == 1 and isinstance(info.value, FastoptError)
    assert path.read_bytes() == before
    assert ids(journal) == ["foA"] and not journal.known("foB") and not journal.known("foC")
    monkeypatch.undo()
    intent(journal, "foB", 1)  # the disk has room again
    assert ids(open_journal(path)) == ["foA", "foB"]


@pytest.mark.parametrize("code", [errno.EIO, errno.EDQUOT, errno.EFBIG])
def test_a_failed_outcome_leaves_its_intent_unfinished(tmp_path, monkeypatch, code):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    intent(journal, "foA")
    before = path.read_bytes()
    failing_write(monkeypatch, journal, code=code, after=0)
    with pytest.raises(JournalWriteError, match=errno.errorcode[code]):
        journal.record_outcome("foA", status="filled", sync=True)
    assert path.read_bytes() == before and ids(journal) == ["foA"]


def test_a_failed_fsync_of_intents_cuts_them_off(tmp_path, monkeypatch):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    intent(journal, "foA")
    before = path.read_bytes()
    real = os.fsync

    def fake(fd):
        if fd == journal._fd:
            raise OSError(errno.EIO, "Input/output error")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fake)
    with pytest.raises(JournalWriteError, match="EIO"):
        intent(journal, "foB", 1)
    assert path.read_bytes() == before and not journal.known("foB")


def test_when_the_cut_back_fails_too_the_partial_line_is_set_aside_before_the_next_append(tmp_path, monkeypatch):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    intent(journal, "foA")
    failing_write(monkeypatch, journal)

    def no_truncate(fd, size):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with pytest.raises(JournalWriteError, match="cutting off the partial line failed too"):
        intent(journal, "foB", 1)
    monkeypatch.undo()
    assert not path.read_bytes().endswith(b"\n")
    warnings: list[str] = []
    journal.warn = warnings.append
    intent(journal, "foC", 2)
    assert len(warnings) == 1 and ids(open_journal(path)) == ["foA", "foC"]


def test_a_record_that_would_not_load_back_is_refused_before_writing(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = open_journal(path)
    with pytest.raises(ValueError, match="client_order_id"):
        journal.record_outcome("", status="filled")
    with pytest.raises(ValueError):
        journal.record_outcome("foA", status="filled", filled=float("nan"))
    assert not path.exists()


# -- 6. 100k records -------------------------------------------------------------------------------

def test_100k_records_load_with_exactly_the_unfinished_intents(tmp_path):
    path = tmp_path / "orders.jsonl"
    intent_rec = {"event": "intent", "ts": "2026-11-24T10:00:00.123Z", "client_order_id": "", "venue": "paper",
                  "symbol": "BTC/USDT:USDT", "side": "buy", "amount": "0.012", "reduce_only": False, "leg": "open",
                  "price": 95000.0, "action": "BUY", "signed_diff": 1140.0, "contract_size": 1.0, "cycle": "c"}
    outcome_rec = {"event": "outcome", "ts": "2026-11-24T10:00:00.456Z", "client_order_id": "", "status": "filled",
                   "filled": 0.012, "average": 95010.0, "exchange_order_id": "1", "error": None}
    open_ids = {"fo17", "fo25000", "fo49999"}
    chunks = []
    for i in range(50_000):
        cid = f"fo{i}"
        chunks.append(orjson.dumps({**intent_rec, "client_order_id": cid,
                                    "venue": "bybit" if i == 3 else "paper"}) + b"\n")
        chunks.append(orjson.dumps({**outcome_rec, "client_order_id": "fo17" if cid in open_ids else cid}) + b"\n")
    path.write_bytes(b"".join(chunks))
    journal = OrderJournal(path)
    assert ids(journal) == ["fo25000", "fo49999"]  # fo17's outcome came (twice) before fo25000's intent
    assert journal.known("fo0") and journal.known("fo49999") and not journal.known("fo50000")
    assert journal.venues() == {"paper", "bybit"}
    assert journal._records == 100_000


# -- 7. compaction ---------------------------------------------------------------------------------

def build(path: Path, n: int = 60) -> OrderJournal:
    """n intents (fo1..fo4 on bybit), every one but fo0/fo7/fo14... followed by its outcome."""
    journal = open_journal(path)
    for i in range(n):
        intent(journal, f"fo{i}", i, venue="bybit" if 0 < i < 5 else "paper")
        if i % 7:
            journal.record_outcome(f"fo{i}", status="filled")
    return journal


def test_compaction_keeps_unfinished_intents_the_tail_and_every_venue(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = build(path)
    original = path.read_bytes().splitlines()
    unfinished = ids(journal)
    archived = journal.compact(keep_last=10)
    new = path.read_bytes().splitlines()
    meta = json.loads(new[0])
    assert meta["event"] == "meta" and meta["venues"] == ["bybit", "paper"]
    archive = tmp_path / meta["archived_to"]
    assert re.fullmatch(rf"{ARCHIVE_DIR}/orders-{STAMP}\.jsonl\.gz", meta["archived_to"])
    removed = gzip.decompress(archive.read_bytes()).splitlines()
    assert archived == len(removed) == meta["archived_records"]
    kept = new[1:]
    assert sorted(kept + removed) == sorted(original)  # nothing lost, nothing duplicated
    assert kept == [line for line in original if line in set(kept)]  # original order
    assert kept[-10:] == original[-10:]
    reloaded = open_journal(path)
    assert ids(reloaded) == ids(journal) == unfinished and reloaded.venues() == journal.venues() == {"bybit", "paper"}
    assert not journal.known("fo1") and journal.known("fo59") and journal.known("fo0")
    assert len(journal._seen) <= 10 + len(unfinished)
    journal.check()  # identity follows the new file
    intent(journal, "foNEW", 3)
    assert ids(open_journal(path)) == unfinished + ["foNEW"]
    # a second compaction carries the venues of the first meta record
    for i in range(100, 120):
        intent(journal, f"fo{i}", i)
        journal.record_outcome(f"fo{i}", status="filled")
    assert journal.compact(keep_last=5) and open_journal(path).venues() == {"bybit", "paper"}
    assert len(list((tmp_path / ARCHIVE_DIR).iterdir())) == 2
    assert journal.compact(keep_last=5) is None


def test_compaction_keeps_repair_records_and_the_outcomes_of_unresolved_ids(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = build(path, 20)
    journal.close()
    with open(path, "ab") as handle:
        handle.write(b'{"event":"intent","client_order_id":"foLOST","si\n')
    repair_journal(path)
    journal = open_journal(path)
    journal.record_outcome("foLOST", status="not_found", error="checked by hand")
    for i in range(100, 130):
        intent(journal, f"fo{i}", i)
        journal.record_outcome(f"fo{i}", status="filled")
    journal.compact(keep_last=3)
    reloaded = open_journal(path)
    assert reloaded.repaired and reloaded.unresolved_ids == [] and ids(reloaded) == ids(journal)


@pytest.mark.parametrize("step", ["archive", "between", "replace"])
def test_a_crash_during_compaction_leaves_the_old_journal_complete(tmp_path, monkeypatch, step):
    import reconciler.journal as module

    path = tmp_path / "orders.jsonl"
    journal = build(path)
    before = path.read_bytes()
    unfinished, venues = ids(journal), journal.venues()

    def crash(*args, **kwargs):
        raise OSError(errno.EIO, "simulated crash")

    if step == "archive":  # while the archive is written (its partial file is removed)
        real_write = os.write

        def write(fd, data):
            if fd != journal._fd and os.fstat(fd).st_size > 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, bytes(data[:10]))

        monkeypatch.setattr(os, "write", write)
    elif step == "between":  # archive written and fsynced, journal not replaced yet
        monkeypatch.setattr(module, "atomic_write_bytes", crash)
    else:  # the temp journal is written, the rename fails
        monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(JournalWriteError):
        journal.compact(keep_last=10)
    monkeypatch.undo()
    assert path.read_bytes() == before and not list(tmp_path.glob(".orders.jsonl.*"))
    fresh = open_journal(path)
    assert ids(fresh) == unfinished and fresh.venues() == venues
    if step == "archive":
        assert list((tmp_path / ARCHIVE_DIR).iterdir()) == []
    else:  # a redundant archive is left; it only repeats records the journal still holds
        (archive,) = (tmp_path / ARCHIVE_DIR).iterdir()
        assert set(gzip.decompress(archive.read_bytes()).splitlines()) <= set(before.splitlines())
    journal.check()  # the object still owns the old file and keeps working
    intent(journal, "foNEW", 1)
    assert journal.compact(keep_last=10) and ids(open_journal(path)) == unfinished + ["foNEW"]


def test_compact_if_needed_only_past_the_threshold(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = build(path, 30)  # 30 intents + 25 outcomes = 55 records
    before = path.read_bytes()
    assert journal.compact_if_needed(100, keep_last=10) is None and path.read_bytes() == before
    # kept: the last 10 records (fo24's outcome .. fo29, with fo28's intent) + the intents of fo0, 7, 14, 21
    assert journal.compact_if_needed(50, keep_last=10) == 55 - 10 - 4
    assert journal.compact_if_needed(50, keep_last=10) is None
    with pytest.raises(ValueError, match="keep_last"):
        journal.compact_if_needed(10, keep_last=10)


def test_a_damaged_journal_is_never_compacted(tmp_path):
    path = tmp_path / "orders.jsonl"
    journal = build(path, 20)
    with open(path, "ab") as handle:
        handle.write(b"not json\n")
    before = path.read_bytes()
    with pytest.raises(JournalDamaged):
        journal.compact(keep_last=2)
    assert path.read_bytes() == before and not (tmp_path / ARCHIVE_DIR).exists()
