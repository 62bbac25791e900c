"""OTLP trace collectors of the tests' own, on 127.0.0.1, and the checks of one emission's trace.

Two ways in, one store: `HttpCollector` takes OTLP/HTTP (`POST /v1/traces`, protobuf, maybe gzipped),
`GrpcCollector` takes OTLP/gRPC (`opentelemetry.proto.collector.trace.v1.TraceService/Export`, the stubs
`opentelemetry-proto` ships). Both decode each export into `ExportedSpan`s with the `opentelemetry-proto`
messages, so a test reads what an exporter really sent. `running_traced_stack` starts one and a stack
that exports to it, `emit_in_trace` and `attempt_spans` make a traced emission and wait for its spans,
and `check_emission_trace` is the shape one emission's trace must have, whichever protocol carried it.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import grpc  # type: ignore[import-untyped]
import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from launcher import Stack
from tests.conftest import running_stack, wait_for
from tests.local_http import QuietHandler

# The caller that emits in a trace of its own (`emit_in_trace`): its trace and its span, which the API's
# request span must join (the W3C Trace Context's example).
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


def decode(request: ExportTraceServiceRequest) -> list[ExportedSpan]:
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
    return spans


class Collector:
    """Every span sent to it, decoded; `endpoint` is what `OTEL_EXPORTER_OTLP_ENDPOINT` names."""

    protocol: str
    endpoint: str

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        self._lock = threading.Lock()

    def keep(self, request: ExportTraceServiceRequest) -> None:
        spans = decode(request)
        with self._lock:
            self.spans.extend(spans)

    def trace(self, trace_id: str) -> list[ExportedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpCollector(Collector):
    """An OTLP/HTTP trace receiver."""

    protocol = "http/protobuf"

    def __init__(self) -> None:
        super().__init__()
        collector = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                collector.keep(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.answer(200, answer, {"content-type": "application/x-protobuf"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host!s}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class GrpcCollector(Collector):
    """An OTLP/gRPC trace receiver: the `TraceService` of `opentelemetry-proto`, without TLS (the
    exporter takes an `http://` endpoint as insecure)."""

    protocol = "grpc"

    def __init__(self) -> None:
        super().__init__()
        collector = self

        class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(  # noqa: N802
                self, request: ExportTraceServiceRequest, context: Any
            ) -> ExportTraceServiceResponse:
                collector.keep(request)
                return ExportTraceServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]  # generated, untyped
            TraceService(), self._server
        )
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self._server.stop(grace=None).wait()


@dataclass(frozen=True)
class TracedStack:
    """A stack whose API and worker export their spans to `collector`."""

    stack: Stack
    collector: Collector


@contextmanager
def running_traced_stack(kind: type[Collector], data_dir: Path, **overrides: str) -> Iterator[TracedStack]:
    """A collector of `kind` on 127.0.0.1 and a stack exporting to it, started together (each tracing test
    file needs both) and stopped together, the stack first."""
    with (
        kind() as collector,
        running_stack(
            data_dir,
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL=collector.protocol,
            OTEL_BSP_SCHEDULE_DELAY="100",  # milliseconds: spans reach the collector while the test waits
            **overrides,
        ) as stack,
    ):
        yield TracedStack(stack, collector)


def emit_in_trace(api: httpx.Client, object_id: str, *, trace_id: str, parent_span: str) -> str:
    """An invoice.created emitted by a caller in its own trace (its `traceparent`); the event's id."""
    response = api.post(
        "/v1/events",
        json={"webhook_type": "invoice.created", "data": {"object": {"id": object_id}}},
        headers={"traceparent": f"00-{trace_id}-{parent_span}-01"},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def attempt_spans(collector: Collector, trace_id: str, attempts: int) -> list[ExportedSpan]:
    """The spans of `trace_id` at `collector`, once the spans of all its `attempts` have arrived."""

    def arrived() -> list[ExportedSpan] | None:
        spans = collector.trace(trace_id)
        return spans if sum(s.name == "webhook attempt" for s in spans) == attempts else None

    return wait_for(arrived, what=f"the spans of {attempts} attempts at the collector")


def one(spans: list[ExportedSpan], name: str) -> ExportedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def check_emission_trace(
    spans: list[ExportedSpan],
    *,
    caller_span: str,
    endpoint_id: str,
    delivery_id: str,
    statuses: tuple[int, ...],
) -> list[ExportedSpan]:
    """One emission's trace, parented as it must be: the API's request span (a child of the caller's),
    the client's start of the event workflow, its run, the child's start and run, and under the child one
    activity per attempt, each with its attempt span (ids, number, trigger, status; an error unless 2xx).
    The attempt spans, in attempt order."""
    by_id = {s.span_id: s for s in spans}
    parent: Callable[[ExportedSpan], ExportedSpan] = lambda span: by_id[span.parent_id]  # noqa: E731

    request = one(spans, "POST /v1/events")
    assert request.parent_id == caller_span
    assert request.service == "webhooks-api"
    assert request.attributes["http.route"] == "/v1/events"
    assert request.attributes["http.response.status_code"] == 202
    # The SDK's spans in a workflow are children of the span that started it, as its run's span is.
    started = one(spans, "StartWorkflow:EventWorkflow")
    assert parent(started) == request
    assert parent(one(spans, "RunWorkflow:EventWorkflow")) == started
    child = one(spans, "StartChildWorkflow:DeliveryWorkflow")
    assert parent(child) == started
    child_run = one(spans, "RunWorkflow:DeliveryWorkflow")
    assert parent(child_run) == child
    assert child_run.service == "webhooks-worker"

    attempts = sorted(
        (s for s in spans if s.name == "webhook attempt"), key=lambda s: s.attributes["webhooks.attempt"]
    )
    assert [s.attributes["webhooks.attempt"] for s in attempts] == list(range(1, len(statuses) + 1))
    for span, status in zip(attempts, statuses, strict=True):
        run_activity = parent(span)
        assert run_activity.name == "RunActivity:deliver_once"
        assert parent(run_activity).name == "StartActivity:deliver_once"
        assert parent(parent(run_activity)) == child
        assert span.attributes["webhooks.endpoint_id"] == endpoint_id
        assert span.attributes["webhooks.delivery_id"] == delivery_id
        assert span.attributes["webhooks.trigger"] == "scheduled"
        assert span.attributes["http.response.status_code"] == status
        assert isinstance(span.attributes["webhooks.duration_ms"], int)
        assert span.error is not (200 <= status < 300)
    return attempts
