"""Tracing end to end: a stack whose API and worker export their spans over OTLP/HTTP to a collector of
ours on 127.0.0.1, which decodes them (the `opentelemetry-proto` messages).

One emission makes one trace: the API's request span (joining the caller's `traceparent`), Temporal's
spans for the event workflow and its child, and one span per attempt; the receiver's `traceparent`
carries that trace, the attempt log and the JSON log lines name it, and no span carries a payload, a
query string or a header's value.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from core import tracing
from launcher import Stack
from tests.conftest import KEYS, create_endpoint, start_stack, wait_delivery, wait_for
from tests.receiver import Answer, Receiver

# Values that must never reach a span: in the payload, the URL's query and a custom header.
PAYLOAD_CANARY = "payload-canary-4f1c"
QUERY_CANARY = "query-canary-9b2e"
HEADER_CANARY = "header-canary-77d0"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    attributes: dict[str, Any]
    error: bool
    status_message: str


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Collector:
    """An OTLP/HTTP trace receiver: keeps every span it is sent, decoded."""

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                collector._keep(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _keep(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        ExportedSpan(
                            service=str(resource.get("service.name")),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            name=span.name,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            error=span.status.code == Status.STATUS_CODE_ERROR,
                            status_message=span.status.message,
                        )
                    )
        with self._lock:
            self.spans.extend(spans)

    def trace(self, trace_id: str) -> list[ExportedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    collector = Collector()
    try:
        yield collector
    finally:
        collector.close()


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory: pytest.TempPathFactory, collector: Collector) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("traced-stack")
    stack = start_stack(
        data_dir,
        data_dir / "stack.log",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="100",  # milliseconds: spans reach the collector while the test waits
        WEBHOOKS_LOG_FORMAT="json",
    )
    try:
        yield stack
    finally:
        stack.stop()


def _receiver_guide_handler() -> Any:
    """docs/receiving.md's `handle_webhook`, as written."""
    doc = (Path(__file__).parents[1] / "docs" / "receiving.md").read_text()
    section = doc[doc.index("## Tracing: `traceparent`") :]
    code = section[section.index("```python\n") + len("```python\n") : section.index("```\n\n")]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/receiving.md", "exec"), namespace)
    return namespace["handle_webhook"]


def _one(spans: list[ExportedSpan], name: str) -> ExportedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def test_one_emission_is_one_trace_from_the_request_to_the_receiver(
    traced_stack: Stack, collector: Collector
) -> None:
    with (
        Receiver() as receiver,
        httpx.Client(
            base_url=traced_stack.api_url, headers={"x-api-key": KEYS["tenant_a"]}, timeout=30
        ) as api,
    ):
        path = f"/traced?token={QUERY_CANARY}"
        url = receiver.script(path, [Answer(500, b"no"), Answer(200)])
        endpoint = create_endpoint(api, url, headers={"x-gateway-token": HEADER_CANARY})
        response = api.post(
            "/v1/events",
            json={"webhook_type": "invoice.created", "data": {"object": {"id": PAYLOAD_CANARY}}},
            headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        )
        assert response.status_code == 202, response.text
        delivery_id = f"{response.json()['id']}:{endpoint['id']}"
        final = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")

        # The attempt log names the trace of each attempt: the caller's, joined by the API.
        assert [a["status_code"] for a in final["attempts"]] == [500, 200]
        assert [a["trace_id"] for a in final["attempts"]] == [CALLER_TRACE, CALLER_TRACE]

        # Every POST carried a traceparent of that trace, whose parent is that attempt's span.
        posts = receiver.requests(path)
        assert len(posts) == 2
        handle_webhook = _receiver_guide_handler()
        parents = []
        for post in posts:
            # The receiver guide's handler continues the same trace.
            assert handle_webhook(post.headers, post.body) == CALLER_TRACE
            version, trace_id, parent_id, flags = post.headers["traceparent"].split("-")
            assert (version, trace_id, flags) == ("00", CALLER_TRACE, "01")
            parents.append(parent_id)

    def both_attempts() -> list[ExportedSpan] | None:
        spans = collector.trace(CALLER_TRACE)
        return spans if sum(s.name == "webhook attempt" for s in spans) == 2 else None

    spans = wait_for(both_attempts, what="the attempts' spans at the collector")
    by_id = {s.span_id: s for s in spans}

    def parent(span: ExportedSpan) -> ExportedSpan:
        return by_id[span.parent_id]

    request = _one(spans, "POST /v1/events")
    assert request.parent_id == CALLER_SPAN
    assert request.service == "webhooks-api"
    assert request.attributes["http.route"] == "/v1/events"
    assert request.attributes["http.response.status_code"] == 202
    # The SDK's spans in a workflow are children of the span that started it, as its run's span is.
    started = _one(spans, "StartWorkflow:EventWorkflow")
    assert parent(started) == request
    assert parent(_one(spans, "RunWorkflow:EventWorkflow")) == started
    child = _one(spans, "StartChildWorkflow:DeliveryWorkflow")
    assert parent(child) == started
    child_run = _one(spans, "RunWorkflow:DeliveryWorkflow")
    assert parent(child_run) == child
    assert child_run.service == "webhooks-worker"

    attempts = sorted(
        (s for s in spans if s.name == "webhook attempt"), key=lambda s: s.attributes["webhooks.attempt"]
    )
    for span, status, post_parent in zip(attempts, (500, 200), parents, strict=True):
        assert span.span_id == post_parent
        run_activity = parent(span)
        assert run_activity.name == "RunActivity:deliver_once"
        assert parent(run_activity).name == "StartActivity:deliver_once"
        assert parent(parent(run_activity)) == child
        assert span.attributes["webhooks.endpoint_id"] == endpoint["id"]
        assert span.attributes["webhooks.delivery_id"] == delivery_id
        assert span.attributes["webhooks.trigger"] == "scheduled"
        assert span.attributes["http.response.status_code"] == status
        assert isinstance(span.attributes["webhooks.duration_ms"], int)
    assert [s.attributes["webhooks.attempt"] for s in attempts] == [1, 2]
    assert [s.error for s in attempts] == [True, False]

    # Nothing of the payload, the URL's query or a header's value in any span of any trace.
    exported = json.dumps([[s.name, s.status_message, s.attributes] for s in collector.spans], default=str)
    for canary in (PAYLOAD_CANARY, QUERY_CANARY, HEADER_CANARY):
        assert canary not in exported

    # The worker's JSON log line of each attempt names its trace and its span.
    log = Path(traced_stack.settings.data_dir) / "stack.log"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    logged = [x for x in lines if x.get("msg") == "attempt" and x.get("delivery_id") == delivery_id]
    assert [(x["trace_id"], x["span_id"]) for x in logged] == [(CALLER_TRACE, s.span_id) for s in attempts]


def test_tracing_is_off_unless_the_standard_variables_ask() -> None:
    assert not tracing.wanted({})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}
    )
