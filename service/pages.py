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

from domain import search_attributes as sa
from history.visibility import time_literal
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


def decode_cursor(cursor: str, *, tenant: str, keys: tuple[bytes, ...]) -> bytes:
    """Temporal's page token inside `cursor`; `InvalidInput` unless this API made it for `tenant` with one
    of `keys` (settings' `cursor_keys`: one made by a replica with another current key reads back too)."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(INVALID_CURSOR, field=("cursor",), value=cursor, location="query") from None
    mac, token = raw[:_CURSOR_MAC_BYTES], raw[_CURSOR_MAC_BYTES:]
    if not token or not any(hmac.compare_digest(mac, _cursor_mac(token, tenant, key)) for key in keys):
        raise InvalidInput(INVALID_CURSOR, field=("cursor",), value=cursor, location="query")
    return token


@dataclass(frozen=True, slots=True)
class Page:
    executions: list[WorkflowExecution]
    next_cursor: str | None


# Newest first by acceptance time. Temporal's SQL visibility (SQLite, PostgreSQL, MySQL) refuses ORDER BY
# ("operation is not supported: 'ORDER BY' clause", the dev server 1.32 here) and lists open workflows by
# start time, then closed ones by close time: a delivery's workflow starts when its event's workflow gets
# to it, not when the event was accepted, so after a burst the newest event was row 10. So the order is
# made here: a window of acceptance times ending where the last page ended, narrowed with counts until it
# holds a page or more but at most `WINDOW_MAX` deliveries, read whole and sorted. The cursor is the last
# row's (acceptance time, id), behind the same MAC as Temporal's tokens.
WINDOW_MAX = 200
_FIRST_SPAN = timedelta(hours=1)
_LONGEST_SPAN = timedelta(days=366 * 100)
_SHORTEST_SPAN = timedelta(milliseconds=1)
_OVERLAP = timedelta(seconds=1)
_POSITION = b"t1:"


def _position_of(execution: WorkflowExecution) -> tuple[datetime, str]:
    created = execution.typed_search_attributes.get(sa.CREATED_AT) or execution.start_time
    return created.astimezone(UTC), execution.id


def _encode_position(position: tuple[datetime, str], *, tenant: str, key: bytes) -> str:
    at, workflow_id = position
    return encode_cursor(_POSITION + f"{at.isoformat()}|{workflow_id}".encode(), tenant=tenant, key=key)


def _decode_position(cursor: str, *, tenant: str, keys: tuple[bytes, ...]) -> tuple[datetime, str]:
    token = decode_cursor(cursor, tenant=tenant, keys=keys)
    try:
        if not token.startswith(_POSITION):
            raise ValueError("not a position")
        at, workflow_id = token[len(_POSITION) :].decode().split("|", 1)
        return datetime.fromisoformat(at).astimezone(UTC), workflow_id
    except ValueError:  # a cursor this API made before lists were ordered by time: start over
        raise InvalidInput(INVALID_CURSOR, field=("cursor",), value=cursor, location="query") from None


@dataclass(frozen=True, slots=True)
class Lister:
    """How one service lists from visibility: its client, the keys its cursors are made (the first) and
    checked with (any), and the bound on every Temporal call, given once rather than at every list."""

    client: Client
    cursor_keys: tuple[bytes, ...]
    rpc_timeout: timedelta

    async def page(self, query: str, *, tenant: str, cursor: str | None, limit: int) -> Page:
        """One page of the workflows `query` finds, in Temporal's order, from `cursor` on; the next page's
        cursor, made for `tenant`, or None on the last page."""
        token = decode_cursor(cursor, tenant=tenant, keys=self.cursor_keys) if cursor else None
        pages = self.client.list_workflows(
            query, page_size=limit, next_page_token=token, rpc_timeout=self.rpc_timeout
        )
        try:
            await pages.fetch_next_page()
        except RPCError as err:
            if err.status is RPCStatusCode.INVALID_ARGUMENT:  # a token Temporal no longer accepts
                raise InvalidInput(INVALID_CURSOR, field=("cursor",), location="query") from None
            raise
        next_token = pages.next_page_token
        return Page(
            executions=list(pages.current_page or []),
            next_cursor=encode_cursor(next_token, tenant=tenant, key=self.cursor_keys[0])
            if next_token
            else None,
        )

    async def newest_first(self, query: str, *, tenant: str, cursor: str | None, limit: int) -> Page:
        """One page of the workflows `query` finds, newest first by `WebhookCreatedAt` (the acceptance time;
        ties by workflow id), from `cursor` on. Every call is bounded by `rpc_timeout`; a page costs a few
        counts and one list of the window."""
        before = _decode_position(cursor, tenant=tenant, keys=self.cursor_keys) if cursor else None
        # A second past the last row: the store may keep a time finer or coarser than it gives back, and a
        # row tied with the last one at that precision must not fall between pages. What is not older than
        # the last row is left out below, by the exact position.
        top = before[0] + _OVERLAP if before else datetime.now(UTC)
        bounded = f"{query} AND {sa.CREATED_AT.name} <= {time_literal(top)}" if before else query

        async def count(lowest: datetime | None) -> int:
            within = f"{bounded} AND {sa.CREATED_AT.name} >= {time_literal(lowest)}" if lowest else bounded
            return (await self.client.count_workflows(within, rpc_timeout=self.rpc_timeout)).count

        total = await count(None)
        lowest: datetime | None = None
        many = _LONGEST_SPAN
        if total > WINDOW_MAX:
            # Wide enough for a page and a row more (`wanted`), narrow enough to read whole: a span back from
            # `top` grown fourfold until it holds `wanted`, then halved back while it holds too many.
            wanted = limit + 1
            few, many, found = timedelta(0), _FIRST_SPAN, total
            while many < _LONGEST_SPAN:
                found = await count(top - many)
                if found >= wanted:
                    break
                few, many = many, many * 4
            else:
                found = total
            while found > WINDOW_MAX and many - few > _SHORTEST_SPAN:
                middle = few + (many - few) / 2
                inside = await count(top - middle)
                if inside < wanted:
                    few = middle
                else:
                    many, found = middle, inside
            lowest = top - many if many < _LONGEST_SPAN else None
        while True:
            within = f"{bounded} AND {sa.CREATED_AT.name} >= {time_literal(lowest)}" if lowest else bounded
            listed = [
                execution
                async for execution in self.client.list_workflows(
                    within, limit=WINDOW_MAX * 4, page_size=WINDOW_MAX, rpc_timeout=self.rpc_timeout
                )
            ]
            ordered = sorted(
                (e for e in listed if before is None or _position_of(e) < before),
                key=_position_of,
                reverse=True,
            )
            if len(ordered) > limit or lowest is None or total <= len(listed):
                break
            # The window's count took in rows of the last page (the second of overlap): wider, and again.
            many = max(many * 4, _OVERLAP * 2)
            lowest = top - many if many < _LONGEST_SPAN else None
        page = ordered[:limit]
        more = len(ordered) > limit or (lowest is not None and total > len(listed))
        next_cursor = (
            _encode_position(_position_of(page[-1]), tenant=tenant, key=self.cursor_keys[0])
            if page and more
            else None
        )
        return Page(executions=page, next_cursor=next_cursor)
