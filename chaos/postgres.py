"""A throwaway PostgreSQL server from Debian's `postgresql` package: a temp dir, 127.0.0.1, a free port.

`initdb` refuses to run as root, so under root (CI) the server runs as the `postgres` user the package
creates. `.ci/run` installs the package when it is missing; elsewhere a test without it is skipped
(`tests/postgres.py`) and `make chaos` marks its row skipped.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg


def postgres_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PostgresServer:
    def __init__(self, bin_dir: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="webhooks-pg-"))
        self.user = "postgres" if os.geteuid() == 0 else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://webhooks@127.0.0.1:{self.port}/webhooks"

    def __enter__(self) -> PostgresServer:
        if self.user:
            shutil.chown(self.dir, self.user)
        subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(self.dir / "data"), "-U", "webhooks"]
            + ["--auth=trust", "--no-sync"],
            user=self.user,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            self._start()
            with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
                conn.execute("CREATE DATABASE webhooks")
        except BaseException:
            self.__exit__()
            raise
        return self

    def create_database(self, name: str) -> str:
        """Another database on this server (letters, digits and '_'); its SQLAlchemy URL."""
        assert name.isidentifier(), name
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def _dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=webhooks dbname={dbname}"

    def _start(self) -> None:
        """Start the server on its data dir and port; return once it takes connections."""
        data = self.dir / "data"
        with (self.dir / "server.log").open("ab") as server_log:
            self._proc = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.dir),  # the Unix socket stays in our temp dir
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                ],
                user=self.user,
                stdout=subprocess.DEVNULL,
                stderr=server_log,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(self._dsn("postgres")).close()
                return
            except psycopg.OperationalError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _stop(self, *, immediate: bool = False) -> None:
        if self._proc is not None and self._proc.poll() is None:
            # SIGINT: a fast shutdown (connections cut, a checkpoint written); SIGQUIT: an immediate one,
            # what `pg_ctl stop -m immediate` sends: no checkpoint, every backend gone at once, and crash
            # recovery from the WAL at the next start, as after a power cut or an OOM kill.
            self._proc.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    @contextmanager
    def stopped(self, *, immediate: bool = False) -> Iterator[None]:
        """The server shut down (its clients' connections cut) for the block, then started again;
        `immediate`: without a checkpoint, so that it starts by recovering from its WAL."""
        self._stop(immediate=immediate)
        try:
            yield
        finally:
            self._start()

    def __exit__(self, *exc: object) -> None:
        self._stop()
        shutil.rmtree(self.dir, ignore_errors=True)
