"""How deliveries reach the network when private destinations are refused: one lookup, then connect to
exactly what was checked.

httpx resolves a host name when it opens a connection. Checking the name with a lookup of our own
beforehand is not enough: DNS may answer a public address to the check and 127.0.0.1 to the connect
(DNS rebinding). `GuardedNetworkBackend` is httpcore's network backend with the lookup moved inside it:
each new connection resolves its host once, refuses the connection if any address is in the table of
`core.destinations`, and dials the checked addresses themselves, in the resolver's order (IPv6 and IPv4
alike), so nothing on the path resolves the name again. TLS is unchanged: httpcore starts it on the
stream we return with `server_hostname` set to the URL's host, so SNI and certificate verification are
still about the name, never the address. Pooled connections are reused per origin as usual; only a
new connection looks the name up again.

Exceptions, as httpx's tree has them:

    httpx.ConnectError
     └── DestinationRefused   the host resolved to a refused address; the message says which and why
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

from core.destinations import IPAddress, parse_address, refusal

# host, port -> the addresses it resolves to, in the order to try them.
Resolver = Callable[[str, int], Awaitable[list[str]]]


class DestinationRefused(httpx.ConnectError):
    """A delivery's host resolved to an address that the table refuses; nothing was sent."""


async def resolve(host: str, port: int) -> list[str]:
    """Every address of `host`, once each, in the order getaddrinfo prefers (RFC 6724)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise httpcore.ConnectError(f"cannot resolve {host}: {err.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_literal(host: str, address: IPAddress) -> bool:
    try:
        return parse_address(host) == address
    except ValueError:
        return False


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's backend, connecting only to addresses that `core.destinations.refusal` accepts.

    `resolver` and `dialer` are seams for tests, which answer lookups from a script and keep every
    connection on this machine; the worker uses the defaults.
    """

    def __init__(
        self,
        *,
        resolver: Resolver = resolve,
        dialer: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolve = resolver
        self._dial = dialer if dialer is not None else httpcore.AnyIOBackend()

    async def checked_addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to; raises `DestinationRefused` if any of them is refused."""
        addresses = await self._resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        for address in addresses:
            parsed = parse_address(address)
            reason = refusal(parsed)
            if reason is not None:
                # One refused address refuses the name: a receiver's DNS has no business pointing inward.
                subject = f"{host} is" if _is_literal(host, parsed) else f"{host} resolves to {address},"
                raise DestinationRefused(f"{subject} {reason}: refused")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        options = list(socket_options) if socket_options is not None else None
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.checked_addresses(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                # An address literal: the dialer parses it, it does not look it up.
                return await self._dial.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as err:
                failure = err
        assert failure is not None  # checked_addresses never returns an empty list
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._dial.sleep(seconds)


def guarded_transport(
    *,
    limits: httpx.Limits,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, whose connections go through `GuardedNetworkBackend`."""
    transport = httpx.AsyncHTTPTransport(limits=limits, verify=verify, trust_env=False)
    # httpx (pinned below 0.29) takes no network backend, so its pool is replaced by the pool it would
    # have built, with ours; tests/test_egress.py fails if a new version stops using it.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=network_backend if network_backend is not None else GuardedNetworkBackend(),
    )
    return transport
