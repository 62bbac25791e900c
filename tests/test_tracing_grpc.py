"""Tracing over OTLP/gRPC (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), end to end: a stack whose API and worker
export to a gRPC `TraceService` of ours on 127.0.0.1 (tests/otlp.py), and one emission's spans arrive
there as one trace, parented as over OTLP/HTTP (tests/test_tracing.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from launcher import Stack
from tests.conftest import KEYS, create_endpoint, running_stack, wait_delivery, wait_for
from tests.otlp import ExportedSpan, GrpcCollector, check_emission_trace
from tests.receiver import Answer, Receiver

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@pytest.fixture(scope="module")
def grpc_collector() -> Iterator[GrpcCollector]:
    with GrpcCollector() as collector:
        yield collector


@pytest.fixture(scope="module")
def grpc_traced_stack(
    tmp_path_factory: pytest.TempPathFactory, grpc_collector: GrpcCollector
) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("grpc-traced-stack"),
        OTEL_EXPORTER_OTLP_ENDPOINT=grpc_collector.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_BSP_SCHEDULE_DELAY="100",  # milliseconds: spans reach the collector while the test waits
    ) as stack:
        yield stack


def test_one_emission_is_one_trace_over_otlp_grpc(
    grpc_traced_stack: Stack, grpc_collector: GrpcCollector
) -> None:
    with (
        Receiver() as receiver,
        httpx.Client(
            base_url=grpc_traced_stack.api_url, headers={"x-api-key": KEYS["tenant_a"]}, timeout=30
        ) as api,
    ):
        url = receiver.script("/grpc-traced", [Answer(503, b"later"), Answer(204)])
        endpoint = create_endpoint(api, url)
        response = api.post(
            "/v1/events",
            json={"webhook_type": "invoice.created", "data": {"object": {"id": "in_grpc"}}},
            headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        )
        assert response.status_code == 202, response.text
        delivery_id = f"{response.json()['id']}:{endpoint['id']}"
        final = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
        assert [a["trace_id"] for a in final["attempts"]] == [CALLER_TRACE, CALLER_TRACE]
        parents = [post.headers["traceparent"].split("-")[2] for post in receiver.requests("/grpc-traced")]

    def both_attempts() -> list[ExportedSpan] | None:
        spans = grpc_collector.trace(CALLER_TRACE)
        return spans if sum(s.name == "webhook attempt" for s in spans) == 2 else None

    spans = wait_for(both_attempts, what="the attempts' spans at the gRPC collector")
    assert {s.service for s in spans} == {"webhooks-api", "webhooks-worker"}
    attempts = check_emission_trace(
        spans,
        caller_span=CALLER_SPAN,
        endpoint_id=endpoint["id"],
        delivery_id=delivery_id,
        statuses=(503, 204),
    )
    assert [s.span_id for s in attempts] == parents
