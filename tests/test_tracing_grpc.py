"""Tracing over OTLP/gRPC (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), end to end: a stack whose API and worker
export to a gRPC `TraceService` of ours on 127.0.0.1 (tests/otlp.py), and one emission's spans arrive
there as one trace, parented as over OTLP/HTTP (tests/test_tracing.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import api_client, create_endpoint, wait_delivery
from tests.otlp import (
    CALLER_SPAN,
    CALLER_TRACE,
    GrpcCollector,
    TracedStack,
    attempt_spans,
    check_emission_trace,
    emit_in_trace,
    running_traced_stack,
)
from tests.receiver import Answer, Receiver


@pytest.fixture(scope="module")
def grpc_traced_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracedStack]:
    with running_traced_stack(GrpcCollector, tmp_path_factory.mktemp("grpc-traced-stack")) as traced:
        yield traced


def test_one_emission_is_one_trace_over_otlp_grpc(grpc_traced_stack: TracedStack) -> None:
    with Receiver() as receiver, api_client(grpc_traced_stack.stack) as api:
        url = receiver.script("/grpc-traced", [Answer(503, b"later"), Answer(204)])
        endpoint = create_endpoint(api, url)
        event_id = emit_in_trace(api, "in_grpc", trace_id=CALLER_TRACE, parent_span=CALLER_SPAN)
        delivery_id = f"{event_id}:{endpoint['id']}"
        final = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
        assert [a["trace_id"] for a in final["attempts"]] == [CALLER_TRACE, CALLER_TRACE]
        parents = [post.headers["traceparent"].split("-")[2] for post in receiver.requests("/grpc-traced")]

    spans = attempt_spans(grpc_traced_stack.collector, CALLER_TRACE, 2)
    assert {s.service for s in spans} == {"webhooks-api", "webhooks-worker"}
    attempts = check_emission_trace(
        spans,
        caller_span=CALLER_SPAN,
        endpoint_id=endpoint["id"],
        delivery_id=delivery_id,
        statuses=(503, 204),
    )
    assert [s.span_id for s in attempts] == parents
