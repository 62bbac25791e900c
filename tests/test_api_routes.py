"""The API's routes in-process: routing, validation and error shapes, with the services swapped for fakes.

Through httpx's ASGI transport (Starlette's TestClient wants another package), so no server runs.

No Temporal, no store: each test gives the route a fake service (`app.dependency_overrides`) that answers
or raises what the case needs, and checks the HTTP answer the one translation (api/errors.py) makes of
it. What the services do is tested end to end elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.deps import get_deliveries, get_endpoints, get_events, get_recoveries, get_settings
from api.main import create_app
from core.settings import Settings
from domain.access import Principal
from domain.models import (
    DeliveryStatus,
    RecoveryCounts,
    RetryAccepted,
)
from service.errors import (
    Conflict,
    InvalidInput,
    MayHaveBeenApplied,
    NotFound,
    PayloadTooLarge,
    QuotaPolicy,
    RateLimited,
    TemporalUnavailable,
    UpstreamRefused,
    WebhooksError,
)
from service.models import (
    AcceptedEvent,
    DeliveryCounts,
    DeliveryPage,
    DeliverySummary,
    EventSubmission,
    RecoveryView,
    RecoveryViewPage,
    SentTestEvent,
)
from tests.conftest import TEST_ENCRYPTION_KEYS, recovery_state

KEY = "key_routes_0123456789"
NOW = datetime(2026, 11, 27, tzinfo=UTC)
EVENT = {"webhook_type": "invoice.created", "data": {"object": {"id": "inv_1"}}}


class FakeEvents:
    def __init__(self, outcome: AcceptedEvent | WebhooksError) -> None:
        self.outcome = outcome
        self.seen: list[EventSubmission] = []
        self.tests: list[tuple[str, str, str | None]] = []

    async def accept(
        self, caller: Principal, submission: EventSubmission
    ) -> tuple[AcceptedEvent, QuotaPolicy]:
        self.seen.append(submission)
        if isinstance(self.outcome, WebhooksError):
            raise self.outcome
        return self.outcome, QuotaPolicy("emit", quota=1000, window=10, remaining=999, reset=1)

    async def get(self, tenant: str, event_id: str) -> Any:
        raise NotFound(f"event {event_id} not found")

    async def send_test(self, tenant: str, endpoint_id: str, webhook_type: str | None) -> SentTestEvent:
        self.tests.append((tenant, endpoint_id, webhook_type))
        if isinstance(self.outcome, WebhooksError):
            raise self.outcome
        sent_type = webhook_type or "invoice.created"
        return SentTestEvent("test_1", f"test_1:{endpoint_id}", endpoint_id, sent_type, NOW)


class FakeDeliveries:
    def __init__(self, error: WebhooksError | None = None) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    async def list(self, tenant: str, **filters: Any) -> DeliveryPage:
        self.calls.append(filters)
        if self.error:
            raise self.error
        summary = DeliverySummary(
            "e:ep", "e", "ep", "invoice.created", DeliveryStatus.PENDING, 0, None, NOW, NOW
        )
        return DeliveryPage(items=[summary], next_cursor=None)

    async def count(
        self, tenant: str, endpoint_id: str, *, since: datetime, until: datetime | None = None
    ) -> DeliveryCounts:
        self.calls.append({"count": endpoint_id, "since": since, "until": until})
        if self.error:
            raise self.error
        return DeliveryCounts(endpoint_id, since, until, pending=1, succeeded=2, failed=3)

    async def retry(
        self, tenant: str, delivery_id: str, *, bulk: bool = False, after: int | None = None
    ) -> RetryAccepted:
        self.calls.append({"retry": delivery_id, "bulk": bulk, "after": after})
        if self.error:
            raise self.error
        return RetryAccepted(attempt=5)


class FakeEndpoints:
    def __init__(self, error: WebhooksError) -> None:
        self.error = error

    async def create(self, tenant: str, **fields: Any) -> Any:
        raise self.error


RECOVERY = RecoveryView(
    state=recovery_state(
        now=NOW, since=NOW - timedelta(hours=6), total=40, counts=RecoveryCounts(done=12, failed=1, expired=2)
    ),
    left=25,
    workflow_url="http://ui/namespaces/default/workflows/recovery%3Aacme%3Aep_1/run/history",
)


class FakeRecoveries:
    def __init__(self, error: WebhooksError | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def _answer(self, name: str, **arguments: Any) -> RecoveryView:
        self.calls.append((name, arguments))
        if self.error:
            raise self.error
        return RECOVERY

    async def recover(self, tenant: str, endpoint_id: str, **window: Any) -> RecoveryView:
        return await self._answer("recover", endpoint_id=endpoint_id, **window)

    async def replay(self, tenant: str, endpoint_id: str, **window: Any) -> RecoveryView:
        return await self._answer("replay", endpoint_id=endpoint_id, **window)

    async def get(self, tenant: str, endpoint_id: str, recovery_id: str) -> RecoveryView:
        return await self._answer("get", endpoint_id=endpoint_id, recovery_id=recovery_id)

    async def cancel(self, tenant: str, endpoint_id: str, recovery_id: str) -> RecoveryView:
        return await self._answer("cancel", endpoint_id=endpoint_id, recovery_id=recovery_id)

    async def list(self, tenant: str, endpoint_id: str, **page: Any) -> RecoveryViewPage:
        await self._answer("list", endpoint_id=endpoint_id, **page)
        return RecoveryViewPage(items=[RECOVERY], next_cursor=None)


@pytest.fixture
def app() -> Iterator[Any]:
    settings = Settings(api_keys=f"acme:{KEY}", encryption_keys=TEST_ENCRYPTION_KEYS)
    application = create_app(settings)
    application.dependency_overrides[get_settings] = lambda: settings
    yield application
    application.dependency_overrides.clear()


def _provider(fake: object) -> Any:
    def provide() -> object:  # no parameters: FastAPI would read them from the request
        return fake

    return provide


def client(app: Any, *, key: str | None = KEY, **services: Any) -> httpx.AsyncClient:
    overrides = {
        "events": get_events,
        "deliveries": get_deliveries,
        "endpoints": get_endpoints,
        "recoveries": get_recoveries,
    }
    for name, fake in services.items():
        app.dependency_overrides[overrides[name]] = _provider(fake)
    headers = {"x-api-key": key} if key else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", headers=headers)


async def test_an_accepted_event_is_202_with_what_the_service_accepted(app: Any) -> None:
    accepted = AcceptedEvent("inv_1_created", "invoice.created", "invoice", NOW, duplicate=False)
    events = FakeEvents(accepted)
    response = await client(app, events=events).post("/v1/events", json={**EVENT, "id": "inv_1_created"})
    assert response.status_code == 202
    assert response.json() == {
        "id": "inv_1_created",
        "webhook_type": "invoice.created",
        "object_type": "invoice",
        "created_at": "2026-11-27T00:00:00Z",
    }
    assert events.seen == [EventSubmission("invoice.created", {"id": "inv_1"}, None, "inv_1_created")]
    # What is left of the key's emission rate, as the IETF httpapi draft's fields say it.
    assert response.headers["ratelimit-policy"] == '"emit";q=1000;w=10'
    assert response.headers["ratelimit"] == '"emit";r=999;t=1'


async def test_an_emission_past_the_key_s_rate_is_429_with_when_to_come_back(app: Any) -> None:
    quota = QuotaPolicy("emit", quota=1000, window=10, remaining=0, reset=10)
    events = FakeEvents(RateLimited("this API key emitted more than 1000 events", retry_after=2, quota=quota))
    response = await client(app, events=events).post("/v1/events", json=EVENT)
    assert response.status_code == 429
    assert response.json() == {"detail": "this API key emitted more than 1000 events"}
    assert (response.headers["retry-after"], response.headers["ratelimit"]) == ("2", '"emit";r=0;t=10')


@pytest.mark.parametrize(
    "error",
    [
        PayloadTooLarge("the payload is larger than 262144 bytes"),
        Conflict("event id x was already used for a different payload"),
        InvalidInput("numbers must be finite", field=("data", "object")),
        TemporalUnavailable(),
    ],
)
async def test_an_emission_counted_then_refused_still_says_what_is_left_of_the_rate(
    app: Any, error: WebhooksError
) -> None:
    """Every emission is counted against the key's rate before it is checked and started: a refusal says
    the quota and what is left of it, as an acceptance does (the service attaches it, service/events.py)."""
    error.quota = QuotaPolicy("emit", quota=1000, window=10, remaining=998, reset=1)
    response = await client(app, events=FakeEvents(error)).post("/v1/events", json=EVENT)
    assert response.status_code >= 400
    assert response.headers["ratelimit-policy"] == '"emit";q=1000;w=10'
    assert response.headers["ratelimit"] == '"emit";r=998;t=1'


@pytest.mark.parametrize(
    ("error", "status", "detail"),
    [
        (PayloadTooLarge("the payload is larger than 262144 bytes"), 413, "larger than"),
        (Conflict("event id x was already used for a different payload"), 409, "already used"),
        (TemporalUnavailable(), 503, "nothing was accepted"),
        (
            MayHaveBeenApplied("Temporal did not answer in time; the request may have been applied"),
            503,
            "may",
        ),
        (UpstreamRefused("Temporal refused the request: too big"), 502, "refused"),
    ],
)
async def test_service_errors_become_one_kind_of_answer(
    app: Any, error: WebhooksError, status: int, detail: str
) -> None:
    response = await client(app, events=FakeEvents(error)).post("/v1/events", json=EVENT)
    assert response.status_code == status
    assert detail in response.json()["detail"]
    # Only "try again later" answers say when.
    assert ("retry-after" in response.headers) is (status == 503)


async def test_invalid_input_is_a_422_in_fastapis_shape_naming_the_field(app: Any) -> None:
    error = InvalidInput("object_type of invoice.created is 'invoice', not 'wallet'", field=("object_type",))
    response = await client(app, events=FakeEvents(error)).post("/v1/events", json=EVENT)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "object_type"]
    assert "not 'wallet'" in problem["msg"]


async def test_schema_validation_comes_before_the_service(app: Any) -> None:
    events = FakeEvents(AcceptedEvent("x", "invoice.created", "invoice", NOW, duplicate=False))
    api = client(app, events=events)
    response = await api.post("/v1/events", json={"webhook_type": "invoice.nope", "data": {"object": {}}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "webhook_type"]
    assert (await api.post("/v1/events", json={**EVENT, "id": "abc\n"})).status_code == 422
    assert events.seen == []


async def test_not_found_is_404(app: Any) -> None:
    response = await client(app, events=FakeEvents(NotFound("x"))).get("/v1/events/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "event nope not found"}


async def test_list_filters_are_checked_and_passed_on(app: Any) -> None:
    deliveries = FakeDeliveries()
    api = client(app, deliveries=deliveries)
    listed = await api.get(
        "/v1/webhooks/deliveries", params={"status": "failed", "event_type": "invoice.created"}
    )
    assert listed.status_code == 200
    assert listed.json()["items"][0]["id"] == "e:ep"
    assert deliveries.calls[0]["status"] is DeliveryStatus.FAILED
    # A delivery is listed once it has started: `scheduled` is not a filter.
    scheduled = await api.get("/v1/webhooks/deliveries", params={"status": "scheduled"})
    assert scheduled.status_code == 422
    unknown = await api.get("/v1/webhooks/deliveries", params={"event_type": "invoice.nope"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["query", "event_type"]
    assert len(deliveries.calls) == 1


async def test_a_created_window_is_parsed_with_its_timezone_and_passed_on(app: Any) -> None:
    deliveries = FakeDeliveries()
    api = client(app, deliveries=deliveries)
    window = {"created_after": "2026-11-26T09:00:00+01:00", "created_before": "2026-11-27T00:00:00Z"}
    for path in ("/v1/webhooks/deliveries", "/v1/webhooks/endpoints/ep_1/deliveries"):
        assert (await api.get(path, params=window)).status_code == 200
    for call in deliveries.calls:
        assert call["created_after"] == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
        assert call["created_before"] == datetime(2026, 11, 27, tzinfo=UTC)
    # A time without its timezone could mean any of 24 hours: refused, naming the parameter.
    naive = await api.get("/v1/webhooks/deliveries", params={"created_after": "2026-11-26T09:00:00"})
    assert naive.status_code == 422
    [problem] = naive.json()["detail"]
    assert problem["loc"] == ["query", "created_after"]
    assert "timezone" in problem["msg"]
    assert (
        await api.get("/v1/webhooks/deliveries", params={"created_before": "yesterday"})
    ).status_code == 422
    assert len(deliveries.calls) == 2


async def test_stats_count_the_hours_before_created_before_when_no_created_after_is_given(app: Any) -> None:
    """`?created_before=` alone once counted from 24 h before now, and a time earlier than that was refused
    as "created_after is later than created_before", naming a parameter the caller never sent."""
    deliveries = FakeDeliveries()
    api = client(app, deliveries=deliveries)
    path = "/v1/webhooks/endpoints/ep_1/stats"
    response = await api.get(path, params={"created_before": "2026-01-10T00:00:00Z", "hours": 6})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["pending"], body["succeeded"], body["failed"]) == (1, 2, 3)
    assert (body["since"], body["until"]) == ("2026-01-09T18:00:00Z", "2026-01-10T00:00:00Z")
    end = datetime(2026, 1, 10, tzinfo=UTC)
    assert deliveries.calls[-1] == {"count": "ep_1", "since": end - timedelta(hours=6), "until": end}
    # Both bounds given: the window as given, `hours` unused; neither: the last 24 hours up to now.
    window = {"created_after": "2026-01-09T00:00:00Z", "created_before": "2026-01-10T00:00:00Z"}
    assert (await api.get(path, params=window)).status_code == 200
    assert deliveries.calls[-1]["since"] == datetime(2026, 1, 9, tzinfo=UTC)
    # An end in the calendar's first day: the window starts at its first moment, not a 500.
    first_day = await api.get(path, params={"created_before": "0001-01-01T12:00:00Z"})
    assert first_day.status_code == 200, first_day.text
    assert deliveries.calls[-1]["since"] == datetime.min.replace(tzinfo=UTC)
    asked = datetime.now(UTC)
    assert (await api.get(path)).status_code == 200
    call = deliveries.calls[-1]
    assert call["until"] is None
    assert asked - timedelta(hours=24) <= call["since"] <= datetime.now(UTC) - timedelta(hours=24)


async def test_a_window_that_ends_before_it_starts_is_a_422_from_the_service(app: Any) -> None:
    error = InvalidInput(
        "created_after is later than created_before; swap them, or leave one out",
        field=("created_after",),
        location="query",
    )
    response = await client(app, deliveries=FakeDeliveries(error)).get(
        "/v1/webhooks/deliveries",
        params={"created_after": "2026-11-27T00:00:00Z", "created_before": "2026-11-26T00:00:00Z"},
    )
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", "created_after"]
    assert "swap them" in problem["msg"]


async def test_a_bad_cursor_is_a_422_on_the_query(app: Any) -> None:
    error = InvalidInput("cursor is not one this API returned to you", field=("cursor",), location="query")
    response = await client(app, deliveries=FakeDeliveries(error)).get("/v1/webhooks/deliveries?cursor=x")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_retry_answers(app: Any) -> None:
    accepted = await client(app, deliveries=FakeDeliveries()).post("/v1/webhooks/deliveries/e:ep/retry")
    assert (accepted.status_code, accepted.json()) == (202, {"delivery_id": "e:ep", "attempt": 5})
    pending = MayHaveBeenApplied("no worker took the retry within 5 s; it may still be made")
    refused = await client(app, deliveries=FakeDeliveries(pending)).post("/v1/webhooks/deliveries/e:ep/retry")
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    deliveries = FakeDeliveries()
    bulk = await client(app, deliveries=deliveries).post("/v1/webhooks/deliveries/e:ep/retry?bulk=true")
    assert bulk.status_code == 202 and deliveries.calls == [{"retry": "e:ep", "bulk": True, "after": None}]
    deliveries = FakeDeliveries()
    read = await client(app, deliveries=deliveries).post("/v1/webhooks/deliveries/e:ep/retry?after=4")
    assert read.status_code == 202 and deliveries.calls == [{"retry": "e:ep", "bulk": False, "after": 4}]
    negative = await client(app, deliveries=deliveries).post("/v1/webhooks/deliveries/e:ep/retry?after=-1")
    assert negative.status_code == 422 and len(deliveries.calls) == 1


async def test_an_endpoint_url_refused_by_the_service_is_a_422_on_the_url(app: Any) -> None:
    error = InvalidInput("url points at 127.0.0.1, a loopback address", field=("url",))
    response = await client(app, endpoints=FakeEndpoints(error)).post(
        "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1/hook"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "url"]


ACCEPTED = AcceptedEvent("x", "invoice.created", "invoice", NOW, duplicate=False)


async def test_a_test_event_is_202_with_its_delivery_and_the_type_is_optional(app: Any) -> None:
    events = FakeEvents(ACCEPTED)
    api = client(app, events=events)
    chosen = await api.post("/v1/webhooks/endpoints/ep_1/test", json={"webhook_type": "wallet.created"})
    assert chosen.status_code == 202
    assert chosen.json() == {
        "event_id": "test_1",
        "delivery_id": "test_1:ep_1",
        "endpoint_id": "ep_1",
        "webhook_type": "wallet.created",
        "created_at": "2026-11-27T00:00:00Z",
    }
    # No body, an empty one, or an operational type (which only the service sends, but may be tested).
    assert (await api.post("/v1/webhooks/endpoints/ep_1/test")).status_code == 202
    assert (await api.post("/v1/webhooks/endpoints/ep_1/test", json={})).status_code == 202
    operational = {"webhook_type": "webhook_endpoint.disabled"}
    assert (await api.post("/v1/webhooks/endpoints/ep_1/test", json=operational)).status_code == 202
    assert events.tests == [
        ("acme", "ep_1", "wallet.created"),
        ("acme", "ep_1", None),
        ("acme", "ep_1", None),
        ("acme", "ep_1", "webhook_endpoint.disabled"),
    ]


@pytest.mark.parametrize(
    ("body", "loc", "says"),
    [
        ({"webhook_type": "invoice.nope"}, ["body", "webhook_type"], "event-types lists them"),
        ({"webhook_type": 3}, ["body", "webhook_type"], "string"),
        ({"type": "invoice.created"}, ["body", "type"], "Extra inputs"),
    ],
)
async def test_a_bad_test_event_request_is_a_422_naming_the_field(
    app: Any, body: dict[str, Any], loc: list[str], says: str
) -> None:
    events = FakeEvents(ACCEPTED)
    response = await client(app, events=events).post("/v1/webhooks/endpoints/ep_1/test", json=body)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == loc and says in problem["msg"]
    assert events.tests == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("endpoint ep_1 not found"), 404),
        (Conflict("endpoint ep_1 is disabled; enable it before sending it a test event"), 409),
        (TemporalUnavailable(), 503),
    ],
)
async def test_a_refused_test_event_says_why(app: Any, error: WebhooksError, status: int) -> None:
    response = await client(app, events=FakeEvents(error)).post("/v1/webhooks/endpoints/ep_1/test")
    assert (response.status_code, response.json()) == (status, {"detail": error.message})


async def test_a_clients_event_id_cannot_pass_for_a_test(app: Any) -> None:
    events = FakeEvents(ACCEPTED)
    response = await client(app, events=events).post("/v1/events", json={**EVENT, "id": "test_1"})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "id"] and "reserved for test events" in problem["msg"]
    assert events.seen == []


async def test_no_key_no_route(app: Any) -> None:
    response = await client(app, key=None).post("/v1/events", json=EVENT)
    assert response.status_code == 401


async def test_a_recovery_starts_with_its_window_and_answers_its_progress(app: Any) -> None:
    recoveries = FakeRecoveries()
    api = client(app, recoveries=recoveries)
    started = await api.post(
        "/v1/webhooks/endpoints/ep_1/recover", json={"since": "2026-11-26T18:00:00+01:00"}
    )
    assert started.status_code == 202
    assert started.json() == {
        "id": "rec_1",
        "kind": "recover",
        "status": "running",
        "endpoint_id": "ep_1",
        "since": "2026-11-26T18:00:00Z",
        "until": "2026-11-27T00:00:00Z",
        "event_types": None,
        "total": 40,
        "done": 12,
        "failed": 1,
        "skipped": 0,
        "expired": 2,
        "left": 25,
        "started_at": "2026-11-27T00:00:00Z",
        "finished_at": None,
        "reason": None,
        "cancel_requested": False,
        "workflow_url": RECOVERY.workflow_url,
    }
    [(name, arguments)] = recoveries.calls
    assert (name, arguments["until"]) == ("recover", None)
    assert arguments["since"] == datetime(2026, 11, 26, 17, tzinfo=UTC)  # the same moment, any zone
    replayed = await api.post(
        "/v1/webhooks/endpoints/ep_1/replay",
        json={
            "since": "2026-11-26T17:00:00Z",
            "until": "2026-11-26T20:00:00Z",
            "event_types": ["invoice.created"],
        },
    )
    assert replayed.status_code == 202
    assert recoveries.calls[1][1]["event_types"] == ["invoice.created"]
    shown = await api.get("/v1/webhooks/endpoints/ep_1/recoveries/rec_1")
    assert shown.status_code == 200 and shown.json()["left"] == 25
    listed = await api.get("/v1/webhooks/endpoints/ep_1/recoveries", params={"limit": 5})
    assert listed.json()["items"][0]["id"] == "rec_1" and recoveries.calls[-1][1]["limit"] == 5
    canceled = await api.delete("/v1/webhooks/endpoints/ep_1/recoveries/rec_1")
    assert canceled.status_code == 202 and recoveries.calls[-1][0] == "cancel"


async def test_a_recovery_window_is_checked_before_the_service(app: Any) -> None:
    recoveries = FakeRecoveries()
    api = client(app, recoveries=recoveries)
    naive = await api.post("/v1/webhooks/endpoints/ep_1/recover", json={"since": "2026-11-26T18:00:00"})
    assert naive.status_code == 422 and naive.json()["detail"][0]["loc"] == ["body", "since"]
    missing = await api.post("/v1/webhooks/endpoints/ep_1/recover", json={})
    assert missing.status_code == 422
    unknown = await api.post(
        "/v1/webhooks/endpoints/ep_1/replay",
        json={"since": "2026-11-26T18:00:00Z", "event_types": ["invoice.nope"]},
    )
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "event_types"]
    extra = await api.post(
        "/v1/webhooks/endpoints/ep_1/recover", json={"since": "2026-11-26T18:00:00Z", "rate": 1000}
    )
    assert extra.status_code == 422
    assert recoveries.calls == []


@pytest.mark.parametrize(
    ("error", "status", "loc"),
    [
        (Conflict("recovery rec_0 is running for endpoint ep_1, and one runs at a time"), 409, None),
        (Conflict("endpoint ep_1 is disabled; enable it first"), 409, None),
        (InvalidInput("the window holds 12000 events, more than the 10000", field=("since",)), 422, "since"),
        (NotFound("recovery rec_x of endpoint ep_1 not found"), 404, None),
    ],
)
async def test_recovery_refusals(app: Any, error: WebhooksError, status: int, loc: str | None) -> None:
    api = client(app, recoveries=FakeRecoveries(error))
    response = await api.post("/v1/webhooks/endpoints/ep_1/recover", json={"since": "2026-11-26T18:00:00Z"})
    assert response.status_code == status
    if loc is None:
        assert response.json() == {"detail": error.message}
    else:
        assert response.json()["detail"][0]["loc"] == ["body", loc]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"webhook_type": "invoice.created", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}", "too deeply"),
        (b'{"webhook_type": "invoice.created", "data": {"object": {"n": ' + b"9" * 5000 + b"}}}", "4,300"),
    ],
)
async def test_json_the_parser_gives_up_on_is_422_saying_what_to_fix(
    app: Any, body: bytes, says: str
) -> None:
    """Valid JSON that Python will not read, nested thousands deep or with a 5,000-digit number: FastAPI
    answered 400 "There was an error parsing the body" (an attack session's finding), which says neither."""
    events = FakeEvents(AcceptedEvent("inv_1_created", "invoice.created", "invoice", NOW, duplicate=False))
    response = await client(app, events=events).post(
        "/v1/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body"] and says in error["msg"], error
    assert events.seen == []
    # Any other HTTP error keeps its own answer.
    missing = await client(app).get("/v1/no-such-route")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        # An attack session: each was a 500 (FastAPI's 422 echoed the number, which JSON cannot write).
        ("/codec/decode", b'{"payloads": NaN}', "numbers must be finite: NaN"),
        ("/v1/portal/sessions", b'{"expires_in": 1e999}', "numbers must be finite: 1e999"),
        (
            "/v1/events",
            b'{"webhook_type": "invoice.created", "data": {"object": {"x": -Infinity}}}',
            "finite",
        ),
        # Accepted and delivered, then its log a 500 for good (pydantic serializes 255 levels at most).
        (
            "/v1/events",
            b'{"webhook_type": "invoice.created", "data": {"object": {"x": '
            + b"[" * 300
            + b"]" * 300
            + b"}}}",
            "deeper than 64 levels",
        ),
        ("/v1/portal/sessions", b'{"expires_in": ' + b"[" * 950 + b"1" + b"]" * 950 + b"}", "flatten it"),
    ],
)
async def test_what_no_answer_could_echo_nor_a_log_show_is_refused_at_the_door(
    app: Any, path: str, body: bytes, says: str
) -> None:
    events = FakeEvents(AcceptedEvent("inv_1_created", "invoice.created", "invoice", NOW, duplicate=False))
    response = await client(app, events=events).post(
        path, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"][0] == "body" and says in error["msg"], error
    assert events.seen == []


async def test_a_422_whose_input_json_cannot_write_is_answered_without_it(app: Any) -> None:
    """Past the door, a refusal that names a value JSON cannot hold still answers 422, not 500."""
    error = InvalidInput("numbers must be finite", field=("data", "object", "x"), value=float("nan"))
    response = await client(app, events=FakeEvents(error)).post("/v1/events", json=EVENT)
    assert response.status_code == 422, response.text
    [shown] = response.json()["detail"]
    assert shown["loc"] == ["body", "data", "object", "x"] and "input" not in shown, shown
    # 64 levels, the body's own included, pass.
    deep: Any = {"id": "inv_1"}
    for _ in range(61):
        deep = {"x": deep}
    events = FakeEvents(AcceptedEvent("inv_1_created", "invoice.created", "invoice", NOW, duplicate=False))
    accepted = await client(app, events=events).post(
        "/v1/events", json={"webhook_type": "invoice.created", "data": {"object": deep}}
    )
    assert accepted.status_code == 202, accepted.text


async def test_a_body_in_utf_16_is_422_saying_to_send_utf_8(app: Any) -> None:
    """FastAPI answered it a bare 400 "There was an error parsing the body" (an attack session's F9)."""
    body = json.dumps({**EVENT, "id": "inv_1_created"}).encode("utf-16")
    events = FakeEvents(AcceptedEvent("inv_1_created", "invoice.created", "invoice", NOW, duplicate=False))
    response = await client(app, events=events).post(
        "/v1/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "not UTF-8; send JSON encoded as UTF-8" in response.json()["detail"][0]["msg"]
    assert events.seen == []
