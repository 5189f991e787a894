"""One reconciler per config folder: an exclusive ``flock`` held on the folder itself.

Why the folder and not a lock file: a lock on ``reconciler.lock`` is defeated by
deleting or replacing that file (a person, a cleanup script, a deploy): the next
reconciler locks a new file and both send every order. The folder holding the
config, the journal and the paper book cannot be swapped under a running
reconciler without :meth:`RunLock.verify` noticing, and deleting a file in it
does not touch the lock. ``flock`` belongs to the open folder descriptor: the
kernel drops it when the process dies (kill -9 included), so a lock never
outlives its process and a stale one never blocks a restart. (A child forked
without exec would inherit the descriptor and keep the lock while it lives;
the descriptor is close-on-exec.)

``reconciler.lock`` is still written, atomically, with the holder's pid, host,
start time and command, for people and for the refusal message. It is never
trusted: only the ``flock`` decides. While held it also carries the POSIX
``lockf`` lock that earlier versions took on it, so an earlier-version
reconciler started next to this one refuses too, and :meth:`RunLock.acquire`
refuses while an earlier-version reconciler holds that lock. (A process drops its POSIX
locks on a file when it closes any descriptor of it: nothing in the reconciler opens
reconciler.lock besides this module.)
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import socket
import stat
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from fastopt.errors import FastoptError

LOCK_NAME = "reconciler.lock"
#: the refusal message reads at most this many bytes of a (possibly foreign) reconciler.lock
_INFO_MAX_BYTES = 4096
#: attempts when the folder is replaced between opening and locking it
_ATTEMPTS = 3


def _errno_text(exc: OSError) -> str:
    """``ENOSPC (No space left on device)`` from an OSError."""
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return f"{name} ({exc.strerror or exc})"


def _dir_identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _file_state(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What tells our reconciler.lock from a replaced, rewritten or touched one (dev, inode, type, size, mtime ns)."""
    return st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns


