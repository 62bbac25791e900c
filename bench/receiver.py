"""The benchmark's receiver: a bare ASGI app that notes when each delivery came and answers as its path says.

Run by uvicorn in its own process so that it never competes with the measuring process for the GIL.
`GET /count` is how many distinct `webhook-id`s arrived, `GET /stats?prefix=…` the first receipt time of
each id with that prefix and how many requests repeated one of them. The path chooses the answer:

- `/slow…`: 200 after `BENCH_SLOW_SECONDS` (longer than the delivery timeout: an endpoint that hangs);
- `/wait{ms}-…`: 200 after `ms` milliseconds (a slow but healthy receiver);
- `/fail{k}-…`: 500 to the first `k` requests of each `webhook-id`, then 200;
- `/failall-…`: always 500;
- anything else: 200 at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SLOW_SECONDS = float(os.environ.get("BENCH_SLOW_SECONDS", "30"))
_WAIT = re.compile(r"^/wait(\d+)-")
_FAIL = re.compile(r"^/fail(\d+)-")
_first_seen: dict[str, float] = {}
_requests: dict[str, int] = {}


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
        # ?prefix=… keeps the answer small: a whole run holds tens of thousands of ids.
        prefix = parse_qs(scope["query_string"].decode()).get("prefix", [""])[0]
        ids = [i for i in _first_seen if i.startswith(prefix)]
        body = {
            "repeats": sum(_requests[i] - 1 for i in ids),
            "first_seen": {i: _first_seen[i] for i in ids},
        }
        await _reply(send, 200, json.dumps(body).encode())
        return
    more = True
    while more:  # drain the request body
        message = await receive()
        more = message.get("more_body", False)
    now = time.time()
    webhook_id = next((v.decode() for k, v in scope["headers"] if k == b"webhook-id"), "")
    if path.startswith("/slow"):  # never counted: its deliveries never arrive, as far as the sender knows
        await asyncio.sleep(SLOW_SECONDS)
        await _reply(send, 200)
        return
    _first_seen.setdefault(webhook_id, now)
    seen = _requests[webhook_id] = _requests.get(webhook_id, 0) + 1
    if wait := _WAIT.match(path):
        await asyncio.sleep(int(wait.group(1)) / 1000)
    elif path.startswith("/failall-"):
        await _reply(send, 500)
        return
    elif (fail := _FAIL.match(path)) and seen <= int(fail.group(1)):
        await _reply(send, 500)
        return
    await _reply(send, 200, b'{"ok":true}')
