"""Events: accept one (a durable `EventWorkflow`, started before the caller hears yes) and read one back.

The event id is the workflow id: the same id twice is one event with one set of deliveries, whatever the
timing; the same id with another payload is refused, as a reused idempotency key is at Stripe. Which
endpoints an event goes to is decided when it is accepted, from the endpoint store.

A test event is the same thing aimed at one endpoint: the catalog's example of a type, under a fresh
`test_…` id, through the same workflow, so its delivery is signed, logged and retried like any other and
its log says `origin: test`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecution
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.lanes import lane_full, signal_lane
from core.settings import Settings
from domain import fairness, ids
from domain import search_attributes as sa
from domain.access import Principal
from domain.catalog import SUBSCRIBABLE_BY_NAME
from domain.fairness import WorkKind
from domain.models import DeliveryOrigin, DeliveryPolicy, EventInput, LaneInput, LaneItem
from domain.schemas import SCHEMAS, violations
from history import visibility
from service import pages
from service.alerts import Alerts
from service.boundary import boundary, in_store, translated
from service.deliveries import Deliveries
from service.errors import (
    CannotReadYet,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    QuotaPolicy,
    RateLimited,
    Unavailable,
    WebhooksError,
)
from service.limits import DoorLimits
from service.models import (
    AcceptedEvent,
    EventListed,
    EventPage,
    EventSubmission,
    EventView,
    SentTestEvent,
)
from store.database import EndpointStore, Subscriber
from store.health import EndpointHealth, OwedNotice
from workflows.event import EventWorkflow

log = logging.getLogger("webhooks.events")
# Every delivery's history holds the body: past this in all, Temporal's history limits would fail the
# event after it was accepted.
FANOUT_BUDGET_BYTES = 32_000_000
# What a test event is when the endpoint takes every type: the documentation's own example type.
DEFAULT_TEST_TYPE = "invoice.created"
# When to try a full lane again: it drains one delivery at a time, and a blocked one waits for a person.
LANE_FULL_RETRY_AFTER = 60


def serialize(submission: EventSubmission) -> tuple[str, str]:
    """The event's object type and the exact JSON body every endpoint receives."""
    # Any type an endpoint can receive: clients emit only the 31 (their schema says so), the service
    # also sends the operational ones, and tests of them.
    object_type = SUBSCRIBABLE_BY_NAME[submission.webhook_type].object_type
    if submission.object_type is not None and submission.object_type != object_type:
        raise InvalidInput(
            f"object_type of {submission.webhook_type} is {object_type!r}, not {submission.object_type!r}",
            field=("object_type",),
            value=submission.object_type,
        )
    try:
        body = json.dumps(
            {
                "webhook_type": submission.webhook_type,
                "object_type": object_type,
                "data": {"object": submission.object},
            },
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,  # NaN and Infinity are not JSON: receivers' parsers would refuse them
        )
    except ValueError:
        raise InvalidInput(
            "numbers must be finite: NaN and Infinity are not valid JSON", field=("data", "object")
        ) from None
    return object_type, body


async def accepted_at(event: WorkflowExecution) -> datetime:
    """When the event workflow's event was accepted: its `WebhookCreatedAt`; events accepted before that
    was set at their start have it in their memo only, and the oldest only their workflow's start time."""
    created = event.typed_search_attributes.get(sa.CREATED_AT)
    if created is not None:
        return created
    memo = await event.memo_value("created_at", None)
    return datetime.fromisoformat(str(memo)) if memo else event.start_time


def emission_sha256(body: str, ordering_key: str | None) -> str:
    """What a second emission of an event id must match to be the same event: its body, and its ordering
    key, which decides its lane (the same body under another key is another event). An event without a
    key hashes as its body alone, as events accepted before ordering keys did."""
    if ordering_key is None:
        return hashlib.sha256(body.encode()).hexdigest()
    return hashlib.sha256(b"%s\n%s" % (ordering_key.encode(), body.encode())).hexdigest()


def checked(webhook_type: str, data_object: dict[str, Any]) -> None:
    """`InvalidInput` naming the first field of `data_object` that its type's schema refuses
    (WEBHOOKS_VALIDATE_EVENTS=strict, or strict for the emitting tenant)."""
    schema = SCHEMAS[webhook_type]["properties"]["data"]["properties"]["object"]
    found = violations(schema, data_object, ("data", "object"))
    if found:
        path, message = found[0]
        raise InvalidInput(
            f"{'.'.join(str(p) for p in path)} {message} (the {webhook_type} schema: "
            f"GET /v1/webhooks/event-types/{webhook_type})",
            field=path,
        )


