"""The bench's trace collector: an OTLP/HTTP endpoint that accepts every export and counts its spans.

Run by uvicorn in its own process (as the receiver is), so that decoding never competes with the
measuring process for the GIL. `POST /v1/traces` takes an `ExportTraceServiceRequest` (protobuf, gzipped
or not, as the SDK's exporter sends it) and answers 200 with an empty `ExportTraceServiceResponse`;
`GET /count` says how many exports, spans and bytes came so far. Nothing is kept: a traced lane pays for
making and exporting its spans, as it would to a real collector, and nothing more.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_counts = {"exports": 0, "spans": 0, "bytes": 0}
_ANSWER = ExportTraceServiceResponse().SerializeToString()


async def _reply(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def spans_in(body: bytes) -> int:
    request = ExportTraceServiceRequest.FromString(body)
    return sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "GET" and scope["path"] == "/count":
        await _reply(send, 200, json.dumps(_counts).encode(), b"application/json")
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    if scope["method"] != "POST" or scope["path"] != "/v1/traces":
        await _reply(send, 404, b"", b"text/plain")
        return
    _counts["bytes"] += len(body)
    if (b"content-encoding", b"gzip") in scope["headers"]:
        body = gzip.decompress(body)
    _counts["spans"] += spans_in(body)
    _counts["exports"] += 1
    await _reply(send, 200, _ANSWER, b"application/x-protobuf")
