"""How deliveries reach the network when private destinations are refused: one lookup, then connect to
exactly what was checked.

httpx resolves a host name when it opens a connection. Checking the name with a lookup of our own
beforehand is not enough: DNS may answer a public address to the check and 127.0.0.1 to the connect
(DNS rebinding). `GuardedNetworkBackend` is httpcore's network backend with the lookup moved inside it:
each new connection resolves its host once, refuses the connection if any address is in the table of
`core.destinations`, and dials the checked addresses themselves, so nothing on the path resolves the
name again. Several addresses are raced as httpx would race them for a name (happy eyeballs, RFC 8305:
IPv6 and IPv4 taking turns, the next one dialled 250 ms later or as soon as one fails).

TLS is unchanged: httpcore starts it on the stream we return with `server_hostname` set to the URL's
host, so SNI and certificate verification are still about the name, never the address. Pooled
connections are reused per origin as usual; only a new connection looks the name up again.

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
Stream = httpcore.AsyncNetworkStream


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
    ) -> Stream:
        options = list(socket_options) if socket_options is not None else None
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.checked_addresses(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None

        def dialer(address: str) -> Callable[[], Awaitable[Stream]]:
            # An address literal: the dialer parses it, it does not look it up.
            return lambda: self._dial.connect_tcp(
                address, port, timeout=timeout, local_address=local_address, socket_options=options
            )

        return await _first_to_connect([dialer(a) for a in _interleave_families(addresses)])

    async def sleep(self, seconds: float) -> None:
        await self._dial.sleep(seconds)


# RFC 8305's "connection attempt delay": how long an address has before the next one is dialled too.
HAPPY_EYEBALLS_DELAY = 0.25


def _interleave_families(addresses: list[str]) -> list[str]:
    """The resolver's order, with IPv6 and IPv4 taking turns from the first one's family (RFC 8305)."""
    first_v6 = ":" in addresses[0]
    same = [a for a in addresses if (":" in a) == first_v6]
    other = [a for a in addresses if (":" in a) != first_v6]
    mixed = [a for pair in zip(same, other, strict=False) for a in pair]
    return mixed + same[len(other) :] + other[len(same) :]


async def _first_to_connect(dials: list[Callable[[], Awaitable[Stream]]]) -> Stream:
    """Happy eyeballs, as anyio does it for a name: the next dial starts when the previous one fails or
    has had `HAPPY_EYEBALLS_DELAY`; the first connection made is kept and the others are dropped. Each
    dial goes to a checked address, so racing them reaches nothing the guard refused."""
    if len(dials) == 1:
        return await dials[0]()  # most names: nothing to race
    pending: set[asyncio.Task[Stream]] = set()
    failures: list[BaseException] = []
    try:
        for index, dial in enumerate(dials):
            pending.add(asyncio.ensure_future(dial()))
            last = index == len(dials) - 1
            while pending:
                done, pending = await asyncio.wait(
                    pending,
                    timeout=None if last else HAPPY_EYEBALLS_DELAY,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    break  # the delay passed: dial the next address too
                winner = await _keep_first(done, failures)
                if winner is not None:
                    return winner
                if not last:
                    break  # a dial failed: dial the next address now
        raise failures[-1]
    finally:
        for task in pending:
            task.cancel()
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if not isinstance(outcome, BaseException):
                await outcome.aclose()  # it connected as it was being cancelled


async def _keep_first(done: set[asyncio.Task[Stream]], failures: list[BaseException]) -> Stream | None:
    winner: Stream | None = None
    for task in done:
        error = task.exception()
        if error is not None:
            failures.append(error)
        elif winner is None:
            winner = task.result()
        else:
            await task.result().aclose()  # two connected at once: keep one
    return winner


def guarded_transport(
    *,
    limits: httpx.Limits,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, whose connections go through `GuardedNetworkBackend`."""
    transport = httpx.AsyncHTTPTransport(limits=limits, verify=verify, trust_env=False)
    # httpx (pinned below 0.29) takes no network backend, so its pool is replaced by the pool it would
    # have built, with ours; tests/test_core_egress.py fails if a new version stops using it.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=network_backend if network_backend is not None else GuardedNetworkBackend(),
    )
    return transport
