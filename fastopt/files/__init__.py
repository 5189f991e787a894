"""Layer 1, files: every file format fastopt reads or writes, and the panel they load into.

- ``stats`` (stats.json: a strategy's daily returns), ``state`` (state.json: its live position),
  ``config`` (portfolio_config.json), ``atomic`` (temp + fsync + os.replace writes);
- ``loader`` - a strategies folder into a ``panel.Panel`` (Polars), with the reasons for skips.

Depends only on the base modules (``fastopt.errors``, ``fastopt.metrics``); never on the optimizer.
"""
