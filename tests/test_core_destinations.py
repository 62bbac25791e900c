"""The table of refused networks and the save-time check (core/destinations.py).

The expectations are written out here, address by address, rather than derived from the table, so that
a change to the table shows up as a change to this file.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from core.destinations import DestinationError, literal_address, refusal, resolver_reading, validate_url

# (address, what `refusal` says, or None for a public address). Boundaries on both sides of each range.
TABLE = [
    ("0.0.0.0", "a 'this network' address, which reaches this machine"),
    ("0.255.255.255", "a 'this network' address, which reaches this machine"),
    ("1.0.0.0", None),
    ("9.255.255.255", None),
    ("10.0.0.0", "a private address"),
    ("10.255.255.255", "a private address"),
    ("11.0.0.0", None),
    ("100.63.255.255", None),
    ("100.64.0.0", "a carrier-grade NAT address"),
    ("100.127.255.255", "a carrier-grade NAT address"),
    ("100.128.0.0", None),
    ("126.255.255.255", None),
    ("127.0.0.0", "a loopback address"),
    ("127.255.255.255", "a loopback address"),
    ("128.0.0.0", None),
    ("169.253.255.255", None),
    ("169.254.0.0", "a link-local address (cloud metadata services live there)"),
    ("169.254.169.254", "a link-local address (cloud metadata services live there)"),
    ("169.255.0.0", None),
    ("172.15.255.255", None),
    ("172.16.0.0", "a private address"),
    ("172.31.255.255", "a private address"),
    ("172.32.0.0", None),
    ("192.0.0.0", "an IETF protocol assignment"),
    ("192.0.0.9", "an IETF protocol assignment"),  # is_global: False before 3.11.10, True after
    ("192.0.0.255", "an IETF protocol assignment"),
    ("192.0.1.0", None),
    ("192.0.2.1", "a documentation address"),
    ("192.88.99.1", "a 6to4 relay address"),
    ("192.167.255.255", None),
    ("192.168.0.0", "a private address"),
    ("192.168.255.255", "a private address"),
    ("192.169.0.0", None),
    ("198.17.255.255", None),
    ("198.18.0.0", "a benchmarking address"),
    ("198.19.255.255", "a benchmarking address"),
    ("198.20.0.0", None),
    ("198.51.100.1", "a documentation address"),
    ("203.0.113.1", "a documentation address"),
    ("223.255.255.255", None),
    ("224.0.0.1", "a multicast address"),
    ("239.255.255.255", "a multicast address"),
    ("240.0.0.0", "a reserved address"),
    ("255.255.255.255", "a reserved address"),
    ("8.8.8.8", None),
    ("93.184.215.14", None),
    ("::", "the unspecified address"),
    ("::1", "a loopback address"),
    ("::2", "an IPv4-compatible address carrying 0.0.0.2"),
    ("::a9fe:a9fe", "an IPv4-compatible address carrying 169.254.169.254"),
    ("::808:808", "an IPv4-compatible address carrying 8.8.8.8"),  # deprecated, whatever it carries
    ("::ffff:127.0.0.1", "an IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("::ffff:10.0.0.1", "an IPv4-mapped form of 10.0.0.1, a private address"),
    ("::ffff:8.8.8.8", None),
    (
        "64:ff9b::a9fe:a9fe",
        "a NAT64 form of 169.254.169.254, a link-local address (cloud metadata services live there)",
    ),
    ("64:ff9b::808:808", None),
    ("64:ff9b:1::a00:1", "a local-use NAT64 address"),
    ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "a local-use NAT64 address"),
    ("100::1", "a discard-only address"),
    ("2001::1", "an IETF protocol assignment"),  # Teredo
    ("2001:1::1", "an IETF protocol assignment"),  # is_global differs between 3.11 patch releases
    ("2001:20::1", "an IETF protocol assignment"),  # ORCHIDv2, the same
    ("2001:1ff:ffff::", "an IETF protocol assignment"),
    ("2001:200::1", None),
    ("2001:db8::1", "a documentation address"),
    ("2002:a9fe:a9fe::", "a 6to4 address carrying 169.254.169.254"),
    ("2002:808:808::1", "a 6to4 address carrying 8.8.8.8"),
    ("3fff::1", "a documentation address"),
    ("3fff:fff::", "a documentation address"),
    ("3fff:1000::", None),
    ("fc00::1", "a unique local (private) address"),
    ("fd12:3456::1", "a unique local (private) address"),
    ("fe80::1", "a link-local address"),
    ("fec0::1", "a site-local address"),
    ("ff02::1", "a multicast address"),
    ("4000::1", "an address outside IPv6's global unicast range"),
    ("5f00::1", "an address outside IPv6's global unicast range"),
    ("1fff:ffff::", "an address outside IPv6's global unicast range"),
    ("2000::", None),
    ("2606:4700::1111", None),
    ("2a00:1450:4001::1", None),
    ("3ffe::1", None),
]


@pytest.mark.parametrize(("address", "expected"), TABLE)
def test_the_table(address: str, expected: str | None) -> None:
    assert refusal(ipaddress.ip_address(address)) == expected


def test_the_table_does_not_ask_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    # `is_global` and friends changed in 3.11 patch releases; the guard must answer the same on each.
    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        for name in ("is_global", "is_private", "is_reserved", "is_loopback", "is_link_local"):
            monkeypatch.setattr(cls, name, property(lambda self: pytest.fail("asked the interpreter")))
    for address, expected in TABLE:
        assert refusal(ipaddress.ip_address(address)) == expected


# Every form the report found accepted when saved, and more of the same families.
REFUSED_FORMS = [
    ("localhost.", "localhost., a loopback name"),
    ("LOCALHOST", "localhost, a loopback name"),
    ("api.localhost", "api.localhost, a loopback name"),
    ("2130706433", "127.0.0.1 (written 2130706433), a loopback address"),
    ("0x7f.1", "127.0.0.1 (written 0x7f.1), a loopback address"),
    ("0177.0.0.1", "127.0.0.1 (written 0177.0.0.1), a loopback address"),
    ("127.1", "127.0.0.1 (written 127.1), a loopback address"),
    ("127.0.0.1.", "127.0.0.1 (written 127.0.0.1.), a loopback address"),
    ("0", "0.0.0.0 (written 0), a 'this network' address"),
    ("１２７．０．０．１", "127.0.0.1 (written １２７．０．０．１), a loopback address"),  # fullwidth
    ("127。0。0。1", "127.0.0.1 (written 127。0。0。1), a loopback address"),  # ideographic full stops
    ("127｡0｡0｡1", "127.0.0.1 (written 127｡0｡0｡1), a loopback address"),  # halfwidth ideographic
    ("０x7f.1", "127.0.0.1 (written ０x7f.1), a loopback address"),
    ("[::a9fe:a9fe]", "::a9fe:a9fe, an IPv4-compatible address carrying 169.254.169.254"),
    ("[::127.0.0.1]", "::127.0.0.1, an IPv4-compatible address carrying 127.0.0.1"),
    ("[2002:a9fe:a9fe::]", "2002:a9fe:a9fe::, a 6to4 address carrying 169.254.169.254"),
    ("[64:ff9b:1::a00:1]", "64:ff9b:1::a00:1, a local-use NAT64 address"),
    ("[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe, a NAT64 form of 169.254.169.254"),
    ("[::ffff:10.0.0.1]", "::ffff:10.0.0.1, an IPv4-mapped form of 10.0.0.1, a private address"),
    ("[fe80::1%25eth0]", "fe80::1%25eth0, a link-local address"),
    ("224.0.0.1", "224.0.0.1, a multicast address"),
    ("169.254.169.254", "169.254.169.254, a link-local address"),
]


@pytest.mark.parametrize(("host", "message"), REFUSED_FORMS)
def test_refused_forms_are_refused_when_saved(host: str, message: str) -> None:
    with pytest.raises(DestinationError) as refused:
        validate_url(f"https://{host}:8443/hook", allow_private=False)
    assert f"url points at {message}" in str(refused.value)
    assert str(refused.value).endswith("use your receiver's public host name")


@pytest.mark.parametrize(
    "host", ["example.com", "example.com.", "bücher.de", "8.8.8.8", "[2606:4700::1111]", "[64:ff9b::808:808]"]
)
def test_public_hosts_are_accepted(host: str) -> None:
    assert validate_url(f"https://{host}/hook", allow_private=False)


@pytest.mark.parametrize(("host", "_message"), REFUSED_FORMS)
def test_saved_and_delivered_agree(host: str, _message: str) -> None:
    # Whatever the guard would refuse once the resolver has read the host, saving refuses already. The
    # resolver's reading is getaddrinfo's own, for a literal (AI_NUMERICHOST: no lookup leaves here).
    reading = resolver_reading(host.strip("[]").replace("%25", "%"))
    try:
        infos = socket.getaddrinfo(reading, 443, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        assert reading == "localhost" or reading.endswith(".localhost")  # a name, refused by name
        return
    resolved = ipaddress.ip_address(str(infos[0][4][0]).split("%")[0])
    assert literal_address(reading) == resolved
    assert refusal(resolved) is not None


@pytest.mark.parametrize("host", ["0177.0.0.1", "１２７．０．０．１", "a\u200db.example"])
def test_a_url_the_client_cannot_parse_is_refused_when_saved(host: str) -> None:
    # Even where private destinations are allowed: every attempt would fail in httpx's URL parser.
    with pytest.raises(DestinationError, match=r"url (is not valid: Invalid|must not contain)"):
        validate_url(f"https://{host}/hook", allow_private=True)


def test_private_destinations_are_allowed_when_configured() -> None:
    for host in ("127.0.0.1:9000", "localhost", "[::1]", "10.0.0.7"):
        assert validate_url(f"http://{host}/hook", allow_private=True)


@pytest.mark.parametrize(
    ("url", "allow_private", "message"),
    [
        ("ftp://example.com/hook", True, "http"),
        ("example.com/hook", True, "http"),
        ("https:///hook", True, "host"),
        ("https://user:pw@example.com/", True, "credentials"),
        ("http://127.0.0.1:9000/hook", False, "loopback address"),
        ("http://10.1.2.3/hook", False, "private address"),
        ("http://169.254.169.254/latest", False, "link-local address"),
        ("http://[::1]/hook", False, "loopback address"),
        ("http://[64:ff9b::a9fe:a9fe]/latest", False, "NAT64 form of 169.254.169.254"),
        ("http://[::ffff:10.0.0.1]/hook", False, "IPv4-mapped form of 10.0.0.1, a private address"),
        ("http://localhost:8000/hook", False, "localhost, a loopback name"),
    ],
)
def test_refused_urls(url: str, allow_private: bool, message: str) -> None:
    # Every literal form and the table itself: tests/test_core_destinations.py.
    with pytest.raises(DestinationError, match=message):
        validate_url(url, allow_private=allow_private)


def test_accepted_urls() -> None:
    assert validate_url("https://example.com/hook", allow_private=False)
    assert validate_url("http://127.0.0.1:9000/hook", allow_private=True)
    assert validate_url("http://[64:ff9b::808:808]/hook", allow_private=False)  # 8.8.8.8 through NAT64
