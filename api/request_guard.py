"""What a request must be before the application spends anything on it.

`RequestGuard` is a pure ASGI middleware, so it runs before FastAPI reads a byte of the body:

- a /v1 route that needs a credential answers 401 from the headers alone, before the body is read:
  a missing or wrong API key, or a portal session token that expired, was revoked or was not made by
  us (`api.deps.authenticate`, what the routes use; the message says which). The caller found is left
  in the request's state for the routes, which then decide its scope;
- a body announced (`Content-Length`) larger than `Settings.max_request_bytes` is 413 before it is read,
  and a chunked body is counted as it arrives and refused as soon as it passes the limit;
- the whole body must arrive within `Settings.request_body_timeout` seconds, else 408: a client that
  trickles bytes cannot hold a connection for minutes;
- a body is JSON (but the codec's sign-in form), in UTF-8, and its strings are Unicode text: a lone
  UTF-16 surrogate (`"\\ud800"`) is valid JSON syntax, but no such string can be stored, signed as
  UTF-8 or even echoed in an error, so it is a 422 here, in FastAPI's own shape, naming where it is;
  so are a number that is not finite (`NaN`, `Infinity`, `1e400`) and nesting deeper than
  `MAX_JSON_DEPTH`, which no answer could echo, nor an event's log show.

Each refusal is `{"detail": ...}` with `Connection: close`: the unread rest of the body is not worth
reading. The body is then handed to the application in one piece (FastAPI reads it whole anyway), so
what the application holds is never more than the limit.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import CALLER_STATE, authenticate, needs_key
from core.settings import Settings
from service.access import PortalSessions
from service.errors import Unauthenticated, Unavailable

# `\uD800`-`\uDFFF` escapes: the only way a UTF-8 JSON text can spell a surrogate. Most bodies have none,
# and skip the walk below.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


# The one form a browser posts: the operators' sign-in to the codec (api/routes/codec.py).
FORM_PATHS = frozenset({"/codec/session"})


class BodyTooLarge(Exception):
    pass


class RequestGuard:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.max_body = settings.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if needs_key(scope["path"]):

            def sessions() -> PortalSessions:
                portal: PortalSessions = scope["app"].state.services.portal
                return portal

            try:
                caller = await authenticate(
                    self.settings, sessions, headers.get("x-api-key"), headers.get("authorization")
                )
            except Unauthenticated as err:
                await refuse(send, 401, err.message, headers={"WWW-Authenticate": err.challenge})
                return
            except Unavailable as err:  # the store, which lists revoked sessions: refuse, never guess
                await refuse(send, 503, err.message, headers={"Retry-After": str(err.retry_after)})
                return
            scope.setdefault("state", {})[CALLER_STATE] = caller
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await refuse(send, 413, self._too_large())
            return
        try:
            async with asyncio.timeout(self.settings.request_body_timeout):
                body = await read_body(receive, self.max_body)
        except TimeoutError:
            await refuse(
                send,
                408,
                f"the request body did not arrive within {self.settings.request_body_timeout:g} s; "
                "send it in one go",
            )
            return
        except BodyTooLarge:
            await refuse(send, 413, self._too_large())
            return
        if body is None:
            return  # the client went away: nobody to answer
        if body and scope["path"] not in FORM_PATHS:
            content_type = headers.get("content-type", "")
            if not is_json(content_type):
                sent_as = f"not {content_type}" if content_type else "it had no content-type"
                await refuse(
                    send, 415, f"send the body as JSON, with content-type: application/json ({sent_as})"
                )
                return
            problem = unicode_problem(body) or shape_problem(body)
            if problem is not None:
                loc, msg = problem
                error = {"type": "json_invalid", "loc": ["body", *loc], "msg": msg, "input": {}}
                await refuse(send, 422, [error])
                return
        await self.app(scope, replay(body, receive), send)

    def _too_large(self) -> str:
        return (
            f"the request body is larger than {self.max_body} bytes; an event's payload may be at most "
            f"{self.settings.max_payload_bytes} bytes"
        )


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None if the client disconnected; `BodyTooLarge` as soon as it passes `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, then waits on the real one (for the disconnect)."""
    pending = True

    async def receive_again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


