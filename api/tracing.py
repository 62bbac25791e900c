"""The API request's span: the root of an emission's trace, or a child of the caller's (`traceparent`).

Installed only when the process traces (core/tracing.py). A small ASGI middleware of our own rather than
the FastAPI instrumentation, which records the request's target with its query string and can record
header values: this span carries the method, the route's template (`/v1/events`, never the path's ids
or a query) and the answer's status, nothing else.
"""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.tracing import TRACER_NAME

# The only request headers read: the W3C trace context the caller may send.
_CONTEXT_HEADERS = {b"traceparent", b"tracestate"}


class TraceRequests:
    """An ASGI app answering as `app` does, each HTTP request inside a server span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tracer = trace.get_tracer(TRACER_NAME)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _CONTEXT_HEADERS
        }
        method = scope["method"]
        with self.tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            finally:
                # The router put the matched route in the scope; the template names the span.
                route = getattr(scope.get("route"), "path", None)
                if isinstance(route, str):
                    span.set_attribute("http.route", route)
                    span.update_name(f"{method} {route}")
