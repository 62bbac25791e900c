"""Every id the service makes and reads, in one place.

- An event id is the client's (`EventCreate.id`) or `evt_…`; an endpoint id is `ep_…`.
- A test event's id is `test_…`, a prefix reserved for it (a client's event id cannot start with it), so
  that a receiver can tell a test from the `webhook-id` header, which is signed.
- A delivery's public id, also its `webhook-id` header, is `{event_id}:{endpoint_id}`: one id for every
  attempt of one event to one endpoint. Event ids cannot hold `:`, so the last `:` separates the two.
- Workflow ids carry the tenant, so that an id of one tenant never resolves under another tenant's key:
  `event:{tenant}:{event_id}` and `delivery:{tenant}:{event_id}:{endpoint_id}`.
- A recovery (an endpoint's failed deliveries retried, or its missed events replayed) is `rec_…`. Its
  workflow id names the endpoint, not the recovery: `recovery:{tenant}:{endpoint_id}`, one id whose runs are
  the endpoint's recoveries, so that Temporal itself refuses a second one while one runs. The recovery id
  is the run's `WebhookRecoveryId` search attribute.
- An ordered endpoint's lane, one per ordering key: `lane:{tenant}:{endpoint_id}:{hash}`, the hash being
  the first 32 hex digits of the key's SHA-256, or `default` for events without a key. Hashed because
  workflow ids are never encrypted and a key is often a customer's id; derived, so that every API replica
  and every replay reaches the same lane without asking anyone.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


TEST_EVENT_PREFIX = "test_"


def new_test_event_id() -> str:
    return TEST_EVENT_PREFIX + secrets.token_hex(12)


def is_test_event_id(event_id: str) -> bool:
    return event_id.startswith(TEST_EVENT_PREFIX)


def new_endpoint_id() -> str:
    return "ep_" + secrets.token_hex(12)


def operational_event_id(endpoint_id: str, transition: str, at: datetime) -> str:
    """The id of a `webhook_endpoint.*` event: one per transition of one endpoint, however often sent."""
    return f"opv_{endpoint_id}_{transition}_{int(at.timestamp() * 1000)}"


def lane_blocked_event_id(endpoint_id: str, ordering_key: str | None, sequence: int, at: datetime) -> str:
    """The id of a `webhook_endpoint.lane_blocked` event: one per blocking of one lane's head. Two lanes of
    an endpoint that block in the same millisecond are two events, and a head that blocks again (retried
    by hand, failed again) is a new one."""
    return f"opv_{endpoint_id}_lane_blocked_{lane_key(ordering_key)}_{sequence}_{int(at.timestamp() * 1000)}"


def alert_workflow_id(tenant: str, notice_id: str) -> str:
    """The workflow of one alert mail (workflows/alert.py): named by the operational event it mails about,
    so that one change of an endpoint's health is mailed once."""
    return f"alert:{tenant}:{notice_id}"


def new_recovery_id() -> str:
    return "rec_" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class DeliveryId:
    event_id: str
    endpoint_id: str

    def __str__(self) -> str:
        return f"{self.event_id}:{self.endpoint_id}"

    @classmethod
    def parse(cls, value: str) -> DeliveryId | None:
        """The delivery id in `value`, or None for a string that is not one."""
        event_id, sep, endpoint_id = value.rpartition(":")
        return cls(event_id, endpoint_id) if sep and event_id and endpoint_id else None


def delivery_id(event_id: str, endpoint_id: str) -> str:
    return str(DeliveryId(event_id, endpoint_id))


def event_workflow_id(tenant: str, event_id: str) -> str:
    return f"event:{tenant}:{event_id}"


def delivery_workflow_id(tenant: str, delivery: str | DeliveryId) -> str:
    return f"delivery:{tenant}:{delivery}"


def delivery_of_workflow(workflow_id: str) -> DeliveryId | None:
    """The delivery a `delivery:{tenant}:…` workflow id names (tenants cannot hold `:`)."""
    kind, _, rest = workflow_id.partition(":")
    _tenant, _, delivery = rest.partition(":")
    return DeliveryId.parse(delivery) if kind == "delivery" else None


def recovery_workflow_id(tenant: str, endpoint_id: str) -> str:
    return f"recovery:{tenant}:{endpoint_id}"


DEFAULT_LANE = "default"


def lane_key(ordering_key: str | None) -> str:
    """A lane's name within its endpoint: fixed length whatever the client's key, which it does not show."""
    if ordering_key is None:
        return DEFAULT_LANE
    return hashlib.sha256(ordering_key.encode()).hexdigest()[:32]


def lane_workflow_id(tenant: str, endpoint_id: str, ordering_key: str | None) -> str:
    return f"lane:{tenant}:{endpoint_id}:{lane_key(ordering_key)}"
