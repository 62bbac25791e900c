"""The event catalog: the 31 webhook types of the Flexprice documentation (docs/flexprice-webhooks.txt).

`object_type` is the part of a name before the dot. Groups keep the documentation's headings so a
dashboard can show the catalog the way the documentation does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    description: str
    group: str
    # Sent by the service itself about an endpoint, never emitted by a client, and received only by
    # endpoints that subscribe to it by name (not part of "every event type").
    operational: bool = False

    @property
    def object_type(self) -> str:
        return self.name.split(".", 1)[0]


_GROUPS: dict[str, list[tuple[str, str]]] = {
    "Billable Metrics Events": [
        ("billable_metric.created", "Sent when a new billable metric is created"),
        ("billable_metric.updated", "Sent when a billable metric is updated"),
        ("billable_metric.archived", "Sent when a billable metric is archived"),
    ],
    "Customer Events": [
        ("customer.created", "Sent when a new customer is created"),
        ("customer.updated", "Sent when a customer\u2019s information is updated"),
        (
            "customer.payment_provider_created",
            "Sent when a customer is successfully created in the payment provider\u2019s system",
        ),
        (
            "customer.payment_provider_error",
            "Sent when there\u2019s an error creating a customer in the payment provider\u2019s system",
        ),
        ("customer.checkout_url_generated", "Sent when a checkout link is generated for a customer"),
    ],
    "Subscription Events": [
        ("subscription.started", "Sent when a subscription starts"),
        ("subscription.terminated", "Sent when a subscription is terminated"),
        ("subscription.trial_ended", "Sent when a subscription\u2019s trial period ends"),
        (
            "subscription.usage_threshold_reached",
            "Sent when a progressive billing threshold has been crossed",
        ),
    ],
    "Invoice Events": [
        ("invoice.drafted", "Sent when a new invoice is created in draft status"),
        ("invoice.created", "Sent when an invoice is finalized"),
        ("invoice.one_off_created", "Sent when a one-off invoice is created"),
        ("invoice.generated", "Sent when a PDF invoice has been generated"),
        ("invoice.payment_status_updated", "Sent when an invoice\u2019s payment status is updated"),
        ("invoice.payment_failure", "Sent when there\u2019s an error processing payment for an invoice"),
        ("invoice.payment_overdue", "Sent when an invoice payment is overdue"),
        ("invoice.voided", "Sent when an invoice is voided"),
    ],
    "Wallet Events": [
        ("wallet.created", "Sent when a new wallet is created for a customer"),
        ("wallet.updated", "Sent when a wallet is updated"),
        ("wallet.terminated", "Sent when a wallet is terminated"),
        (
            "wallet.depleted_ongoing_balance",
            "Sent when a wallet\u2019s balance reaches zero or becomes negative",
        ),
        ("wallet_transaction.updated", "Sent when a wallet transaction is updated"),
        ("wallet_transaction.payment_failure", "Sent when a wallet transaction payment fails"),
    ],
    "Credit Note Events": [
        ("credit_note.created", "Sent when a new credit note is issued"),
        ("credit_note.generated", "Sent when a PDF credit note has been generated"),
        ("credit_note.refund_failure", "Sent when there\u2019s an error processing a refund"),
    ],
    "Fee Events": [
        ("fee.created", "Sent when a fee for a charge to be paid in advance is created"),
    ],
    "Event Ingestion": [
        ("events.errors", "Sent when events received do not match validation rules"),
    ],
}

OPERATIONAL_GROUP = "Webhook Endpoint Events"
_OPERATIONAL = [
    ("webhook_endpoint.failing", "Sent when one of your endpoints starts failing every attempt"),
    ("webhook_endpoint.recovered", "Sent when a failing endpoint answers with a 2xx again"),
    ("webhook_endpoint.disabled", "Sent when one of your endpoints is disabled, by hand or for failing"),
]

# The 31 types of the documentation: what clients emit, and what "every event type" means.
EVENT_TYPES: tuple[EventType, ...] = tuple(
    EventType(name, description, group) for group, entries in _GROUPS.items() for name, description in entries
)
EVENT_TYPES_BY_NAME: dict[str, EventType] = {t.name: t for t in EVENT_TYPES}
OPERATIONAL_TYPES: tuple[EventType, ...] = tuple(
    EventType(name, description, OPERATIONAL_GROUP, operational=True) for name, description in _OPERATIONAL
)
# What an endpoint can subscribe to: every type, the operational ones by name.
SUBSCRIBABLE_BY_NAME: dict[str, EventType] = {t.name: t for t in (*EVENT_TYPES, *OPERATIONAL_TYPES)}


def unknown_event_types(names: list[str]) -> list[str]:
    """Names an endpoint cannot subscribe to, in the order given."""
    return [n for n in names if n not in SUBSCRIBABLE_BY_NAME]


def receives(event_types: list[str] | None, webhook_type: str) -> bool:
    """Whether an endpoint subscribed to `event_types` (None: every event type) receives `webhook_type`."""
    if event_types is None:
        return webhook_type in EVENT_TYPES_BY_NAME
    return webhook_type in event_types
