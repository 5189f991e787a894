"""The run lock: two reconcilers never trade one config folder, whatever happens to reconciler.lock.

The holder is always a real separate process (``python -c``), so the kernel's lock semantics are the
ones under test; every wait on it is bounded.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastopt.errors import FastoptError
from reconciler.runlock import LOCK_NAME, RunLock

REPO_ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 30.0  # upper bound on any wait for the holder process

HOLD = """
import sys, time
from reconciler.runlock import RunLock
lock = RunLock.acquire(sys.argv[1])
print('locked', flush=True)
time.sleep(120)
"""

# What earlier versions did (reconciler.cli.hold_run_lock before the run lock moved to the folder).
HOLD_EARLIER_VERSION = """
import fcntl, os, sys, time
fd = os.open(os.path.join(sys.argv[1], 'reconciler.lock'), os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print('locked', flush=True)
time.sleep(120)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _readline(proc: subprocess.Popen, timeout_s: float = WAIT_S) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    if not ready:
        raise AssertionError(f"holder printed nothing within {timeout_s} s")
    return proc.stdout.readline().strip()


@pytest.fixture
def start_holder():
    procs: list[subprocess.Popen] = []

    def start(folder: Path, code: str = HOLD) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO_ROOT)
        procs.append(proc)
        line = _readline(proc)
        assert line == "locked", (line, proc.stderr.read() if proc.poll() is not None else "")
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=WAIT_S)
        proc.stdout.close()
        proc.stderr.close()


def _refused(folder: Path) -> str:
    with pytest.raises(FastoptError) as info:
        RunLock.acquire(folder)
    message = str(info.value)
    assert "\n" not in message
    assert "another reconciler (" in message and f"is running on {folder.resolve()}" in message
    assert message.endswith("; not starting a second one")
    return message


def test_a_second_reconciler_is_refused_and_told_who_holds_the_folder(tmp_path, start_holder):
    holder = start_holder(tmp_path)
    info = json.loads((tmp_path / LOCK_NAME).read_text())
    assert info["pid"] == holder.pid and info["folder"] == str(tmp_path.resolve())
    message = _refused(tmp_path)
    assert f"pid {holder.pid}, started {info['started_at']}" in message


def test_a_second_process_is_refused_too(tmp_path, start_holder):
    start_holder(tmp_path)
    code = ("import sys\nfrom reconciler.runlock import RunLock\nfrom fastopt.errors import FastoptError\n"
            "try:\n    RunLock.acquire(sys.argv[1])\nexcept FastoptError as e:\n    print(e); sys.exit(1)\n"
            "print('acquired')\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                          env=_env(), cwd=REPO_ROOT, timeout=WAIT_S)
    assert proc.returncode == 1 and "another reconciler" in proc.stdout, (proc.stdout, proc.stderr)


def test_deleting_the_lock_file_does_not_let_a_second_reconciler_in(tmp_path, start_holder):
    start_holder(tmp_path)
    os.unlink(tmp_path / LOCK_NAME)
    assert "owner unknown" in _refused(tmp_path)
    assert not (tmp_path / LOCK_NAME).exists()  # the refused one wrote nothing


@pytest.mark.parametrize("replacement", ["garbage", "json of another pid", "fifo", "directory"])
def test_replacing_the_lock_file_does_not_let_a_second_reconciler_in(tmp_path, start_holder, replacement):
    start_holder(tmp_path)
    path = tmp_path / LOCK_NAME
    os.unlink(path)
    if replacement == "garbage":
        path.write_bytes(b"\x00\xff not json\n" * 1000)
    elif replacement == "json of another pid":
        tmp = tmp_path / "new.lock"
        tmp.write_text(json.dumps({"pid": 1, "started_at": "2001-01-01T00:00:00Z"}))
        os.replace(tmp, path)
    elif replacement == "fifo":  # must not hang the refusal (reading a FIFO with no writer blocks)
        os.mkfifo(path)
    else:
        path.mkdir()
    message = _refused(tmp_path)
    if replacement == "json of another pid":
        assert "pid 1, started 2001-01-01T00:00:00Z" in message  # informational only: it is not trusted


def test_a_lock_left_by_a_killed_reconciler_never_blocks(tmp_path, start_holder):
    holder = start_holder(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=WAIT_S)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid  # the stale file is still there
    started = time.monotonic()
    with RunLock.acquire(tmp_path) as lock:  # first attempt, no waiting
        assert time.monotonic() - started < 5.0
        assert lock.held and json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_symlinked_path_to_the_same_folder_conflicts(tmp_path, start_holder):
    real = tmp_path / "config"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    start_holder(link)  # holder locks through the link, the second one names the folder itself
    with pytest.raises(FastoptError, match="another reconciler"):
        RunLock.acquire(real)
    with pytest.raises(FastoptError, match="another reconciler"):
        RunLock.acquire(tmp_path / "link" / ".." / "config")


def test_a_reconciler_of_an_earlier_version_and_this_one_exclude_each_other(tmp_path, start_holder):
    start_holder(tmp_path, HOLD_EARLIER_VERSION)
    assert "owner unknown" in _refused(tmp_path)


def test_an_earlier_version_started_next_to_this_one_is_refused(tmp_path):
    with RunLock.acquire(tmp_path):
        code = HOLD_EARLIER_VERSION.replace("print('locked', flush=True)\ntime.sleep(120)", "print('locked')")
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                              env=_env(), cwd=REPO_ROOT, timeout=WAIT_S)
        assert proc.returncode == 1, proc.stderr
        assert "BlockingIOError" in proc.stderr or "PermissionError" in proc.stderr, proc.stderr