def delivery_policy(settings: Settings, retry_schedule: list[float] | None) -> DeliveryPolicy:
    """How a delivery to an endpoint is made: its own schedule, if it has one, else the service's."""
    return DeliveryPolicy(
        retry_delays=retry_schedule if retry_schedule is not None else settings.retry_delays,
        attempt_timeout=settings.delivery_timeout,
        retry_window=settings.retry_window_seconds,
    )


class Events:
    def __init__(
        self,
        client: Client,
        store: EndpointStore,
        settings: Settings,
        *,
        deliveries: Deliveries | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._deliveries = deliveries
        self._settings = settings
        self._rpc = timedelta(seconds=settings.temporal_rpc_timeout)
        self._lister = pages.Lister(client, cursor_keys=settings.cursor_keys, rpc_timeout=self._rpc)
        self._health = EndpointHealth(store.engine, disable_after=settings.disable_after_delta)
        self._limits = DoorLimits(store, settings)
        self._alerts = Alerts(client, store, settings)

    def _policy(self, retry_schedule: list[float] | None) -> DeliveryPolicy:
        return delivery_policy(self._settings, retry_schedule)

    async def tell(self, tenant: str, endpoint_id: str) -> None:
        """Send what is owed about one endpoint, whose health just changed (store/health.py owes
        it with the change). Never raises: what cannot be sent now stays owed (`send_owed`)."""
        await self._send_owed(tenant=tenant, endpoint_id=endpoint_id)

    async def send_owed(self, *, older_than: timedelta) -> int:
        """Send every operational event owed for longer than `older_than`, whatever tenant: those whose
        moment found Temporal or the store unreachable, or whose process died. The worker calls it now and
        then. Never raises; how many were sent."""
        return await self._send_owed(before=datetime.now(UTC) - older_than)

    async def _send_owed(
        self, *, tenant: str | None = None, endpoint_id: str | None = None, before: datetime | None = None
    ) -> int:
        """Oldest first, and an endpoint's in order: one not sent holds back the rest of that endpoint's
        (never another's); Temporal or the store unreachable ends the sweep, to be tried again."""
        sent = 0
        held: set[str] = set()
        try:
            with translated():
                owed = await in_store(
                    self._health.owed, tenant=tenant, endpoint_id=endpoint_id, before=before
                )
            for notice in owed:
                if notice.endpoint_id in held:
                    continue
                try:
                    with translated():
                        await self._send(notice)
                except Conflict:
                    pass  # its id was used for another body: an earlier send was accepted, its answer lost
                except CannotReadYet as err:  # a key or version this process lacks: this endpoint's waits
                    log.warning("could not send %s yet; the endpoint's next ones wait: %s", notice.id, err)
                    held.add(notice.endpoint_id)
                    continue
                except Unavailable:
                    raise
                except Exception:  # this endpoint's notice only (a bug, a secret that cannot be opened)
                    log.exception("could not send %s; the endpoint's next ones wait for it", notice.id)
                    held.add(notice.endpoint_id)
                    continue
                try:  # and the mail to a person, if anyone is to have one (service/alerts.py)
                    with translated():
                        await self._alerts.mail(notice)
                except CannotReadYet as err:
                    log.warning("could not mail %s yet; the endpoint's next ones wait: %s", notice.id, err)
                    held.add(notice.endpoint_id)
                    continue
                except Unavailable:
                    raise
                except Exception:
                    log.exception("could not mail %s; the endpoint's next ones wait for it", notice.id)
                    held.add(notice.endpoint_id)
                    continue
                with translated():
                    await in_store(self._health.sent, notice.id, at=datetime.now(UTC))
                sent += 1
        except Unavailable as err:  # it stays owed, and is sent later
            log.warning("operational events not sent yet (%d sent): %s", sent, err.message)
        return sent

    async def _send(self, notice: OwedNotice) -> None:
        """The event as owed (the endpoint as the change left it), under the id that names the transition:
        a second send of it is the same event, byte for byte."""
        submission = EventSubmission(
            webhook_type=f"webhook_endpoint.{notice.transition.value}", object=notice.object, id=notice.id
        )
        await self.emit(notice.tenant, submission)

    @boundary(changes_temporal=True)
    async def accept(
        self, caller: Principal, submission: EventSubmission
    ) -> tuple[AcceptedEvent, QuotaPolicy]:
        """An event emitted by a client: counted against its credential's rate (service/limits.py), then
        accepted. What is left of that rate comes back with it, for the answer's headers."""
        quota = await self._limits.emission(caller.credentials)
        try:
            return await self.emit(caller.tenant, submission), quota
        except WebhooksError as err:
            if not isinstance(err, RateLimited):  # counted all the same: the answer says what is left
                err.quota = quota
            raise

    @boundary(changes_temporal=True)
    async def emit(self, tenant: str, submission: EventSubmission) -> AcceptedEvent:
        """Accept an event for every enabled endpoint of the tenant subscribed to its type."""
        object_type, body = serialize(submission)
        if self._settings.event_validation.strict_for(tenant):
            checked(submission.webhook_type, submission.object)
        size = len(body.encode())
        limit = self._settings.max_payload_bytes
        if size > limit:
            raise PayloadTooLarge(f"the payload is larger than {limit} bytes", field=("data", "object"))
        subscribers = await in_store(self._store.subscribers, tenant, submission.webhook_type)
        endpoint_ids = [s.endpoint_id for s in subscribers]
        # Each delivery's input holds the body as a JSON string, where every quote and backslash of it
        # takes two bytes: the budget counts what is stored, not what was sent.
        stored = len(json.dumps(body, ensure_ascii=False).encode())
        if stored * max(1, len(endpoint_ids)) > FANOUT_BUDGET_BYTES:
            raise PayloadTooLarge(
                f"this payload ({stored} bytes as stored for each delivery) to {len(endpoint_ids)} endpoints "
                f"is more than {FANOUT_BUDGET_BYTES // 1_000_000} MB in all; send a smaller payload",
                field=("data", "object"),
            )
        event_id = submission.id or ids.new_event_id()
        ordered = [s for s in subscribers if s.ordered]
        if ordered:
            await self._refuse_full_lanes(tenant, submission.ordering_key, ordered)
        try:
            created_at = await self._start(
                tenant,
                event_id,
                submission.webhook_type,
                object_type,
                body,
                endpoint_ids,
                DeliveryOrigin.EVENT,
                policies={
                    s.endpoint_id: self._policy(s.retry_schedule)
                    for s in subscribers
                    if s.retry_schedule is not None
                },
                ordering_key=submission.ordering_key,
                ordered_endpoint_ids=[s.endpoint_id for s in ordered],
            )
        except WorkflowAlreadyStartedError:
            body_sha256 = emission_sha256(body, submission.ordering_key)
            accepted = await self._already_accepted(
                ids.event_workflow_id(tenant, event_id), event_id, body_sha256
            )
            # The first emission's 202 may have been lost before its lanes were told: told again, which a
            # lane that has it ignores (workflows/lane.py).
            await self._enqueue(tenant, event_id, submission, accepted.created_at, ordered)
            return accepted
        await self._enqueue(tenant, event_id, submission, created_at, ordered)
        return AcceptedEvent(
            id=event_id,
            webhook_type=submission.webhook_type,
            object_type=object_type,
            created_at=created_at,
            duplicate=False,
        )

    async def _enqueue(
        self,
        tenant: str,
        event_id: str,
        submission: EventSubmission,
        created_at: datetime,
        ordered: list[Subscriber],
    ) -> None:
        """Send the event to its lane on each ordered endpoint (signal-with-start), before the 202: so a
        lane receives its events in the order of their 202s (docs/delivery.md, "Ordered delivery").

        After the event's workflow has started: a 202 is never given for an event that is not durable. If
        this process dies in between, the client, without a 202, emits again with the same id and the
        lanes are told then. A lane told twice (or an endpoint whose delivery the fan-out started, made
        ordered since) starts the delivery once: its workflow id refuses a second start."""
        if not ordered:
            return
        await asyncio.gather(*(self._tell_lane(tenant, event_id, submission, created_at, s) for s in ordered))

    async def _tell_lane(
        self,
        tenant: str,
        event_id: str,
        submission: EventSubmission,
        created_at: datetime,
        subscriber: Subscriber,
    ) -> None:
        settings = self._settings
        endpoint_id = subscriber.endpoint_id
        item = LaneItem(
            event_id=event_id,
            delivery_id=ids.delivery_id(event_id, endpoint_id),
            webhook_type=submission.webhook_type,
            created_at=created_at,
            policy=self._policy(subscriber.retry_schedule),
            origin=DeliveryOrigin.EVENT,
            on_failure=subscriber.ordered_on_failure,
            max_queued=settings.lane_max_queued,
        )
        await signal_lane(
            self._client,
            LaneInput(tenant=tenant, endpoint_id=endpoint_id, ordering_key=submission.ordering_key),
            item,
            task_queue=settings.task_queue,
            priority=fairness.for_tenant(tenant, WorkKind.LIVE, settings.weights, fair=settings.fairness),
            rpc_timeout=self._rpc,
        )

    async def _refuse_full_lanes(
        self, tenant: str, ordering_key: str | None, ordered: list[Subscriber]
    ) -> None:
        """A lane holding WEBHOOKS_LANE_MAX_QUEUED events takes no more: its memo says so (workflows/lane.py),
        read with a describe, which needs no worker. A lane not started yet, or closed, is not full."""

        async def full(endpoint_id: str) -> bool:
            return await lane_full(self._client, tenant, endpoint_id, ordering_key, rpc_timeout=self._rpc)

        answers = await asyncio.gather(*(full(s.endpoint_id) for s in ordered))
        for subscriber, is_full in zip(ordered, answers, strict=True):
            if is_full:
                raise RateLimited(
                    f"the lane of ordering key {ordering_key!r} on endpoint {subscriber.endpoint_id} holds "
                    f"{self._settings.lane_max_queued} events waiting (WEBHOOKS_LANE_MAX_QUEUED): it takes "
                    "no more until it drains. Unblock it (retry or "
                    "skip its head: GET /v1/webhooks/endpoints/{id}/lane) or make the receiver faster, then "
                    "emit this event again with the same id",
                    retry_after=LANE_FULL_RETRY_AFTER,
                )

    @boundary(changes_temporal=True)
    async def send_test(
        self,
        tenant: str,
        endpoint_id: str,
        webhook_type: str | None,
        *,
        data_object: dict[str, Any] | None = None,
    ) -> SentTestEvent:
        """Send the catalog's example of `webhook_type` (or `data_object`, an example changed by
        `webhooks trigger --set`) to one enabled endpoint, and to no other.

        Any type of the catalog may be tested, subscribed or not: the point is to see what the receiver
        does with it. By default, the first type the endpoint subscribes to.
        """
        endpoint = await in_store(self._store.get, tenant, endpoint_id)
        if endpoint is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        if not endpoint.enabled:
            raise Conflict(
                f'endpoint {endpoint_id} is disabled; enable it (PATCH it with {{"enabled": true}}) '
                "before sending it a test event"
            )
        await self._limits.test_event(tenant)
        webhook_type = webhook_type or (endpoint.event_types or [DEFAULT_TEST_TYPE])[0]
        example = SUBSCRIBABLE_BY_NAME[webhook_type].example if data_object is None else data_object
        object_type, body = serialize(EventSubmission(webhook_type=webhook_type, object=example))
        event_id = ids.new_test_event_id()
        own = endpoint.retry_schedule
        created_at = await self._start(
            tenant,
            event_id,
            webhook_type,
            object_type,
            body,
            [endpoint_id],
            DeliveryOrigin.TEST,
            policies={endpoint_id: self._policy(own)} if own is not None else {},
        )
        return SentTestEvent(
            event_id=event_id,
            delivery_id=ids.delivery_id(event_id, endpoint_id),
            endpoint_id=endpoint_id,
            webhook_type=webhook_type,
            created_at=created_at,
        )

    async def _start(
        self,
        tenant: str,
        event_id: str,
        webhook_type: str,
        object_type: str,
        body: str,
        endpoint_ids: list[str],
        origin: DeliveryOrigin,
        *,
        policies: dict[str, DeliveryPolicy],
        ordering_key: str | None = None,
        ordered_endpoint_ids: list[str] | None = None,
    ) -> datetime:
        """Start the event's workflow (durable once this returns), and say when it was accepted."""
        created_at = datetime.now(UTC)
        settings = self._settings
        await self._client.start_workflow(
            EventWorkflow.run,
            EventInput(
                tenant=tenant,
                event_id=event_id,
                webhook_type=webhook_type,
                object_type=object_type,
                body=body,
                created_at=created_at,
                endpoint_ids=endpoint_ids,
                policy=self._policy(None),
                policies=policies,
                origin=origin,
                ordering_key=ordering_key,
                ordered_endpoint_ids=ordered_endpoint_ids or [],
            ),
            id=ids.event_workflow_id(tenant, event_id),
            task_queue=settings.task_queue,
            # A second emission of the id, running or closed, is refused here and answered with the
            # first one.
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.TENANT, tenant),
                    SearchAttributePair(sa.EVENT_ID, event_id),
                    SearchAttributePair(sa.EVENT_TYPE, webhook_type),
                    # When it was accepted, as its deliveries have it: the events list reads by it
                    SearchAttributePair(sa.CREATED_AT, created_at),
                    # Its object's id and its customer's, to find it by (visible to Temporal's operators)
                    *visibility.business_search_attributes(body),
                ]
            ),
            # Before scheduled retries and bulk work, and the tenant's share of dispatch: its children
            # and their attempts inherit the tenant's key and weight (domain/fairness.py).
            priority=fairness.for_tenant(tenant, WorkKind.LIVE, settings.weights, fair=settings.fairness),
            memo=self._memo(created_at, emission_sha256(body, ordering_key)),
            rpc_timeout=self._rpc,
        )
        return created_at

    def _memo(self, created_at: datetime, body_sha256: str) -> dict[str, str]:
        """What a repeated emission is checked against: the body's digest. When it was accepted is read from
        its WebhookCreatedAt (`accepted_at`); the memo keeps a copy for API processes before af57101, which
        read it there for a repeated emission (during a rolling upgrade, or after a rollback), unless the
        short metadata is on: the setting says that no process before b8d5e66 runs (docs/production.md)."""
        if self._settings.payload_short_metadata:
            return {"body_sha256": body_sha256}
        return {"created_at": created_at.isoformat(), "body_sha256": body_sha256}

    async def _already_accepted(self, workflow_id: str, event_id: str, body_sha256: str) -> AcceptedEvent:
        description = await self._client.get_workflow_handle(workflow_id).describe(rpc_timeout=self._rpc)
        accepted_sha256 = await description.memo_value("body_sha256", None)
        if accepted_sha256 is not None and accepted_sha256 != body_sha256:
            raise Conflict(
                f"event id {event_id} was already used for a different payload; use a new id for a new event"
            )
        webhook_type = description.typed_search_attributes.get(sa.EVENT_TYPE) or ""
        return AcceptedEvent(
            id=event_id,
            webhook_type=webhook_type,
            object_type=SUBSCRIBABLE_BY_NAME[webhook_type].object_type,
            created_at=await accepted_at(description),
            duplicate=True,
        )

    @boundary
    async def list(
        self,
        tenant: str,
        *,
        business: visibility.BusinessIds | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> EventPage:
        """The tenant's events, those of one business object (its id or its customer's, exact or a
        prefix) if asked: newest first by when they were accepted (`WebhookCreatedAt`, as the delivery
        lists read)."""
        page = await self._lister.newest_first(
            visibility.events_listed(tenant=tenant, business=business),
            tenant=tenant,
            cursor=cursor,
            limit=limit,
        )
        items = []
        for execution in page.executions:
            attrs = execution.typed_search_attributes
            webhook_type = attrs.get(sa.EVENT_TYPE) or ""
            known = SUBSCRIBABLE_BY_NAME.get(webhook_type)
            items.append(
                EventListed(
                    id=attrs.get(sa.EVENT_ID) or execution.id.split(":", 2)[-1],
                    webhook_type=webhook_type,
                    object_type=known.object_type if known else "",
                    created_at=await accepted_at(execution),
                    object_id=attrs.get(sa.OBJECT_ID),
                    customer_id=attrs.get(sa.CUSTOMER_ID),
                )
            )
        return EventPage(items=items, next_cursor=page.next_cursor)

    @boundary
    async def get(self, tenant: str, event_id: str) -> EventView:
        """The event as accepted, and each delivery's current status."""
        assert self._deliveries is not None, "Events built without Deliveries cannot read events"
        event = await self._deliveries.event_input(tenant, event_id)
        if event is None:
            raise NotFound(f"event {event_id} not found")
        return EventView(
            id=event.event_id,
            webhook_type=event.webhook_type,
            object_type=event.object_type,
            created_at=event.created_at,
            payload=json.loads(event.body),
            deliveries=await self._deliveries.summaries(tenant, event),
        )
