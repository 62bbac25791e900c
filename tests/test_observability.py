"""Metrics and logs against the running stack: the API's /metrics, the worker's Prometheus endpoint, and
the one-line-per-attempt log, in text (the stack's) and JSON (a worker started here)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import ActivityEnvironment

from activities.delivery import report_attempt
from api import metrics
from core.logs import JsonFormatter, TextFormatter
from core.temporal import connect
from domain.ids import delivery_workflow_id
from domain.models import AttemptOutcome, AttemptRecord, AttemptTrigger, DeliverRequest
from launcher import Stack, free_port
from service.deliveries import Deliveries
from service.errors import TemporalUnavailable
from tests.conftest import (
    STACK_LOG,
    create_endpoint,
    emit,
    settled,
    standalone_api,
    wait_delivery,
    wait_for,
)
from tests.receiver import Answer, Receiver


def scrape(url: str) -> str:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def scrape_counted(url: str) -> str:
    """The API's /metrics once its counts of Temporal's visibility came in whole
    (`webhooks_visibility_up 1`): on a loaded machine one of its counts can take longer than the API
    waits (2 s here), and that scrape has no gauges."""

    def counted() -> str | None:
        text = scrape(url)
        return text if value(text, "webhooks_visibility_up") == 1 else None

    return wait_for(counted, what="a scrape with every visibility count")


def value(text: str, sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` whose labels include `labels` (0 when there is none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_api_and_worker_metrics_count_what_a_delivery_did(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    assert stack.worker_metrics_url is not None
    api_metrics = f"{stack.api_url}/metrics"
    before_api, before_worker = scrape(api_metrics), scrape(stack.worker_metrics_url)

    endpoint = create_endpoint(api, receiver.script("/metered", [Answer(500, b"no"), Answer(200)]))
    event_id = emit(api, "wallet.depleted_ongoing_balance")["id"]
    emit(api, "wallet.depleted_ongoing_balance", id=event_id)  # the same id again: a duplicate
    final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
    assert [a["status_code"] for a in final["attempts"]] == [500, 200]

    after_api = scrape_counted(api_metrics)
    accepted = "webhooks_events_accepted_total"
    duplicate = "webhooks_events_duplicate_total"
    kind = {"webhook_type": "wallet.depleted_ongoing_balance"}
    assert value(after_api, accepted, **kind) - value(before_api, accepted, **kind) == 1
    assert value(after_api, duplicate, **kind) - value(before_api, duplicate, **kind) == 1
    wait_for(
        lambda: value(scrape(api_metrics), "webhooks_deliveries", status="succeeded") >= 1,
        what="the succeeded delivery in the visibility gauge",
    )

    # The worker counted both attempts and timed them (other tests' retries may add to these counters).
    after_worker = scrape(stack.worker_metrics_url)
    attempts = "webhooks_delivery_attempts_total"
    for labels in (
        {"outcome": "retryable", "status_class": "5xx", "trigger": "scheduled"},
        {"outcome": "succeeded", "status_class": "2xx", "trigger": "scheduled"},
    ):
        assert value(after_worker, attempts, **labels) - value(before_worker, attempts, **labels) >= 1, labels
    latency = "webhooks_delivery_attempt_duration_seconds_count"
    assert value(after_worker, latency) - value(before_worker, latency) >= 2
    assert value(after_worker, "webhooks_delivery_attempt_duration_seconds_bucket", le="+Inf") >= 2
    # The SDK's own metrics share the endpoint.
    assert "temporal_activity_execution_latency" in after_worker
    assert "temporal_workflow_completed" in after_worker


def test_retry_scheduled_gauge_counts_a_delivery_waiting_for_its_next_attempt(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    url = receiver.script("/later", [Answer(429, b"later", {"Retry-After": "600"}), Answer(200)])
    endpoint = create_endpoint(api, url)
    event_id = emit(api, "invoice.payment_overdue")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    wait_delivery(api, delivery_id, lambda d: d["next_attempt_at"] is not None)
    wait_for(
        lambda: value(scrape(f"{stack.api_url}/metrics"), "webhooks_deliveries_retry_scheduled") >= 1,
        what="the waiting delivery in webhooks_deliveries_retry_scheduled",
    )
    assert value(scrape_counted(f"{stack.api_url}/metrics"), "webhooks_deliveries", status="pending") >= 1
    # Let it finish now rather than in ten minutes.
    assert api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry").status_code == 202
    wait_delivery(api, delivery_id, settled)


def test_a_delivery_workflow_ended_without_settling_is_failed_listed_and_counted(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    """No exception of ours fails a delivery; one that ends anyway (here an operator terminates it) is
    not left 'pending' for ever: it is failed in the log and the lists, and /metrics counts it."""
    url = receiver.script("/terminated", [Answer(429, b"later", {"Retry-After": "600"})])
    endpoint = create_endpoint(api, url)
    event_id = emit(api, "invoice.drafted")["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    wait_delivery(api, delivery_id, lambda d: d["next_attempt_at"] is not None)
    broken = {"workflow_type": "DeliveryWorkflow"}
    metrics = scrape_counted(f"{stack.api_url}/metrics")
    before = value(metrics, "webhooks_workflows_closed_abnormally", **broken)
    gauged = {
        s.labels["workflow_type"]
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "webhooks_workflows_closed_abnormally"
    }
    assert gauged == {"EventWorkflow", "DeliveryWorkflow", "RecoveryWorkflow"}

    async def terminate() -> None:
        client = await connect(stack.settings)
        await client.get_workflow_handle(delivery_workflow_id("tenant_a", delivery_id)).terminate("test")

    asyncio.run(terminate())
    assert api.get(f"/v1/webhooks/deliveries/{delivery_id}").json()["status"] == "failed"

    def listed_as_failed() -> bool:
        failed = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries?status=failed").json()
        pending = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries?status=pending").json()
        return [d["id"] for d in failed["items"]] == [delivery_id] and not pending["items"]

    wait_for(listed_as_failed, what="the terminated delivery to be listed as failed")
    wait_for(
        lambda: (
            value(scrape(f"{stack.api_url}/metrics"), "webhooks_workflows_closed_abnormally", **broken)
            > before
        ),
        what="webhooks_workflows_closed_abnormally to count it",
    )


def _lines_about(log: Path, delivery_id: str) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if delivery_id in line]


def test_one_log_line_per_attempt_without_secrets(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    marker = "payload-marker-4d1f"  # in the body only: it must not reach the logs
    endpoint = create_endpoint(api, receiver.script("/logged?token=url-secret-9", [Answer(503), Answer(204)]))
    event_id = emit(api, "customer.created", data={"object": {"id": "c_1", "note": marker}})["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    wait_delivery(api, delivery_id, settled)
    log = STACK_LOG.resolve()

    def two_lines() -> list[str] | None:
        found = _lines_about(log, delivery_id)
        return found if len(found) >= 2 else None

    lines = wait_for(two_lines)
    attempt_lines = [line for line in lines if " webhooks.attempts attempt " in line]
    assert len(attempt_lines) == 2, lines
    first, second = attempt_lines
    for line in attempt_lines:
        assert "tenant=tenant_a" in line
        assert f"endpoint_id={endpoint['id']}" in line
        assert f"delivery_id={delivery_id}" in line
        assert "duration_ms=" in line
    assert "attempt=1" in first and "status_code=503" in first and "outcome=retryable" in first
    assert "attempt=2" in second and "status_code=204" in second and "outcome=succeeded" in second

    text = log.read_text(errors="replace")
    signatures = [r.headers["webhook-signature"] for r in receiver.requests("/logged?token=url-secret-9")]
    for secret in (
        endpoint["secret"],
        marker,
        "url-secret-9",
        *signatures,
        *(s.split(",", 1)[1] for s in signatures),
    ):
        assert secret not in text


def test_json_log_format(stack: Stack, api: httpx.Client, receiver: Receiver, tmp_path: Path) -> None:
    """A worker started with WEBHOOKS_LOG_FORMAT=json writes each attempt as one JSON object."""
    out = tmp_path / "json-worker.log"
    stack.stop_worker()
    env = {
        **stack.env,
        "WEBHOOKS_LOG_FORMAT": "json",
        "WEBHOOKS_WORKER_METRICS_PORT": str(free_port()),
    }
    with out.open("wb") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "worker"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        stack.wait_healthy()
        endpoint = create_endpoint(api, receiver.script("/json", []))
        event_id = emit(api, "fee.created", data={"object": {"id": "f_1", "note": "json-marker-77"}})["id"]
        delivery_id = f"{event_id}:{endpoint['id']}"
        wait_delivery(api, delivery_id, settled)
        [line] = wait_for(lambda: _lines_about(out, delivery_id), what="the JSON attempt line")
    finally:
        worker.terminate()
        worker.wait(timeout=15)
        stack.start_worker()
        stack.wait_healthy()
    entry = json.loads(line)
    assert entry["logger"] == "webhooks.attempts"
    assert entry["msg"] == "attempt"
    assert {k: entry[k] for k in ("tenant", "endpoint_id", "delivery_id", "status_code", "outcome")} == {
        "tenant": "tenant_a",
        "endpoint_id": endpoint["id"],
        "delivery_id": delivery_id,
        "status_code": 200,
        "outcome": "succeeded",
    }
    assert isinstance(entry["duration_ms"], int)
    assert endpoint["secret"] not in out.read_text()
    assert "json-marker-77" not in out.read_text()
    for other in out.read_text().splitlines():
        json.loads(other)  # every line of the process is JSON


def test_formatters_render_fields() -> None:
    record = logging.LogRecord("webhooks.attempts", logging.INFO, __file__, 1, "attempt", None, None)
    record.fields = {"tenant": "t", "error": 'said "no" = bad', "status_code": None}
    text = TextFormatter().format(record)
    assert text.endswith(' INFO webhooks.attempts attempt tenant=t error="said \\"no\\" = bad"')
    entry = json.loads(JsonFormatter().format(record))
    assert entry["tenant"] == "t" and entry["status_code"] is None and entry["level"] == "INFO"


def test_redirect_location_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A redirect's error quotes the receiver's Location, which may carry a token: the log leaves it out."""
    request = DeliverRequest(
        tenant="t",
        endpoint_id="ep_1",
        delivery_id="e:ep_1",
        body="{}",
        attempt=1,
        trigger=AttemptTrigger.SCHEDULED,
        timeout=5,
    )
    attempt = AttemptRecord(
        attempt=1,
        trigger=AttemptTrigger.SCHEDULED,
        started_at=datetime.now(UTC),
        duration_ms=3,
        outcome=AttemptOutcome.RETRYABLE,
        status_code=302,
        error="redirects are not followed (Location: https://x.example/?token=abc)",
    )
    with caplog.at_level(logging.INFO, logger="webhooks.attempts"):
        ActivityEnvironment().run(report_attempt, request, attempt, seconds=0.003)
    [record] = caplog.records
    fields = record.__dict__["fields"]
    assert fields["status_code"] == 302
    assert fields["error"] is None
    assert "token=abc" not in caplog.text


