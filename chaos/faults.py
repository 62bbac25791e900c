"""Faults injected for real: the endpoint store made unavailable, processes paused (tests and `make chaos`).

Each is a context manager that breaks one thing for as long as its block runs and mends it on the way
out, whatever the block raised.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# In a WAL database's shared-memory file, bytes 120-127 are the locks every reader and writer takes:
# the write lock, the checkpoint and recovery locks, and the five read marks (SQLite's wal.c).
_WAL_LOCKS_OFFSET = 120
_WAL_LOCKS = 8


@contextmanager
def sqlite_locked(path: Path) -> Iterator[None]:
    """Hold every WAL lock of a SQLite file: each read and write of other processes fails.

    A stuck process holding these locks is what an unreadable SQLite store looks like from outside:
    SQLite tries for about ten seconds, then answers "locking protocol". (An ordinary EXCLUSIVE
    transaction would not do: in WAL mode readers go on beside it.)
    """
    fd = os.open(f"{path}-shm", os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX, _WAL_LOCKS, _WAL_LOCKS_OFFSET, os.SEEK_SET)
        try:
            yield
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, _WAL_LOCKS, _WAL_LOCKS_OFFSET, os.SEEK_SET)
    finally:
        os.close(fd)


@contextmanager
def paused(proc: subprocess.Popen[bytes] | None) -> Iterator[None]:
    """SIGSTOP a process for the block: it keeps its sockets open and answers nothing."""
    assert proc is not None and proc.poll() is None
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(proc.pid, signal.SIGCONT)
