"""An endpoint's own headers, sent with every attempt: which names and values are allowed.

A receiver behind a gateway often wants a static header (`Authorization: Bearer …`, `X-Api-Key`).
Ours always win: a custom header can never stand in for the signature, the content type or the
user agent, nor for anything HTTP itself owns.
"""

from __future__ import annotations

import re

MAX_HEADERS = 20
MAX_VALUE = 1024
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")  # RFC 9110 field names
# What a value may hold: visible ASCII, spaces and tabs. HTTP allows other bytes only as opaque data,
# and httpx refuses to encode a non-ASCII str: such a value would fail every attempt.
_VALUE = re.compile(r"[\t\x20-\x7e]*")
RESERVED = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "webhook-sequence",
        "x-webhook-signature",
        "x-webhook-signature-algorithm",
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "user-agent",
        "host",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
    }
)
# What proxies, clients and HTTP itself say about a request: from a tenant, a lie to the receiver (who it
# came through, for whom, with which cookies) or a change to how the request is sent (`Expect`).
NOT_OURS_TO_SEND = frozenset({"expect", "cookie", "via", "forwarded", "x-real-ip", "x-client-ip"})
NOT_OURS_PREFIXES = ("x-forwarded-", "proxy-")


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers if an endpoint may send them; `ValueError` saying what to fix otherwise."""
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"header name {name!r} is not a valid HTTP field name (letters, digits, -)")
        lowered = name.lower()
        if lowered in RESERVED or lowered.startswith("webhook-"):
            raise ValueError(f"header {name} is set by the service itself and cannot be overridden")
        if lowered in NOT_OURS_TO_SEND or lowered.startswith(NOT_OURS_PREFIXES):
            raise ValueError(
                f"header {name} is not sent: it speaks for proxies, clients or HTTP itself, not for the "
                "sender of a webhook (use a header of your own, such as X-Api-Key)"
            )
        if lowered in seen:
            raise ValueError(f"header {name} is given twice")
        seen.add(lowered)
        if len(value) > MAX_VALUE or not _VALUE.fullmatch(value):
            raise ValueError(
                f"the value of {name} must be at most {MAX_VALUE} characters of visible ASCII, spaces "
                "and tabs (no line breaks, no other characters: percent-encode them)"
            )
    return headers


def masked(value: str) -> str:
    """What the API shows of a header's value: enough to recognise it, not to use it."""
    return "••••" + value[-4:] if len(value) > 8 else "••••"
