"""Pages of what a visibility query finds, for the API: the cursors that page through them (bound to
the tenant they were handed to) and the window a list may ask for."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError, RPCStatusCode

from service.errors import InvalidInput


def check_created_window(created_after: datetime | None, created_before: datetime | None) -> None:
    """`InvalidInput` for a window on `created_at` that ends before it starts (it could list nothing), or
    an end that is no time in UTC (a year 1 or 9999 whose offset takes it out of the calendar)."""
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        try:
            if value is not None:
                value.astimezone(UTC)
        except OverflowError:
            raise InvalidInput(
                f"{name} is out of range: give a time between the years 1 and 9999 in UTC",
                field=(name,),
                value=value.isoformat() if value else None,
                location="query",
            ) from None
    if created_after is not None and created_before is not None and created_after > created_before:
        raise InvalidInput(
            "created_after is later than created_before; swap them, or leave one out",
            field=("created_after",),
            value=created_after.isoformat(),
            location="query",
        )


# A cursor is Temporal's page token behind a MAC of it and the tenant. Temporal cannot tell a damaged
# token from its own failure (it answers "something went wrong"), so a cursor is checked here: one this
# API did not hand to this tenant is refused, and never reaches Temporal.
_CURSOR_MAC_BYTES = 16
INVALID_CURSOR = "cursor is not one this API returned to you; list again without it, from the first page"


def _cursor_mac(token: bytes, tenant: str, key: bytes) -> bytes:
    return hmac.new(key, tenant.encode() + b"\0" + token, hashlib.sha256).digest()[:_CURSOR_MAC_BYTES]


def encode_cursor(token: bytes, *, tenant: str, key: bytes) -> str:
    return base64.urlsafe_b64encode(_cursor_mac(token, tenant, key) + token).rstrip(b"=").decode()


def decode_cursor(cursor: str, *, tenant: str, key: bytes) -> bytes:
    """Temporal's page token inside `cursor`; `InvalidInput` unless this API made it for `tenant`."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(INVALID_CURSOR, field=("cursor",), value=cursor, location="query") from None
    mac, token = raw[:_CURSOR_MAC_BYTES], raw[_CURSOR_MAC_BYTES:]
    if not token or not hmac.compare_digest(mac, _cursor_mac(token, tenant, key)):
        raise InvalidInput(INVALID_CURSOR, field=("cursor",), value=cursor, location="query")
    return token


@dataclass(frozen=True, slots=True)
class Page:
    executions: list[WorkflowExecution]
    next_cursor: str | None


async def list_page(
    client: Client,
    query: str,
    *,
    tenant: str,
    cursor: str | None,
    limit: int,
    cursor_key: bytes,
    rpc_timeout: timedelta,
) -> Page:
    """One page of the workflows `query` finds, from `cursor` on; the next page's cursor, made for
    `tenant`, or None on the last page."""
    token = decode_cursor(cursor, tenant=tenant, key=cursor_key) if cursor else None
    pages = client.list_workflows(query, page_size=limit, next_page_token=token, rpc_timeout=rpc_timeout)
    try:
        await pages.fetch_next_page()
    except RPCError as err:
        if err.status is RPCStatusCode.INVALID_ARGUMENT:  # a token Temporal no longer accepts
            raise InvalidInput(INVALID_CURSOR, field=("cursor",), location="query") from None
        raise
    next_token = pages.next_page_token
    return Page(
        executions=list(pages.current_page or []),
        next_cursor=encode_cursor(next_token, tenant=tenant, key=cursor_key) if next_token else None,
    )
