"""`fastopt dashboard`: a read-only local web page of the reconciler's state (docs/dashboard.md).

:mod:`fastopt.dashboard.app` holds the pure data functions (importable without the ``dashboard``
extra) and :func:`~fastopt.dashboard.app.create_app`, the Starlette application (needs
``pip install 'fastopt[dashboard]'``). The page and its script ship in ``static/``.
"""
from __future__ import annotations

EXTRA_HINT = "pip install 'fastopt[dashboard]'"
