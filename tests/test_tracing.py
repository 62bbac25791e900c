"""Tracing end to end: a stack whose API and worker export their spans over OTLP/HTTP to a collector of
ours on 127.0.0.1, which decodes them (the `opentelemetry-proto` messages).

One emission makes one trace: the API's request span (joining the caller's `traceparent`), Temporal's
spans for the event workflow and its child, and one span per attempt; the receiver's `traceparent`
carries that trace, the attempt log and the JSON log lines name it, and no span carries a payload, a
query string or a header's value.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import tracing
from tests.conftest import (
    KEYS,
    api_client,
    create_endpoint,
    receiving_guide_code,
    run_guide_code,
    standalone_api_process,
    wait_delivery,
)
from tests.otlp import (
    CALLER_SPAN,
    CALLER_TRACE,
    HttpCollector,
    TracedStack,
    attempt_spans,
    check_emission_trace,
    emit_in_trace,
    running_traced_stack,
)
from tests.receiver import Answer, Receiver

# Values that must never reach a span: in the payload, the URL's query and a custom header.
PAYLOAD_CANARY = "payload-canary-4f1c"
QUERY_CANARY = "query-canary-9b2e"
HEADER_CANARY = "header-canary-77d0"


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracedStack]:
    data_dir = tmp_path_factory.mktemp("traced-stack")
    with running_traced_stack(HttpCollector, data_dir, WEBHOOKS_LOG_FORMAT="json") as traced:
        yield traced


def _receiver_guide_handler() -> Any:
    """docs/receiving.md's `handle_webhook`, as written."""
    return run_guide_code(receiving_guide_code("## Tracing: `traceparent`"))["handle_webhook"]


def test_one_emission_is_one_trace_from_the_request_to_the_receiver(traced_stack: TracedStack) -> None:
    with Receiver() as receiver, api_client(traced_stack.stack) as api:
        path = f"/traced?token={QUERY_CANARY}"
        url = receiver.script(path, [Answer(500, b"no"), Answer(200)])
        endpoint = create_endpoint(api, url, headers={"x-gateway-token": HEADER_CANARY})
        event_id = emit_in_trace(api, PAYLOAD_CANARY, trace_id=CALLER_TRACE, parent_span=CALLER_SPAN)
        delivery_id = f"{event_id}:{endpoint['id']}"
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

    spans = attempt_spans(traced_stack.collector, CALLER_TRACE, 2)
    attempts = check_emission_trace(
        spans,
        caller_span=CALLER_SPAN,
        endpoint_id=endpoint["id"],
        delivery_id=delivery_id,
        statuses=(500, 200),
    )
    # Each POST's traceparent names its attempt's span as the parent.
    assert [s.span_id for s in attempts] == parents

    # Nothing of the payload, the URL's query or a header's value in any span of any trace.
    exported = json.dumps(
        [[s.name, s.status_message, s.attributes] for s in traced_stack.collector.spans], default=str
    )
    for canary in (PAYLOAD_CANARY, QUERY_CANARY, HEADER_CANARY):
        assert canary not in exported

    # The worker's JSON log line of each attempt names its trace and its span.
    log = Path(traced_stack.stack.settings.data_dir) / "stack.log"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    logged = [x for x in lines if x.get("msg") == "attempt" and x.get("delivery_id") == delivery_id]
    assert [(x["trace_id"], x["span_id"]) for x in logged] == [(CALLER_TRACE, s.span_id) for s in attempts]


@pytest.mark.stack  # starts an API process of its own
def test_the_api_stopped_sends_the_spans_it_still_holds_and_exits_0() -> None:
    """`python -m api` (api/__main__.py): a request's span still buffered when the process is told to
    stop (the batch would wait a minute) reaches the collector, and the process exits 0. Bare uvicorn
    was killed by the SIGTERM it raises again after its graceful stop, and the span with it."""
    trace_id, parent = "1" * 32, "2" * 16
    with HttpCollector() as collector:
        env = {
            "WEBHOOKS_API_KEYS": f"tenant_a:{KEYS['tenant_a']}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": collector.protocol,
            "OTEL_BSP_SCHEDULE_DELAY": "60000",
        }
        with standalone_api_process(env) as (base_url, process):
            answer = httpx.get(
                f"{base_url}/v1/webhooks/endpoints",
                headers={"x-api-key": KEYS["tenant_a"], "traceparent": f"00-{trace_id}-{parent}-01"},
            )
            assert answer.status_code == 200, answer.text
            assert collector.trace(trace_id) == []  # held in the batch
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        [span] = collector.trace(trace_id)
        assert (span.service, span.name, span.parent_id) == (
            "webhooks-api",
            "GET /v1/webhooks/endpoints",
            parent,
        )


def test_tracing_is_off_unless_the_standard_variables_ask() -> None:
    assert not tracing.wanted({})
    # An empty endpoint is none (`make bench` clears any the shell exports that way for its untraced lanes).
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}
    )