def test_the_same_process_cannot_take_the_folder_twice(tmp_path):
    with RunLock.acquire(tmp_path):
        _refused(tmp_path)
    with RunLock.acquire(tmp_path) as again:  # released by the with block
        assert again.held


def test_verify_rewrites_a_deleted_or_replaced_lock_file_and_keeps_the_lock(tmp_path):
    with RunLock.acquire(tmp_path) as lock:
        path = tmp_path / LOCK_NAME
        assert lock.verify() is None and lock.verify() is None
        os.unlink(path)
        warning = lock.verify()
        assert "was deleted" in warning and "still holds" in warning and "\n" not in warning
        assert json.loads(path.read_text())["pid"] == os.getpid()
        assert lock.verify() is None
        path.write_text("edited by hand")  # in place: same inode, new content
        assert "replaced or modified" in lock.verify()
        assert json.loads(path.read_text())["pid"] == os.getpid()
        tmp = tmp_path / "x"
        tmp.write_text("{}")
        os.replace(tmp, path)
        assert "replaced or modified" in lock.verify()
        # (checked before reading the file here: closing any descriptor of a file drops this process's lockf)
        code = HOLD_EARLIER_VERSION.replace("print('locked', flush=True)\ntime.sleep(120)", "print('locked')")
        earlier = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                                 env=_env(), cwd=REPO_ROOT, timeout=WAIT_S)
        assert earlier.returncode == 1  # the rewritten file carries the earlier versions' lock again
        assert json.loads(path.read_text())["pid"] == os.getpid()
        assert not list(tmp_path.glob(f".{LOCK_NAME}.*.tmp"))


def test_verify_stops_the_holder_when_the_folder_itself_is_replaced(tmp_path):
    folder = tmp_path / "config"
    folder.mkdir()
    lock = RunLock.acquire(folder)
    try:
        folder.rename(tmp_path / "old")
        folder.mkdir()  # a deploy put a new folder in its place: another reconciler could lock it
        other = RunLock.acquire(folder)
        other.release()
        with pytest.raises(FastoptError, match="no longer the folder this reconciler locked"):
            lock.verify()
        os.rmdir(folder)
        with pytest.raises(FastoptError, match="cannot be checked"):
            lock.verify()
    finally:
        lock.release()


def test_verify_stops_the_holder_when_a_deploy_repoints_the_config_symlink(tmp_path):
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.mkdir()
    v2.mkdir()
    current = tmp_path / "current"
    current.symlink_to(v1, target_is_directory=True)
    config = current / "portfolio_config.json"
    with RunLock.acquire(config.resolve().parent, config_path=config) as lock:
        assert lock.folder == v1.resolve() and lock.verify() is None
        swap = tmp_path / "current.new"
        swap.symlink_to(v2, target_is_directory=True)
        os.replace(swap, current)
        with pytest.raises(FastoptError, match="replaced or re-pointed"):
            lock.verify()
    with pytest.raises(ValueError, match="is not in the folder to lock"):
        RunLock.acquire(v1, config_path=config)  # the symlink names v2 now
    with RunLock.acquire(v2, config_path=config):  # and the lock was given back on the way out
        pass


def test_a_missing_folder_or_a_released_lock_is_a_one_line_error(tmp_path):
    with pytest.raises(FastoptError, match=r"cannot lock config folder .*missing: ENOENT"):
        RunLock.acquire(tmp_path / "missing")
    lock = RunLock.acquire(tmp_path)
    lock.release()
    lock.release()  # idempotent
    with pytest.raises(FastoptError, match="released"):
        lock.verify()


def test_release_keeps_a_lock_file_someone_else_wrote(tmp_path):
    lock = RunLock.acquire(tmp_path)
    (tmp_path / LOCK_NAME).write_text("someone's note")
    lock.release()
    assert (tmp_path / LOCK_NAME).read_text() == "someone's note"
    with RunLock.acquire(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_an_unwritable_lock_file_is_reported_once_and_the_lock_still_holds(tmp_path, monkeypatch):
    import reconciler.runlock as runlock

    with RunLock.acquire(tmp_path) as lock:
        real_open = os.open

        def full_disk(path, flags, *args):
            if str(path).endswith(".tmp"):
                raise OSError(28, "No space left on device", str(path))
            return real_open(path, flags, *args)

        monkeypatch.setattr(runlock.os, "open", full_disk)
        os.unlink(tmp_path / LOCK_NAME)
        warning = lock.verify()
        assert "cannot be rewritten: ENOSPC" in warning and "still holds" in warning
        assert lock.verify() is None  # once, not every poll
        _refused(tmp_path)
        monkeypatch.setattr(runlock.os, "open", real_open)
        assert "rewritten" in lock.verify()
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_the_lock_file_is_never_followed_through_a_symlink(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / LOCK_NAME).symlink_to(target)
    with RunLock.acquire(tmp_path) as lock:
        assert target.read_text() == "keep me"
        assert not (tmp_path / LOCK_NAME).is_symlink()
        os.unlink(tmp_path / LOCK_NAME)
        (tmp_path / LOCK_NAME).symlink_to(target)
        assert "replaced or modified" in lock.verify()
        assert target.read_text() == "keep me"
