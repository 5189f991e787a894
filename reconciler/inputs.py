"""Reading the strategies' state files safely, with a last-good cache.

- A corrupt or half-written state.json keeps that strategy's last good state
  and warns; when there is no good state yet it is re-read twice 5 ms apart
  (a writer caught mid-write) and then the whole cycle is refused (InputError:
  no orders). Counting it as flat would close the positions it holds, i.e.
  trade on a broken file.
- A weighted strategy whose folder exists but has no state.json counts as
  flat and warns once.
- A weighted strategy with no folder at all under ``strategies`` is refused
  (:func:`unknown_weighted`): most likely a wrong ``--strategies`` path or a
  typo in the config, and trading on it would silently drop a strategy.
- A state whose ``updated_at`` (else the file's mtime) is older than
  ``stale_after_s`` warns (once per state version).
- A position whose absolute value exceeds ``max_abs_position`` (a signed
  fraction of the strategy's allocated capital; default 3) makes the file bad,
  like a corrupt one: the last good state is kept (or, with none, the cycle is
  refused) and an error is reported. One absurd value (1e9) would otherwise
  make the gross cap scale every other target to zero and concentrate the book.

Files are re-parsed only when their (mtime, size, inode) changed, so a cycle
over hundreds of strategies costs one ``stat`` each.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

from fastopt.errors import InputError
from fastopt.files.state import StrategyState, parse_state, read_state

Warn = Callable[[str], None]
#: default bound on |position| in a state file (signed fraction of allocated capital)
DEFAULT_MAX_ABS_POSITION = 3.0
FileKey = tuple[int, int, int]


def file_key(path: str | Path) -> FileKey | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def unknown_weighted(strategies_dir: Path, names: Iterable[str]) -> list[str]:
    """Names with a weight > 0 that have no folder under ``strategies_dir`` (one directory scan)."""
    try:
        folders = {e.name for e in os.scandir(strategies_dir) if e.is_dir()}
    except FileNotFoundError:
        folders = set()
    return sorted(n for n in names if n not in folders)


class StateReader:
    """Loads ``strategies/<name>/state.json`` for the weighted strategies."""

    def __init__(self, strategies_dir: str | os.PathLike[str], *, stale_after_s: float, warn: Warn,
                 max_abs_position: float = DEFAULT_MAX_ABS_POSITION, error: Warn | None = None) -> None:
        self.dir = Path(strategies_dir)
        self.stale_after_s = stale_after_s
        self.max_abs_position = max_abs_position
        self.warn = warn
        self.error = error or warn
        self._good: dict[str, StrategyState] = {}
        self._keys: dict[str, FileKey] = {}
        self._warned_missing: set[str] = set()
        self._paths: dict[str, str] = {}
        self._warned_stale: dict[str, FileKey] = {}  # name -> version warned about (bounded by the names)
        #: bad files met by the last :meth:`read` whose last good state was used instead (one line each)
        self.problems: list[str] = []

    def read(self, names: Iterable[str], *, now: datetime | None = None) -> dict[str, StrategyState]:
        now = now or datetime.now(timezone.utc)
        out: dict[str, StrategyState] = {}
        self.problems = []
        paths = self._paths
        for name in names:
            path = paths.get(name)
            if path is None:
                path = paths[name] = os.path.join(self.dir, name, "state.json")
            key = file_key(path)
            if key is None:
                if name not in self._warned_missing:
                    self._warned_missing.add(name)
                    self.warn(f"{path}: no state file; strategy {name} counts as flat")
                self._good.pop(name, None)
                self._keys.pop(name, None)
                continue
            self._warned_missing.discard(name)
            if self._keys.get(name) != key:
                try:
                    state, read_key = self._read_with_retry(path, first_time=name not in self._good)
                except InputError as err:
                    if name not in self._good:
                        # counting it as flat would close whatever it holds: an order from a broken file
                        raise InputError(f"refusing to trade: {err}, and strategy {name} has no earlier "
                                         "good state in this run") from None
                    self.error(f"{err}; keeping its last good state")
                    self.problems.append(f"{err} (last good state used)")
                    out[name] = self._good[name]
                    continue
                self._good[name] = state
                # changed while being read: the parsed text was complete JSON, so use it,
                # but leave the key unset so the next cycle reads the file again
                if read_key == key:
                    self._keys[name] = key
                else:
                    self._keys.pop(name, None)
            state = self._good[name]
            out[name] = state
            self._check_stale(name, path, key, state, now)
        return out

    def _read_with_retry(self, path: str, *, first_time: bool) -> tuple[StrategyState, FileKey]:
        """Read a state file and the key of what was read; with no good state yet, give a writer
        caught mid-write 2 x 5 ms to finish."""
        for attempt in range(3 if first_time else 1):
            try:
                state, key = _read_fast(path)
                self._check_bound(path, state)
                return state, key
            except InputError:
                if attempt == (2 if first_time else 0):
                    raise
                time.sleep(0.005)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_bound(self, path: str, state: StrategyState) -> None:
        for symbol, position in state.positions.items():
            if abs(position) > self.max_abs_position:
                raise InputError(f"position {position:g} of {symbol} is outside +-{self.max_abs_position:g} "
                                 "(a signed fraction of the strategy's capital; --max-position)", path=path)

    def _check_stale(self, name: str, path: str, key: FileKey, state: StrategyState, now: datetime) -> None:
        stamp = state.updated_at or datetime.fromtimestamp(key[0] / 1e9, tz=timezone.utc)
        age = (now - stamp).total_seconds()
        if age > self.stale_after_s and self._warned_stale.get(name) != key:
            self._warned_stale[name] = key
            self.warn(f"{path}: state is stale ({age / 3600:.1f} h old, limit {self.stale_after_s / 3600:.1f} h)")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _read_fast(path: str) -> tuple[StrategyState, FileKey]:
    """Bytes read + strict JSON + :func:`parse_state`, and the (mtime, size, inode) of the open file
    after the read. Any failure defers to :func:`read_state` for the exact one-line reason."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            chunks = [os.read(fd, max(st.st_size, 1) + 1)]
            while chunks[-1]:  # the file may have grown since fstat
                chunks.append(os.read(fd, 65536))
            st = os.fstat(fd)
        finally:
            os.close(fd)
        state = parse_state(_DECODER.decode(b"".join(chunks).decode("utf-8")))
    except (OSError, ValueError, UnicodeDecodeError):
        state = read_state(path)  # raises InputError naming the file and the reason
        st = os.stat(path)
    return state, (st.st_mtime_ns, st.st_size, st.st_ino)
