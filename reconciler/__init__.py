"""The reconciler: strategies' positions x portfolio weights -> exchange orders, exactly once.

Layout (pure core, I/O at the edges): :mod:`reconciler.targets` and
:mod:`reconciler.plan` are pure; :mod:`reconciler.venues.paper` (SQLite paper
exchange), :mod:`reconciler.venues.ccxt_venue` (ccxt), :mod:`reconciler.journal`
(orders.jsonl), :mod:`reconciler.engine` (one cycle), :mod:`reconciler.loop`
(polling) and :mod:`reconciler.cli` do the I/O. Run it with
``fastopt reconcile`` or ``python -m reconciler``.
"""
from __future__ import annotations