def test_worker_says_which_setting_to_change_when_its_metrics_port_is_taken(stack: Stack) -> None:
    assert stack.worker_metrics_url
    assert httpx.get(stack.worker_metrics_url).status_code == 200  # the stack's worker holds the port
    env = {**stack.env}
    result = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "WEBHOOKS_WORKER_METRICS_PORT" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.stack  # an API process of its own
def test_api_metrics_answer_when_temporal_is_down() -> None:
    with standalone_api({"WEBHOOKS_API_KEYS": "a:key_a_0123456789"}) as base_url:
        text = scrape(f"{base_url}/metrics")
    assert value(text, "webhooks_visibility_up") == 0
    assert "webhooks_deliveries{" not in text  # no stale or made-up counts
    assert "webhooks_events_accepted_total" in text or "webhooks_events_accepted" in text


@pytest.mark.stack  # an API process of its own
def test_api_metrics_need_the_token_when_one_is_set() -> None:
    env = {"WEBHOOKS_API_KEYS": "a:key_a_0123456789", "WEBHOOKS_METRICS_TOKEN": "scrape-token-0123456789"}
    with standalone_api(env) as base_url:
        for sent in (None, "Bearer wrong-token", "scrape-token-0123456789", "key_a_0123456789"):
            refused = httpx.get(f"{base_url}/metrics", headers={"authorization": sent} if sent else {})
            assert refused.status_code == 401, sent
            assert "WEBHOOKS_METRICS_TOKEN" in refused.json()["detail"]
        taken = httpx.get(f"{base_url}/metrics", headers={"authorization": "Bearer scrape-token-0123456789"})
    assert taken.status_code == 200
    assert "webhooks_visibility_up" in taken.text


class _CountedOverviews:
    """A `Deliveries` that only counts how often it is asked for its overview (Temporal down)."""

    def __init__(self) -> None:
        self.asked = 0

    async def overview(self) -> None:
        self.asked += 1
        raise TemporalUnavailable


async def test_delivery_counts_are_made_once_per_cache_window_however_often_scraped() -> None:
    metrics._Counted.registry = None  # whatever another test left
    deliveries = _CountedOverviews()
    counted = cast(Deliveries, deliveries)
    for _ in range(5):
        await metrics.visibility_counts(counted, fresh_for=60)
    assert deliveries.asked == 1
    await metrics.visibility_counts(counted, fresh_for=0)
    assert deliveries.asked == 2
