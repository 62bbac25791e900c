"""A TCP load balancer in front of API replicas, for the tests: each new connection goes to the first
replica that accepts it (the preferred one while it lives, the next once it is gone), as a balancer with
health checks does; every request it carries is noted with the replica that served it. `ports` can be
changed while it runs (a replica replaced); with none, a connection is closed unanswered, as a
balancer with no healthy backend would."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

REFUSED = 0  # the "port" of the requests no replica took
REQUEST_LINE = re.compile(rb"(GET|POST|PATCH|DELETE) (\S+) HTTP/1\.1\r\n")


class Balancer:
    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.served: list[tuple[int, str, str]] = []  # (replica's port, method, path), in order
        self._lock = threading.Lock()
        self.writers: set[asyncio.StreamWriter] = set()

    def requests(self, port: int, path_part: str) -> list[str]:
        with self._lock:
            return [f"{m} {p}" for served_by, m, p in self.served if served_by == port and path_part in p]

    def _note(self, port: int, method: bytes, path: bytes) -> None:
        with self._lock:
            self.served.append((port, method.decode(), path.decode()))

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, noted_port: int | None = None
    ) -> None:
        seen = b""
        try:
            while data := await reader.read(65536):
                if noted_port is not None:
                    seen += data
                    end = 0
                    for found in REQUEST_LINE.finditer(seen):
                        self._note(noted_port, found.group(1), found.group(2))
                        end = found.end()
                    seen = seen[end:][-512:]
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        for port in self.ports:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue  # that replica is gone: the next one
            self.writers.add(upstream_writer)
            await asyncio.gather(
                self._pipe(reader, upstream_writer, noted_port=port), self._pipe(upstream_reader, writer)
            )
            return
        # No replica: the request is noted as refused (port 0), and its connection closed unanswered.
        try:
            head = await asyncio.wait_for(reader.read(65536), 5)
        except (TimeoutError, ConnectionError):
            head = b""
        for found in REQUEST_LINE.finditer(head):
            self._note(REFUSED, found.group(1), found.group(2))
        writer.close()


@contextmanager
def balancer(ports: list[int]) -> Iterator[tuple[Balancer, str]]:
    """A balancer over the replicas on `ports`, on a free 127.0.0.1 port; yields it and its URL."""
    front = Balancer(ports)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(front.handle, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def shutdown() -> None:
        server.close()
        for writer in front.writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in front.writers), return_exceptions=True)
        await server.wait_closed()

    try:
        yield front, f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
