"""DNS and "the internet" for tests of the destination guard, without a packet leaving this machine.

`ScriptedResolver` answers lookups from a script (a name can answer differently each time: DNS
rebinding); `LocalInternet` is the dialer behind the guard: it stands a server on 127.0.0.1 in for each
public address a test names, dials loopback for real (so that a guard that let 127.0.0.1 through would
really reach the "internal" service), and refuses everything else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import httpcore

# Public addresses (example.com's) that tests resolve names to; LocalInternet never dials them.
PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


class ScriptedResolver:
    """A name answers its lists of addresses in turn, the last one repeating. An address literal answers
    itself, parsed as getaddrinfo parses it (`0x7f.1` is 127.0.0.1) and never looked up; any other name
    does not resolve. Every lookup is kept in `lookups` (and appended to `log`, if given)."""

    def __init__(self, answers: Mapping[str, Sequence[Sequence[str]]], *, log: Path | None = None) -> None:
        self._answers = {name: [list(a) for a in answer] for name, answer in answers.items()}
        self._log = log
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if self._log is not None:
            with self._log.open("a") as log:
                log.write(host + "\n")
        script = self._answers.get(host)
        if script is not None:
            return script.pop(0) if len(script) > 1 else script[0]
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise httpcore.ConnectError(f"cannot resolve {host}: not in the test's DNS") from None
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class LocalInternet(httpcore.AsyncNetworkBackend):
    """`routes`: (public address, port) -> the port on 127.0.0.1 of the server standing in for it.
    A dial to one of `black_holes` never gets an answer, as when a SYN is dropped: it ends in a connect
    timeout, or in `abandoned` if the caller gives up on it first. Every dial is kept in `dials`."""

    def __init__(
        self, routes: Mapping[tuple[str, int], int] | None = None, *, black_holes: Iterable[str] = ()
    ) -> None:
        self._routes = dict(routes or {})
        self._black_holes = set(black_holes)
        self._loopback = httpcore.AnyIOBackend()
        self.dials: list[tuple[str, int]] = []
        self.abandoned: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.dials.append((host, port))
        if host in self._black_holes:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.Event().wait()
            except TimeoutError:
                raise httpcore.ConnectTimeout(f"{host}:{port} did not answer") from None
            except asyncio.CancelledError:
                self.abandoned.append((host, port))
                raise
        target: tuple[str, int] | None = None
        if (host, port) in self._routes:
            target = ("127.0.0.1", self._routes[host, port])
        elif ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
            target = (host, port)
        if target is None:
            raise httpcore.ConnectError(
                f"{host}:{port} is not on the test's internet: nothing leaves this machine"
            )
        return await self._loopback.connect_tcp(
            target[0], target[1], timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._loopback.sleep(seconds)
