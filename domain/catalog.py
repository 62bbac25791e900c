"""The event catalog: the 31 webhook types of the Flexprice documentation (docs/flexprice-webhooks.txt).

`object_type` is the part of a name before the dot. Groups keep the documentation's headings so a
dashboard can show the catalog the way the documentation does. Every type has an `example` object (the
`data.object` a test event of that type carries, and what the catalog shows a developer): small and
plausible, with Flexprice's kinds of ids, amounts as decimal strings beside their currency, and ISO 8601
timestamps in UTC. The operational types' example is the shape the service sends about an endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    description: str
    group: str
    # Sent by the service itself about an endpoint, never emitted by a client, and received only by
    # endpoints that subscribe to it by name (not part of "every event type").
    operational: bool = False
    # Not compared: two types are the same type by name, whatever their example says.
    example: dict[str, Any] = field(default_factory=dict, compare=False)

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
    (
        "webhook_endpoint.lane_blocked",
        "Sent when an ordered endpoint's lane stops at an event that failed every attempt, until it is "
        "retried or skipped",
    ),
]

# One customer, subscription, invoice... across the examples, so that they read as one account's story.
_CUSTOMER = "cus_01JD8M3V7Q2K9X4T6N5W1R0BHC"
_EXTERNAL_CUSTOMER = "acme-corp-42"
_SUBSCRIPTION = "subs_01JD8M4A2F6H8J3K5P7R9T1VWX"
_PLAN = "plan_01JD8KZ9E3G5J7M2P4R6T8VXYB"
_METER = "meter_01JD7XB2D4F6H8K0M2P4R6T8VA"
_INVOICE = "inv_01JDA2C4E6G8J0K2M4P6R8T0VW"
_WALLET = "wallet_01JD9F3H5K7M9P1R3T5V7X9Z1B"
_CREDIT_NOTE = "cn_01JDB7D9F1H3K5M7P9R1T3V5X7"
_ENDPOINT = "ep_6f1d2c3b4a5968778695a4b3"

_METER_OBJECT: dict[str, Any] = {
    "id": _METER,
    "name": "API calls",
    "event_name": "api_call",
    "aggregation": {"type": "COUNT", "field": None},
    "reset_usage": "BILLING_PERIOD",
    "status": "published",
    "created_at": "2026-10-01T09:00:00Z",
    "updated_at": "2026-10-01T09:00:00Z",
}
_CUSTOMER_OBJECT: dict[str, Any] = {
    "id": _CUSTOMER,
    "external_id": _EXTERNAL_CUSTOMER,
    "name": "Acme Corp",
    "email": "billing@acme.example",
    "address_country": "US",
    "created_at": "2026-10-02T14:30:00Z",
    "updated_at": "2026-10-02T14:30:00Z",
}
_SUBSCRIPTION_OBJECT: dict[str, Any] = {
    "id": _SUBSCRIPTION,
    "customer_id": _CUSTOMER,
    "plan_id": _PLAN,
    "subscription_status": "active",
    "currency": "usd",
    "billing_period": "MONTHLY",
    "start_date": "2026-10-03T00:00:00Z",
    "current_period_start": "2026-11-03T00:00:00Z",
    "current_period_end": "2026-12-03T00:00:00Z",
    "trial_end": None,
}
_INVOICE_OBJECT: dict[str, Any] = {
    "id": _INVOICE,
    "invoice_number": "INV-2026-000117",
    "customer_id": _CUSTOMER,
    "subscription_id": _SUBSCRIPTION,
    "invoice_type": "SUBSCRIPTION",
    "invoice_status": "FINALIZED",
    "payment_status": "PENDING",
    "currency": "usd",
    "amount_due": "120.00",
    "amount_paid": "0.00",
    "amount_remaining": "120.00",
    "period_start": "2026-10-03T00:00:00Z",
    "period_end": "2026-11-03T00:00:00Z",
    "due_date": "2026-11-17T00:00:00Z",
    "created_at": "2026-11-03T00:05:00Z",
}
_WALLET_OBJECT: dict[str, Any] = {
    "id": _WALLET,
    "customer_id": _CUSTOMER,
    "name": "Prepaid credits",
    "currency": "usd",
    "balance": "250.00",
    "credit_balance": "250.00",
    "wallet_status": "active",
    "created_at": "2026-10-02T15:00:00Z",
    "updated_at": "2026-11-10T08:00:00Z",
}
_WALLET_TRANSACTION_OBJECT: dict[str, Any] = {
    "id": "wtxn_01JDC2E4G6J8K0M2P4R6T8V0X2",
    "wallet_id": _WALLET,
    "customer_id": _CUSTOMER,
    "type": "credit",
    "amount": "100.00",
    "currency": "usd",
    "transaction_status": "completed",
    "reference_type": "PAYMENT",
    "created_at": "2026-11-10T08:00:00Z",
}
_CREDIT_NOTE_OBJECT: dict[str, Any] = {
    "id": _CREDIT_NOTE,
    "credit_note_number": "CN-2026-000009",
    "invoice_id": _INVOICE,
    "customer_id": _CUSTOMER,
    "credit_note_type": "REFUND",
    "credit_note_status": "FINALIZED",
    "reason": "SERVICE_ISSUE",
    "total_amount": "20.00",
    "currency": "usd",
    "created_at": "2026-11-12T10:00:00Z",
}
# What the service sends about an endpoint (webhook_endpoint.*): never its secret, headers or URL.
# `failing_since` is when the run of failed attempts began (for `recovered`, the run that just ended);
# `disabled.by` is "api" (by hand: API, CLI or dashboard) or "rule" (by the service, after failing for
# WEBHOOKS_DISABLE_AFTER). The shape is `store.health.operational_object`'s.
_ENDPOINT_OBJECT: dict[str, Any] = {
    "id": _ENDPOINT,
    "description": "billing events",
    "enabled": True,
    "transition": "failing",
    "failing_since": "2026-11-20T06:00:00Z",
    "consecutive_failures": 3,
    "last_error": "503 Service Unavailable",
    "last_status_code": 503,
    "disabled": None,
}

_EXAMPLES: dict[str, dict[str, Any]] = {
    "billable_metric.created": _METER_OBJECT,
    "billable_metric.updated": {
        **_METER_OBJECT,
        "name": "API calls (billable)",
        "updated_at": "2026-10-15T11:20:00Z",
    },
    "billable_metric.archived": {
        **_METER_OBJECT,
        "status": "archived",
        "updated_at": "2026-11-01T12:00:00Z",
    },
    "customer.created": _CUSTOMER_OBJECT,
    "customer.updated": {
        **_CUSTOMER_OBJECT,
        "email": "accounts@acme.example",
        "updated_at": "2026-11-05T16:45:00Z",
    },
    "customer.payment_provider_created": {
        **_CUSTOMER_OBJECT,
        "payment_provider": "stripe",
        "payment_provider_customer_id": "cus_RkX4Tq9sL2mNvB",
    },
    "customer.payment_provider_error": {
        **_CUSTOMER_OBJECT,
        "payment_provider": "stripe",
        "error": "the customer's email address is invalid for the payment provider",
    },
    "customer.checkout_url_generated": {
        "customer_id": _CUSTOMER,
        "external_id": _EXTERNAL_CUSTOMER,
        "payment_provider": "stripe",
        "checkout_url": "https://checkout.stripe.com/c/pay/cs_test_a1B2c3D4e5F6",
        "expires_at": "2026-11-06T16:45:00Z",
    },
    "subscription.started": _SUBSCRIPTION_OBJECT,
    "subscription.terminated": {
        **_SUBSCRIPTION_OBJECT,
        "subscription_status": "cancelled",
        "cancelled_at": "2026-11-25T18:00:00Z",
    },
    "subscription.trial_ended": {
        **_SUBSCRIPTION_OBJECT,
        "trial_start": "2026-10-03T00:00:00Z",
        "trial_end": "2026-10-17T00:00:00Z",
    },
    "subscription.usage_threshold_reached": {
        "subscription_id": _SUBSCRIPTION,
        "customer_id": _CUSTOMER,
        "threshold_amount": "500.00",
        "current_usage_amount": "512.40",
        "currency": "usd",
        "reached_at": "2026-11-18T07:12:00Z",
    },
    "invoice.drafted": {
        **_INVOICE_OBJECT,
        "invoice_number": None,
        "invoice_status": "DRAFT",
        "due_date": None,
    },
    "invoice.created": _INVOICE_OBJECT,
    "invoice.one_off_created": {
        **_INVOICE_OBJECT,
        "id": "inv_01JDC9A1C3E5G7J9K1M3P5R7T9",
        "invoice_number": "INV-2026-000118",
        "invoice_type": "ONE_OFF",
        "subscription_id": None,
        "amount_due": "45.00",
        "amount_remaining": "45.00",
        "period_start": None,
        "period_end": None,
    },
    "invoice.generated": {
        **_INVOICE_OBJECT,
        "invoice_pdf_url": "https://files.flexprice.example/invoices/INV-2026-000117.pdf",
    },
    "invoice.payment_status_updated": {
        **_INVOICE_OBJECT,
        "payment_status": "SUCCEEDED",
        "amount_paid": "120.00",
        "amount_remaining": "0.00",
        "paid_at": "2026-11-04T10:00:00Z",
    },
    "invoice.payment_failure": {
        **_INVOICE_OBJECT,
        "payment_status": "FAILED",
        "failure_reason": "card_declined",
    },
    "invoice.payment_overdue": {
        **_INVOICE_OBJECT,
        "payment_status": "PENDING",
        "overdue_since": "2026-11-17T00:00:00Z",
    },
    "invoice.voided": {
        **_INVOICE_OBJECT,
        "invoice_status": "VOIDED",
        "voided_at": "2026-11-08T09:00:00Z",
    },
    "wallet.created": _WALLET_OBJECT,
    "wallet.updated": {**_WALLET_OBJECT, "name": "Prepaid credits (team)"},
    "wallet.terminated": {
        **_WALLET_OBJECT,
        "balance": "0.00",
        "credit_balance": "0.00",
        "wallet_status": "closed",
        "updated_at": "2026-11-26T12:00:00Z",
    },
    "wallet.depleted_ongoing_balance": {
        **_WALLET_OBJECT,
        "balance": "0.00",
        "credit_balance": "0.00",
        "ongoing_balance": "-3.25",
        "updated_at": "2026-11-21T23:10:00Z",
    },
    "wallet_transaction.updated": _WALLET_TRANSACTION_OBJECT,
    "wallet_transaction.payment_failure": {
        **_WALLET_TRANSACTION_OBJECT,
        "transaction_status": "failed",
        "failure_reason": "insufficient_funds",
    },
    "credit_note.created": _CREDIT_NOTE_OBJECT,
    "credit_note.generated": {
        **_CREDIT_NOTE_OBJECT,
        "credit_note_pdf_url": "https://files.flexprice.example/credit-notes/CN-2026-000009.pdf",
    },
    "credit_note.refund_failure": {
        **_CREDIT_NOTE_OBJECT,
        "refund_status": "FAILED",
        "failure_reason": "the payment provider refused the refund: charge already refunded",
    },
    "fee.created": {
        "id": "fee_01JDD4F6H8K0M2P4R6T8V0X2Z4",
        "customer_id": _CUSTOMER,
        "subscription_id": _SUBSCRIPTION,
        "invoice_id": None,
        "fee_type": "charge",
        "pay_in_advance": True,
        "description": "Onboarding package",
        "amount": "300.00",
        "currency": "usd",
        "created_at": "2026-11-03T00:00:00Z",
    },
    "events.errors": {
        "event_name": "api_call",
        "external_customer_id": _EXTERNAL_CUSTOMER,
        "error_count": 3,
        "errors": [
            {
                "event_id": "evt_ingest_8f14e45f",
                "error": "property 'tokens' must be a number",
                "timestamp": "2026-11-19T13:02:11Z",
            }
        ],
        "first_seen_at": "2026-11-19T13:02:11Z",
        "last_seen_at": "2026-11-19T13:04:52Z",
    },
    "webhook_endpoint.failing": _ENDPOINT_OBJECT,
    "webhook_endpoint.recovered": {
        **_ENDPOINT_OBJECT,
        "transition": "recovered",
        "consecutive_failures": 0,
        "last_error": None,
        "last_status_code": 200,
    },
    "webhook_endpoint.disabled": {
        **_ENDPOINT_OBJECT,
        "enabled": False,
        "transition": "disabled",
        "consecutive_failures": 412,
        "disabled": {
            "reason": "every attempt failed for 5 days or more, since 2026-11-20 06:00:00 UTC, with no 2xx",
            "by": "rule",
            "at": "2026-11-25T06:00:00Z",
        },
    },
    # `lane`: which lane (its ordering key, null for events without one) and its head, the event it waits
    # on (docs/delivery.md, "Ordered delivery").
    "webhook_endpoint.lane_blocked": {
        **_ENDPOINT_OBJECT,
        "transition": "lane_blocked",
        "consecutive_failures": 4,
        "lane": {
            "ordering_key": "cus_8a3f",
            "head": {"delivery_id": "evt_2c91:" + _ENDPOINT, "sequence": 17},
        },
    },
}

# The 31 types of the documentation: what clients emit, and what "every event type" means.
EVENT_TYPES: tuple[EventType, ...] = tuple(
    EventType(name, description, group, example=_EXAMPLES[name])
    for group, entries in _GROUPS.items()
    for name, description in entries
)
EVENT_TYPES_BY_NAME: dict[str, EventType] = {t.name: t for t in EVENT_TYPES}
OPERATIONAL_TYPES: tuple[EventType, ...] = tuple(
    EventType(name, description, OPERATIONAL_GROUP, operational=True, example=_EXAMPLES[name])
    for name, description in _OPERATIONAL
)
# What an endpoint can subscribe to: every type, the operational ones by name.
SUBSCRIBABLE_BY_NAME: dict[str, EventType] = {t.name: t for t in (*EVENT_TYPES, *OPERATIONAL_TYPES)}


# Where an event's object names the customer it concerns (the catalog's examples say so): a customer's own
# events are about itself; every other object that belongs to one carries `customer_id`.
CUSTOMER_ID_FIELD = "customer_id"


def customer_id_of(object_type: str, data_object: dict[str, Any]) -> object:
    """The id of the customer an event's `data.object` concerns, as given (None if it names none)."""
    if object_type == "customer":
        return data_object.get("id", data_object.get(CUSTOMER_ID_FIELD))
    return data_object.get(CUSTOMER_ID_FIELD)


def unknown_event_types(names: list[str]) -> list[str]:
    """Names an endpoint cannot subscribe to, in the order given."""
    return [n for n in names if n not in SUBSCRIBABLE_BY_NAME]


def receives(event_types: list[str] | None, webhook_type: str) -> bool:
    """Whether an endpoint subscribed to `event_types` (None: every event type) receives `webhook_type`."""
    if event_types is None:
        return webhook_type in EVENT_TYPES_BY_NAME
    return webhook_type in event_types
