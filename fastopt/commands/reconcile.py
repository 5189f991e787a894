"""`fastopt reconcile`: see :mod:`reconciler.cli` (shared with `python -m reconciler`)."""
from __future__ import annotations

from reconciler.cli import SUMMARY, configure, run

__all__ = ["SUMMARY", "configure", "run"]
