"""An exclusive, OS-held lock on something a process writes (``exclusive_lock``).

The lock is ``fcntl.flock`` on a small lock file: the kernel releases it when its holder
exits, however it exits (SIGKILL included), so a lock is never left stale.  The holder
writes its pid, host and command line into the file, so a process that is refused can say
which one holds it.  Taking the lock never waits: a second writer is refused at once.

The lock file is removed on release.  A process that opened it just before (and then took
the lock on the removed file) notices that the path no longer names the file it locked and
tries again, so two processes can never both believe they hold the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from posesynth.errors import PosesynthError, os_reason


class LockError(PosesynthError, RuntimeError):
    """Another process holds the lock, or the lock file cannot be made; the message says which."""


@contextlib.contextmanager
def exclusive_lock(lock_path: str | Path, what: str) -> Iterator[None]:
    """Hold the lock at ``lock_path`` for the duration; ``what`` names the locked thing in errors."""
    lock_path = Path(lock_path)
    fd = _acquire(lock_path, what)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if _names(lock_path, fd):
                lock_path.unlink()
        os.close(fd)


def holder() -> dict[str, object]:
    """What a lock file records about the process holding it."""
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else ""
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command}


def describe_holder(record: dict[str, object]) -> str:
    """``pid 1234 on host: posesynth sample ...`` (or what is known of it)."""
    if "pid" not in record:
        return "pid unknown"
    text = f"pid {record['pid']}"
    if record.get("host") and record["host"] != socket.gethostname():
        text += f" on {record['host']}"
    return text + (f": {record['command']}" if record.get("command") else "")


def _acquire(lock_path: Path, what: str) -> int:
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LockError(f"cannot lock {what} for writing: cannot create {lock_path}: {os_reason(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = describe_holder(_read_record(fd))
            os.close(fd)
            raise LockError(f"{what} is being written by another process ({other}); wait for it to "
                            "finish, or stop it and run again") from None
        if _names(lock_path, fd):
            _write_record(fd, holder())
            return fd
        os.close(fd)  # the file was removed by a holder that just finished: lock the new one


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` is (still) the file open as ``fd``."""
    try:
        st = path.stat()
    except OSError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _read_record(fd: int) -> dict[str, object]:
    try:
        record = json.loads(os.pread(fd, 65536, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(fd: int, record: dict[str, object]) -> None:
    data = json.dumps(record).encode("utf-8")
    with contextlib.suppress(OSError):  # the pid is for messages only: the lock holds without it
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
