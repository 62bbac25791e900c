"""An endpoint's own headers, sent with every attempt: which names and values are allowed.

A receiver behind a gateway often wants a static header (`Authorization: Bearer …`, `X-Api-Key`).
Ours always win: a custom header can never stand in for the signature, the content type or the
user agent, nor for anything HTTP itself owns.

A header's value is shown by the API unless it is secret: marked so by the tenant, or named like a
credential (`Authorization`, `Cookie`, `*-Token`, `*-Key`, `*-Secret`), whatever the mark says. A PATCH
changes headers one by one (`merged`): a name with a value sets it, a name with null removes it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

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


# Named like a credential: masked whether or not it is marked secret.
SECRET_NAMES = frozenset({"authorization", "cookie"})
SECRET_SUFFIXES = ("-token", "-key", "-secret")


@dataclass(frozen=True, slots=True)
class HeaderSetting:
    """One header as a tenant sets it: its value, and whether the API may show it (None: as it was, so
    that a new value of a header marked secret stays masked; a new header is not marked)."""

    value: str
    secret: bool | None = None


def named_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_NAMES or lowered.endswith(SECRET_SUFFIXES)


def is_secret(name: str, marked: Collection[str]) -> bool:
    """Whether the API shows this header's value masked: marked secret (`marked`: lower-case names), or
    named like a credential."""
    return name.lower() in marked or named_secret(name)


def shown(name: str, value: str, marked: Collection[str]) -> str:
    return masked(value) if is_secret(name, marked) else value


def check_changes(changes: Mapping[str, HeaderSetting | None]) -> None:
    """`ValueError` for a change no endpoint could take: a name twice (in any case), a name or a value
    that could not be sent."""
    seen: set[str] = set()
    for name in changes:
        if name.lower() in seen:
            raise ValueError(f"header {name} is given twice")
        seen.add(name.lower())
    check_headers({name: c.value for name, c in changes.items() if c is not None})
    for name, change in changes.items():
        if change is None and not _TOKEN.fullmatch(name):
            raise ValueError(f"header name {name!r} is not a valid HTTP field name (letters, digits, -)")


def merged(
    headers: Mapping[str, str], marked: Collection[str], changes: Mapping[str, HeaderSetting | None]
) -> tuple[dict[str, str], frozenset[str]]:
    """The headers and secret marks after `changes`: a name with a setting replaces the header of that
    name in any case (its value, and its mark unless the setting leaves it as it was), a name with None
    removes it (and nothing, if there is none).
    `ValueError` if the result could not be sent (more than `MAX_HEADERS`, say)."""
    check_changes(changes)
    result = dict(headers)
    secret = {name.lower() for name in marked}
    for name, change in changes.items():
        for existing in [n for n in result if n.lower() == name.lower()]:
            del result[existing]
        was_secret = name.lower() in secret
        secret.discard(name.lower())
        if change is not None:
            result[name] = change.value
            if change.secret or (change.secret is None and was_secret):
                secret.add(name.lower())
    check_headers(result)
    return result, frozenset(secret & {n.lower() for n in result})
