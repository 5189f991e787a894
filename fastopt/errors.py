"""Error taxonomy shared by the library and the CLI.

Every error a user can cause carries an exit code and a one-line message that
names the file (when there is one) and the reason. The CLI prints ``str(err)``
and exits with ``err.exit_code``; it never shows a traceback for these.
"""
from __future__ import annotations

from os import PathLike


class FastoptError(Exception):
    """Base class of every expected failure (exit code 1: generic failure)."""

    exit_code: int = 1

    def __init__(self, message: str, *, path: str | PathLike[str] | None = None) -> None:
        self.path = None if path is None else str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(FastoptError):
    """Bad input or usage: malformed file, invalid option, infeasible bounds (exit 2)."""

    exit_code = 2


class NothingToDo(FastoptError):
    """Nothing to act on: no valid strategy, no rising curve, too little history (exit 3)."""

    exit_code = 3


EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOTHING = 3
EXIT_UNHEALTHY = 4

#: The exit-code table every command follows, shown at the end of each ``--help`` (README "Commands"
#: holds the same table; tests/test_exit_codes.py checks both).
EXIT_CODES = """exit codes (every fastopt command):
  0  ok
  1  the operation failed (a strategy or check failed, a reconcile cycle not on target, an allocator failed)
  2  bad input or usage (bad option, missing or malformed file, an allocator module without allocate, any
     skipped strategy under --strict)
  3  nothing to do (no strategy, too little history, no rising curve, an implausible in-sample fit)
  4  status unhealthy (fastopt status only)
"""
