"""The spool: a directory of event files, the enqueue command's safe place.

A file is written under `tmp/`, fsynced and renamed into the spool, so a reader only ever sees whole
events and a crash leaves either nothing or a complete event. Names sort by creation time, so the relay
publishes oldest first. Standard library only: the enqueue command imports this.

`relay.lock` tells whether a relay is alive: the relay holds an exclusive flock on it for as long as it
runs; the enqueue command probes it with a non-blocking shared lock that it drops at once.
"""

from __future__ import annotations

import fcntl
import os
import time

LOCK_NAME = "relay.lock"
TMP_DIR = "tmp"
SUFFIX = ".json"


def ensure_dirs(spool_dir: str) -> None:
    os.makedirs(os.path.join(spool_dir, TMP_DIR), exist_ok=True)


def new_name() -> str:
    # Nanoseconds first so names sort by age; pid and randomness keep concurrent writers apart.
    return f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(4).hex()}{SUFFIX}"


def write(spool_dir: str, body: bytes) -> str:
    """Store one event durably; returns its path. Raises OSError when it cannot (disk full, no rights)."""
    name = new_name()
    tmp_path = os.path.join(spool_dir, TMP_DIR, name)
    final_path = os.path.join(spool_dir, name)
    try:
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    except FileNotFoundError:
        ensure_dirs(spool_dir)
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        os.close(fd)
        _unlink_quietly(tmp_path)
        raise
    os.close(fd)
    os.rename(tmp_path, final_path)
    _fsync_dir(spool_dir)
    return final_path


def _fsync_dir(path: str) -> None:
    # The rename is only durable once the directory entry is on disk.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove(path: str) -> None:
    """Delete a published event; a file already gone (another publisher won) is fine."""
    _unlink_quietly(path)


def pending(spool_dir: str) -> list[str]:
    """Names of the stored events, oldest first."""
    try:
        with os.scandir(spool_dir) as entries:
            names = [e.name for e in entries if e.name.endswith(SUFFIX) and e.is_file()]
    except FileNotFoundError:
        return []
    names.sort()
    return names


def relay_alive(spool_dir: str) -> bool:
    """True when a relay holds the lock, i.e. will publish what is in the spool."""
    # Read-only: the core runs enqueue as its own user, who may not write the relay's lock file, and
    # flock needs no write access. No lock file (or none readable): no relay has run here.
    try:
        fd = os.open(os.path.join(spool_dir, LOCK_NAME), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # EWOULDBLOCK/EAGAIN: the relay holds it
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class RelayLock:
    """The relay's exclusive lock. `try_acquire` is non-blocking so a probing enqueue never starves it."""

    def __init__(self, spool_dir: str) -> None:
        ensure_dirs(spool_dir)
        # Readable by all (it holds nothing): enqueue, run as the core's user, probes it read-only.
        self._fd = os.open(os.path.join(spool_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # EWOULDBLOCK/EAGAIN: another relay holds it
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
