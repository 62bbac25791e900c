"""The signed-POST activity: one attempt to deliver one event to one endpoint.

`deliver_once` never raises for what the receiver did: every HTTP outcome, timeout and network error
becomes an `AttemptRecord`, so the workflow can log it and decide when to try again. It raises only for
our own faults (the store unreachable, a bug), which Temporal then reports as a failed attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from temporalio import activity

from activities.gates import EndpointGates
from core.destinations import DestinationError, check_resolved
from core.logs import FIELDS
from core.models import AttemptOutcome, AttemptRecord, DeliverRequest
from core.signing import JwtSigner, signature_headers
from core.store import EndpointStore

RESPONSE_BODY_LIMIT = 4096
USER_AGENT = "flexprice-webhooks/1.0"
_RETRY_AFTER_STATUSES = frozenset({429, 503})
attempt_log = logging.getLogger("webhooks.attempts")


def classify(status_code: int) -> AttemptOutcome:
    if 200 <= status_code <= 299:
        return AttemptOutcome.SUCCEEDED
    if status_code == 410:
        return AttemptOutcome.GONE
    return AttemptOutcome.RETRYABLE


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds asked for by a `Retry-After` header (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class DeliveryActivities:
    """Holds what every attempt shares: one HTTP client per worker, the store and the JWT signer."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        store: EndpointStore,
        jwt_signer: JwtSigner,
        *,
        allow_private_urls: bool,
        endpoint_concurrency: int = 8,
    ) -> None:
        self._http = http
        self._store = store
        self._jwt = jwt_signer
        self._allow_private = allow_private_urls
        self._gates = EndpointGates(endpoint_concurrency)

    @activity.defn
    async def deliver_once(self, request: DeliverRequest) -> AttemptRecord:
        started_at = datetime.now(UTC)
        clock = time.perf_counter()

        def record(outcome: AttemptOutcome, **fields: Any) -> AttemptRecord:
            attempt = AttemptRecord(
                attempt=request.attempt,
                trigger=request.trigger,
                started_at=started_at,
                duration_ms=round((time.perf_counter() - clock) * 1000),
                outcome=outcome,
                **fields,
            )
            report_attempt(request, attempt, seconds=time.perf_counter() - clock)
            return attempt

        endpoint = await asyncio.to_thread(self._store.get, request.tenant, request.endpoint_id)
        if endpoint is None:
            return record(AttemptOutcome.ENDPOINT_UNAVAILABLE, error="endpoint was deleted")
        if not endpoint.enabled:
            return record(AttemptOutcome.ENDPOINT_UNAVAILABLE, error="endpoint is disabled")
        try:
            await check_resolved(endpoint.url, allow_private=self._allow_private)
        except DestinationError as err:
            return record(AttemptOutcome.RETRYABLE, error=str(err))

        headers = signature_headers(
            method=endpoint.signature_method,
            msg_id=request.delivery_id,
            timestamp=int(started_at.timestamp()),
            body=request.body,
            secret=endpoint.secret,
            jwt_signer=self._jwt,
            tenant=request.tenant,
            endpoint_id=endpoint.id,
        )
        headers["content-type"] = "application/json"
        headers["user-agent"] = USER_AGENT
        remaining = max(0.1, request.timeout - (time.perf_counter() - clock))
        try:
            # One deadline covers the whole attempt, the wait at the endpoint's gate included: httpx's
            # own timeout restarts at every read, so a receiver trickling a byte at a time would
            # otherwise hold the connection for ever.
            async with (
                asyncio.timeout(remaining),
                self._gates.slot(endpoint.id),
                self._http.stream(
                    "POST",
                    endpoint.url,
                    content=request.body.encode(),
                    headers=headers,
                    timeout=remaining,
                    follow_redirects=False,
                ) as response,
            ):
                # Keep only the start of the answer: a receiver's error page can be megabytes.
                head = bytearray()
                async for chunk in response.aiter_bytes():
                    head += chunk
                    if len(head) >= RESPONSE_BODY_LIMIT:
                        break
        except (TimeoutError, httpx.TimeoutException):
            return record(AttemptOutcome.RETRYABLE, error=f"timed out after {request.timeout:g} s")
        except httpx.HTTPError as err:
            return record(AttemptOutcome.RETRYABLE, error=f"{type(err).__name__}: {err}".rstrip(": "))

        outcome = classify(response.status_code)
        error = None
        if response.is_redirect:
            error = f"redirects are not followed (Location: {response.headers.get('location', '')})"
        elif outcome is AttemptOutcome.GONE:
            error = "410 Gone: the receiver asked to stop this delivery"
        retry_after = None
        if response.status_code in _RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(response.headers.get("retry-after"), now=started_at)
        return record(
            outcome,
            status_code=response.status_code,
            response_body=bytes(head[:RESPONSE_BODY_LIMIT]).decode("utf-8", errors="replace"),
            error=error,
            retry_after_seconds=retry_after,
        )


def _status_class(status_code: int | None) -> str:
    return f"{status_code // 100}xx" if status_code is not None else "none"


def report_attempt(request: DeliverRequest, attempt: AttemptRecord, *, seconds: float) -> None:
    """The attempt's log line and metrics: ids, outcome, status and timing; never a secret, a signature,
    the URL (it may carry a token) or the payload. Metrics go to the worker's Prometheus endpoint.
    """
    attempt_log.info(
        "attempt",
        extra={
            FIELDS: {
                "tenant": request.tenant,
                "endpoint_id": request.endpoint_id,
                "delivery_id": request.delivery_id,
                "attempt": attempt.attempt,
                "trigger": attempt.trigger.value,
                "outcome": attempt.outcome.value,
                "status_code": attempt.status_code,
                "duration_ms": attempt.duration_ms,
                # A redirect's error quotes its Location, which is the receiver's URL: leave it out.
                "error": attempt.error if attempt.status_code is None else None,
            }
        },
    )
    meter = activity.metric_meter()
    meter.create_counter(
        "webhooks_delivery_attempts_total", "Delivery attempts by outcome, status class and trigger"
    ).add(
        1,
        {
            "outcome": attempt.outcome.value,
            "status_class": _status_class(attempt.status_code),
            "trigger": attempt.trigger.value,
        },
    )
    meter.create_histogram_float(
        "webhooks_delivery_attempt_duration_seconds", "Duration of delivery attempts", "s"
    ).record(seconds, {"outcome": attempt.outcome.value})
