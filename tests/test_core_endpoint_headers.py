"""Which custom headers an endpoint may send: names HTTP allows and ours cannot be replaced by; values
httpx can send on every attempt."""

from __future__ import annotations

import pytest

from domain.endpoint_headers import check_headers, masked


def test_a_gateway_s_headers_are_kept() -> None:
    headers = {"Authorization": "Bearer abc.def\tghi", "X-Api-Key": "k-123 ~!"}
    assert check_headers(headers) == headers


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"X-Token": "caf\u20ac"}, "visible ASCII"),  # httpx cannot encode it: every attempt would fail
        ({"X-Token": "caf\u00e9"}, "visible ASCII"),
        ({"X-Token": "a\r\nX-Injected: 1"}, "no line breaks"),
        ({"X-Token": "a\x00b"}, "visible ASCII"),
        ({"X-Token": "x" * 1025}, "at most 1024 characters"),
        ({"Bad Name": "v"}, "not a valid HTTP field name"),
        ({"Webhook-Signature": "v1,forged"}, "set by the service itself"),
        ({"webhook-anything": "v"}, "set by the service itself"),
        ({"Content-Type": "text/plain"}, "set by the service itself"),
        ({"X-A": "1", "x-a": "2"}, "given twice"),
        ({"Expect": "100-continue"}, "speaks for proxies, clients or HTTP itself"),
        ({"Cookie": "session=1"}, "speaks for proxies, clients or HTTP itself"),
        ({"Via": "1.1 gateway"}, "speaks for proxies, clients or HTTP itself"),
        ({"Forwarded": "for=10.0.0.1"}, "speaks for proxies, clients or HTTP itself"),
        ({"X-Forwarded-For": "10.0.0.1"}, "speaks for proxies, clients or HTTP itself"),
        ({"x-forwarded-host": "internal"}, "speaks for proxies, clients or HTTP itself"),
        ({"Proxy-Connection": "keep-alive"}, "speaks for proxies, clients or HTTP itself"),
        ({f"X-{n}": "v" for n in range(21)}, "at most 20 headers"),
    ],
)
def test_a_header_that_could_not_or_must_not_be_sent_is_refused(headers: dict[str, str], says: str) -> None:
    with pytest.raises(ValueError) as refused:
        check_headers(headers)
    assert says in str(refused.value)


def test_values_are_shown_masked() -> None:
    assert masked("Bearer secret-value-9876") == "••••9876"
    assert masked("short") == "••••"
