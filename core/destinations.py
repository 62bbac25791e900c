"""Which URLs an endpoint may point at.

Only http(s) with a host. Unless `WEBHOOKS_ALLOW_PRIVATE_URLS` is set, destinations on loopback,
private, link-local or otherwise non-global addresses are refused (as Svix does by default), once when
the endpoint is saved and again at each attempt, after DNS resolution, since a name can change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class DestinationError(ValueError):
    """A URL that must not receive deliveries; the message says why."""


# NAT64 (RFC 6052) embeds any IPv4 address, private ones included, yet counts as global.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.ipv4_mapped:
            ip = ip.ipv4_mapped
    return ip.is_global


def validate_url(url: str, *, allow_private: bool) -> str:
    """The URL if an endpoint may use it; raises `DestinationError` with a message that says what to fix."""
    try:
        parts = urlsplit(url)
    except ValueError as err:  # a bracket out of place: "Invalid IPv6 URL", an IPv4 address in brackets
        raise DestinationError(
            f"url has a malformed host ({err}); brackets enclose an IPv6 address only, "
            "as in http://[2001:db8::1]/"
        ) from None
    if parts.scheme not in ("http", "https"):
        raise DestinationError("url must start with http:// or https://")
    # urlsplit silently drops the tabs and newlines that the stored URL would keep, and httpx refuses.
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise DestinationError("url must not contain spaces or control characters; percent-encode them")
    if not parts.hostname:
        raise DestinationError("url must include a host")
    try:
        _ = parts.port
    except ValueError:
        raise DestinationError("url has an invalid port") from None
    if parts.username or parts.password:
        raise DestinationError("url must not contain credentials; use the signature to authenticate")
    if not allow_private:
        host = parts.hostname
        if host == "localhost" or host.endswith(".localhost"):
            raise DestinationError("url points at localhost, which cannot receive webhooks")
        try:
            public = _is_public(host)
        except ValueError:
            public = True  # a name, not an address: checked after resolution, at each attempt
        if not public:
            raise DestinationError("url points at a private or reserved address")
    return url


async def check_resolved(url: str, *, allow_private: bool) -> None:
    """Raise `DestinationError` if the URL's host resolves to a non-public address."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise DestinationError(f"cannot resolve {host}: {err.strerror}") from None
    for info in infos:
        if not _is_public(str(info[4][0])):
            raise DestinationError(f"{host} resolves to a private or reserved address")
