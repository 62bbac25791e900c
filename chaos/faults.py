"""Faults injected for real: the endpoint store made unavailable or its disk full, processes paused (tests
and `make chaos`).

Each is a context manager that breaks one thing for as long as its block runs and mends it on the way
out, whatever the block raised.
"""

from __future__ import annotations

import errno
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


@contextmanager
def small_filesystem(path: Path, *, size_mib: int) -> Iterator[Path]:
    """A tmpfs of `size_mib` MiB mounted at `path` for the block (made if missing), unmounted after.

    Filling a small filesystem is how a full disk is made without filling the machine's; mounting needs
    root, which `.ci/run` has.
    """
    if os.geteuid() != 0:
        raise PermissionError("mounting a tmpfs needs root: run this test as root, as .ci/run does")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        # Lazy: a process of the block that is still ending may hold a file open a moment longer.
        subprocess.run(["umount", "--lazy", str(path)], check=True)


@contextmanager
def disk_full(directory: Path) -> Iterator[None]:
    """Fill the filesystem of `directory` to its last byte with a file there, removed after the block.

    Written in ever smaller pieces until the kernel refuses even one byte (ENOSPC): what is left is
    less than a block, and every write that needs one more fails, as on a disk that filled up.
    """
    filler = directory / "disk-full.filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            for piece in (1 << 20, 1 << 12, 1):
                chunk = b"\0" * piece
                try:
                    while True:
                        os.write(fd, chunk)
                except OSError as err:
                    if err.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)
        yield
    finally:
        filler.unlink()
