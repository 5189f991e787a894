"""orders.jsonl: intents without outcomes are exactly the unfinished ones, across restarts and torn lines."""
from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from reconciler.journal import OrderJournal, client_order_id
from reconciler.model import PlannedOrder


def order(i: int) -> PlannedOrder:
    return PlannedOrder("paper", f"S{i % 3}/USDT:USDT", "buy" if i % 2 else "sell", Decimal(i + 1) / 100, False,
                        "adjust", 100.0 + i)


@given(ops=st.lists(st.tuples(st.sampled_from(["intent", "outcome", "restart"]), st.integers(0, 9)), max_size=40),
       torn=st.booleans())
def test_unfinished_intents_match_a_simple_model(tmp_path_factory, ops, torn):
    path = tmp_path_factory.mktemp("j") / "orders.jsonl"
    journal = OrderJournal(path)
    model: dict[str, None] = {}
    ids = [client_order_id(cycle_id="c", order=order(i), index=i) for i in range(10)]
    for op, i in ops:
        cid = ids[i]
        if op == "intent" and not journal.known(cid):
            journal.record_intents([(cid, order(i), 1.0, "c")])
            model[cid] = None
        elif op == "outcome" and cid in model:
            journal.record_outcome(cid, status="filled", filled=1.0)
            del model[cid]
        elif op == "restart":
            journal.close()
            journal = OrderJournal(path)
    journal.close()
    if torn:
        with open(path, "ab") as handle:
            handle.write(b'{"event":"outcome","client_order_id":"' + ids[0].encode()[:10])
    assert [i.client_order_id for i in OrderJournal(path).unfinished()] == list(model)


def test_client_order_ids_are_deterministic_short_and_distinct():
    a = client_order_id(cycle_id="c1", order=order(1), index=0)
    assert a == client_order_id(cycle_id="c1", order=order(1), index=0)
    assert len(a) <= 36 and a.isalnum()
    others = {client_order_id(cycle_id=c, order=order(i), index=k) for c in ("c1", "c2") for i in range(5)
              for k in range(3)}
    assert len(others) == 30
