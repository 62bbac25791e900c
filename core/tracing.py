"""OpenTelemetry tracing: one trace from the API request that emits an event to each attempt's POST.

Off unless the standard variables turn it on (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, and `OTEL_SDK_DISABLED` not `true`); off, no tracer provider is
made, no interceptor is added to the Temporal client and no middleware to the API, so nothing is
traced and nothing is paid for. On, the SDK reads the rest of the standard variables itself
(`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, the
exporter's headers and timeout); `OTEL_EXPORTER_OTLP_PROTOCOL` picks `http/protobuf` (the default) or
`grpc`.

The trace: the API's request span (joining the caller's `traceparent`), Temporal's spans through the
SDK's `TracingInterceptor` (the client's start of the event or lane workflow, each workflow, each child,
each activity), and one span per attempt (`attempt_span`) whose context goes to the receiver as a W3C
`traceparent` header. A span carries ids, numbers and outcomes only: never a payload, a URL, a secret or
a header's value (docs/operating.md, "Tracing").
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from domain.models import AttemptOutcome, AttemptRecord, DeliverRequest

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.client import Interceptor

TRACER_NAME = "webhooks"
# The attempt's outcomes that are not a failure of the attempt: a 2xx, and an endpoint that is gone
# (deleted or disabled: nothing was sent, by decision).
_NOT_FAILED = {AttemptOutcome.SUCCEEDED, AttemptOutcome.ENDPOINT_UNAVAILABLE}

_provider: TracerProvider | None = None


def wanted(env: MutableMapping[str, str] | None = None) -> bool:
    """Whether the standard variables ask for traces: an OTLP endpoint is set, and the SDK not disabled."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def enabled() -> bool:
    """Whether this process traces (`configure_tracing` made a provider)."""
    return _provider is not None


def configure_tracing(default_service_name: str) -> bool:
    """Make this process's tracer provider and its OTLP exporter, when the standard variables ask for
    traces; True if they did. Called once at start-up, before the Temporal client is made.

    `default_service_name` names the process (`webhooks-api`, `webhooks-worker`) unless
    `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` does.
    """
    global _provider
    if _provider is not None:
        return True
    if not wanted():
        return False
    # Imported only when on: the SDK and the exporters are not loaded by a process that does not trace.
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Our default name, under the variables' (merged last, they win): Resource.create alone would put its
    # argument over them.
    resource = Resource.create({"service.name": default_service_name}).merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)  # its sampler from OTEL_TRACES_SAMPLER(_ARG)
    provider.add_span_processor(BatchSpanProcessor(_exporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    return True


def _exporter() -> Any:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol != "http/protobuf":
        raise SystemExit(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use http/protobuf or grpc"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def shutdown_tracing() -> None:
    """Send the spans still buffered, then stop exporting (a process that stops would lose them)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def temporal_interceptors() -> list[Interceptor]:
    """The Temporal client's interceptors: the SDK's tracing one when this process traces, else none.

    On the client, it also reaches every worker built on that client. Its context travels in a header
    of each workflow, child, signal and activity (a payload holding the `traceparent`, nothing else);
    workflow spans are made only when a workflow task is not replayed, so replay is unchanged.
    """
    if _provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(trace.get_tracer(TRACER_NAME))]


@contextmanager
def attempt_span(request: DeliverRequest) -> Iterator[Span]:
    """The span of one try of one attempt, current while it runs: ids, attempt number and trigger now,
    the outcome by `end_attempt`. Off, a no-op span (nothing recorded, no `traceparent` sent)."""
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        "webhook attempt",
        kind=SpanKind.CLIENT,
        attributes={
            "webhooks.tenant": request.tenant,
            "webhooks.endpoint_id": request.endpoint_id,
            "webhooks.delivery_id": request.delivery_id,
            "webhooks.attempt": request.attempt,
            "webhooks.trigger": request.trigger.value,
        },
        # The caller sets the status: a fault of ours, or a throttled try, is told apart from a failure.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def end_attempt(span: Span, record: AttemptRecord) -> None:
    """The attempt's outcome on its span: status and duration, and an error status if it failed."""
    if not span.is_recording():
        return
    span.set_attribute("webhooks.outcome", record.outcome.value)
    span.set_attribute("webhooks.duration_ms", record.duration_ms)
    if record.status_code is not None:
        span.set_attribute("http.response.status_code", record.status_code)
    if record.outcome not in _NOT_FAILED:
        # Without a status the error is ours (a timeout, a refused connection), which names no URL;
        # with one, the answer's status says it (a redirect's error would quote its Location).
        reason = f"HTTP {record.status_code}" if record.status_code is not None else record.error
        span.set_status(Status(StatusCode.ERROR, f"{record.outcome.value}: {reason}"))


def end_try_held(span: Span, reason: str) -> None:
    """A try the endpoint's limits held back: not a failure, and no attempt was made."""
    if span.is_recording():
        span.set_attribute("webhooks.throttled_by", reason)


def end_try_failed(span: Span, reason: str) -> None:
    """A try that failed on our side (the store unreachable, a bug): an error span, with our reason."""
    if span.is_recording():
        span.set_status(Status(StatusCode.ERROR, reason))


def inject_traceparent(headers: dict[str, str]) -> None:
    """Add the current span's `traceparent` (and `tracestate`, if any) to an outgoing request's headers."""
    if _provider is not None:
        propagate.inject(headers)


def current_trace_id() -> str | None:
    """The current span's trace id in hex (as `traceparent` carries it), or None outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex, for a log line; None outside a span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
