"""Strategy authors' toolkit: what a ``strategies/<name>/strategy.py`` imports.

- ``strategy`` - ``run_strategy`` (backtest -> stats.json, ``--live`` -> state.json) and the
  indicators (``sma``, ``rsi``, ``rolling_std``, ...);
- ``prices`` - daily prices: the embedded real history, a cache, the synthetic market on request.

Depends on ``fastopt.files`` and the base modules; never on the optimizer or the walk-forward.
"""
