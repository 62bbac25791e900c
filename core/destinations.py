"""Which destinations an endpoint may point at: the table of refused networks, and the save-time check.

Only http(s) with a host. Unless `WEBHOOKS_ALLOW_PRIVATE_URLS` is set, a destination is refused when
its address falls in `REFUSED_NETWORKS` (loopback, private, link-local, reserved, multicast, ...) or,
for IPv6, outside the global unicast range 2000::/3. Addresses that embed an IPv4 address and reach it
(IPv4-mapped, NAT64's well-known prefix) are judged by that IPv4 address. The table is ours, on
purpose: `ipaddress.is_global` changes between Python patch releases, and a guard must not.

Two places apply it:
- `validate_url`, when an endpoint is saved: the host is read the way the resolver will read it
  (`0x7f.1`, `2130706433` and a fullwidth `１２７．０．０．１` are all 127.0.0.1), and a literal address
  or a localhost name that the table refuses is refused there, with a message that says what to fix.
- `core.egress`, at every new connection of a delivery: the name is resolved once, every address is
  checked with `refusal`, and the connection goes to an address that was checked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationError(ValueError):
    """A URL that must not receive deliveries; the message says why."""


def _table(
    *entries: tuple[str, str],
) -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]:
    return [(ipaddress.ip_network(network), what) for network, what in entries]


# Every network a delivery may not reach, with what it is. Addresses outside it are public, except
# IPv6 outside 2000::/3 (see `refusal`). Sources: IANA's IPv4 and IPv6 special-purpose registries.
REFUSED_NETWORKS = _table(
    ("0.0.0.0/8", "a 'this network' address, which reaches this machine"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a carrier-grade NAT address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address (cloud metadata services live there)"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol assignment"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),  # 255.255.255.255, the broadcast address, included
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    # The deprecated IPv4-compatible form: ::127.0.0.1, ::a9fe:a9fe. Nothing public uses it.
    ("::/96", "an IPv4-compatible address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    # Teredo (2001::/32), benchmarking, ORCHID: tunnels and test ranges, not receivers.
    ("2001::/23", "an IETF protocol assignment"),
    ("2001:db8::/32", "a documentation address"),
    # 6to4 carries an IPv4 address (2002:a9fe:a9fe:: is 169.254.169.254) to whatever relay takes it.
    ("2002::/16", "a 6to4 address"),
    ("3fff::/20", "a documentation address"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
)

# IPv6 prefixes through which an IPv4 address is reached: judged by that address.
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
# Refused networks whose addresses carry an IPv4 address, and how many bits follow it.
_EMBEDS_IPV4: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, int] = {
    ipaddress.IPv6Network("::/96"): 0,  # IPv4-compatible: the low 32 bits
    ipaddress.IPv6Network("2002::/16"): 80,  # 6to4: the 32 bits after the prefix
}


def refusal(address: IPAddress) -> str | None:
    """Why a delivery may not connect to `address` ("a loopback address", ...), or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and (address in _IPV4_MAPPED or address in _NAT64):
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        reason = refusal(embedded)
        if reason is None:
            return None
        form = "an IPv4-mapped" if address in _IPV4_MAPPED else "a NAT64"
        return f"{form} form of {embedded}, {reason}"
    # The most specific entry names it best: ::1 is a loopback address before it is IPv4-compatible.
    matches = [(net, what) for net, what in REFUSED_NETWORKS if address in net]
    if not matches:
        if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
            return "an address outside IPv6's global unicast range"
        return None
    network, what = max(matches, key=lambda match: match[0].prefixlen)
    shift = _EMBEDS_IPV4.get(network)
    if shift is not None:  # say which IPv4 address it carries: that is what it would reach
        return f"{what} carrying {ipaddress.IPv4Address((int(address) >> shift) & 0xFFFFFFFF)}"
    return what


def parse_address(text: str) -> IPAddress:
    """An address as getaddrinfo returns it (an IPv6 one may carry a `%zone`)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


# The dots IDNA reads as '.': ideographic, fullwidth and halfwidth ideographic full stops.
_DOTS = re.compile("[\u3002\uff0e\uff61]")


def resolver_reading(host: str) -> str:
    """`host` as the resolver reads it: compatibility forms folded (fullwidth digits are digits),
    every IDNA dot a '.', lower case, without the final dot of a fully qualified name."""
    return _DOTS.sub(".", unicodedata.normalize("NFKC", host)).lower().removesuffix(".")


def literal_address(host: str) -> IPAddress | None:
    """The address `host` stands for without any lookup, as the C resolver reads it, or None for a name.

    `inet_aton` is what getaddrinfo itself falls back to, so it accepts what it accepts: `127.1`,
    `0x7f.1`, `0177.0.0.1` (octal), `2130706433`, `0`.
    """
    if ":" in host:
        try:
            return parse_address(host)
        except ValueError:
            return None
    if not host.isascii():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _is_plain(host: str) -> bool:
    """Whether `host` is an address written the usual way, which a message can quote as it is."""
    try:
        parse_address(host)
    except ValueError:
        return False
    return True


def _is_localhost(host: str) -> bool:
    # RFC 6761: localhost and every name under it are loopback, whatever DNS says.
    return host == "localhost" or host.endswith(".localhost")


_FIX = "webhooks are delivered to public addresses only: use your receiver's public host name"


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
    host = resolver_reading(parts.hostname)
    if not allow_private:
        if _is_localhost(host):
            raise DestinationError(f"url points at {parts.hostname}, a loopback name; {_FIX}")
        address = literal_address(host)
        reason = refusal(address) if address is not None else None
        if address is not None and reason is not None:
            shown = parts.hostname if _is_plain(parts.hostname) else f"{address} (written {parts.hostname})"
            raise DestinationError(f"url points at {shown}, {reason}; {_FIX}")
    try:
        # The client that delivers parses the URL again: what it cannot parse would fail every attempt.
        httpx.URL(url)
    except httpx.InvalidURL as err:
        raise DestinationError(f"url is not valid: {err}") from None
    return url
