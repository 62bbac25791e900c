"""The benchmark's receiver: a bare ASGI app that answers 200 at once and notes when each delivery came.

Run by uvicorn in its own process so that it never competes with the measuring process for the GIL.
`GET /stats` returns the first receipt time of every `webhook-id`; paths starting with `/slow` answer
after `BENCH_SLOW_SECONDS` (longer than the delivery timeout: the isolation scenario's bad endpoint),
and `POST /down` / `POST /up` switch every other path between 503 and 200.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SLOW_SECONDS = float(os.environ.get("BENCH_SLOW_SECONDS", "30"))
_first_seen: dict[str, float] = {}
_state = {"down": False, "requests": 0}


async def _reply(send: Send, status: int, body: bytes = b"") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if scope["method"] == "GET" and path == "/count":
        await _reply(send, 200, str(len(_first_seen)).encode())
        return
    if scope["method"] == "GET" and path == "/stats":
        body = json.dumps({"requests": _state["requests"], "first_seen": _first_seen}).encode()
        await _reply(send, 200, body)
        return
    more = True
    while more:  # drain the request body
        message = await receive()
        more = message.get("more_body", False)
    if path in ("/down", "/up"):
        _state["down"] = path == "/down"
        await _reply(send, 204)
        return
    now = time.time()
    _state["requests"] += 1
    if path.startswith("/slow"):
        await asyncio.sleep(SLOW_SECONDS)
        await _reply(send, 200)
        return
    if _state["down"]:
        await _reply(send, 503)
        return
    for name, value in scope["headers"]:
        if name == b"webhook-id":
            _first_seen.setdefault(value.decode(), now)
            break
    await _reply(send, 200, b'{"ok":true}')