def _clean(value: object, limit: int = 80) -> str:
    """A printable one-line excerpt of an untrusted value."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _owner(folder: Path) -> str:
    """``pid 123, started 2030-01-01T00:00:00Z`` from ``folder/reconciler.lock``, or why it is unknown.

    Never blocks (a FIFO planted under the name is opened non-blocking and ignored) and never trusts
    the content: it only goes into the refusal message.
    """
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return f"owner unknown: no readable {LOCK_NAME}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return f"owner unknown: {LOCK_NAME} is not a regular file"
        raw = os.read(fd, _INFO_MAX_BYTES)
    except OSError:
        return f"owner unknown: no readable {LOCK_NAME}"
    finally:
        os.close(fd)
    try:
        info = json.loads(raw)
        pid = info["pid"]
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return f"owner unknown: {LOCK_NAME} names no pid"
    host = info.get("host")
    where = f" on {_clean(host, 64)}" if host and host != socket.gethostname() else ""
    started = info.get("started_at")
    return f"pid {pid}{where}" + (f", started {_clean(started, 40)}" if started else "")


def _refusal(folder: Path) -> str:
    return f"another reconciler ({_owner(folder)}) is running on {folder}; not starting a second one"


class RunLock:
    """Exclusive run lock on a config folder for the life of the holder (see the module docstring).

    Get one with :meth:`acquire`; keep the object (or just the process) alive while trading: the lock
    lives as long as its folder descriptor, i.e. until :meth:`release`, the end of a ``with`` block or
    the death of the process. There is deliberately no ``__del__``: a lost reference keeps the lock.
    """

    def __init__(self, folder: Path, watched: Path, config_path: Path | None, dir_fd: int,
                 dir_id: tuple[int, int]) -> None:
        self.folder = folder  #: the locked folder, resolved (symlinks followed)
        self.watched = watched  #: the folder as the caller named it; verify() checks it still is the locked one
        self.config_path = config_path
        self.info_path = folder / LOCK_NAME
        self._dir_fd: int | None = dir_fd
        self._dir_id = dir_id
        self._info_fd: int | None = None
        self._info_state: tuple[int, int, int, int, int] | None = None
        self._info_failure: str | None = None  # last warning about reconciler.lock not being writable
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")

    # -- taking and giving back ----------------------------------------------------------------
    @classmethod
    def acquire(cls, folder: str | os.PathLike[str], *, config_path: str | os.PathLike[str] | None = None) -> RunLock:
        """Lock ``folder`` (resolved) or raise :class:`FastoptError` (one line) naming it and the holder.

        ``config_path`` (optional): the config file whose resolved folder must stay the locked one;
        :meth:`verify` then also catches a deploy that re-points a symlink to another folder
        (ValueError when it is not in ``folder`` to begin with).
        Raises when another reconciler holds the folder (this or an earlier version), when the
        folder does not exist or cannot be locked (a file system without ``flock``: fail closed).
        """
        watched = Path(folder).absolute()
        resolved = watched.resolve()
        for _ in range(_ATTEMPTS):
            try:
                fd = os.open(resolved, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as exc:
                raise FastoptError(f"cannot lock config folder {resolved}: {_errno_text(exc)}; not starting") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise FastoptError(_refusal(resolved)) from None
                raise FastoptError(f"cannot lock config folder {resolved}: flock failed with {_errno_text(exc)} "
                                   "(a file system without flock?); not starting") from None
            locked_id = _dir_identity(os.fstat(fd))
            try:
                current_id = _dir_identity(os.stat(resolved))
            except OSError:
                current_id = None
            if current_id == locked_id:
                break
            os.close(fd)  # the folder was swapped between open and flock: lock the one the path names now
        else:
            raise FastoptError(f"cannot lock config folder {resolved}: it keeps being replaced; not starting")
        lock = cls(resolved, watched, None if config_path is None else Path(config_path).absolute(), fd, locked_id)
        try:
            if lock.config_path is not None and \
                    _dir_identity(os.stat(lock.config_path.resolve().parent)) != locked_id:
                raise ValueError(f"config {lock.config_path} is not in the folder to lock, {resolved}")
            lock._refuse_if_an_earlier_version_holds()
            try:
                lock._write_info()
            except OSError as exc:  # informational file only: the flock holds; verify() retries and says so
                lock._info_failure = f"cannot write {lock.info_path}: {_errno_text(exc)}"
        except BaseException:
            lock.release()
            raise
        return lock

    def release(self) -> None:
        """Give the lock back (idempotent); removes reconciler.lock if it is still the one this lock wrote."""
        if self._dir_fd is None:
            return
        try:
            if self._info_state is not None and \
                    _file_state(os.stat(self.info_path, follow_symlinks=False)) == self._info_state:
                os.unlink(self.info_path)  # still under the flock: no other reconciler can be writing it
        except OSError:
            pass
        if self._info_fd is not None:
            os.close(self._info_fd)
            self._info_fd = None
        os.close(self._dir_fd)
        self._dir_fd = None

    @property
    def held(self) -> bool:
        return self._dir_fd is not None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunLock({str(self.folder)!r}, held={self.held})"

    # -- checking while running ----------------------------------------------------------------
    def verify(self) -> str | None:
        """Cheap check for each poll (2-3 ``stat`` calls): a warning line to log, or None.

        Rewrites reconciler.lock when it was deleted, replaced or modified (the lock itself, the
        folder's flock, is unaffected: the warning says so). Raises :class:`FastoptError` (one line)
        when the locked folder itself was removed or replaced, or the config now resolves to another
        folder: the engine's journal and paper book are the old folder's and another reconciler may
        hold the new one, so the caller must stop trading (a restart locks the new folder).
        """
        if self._dir_fd is None:
            raise FastoptError(f"run lock on {self.folder} was released; not trading without it")
        self._check_folder(self.watched)
        if self.config_path is not None:
            self._check_folder(self.config_path.resolve().parent)
        try:
            state = _file_state(os.stat(self.info_path, follow_symlinks=False))
        except FileNotFoundError:
            state = None
        except OSError:
            state = ()
        if state == self._info_state and self._info_state is not None:
            return None
        if self._info_state is None:
            what = "missing (it could not be written before)"
        elif state is None:
            what = "deleted"
        else:
            what = "replaced or modified"
        try:
            self._write_info()
        except OSError as exc:
            warning = (f"{self.info_path} is {what} and cannot be rewritten: {_errno_text(exc)}; "
                       f"the run lock (flock on {self.folder}) still holds")
            if warning == self._info_failure:
                return None  # said already: not one line per poll while the disk is full
            self._info_failure = warning
            return warning
        self._info_failure = None
        return (f"{self.info_path} was {what} (a person, a cleanup, a deploy?); rewritten: the run lock is the "
                f"flock on {self.folder} and still holds")

    def _check_folder(self, path: Path) -> None:
        try:
            current = _dir_identity(os.stat(path))
        except OSError as exc:
            raise FastoptError(f"config folder {path} cannot be checked ({_errno_text(exc)}) while this reconciler "
                               "runs on it; stopping (restart it once the folder is back)") from None
        if current != self._dir_id:
            raise FastoptError(f"config folder {path} is no longer the folder this reconciler locked at start "
                               f"({self.folder} was replaced or re-pointed); stopping: restart it on the new folder")

    # -- reconciler.lock, for people --------------------------------------------------------
    def _refuse_if_an_earlier_version_holds(self) -> None:
        """Earlier versions held a POSIX ``lockf`` on reconciler.lock: one still running means refuse."""
        try:
            fd = os.open(self.info_path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return  # absent, a symlink, a directory or not writable: not an earlier version's live lock
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise FastoptError(_refusal(self.folder)) from None
        finally:
            os.close(fd)  # also drops the probe's own lockf

    def _write_info(self) -> None:
        """Write reconciler.lock atomically (temp + rename; no fsync: informational) and hold lockf on it."""
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": self.started_at,
            "command": _clean(shlex.join(sys.argv), 500),
            "folder": str(self.folder),
            "note": "informational: the run lock is a flock on this folder held by the pid above; "
                    "deleting or editing this file does not release it",
        }
        data = (json.dumps(info, indent=2) + "\n").encode("utf-8")
        tmp = self.folder / f".{LOCK_NAME}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what an earlier version would try to take
            except OSError:
                pass
            os.replace(tmp, self.info_path)
            state = _file_state(os.fstat(fd))
        except BaseException:
            os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        previous, self._info_fd, self._info_state = self._info_fd, fd, state
        if previous is not None:
            os.close(previous)