def is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def unicode_problem(body: bytes) -> tuple[list[str | int], str] | None:
    """Where and why a JSON body is not Unicode text, or None; malformed JSON is left to FastAPI."""
    encoding = json.detect_encoding(body)  # as json.loads, which FastAPI uses, will read it
    if encoding != "utf-8":  # JSON between systems is UTF-8 (RFC 8259); FastAPI answered UTF-16 a bare 400
        return [], f"the body is {encoding.upper()}, not UTF-8; send JSON encoded as UTF-8"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as err:
        return [], (
            f"the body is not valid UTF-8 (byte {body[err.start]:#04x} at position {err.start}); "
            "send JSON encoded as UTF-8"
        )
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # FastAPI answers malformed JSON itself
    return lone_surrogate(document)


# How deep a body's arrays and objects may nest. A webhook's payload has a few levels (the catalog's
# deepest, 5); an event nested 254 deep was accepted and delivered, and then its log could not be shown
# (pydantic's serializer stops at 255), and one nested 950 deep could not even be echoed in a 422.
MAX_JSON_DEPTH = 64


class _NotFinite(ValueError):
    pass


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _NotFinite(text)
    return number


def _no_constant(name: str) -> Any:
    raise _NotFinite(name)


def shape_problem(body: bytes) -> tuple[list[str | int], str] | None:
    """Where and why a JSON body holds what no field may hold, or None; malformed JSON is left to FastAPI.
    A number that is not finite (`NaN`, `Infinity`, `1e400`: JSON has none of them, and an answer that
    echoed one could not be written), or nesting deeper than MAX_JSON_DEPTH."""
    try:
        document = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except _NotFinite as err:
        return [], (
            f"numbers must be finite: {str(err)[:40]} is not a JSON number (NaN, Infinity and numbers "
            "beyond about 1.8e308 are refused)"
        )
    except (ValueError, RecursionError):
        return None  # FastAPI answers malformed JSON itself (api/errors.py)
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return None  # too few brackets to nest that deep: no walk
    # A stack, not recursion: json.loads accepts nesting deeper than a recursive walk could follow.
    stack: list[tuple[list[str | int], Any]] = [([], document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict | list):
            if len(path) >= MAX_JSON_DEPTH:
                return path[:3], (
                    f"the JSON nests arrays or objects deeper than {MAX_JSON_DEPTH} levels (under the path "
                    "shown); a webhook's payload needs a few: flatten it"
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend(([*path, key], item) for key, item in items)
    return None


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def lone_surrogate(document: Any) -> tuple[list[str | int], str] | None:
    """The path to the first string (value or key) of `document` holding a lone surrogate, with a message."""
    # A stack, not recursion: json.loads accepts nesting deeper than a recursive walk could follow.
    stack: list[tuple[list[str | int], Any]] = [([], document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if _has_lone_surrogate(value):
                return path, _SURROGATE_MESSAGE
        elif isinstance(value, dict):
            for key, item in value.items():
                if _has_lone_surrogate(key):
                    # The key itself cannot be shown as it is: name it with JSON's ASCII escapes.
                    return [*path, json.dumps(key)], _SURROGATE_MESSAGE
                stack.append(([*path, key], item))
        elif isinstance(value, list):
            stack.extend(([*path, index], item) for index, item in enumerate(value))
    return None


_SURROGATE_MESSAGE = (
    "a string holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), which is not Unicode "
    "text; send the character itself, or both halves of its surrogate pair"
)


async def refuse(send: Send, status: int, detail: Any, *, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of an unread body is not worth reading: close instead.
                (b"connection", b"close"),
                *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
