"""orders.jsonl: intents without outcomes are exactly the unfinished ones, across restarts and torn lines."""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest

from hypothesis import given
from hypothesis import strategies as st

from reconciler.journal import CLIENT_ID_PREFIX, OrderJournal, client_order_id
from reconciler.model import PlannedOrder


def order(i: int) -> PlannedOrder:
    return PlannedOrder("paper", f"S{i % 3}/USDT:USDT", "buy" if i % 2 else "sell", Decimal(i + 1) / 100, False,
                        "adjust", 100.0 + i)


@given(ops=st.lists(st.tuples(st.sampled_from(["intent", "outcome", "restart", "tear"]), st.integers(0, 9),
                              st.integers(1, 400)), max_size=40),
       torn=st.booleans())
def test_unfinished_intents_match_a_simple_model(tmp_path_factory, ops, torn):
    """Tears are appends cut short (by this or another process): never glued onto, never counted."""
    path = tmp_path_factory.mktemp("j") / "orders.jsonl"
    warnings: list[str] = []
    journal = OrderJournal(path, warn=warnings.append)
    model: dict[str, None] = {}
    ids = [client_order_id(cycle_id="c", order=order(i), index=i) for i in range(10)]
    for op, i, cut in ops:
        cid = ids[i]
        if op == "intent" and not journal.known(cid):
            journal.record_intents([(cid, order(i), 1.0, "c")])
            model[cid] = None
        elif op == "outcome" and cid in model:
            journal.record_outcome(cid, status="filled", filled=1.0)
            del model[cid]
        elif op == "restart":
            journal.close()
            journal = OrderJournal(path, warn=warnings.append)
        elif op == "tear" and path.exists():
            record = json.dumps({"event": "intent" if cut % 2 else "outcome", "ts": "t", "client_order_id": ids[i],
                                 "venue": "paper", "symbol": "S0/USDT:USDT", "side": "buy", "amount": "0.01"})
            with open(path, "ab") as handle:
                handle.write(record.encode()[:cut])
    journal.close()
    if torn:
        with open(path, "ab") as handle:
            handle.write(b'{"event":"outcome","client_order_id":"' + ids[0].encode()[:10])
    final = OrderJournal(path, warn=warnings.append)
    assert [i.client_order_id for i in final.unfinished()] == list(model)
    assert not path.exists() or path.read_bytes()[-1:] in (b"", b"\n")
    assert all("torn last line" in w and ".torn-" in w for w in warnings)


def test_client_order_ids_are_deterministic_short_and_distinct():
    a = client_order_id(cycle_id="c1", order=order(1), index=0)
    assert a == client_order_id(cycle_id="c1", order=order(1), index=0)
    assert len(a) <= 36 and a.isalnum()
    others = {client_order_id(cycle_id=c, order=order(i), index=k) for c in ("c1", "c2") for i in range(5)
              for k in range(3)}
    assert len(others) == 30


def test_the_default_prefix_keeps_the_id_format_and_other_prefixes_keep_32_chars():
    basis = f"c1|0|{order(1).venue}|{order(1).symbol}|{order(1).side}|{order(1).amount}|{order(1).leg}"
    assert CLIENT_ID_PREFIX == "fo"
    expected = "fo" + hashlib.sha256(basis.encode()).hexdigest()[:30]
    assert client_order_id(cycle_id="c1", order=order(1), index=0) == expected
    other = client_order_id(cycle_id="c1", order=order(1), index=0, prefix="bot7")
    assert other.startswith("bot7") and len(other) == 32 and other.isalnum()
    for bad in ("", "has-dash", "waytoolong", "é"):
        with pytest.raises(ValueError, match="prefix"):
            client_order_id(cycle_id="c1", order=order(1), index=0, prefix=bad)
