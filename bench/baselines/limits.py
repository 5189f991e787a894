"""Wall-time limits for iterative baselines (scipy ``minimize`` callbacks)."""
from __future__ import annotations

import time
from collections.abc import Callable


class TimeLimitExceeded(Exception):
    """A baseline ran past its wall-time budget; ``elapsed_s`` and ``iterations`` say how far it got."""

    def __init__(self, elapsed_s: float, iterations: int) -> None:
        super().__init__(f"stopped after {elapsed_s:.1f} s at iteration {iterations}")
        self.elapsed_s = elapsed_s
        self.iterations = iterations


def deadline_callback(time_limit_s: float | None) -> Callable[..., None] | None:
    """A scipy ``callback`` raising TimeLimitExceeded once ``time_limit_s`` has passed (None: no limit)."""
    if time_limit_s is None:
        return None
    start = time.perf_counter()
    iterations = 0

    def callback(*_args: object) -> None:
        nonlocal iterations
        iterations += 1
        elapsed = time.perf_counter() - start
        if elapsed > time_limit_s:
            raise TimeLimitExceeded(elapsed, iterations)

    return callback
