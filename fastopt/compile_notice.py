"""One line on stderr when numba compiles fastopt's kernels (a first run after install or upgrade).

Kernels are compiled with ``cache=True``: the first call of each compiles it (seconds) and
stores the machine code in numba's cache; later runs only load it (milliseconds). A command
that would sit silent for ~10 s while compiling says so once instead. numba's
``numba:compile`` event fires only on a cache miss, so a warm run prints nothing.
``install()`` is called by ``fastopt.optimize.kernels`` (which every kernel module imports);
``fastopt warmup`` silences it (it reports its own timings). Imported only by kernel modules
(it imports numba).
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any

from numba.core import event as numba_event

MESSAGE = (
    "fastopt: compiling numba kernels (first run after install or upgrade; cached for later runs; "
    "`fastopt warmup` compiles them all ahead)"
)

_lock = threading.Lock()
_installed = False
_announced = False
_silenced = False
_compile_seconds = 0.0


def silence() -> None:
    """No notice in this process (``fastopt warmup`` prints its own report)."""
    global _silenced
    _silenced = True


def compile_seconds() -> float:
    """Wall seconds spent compiling (outermost compiles only) in this process so far."""
    return _compile_seconds


def announced() -> bool:
    """True once the notice was printed in this process."""
    return _announced


def install() -> None:
    """Register the numba listener once per process (idempotent, thread-safe)."""
    global _installed
    with _lock:
        if _installed:
            return
        numba_event.register("numba:compile", _Listener())
        _installed = True


def _announce() -> None:
    global _announced
    with _lock:
        if _announced or _silenced:
            _announced = _announced or _silenced
            return
        _announced = True
    try:
        print(MESSAGE, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # closed or broken stderr: compiling is not an error
        pass


class _Listener(numba_event.Listener):
    """Prints the notice at the first compile; sums the time of outermost compiles."""

    def __init__(self) -> None:
        self._depth = 0
        self._started = 0.0

    def on_start(self, event: Any) -> None:
        if self._depth == 0:
            self._started = time.perf_counter()
            _announce()
        self._depth += 1

    def on_end(self, event: Any) -> None:
        global _compile_seconds
        self._depth = max(self._depth - 1, 0)
        if self._depth == 0:
            _compile_seconds += time.perf_counter() - self._started
