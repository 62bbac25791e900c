"""The OpenAPI document's `webhooks` (OpenAPI 3.1): what a receiver is sent, one entry per event type.

Each entry is the POST an endpoint gets for that type: its body's JSON Schema is the one
`GET /v1/webhooks/event-types/{name}` serves (domain/schemas.py, 2020-12, which OpenAPI 3.1 takes as it
is), its example the catalog's, and the headers are those of every delivery (activities/delivery.py,
core/signing.py), each saying when it is sent. So receivers generate types and handlers from the same
document as clients do, with standard tools. Nothing here is served: FastAPI documents `app.webhooks`
and routes none of it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from domain.catalog import EVENT_TYPES, OPERATIONAL_TYPES, EventType
from domain.schemas import SCHEMAS, example_body

TAG = "webhooks a receiver gets"


def _header(
    name: str, description: str, *, required: bool = False, example: str | None = None
) -> dict[str, Any]:
    header: dict[str, Any] = {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }
    if example is not None:
        header["example"] = example
    return header


HEADERS: list[dict[str, Any]] = [
    _header(
        "webhook-id",
        "The delivery's id (event × endpoint), the same on every attempt of it: dedupe by it.",
        required=True,
        example="evt_01JF2Q7ZB3K6X8M9N0P1Q2R3S4:ep_01JF2Q7ZB3K6X8M9N0P1Q2R3S5",
    ),
    _header(
        "webhook-timestamp",
        "Unix seconds when this attempt was signed; refuse one more than 5 minutes off your clock.",
        required=True,
        example="1767225600",
    ),
    _header(
        "webhook-signature",
        "Sent to endpoints with the hmac signature method (the default): Standard Webhooks v1, "
        '`v1,<base64 HMAC-SHA256(secret, "{webhook-id}.{webhook-timestamp}.{raw body}")>`; during a '
        "secret's rotation two, space-separated. Verify with the `standardwebhooks` library.",
        example="v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    ),
    _header(
        "x-webhook-signature",
        "Sent to endpoints with the jwt signature method instead of webhook-signature: an RS256 JWT "
        "(`kid` in its header; claims `iss`, `iat`, `jti` = webhook-id, `body_sha256` = hex SHA-256 of the "
        "raw body), verified with the public keys of `GET /v1/webhooks/jwks/{tenant}.json`.",
    ),
    _header(
        "x-webhook-signature-algorithm",
        "`jwt`, beside x-webhook-signature (jwt signature method only).",
        example="jwt",
    ),
    _header(
        "webhook-sequence",
        "Sent to ordered endpoints only (`ordered: true`): 1 for the first event of its `ordering_key`, one "
        "more for each next one. Not signed: check it after verifying the signature and deduping by "
        "webhook-id.",
        example="1",
    ),
    _header(
        "traceparent",
        "W3C trace context of the delivery's trace, when the service runs with tracing on. Not signed: "
        "use it to correlate, never to decide.",
        example="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ),
    _header("user-agent", "`flexprice-webhooks/1.0`.", example="flexprice-webhooks/1.0"),
]

# 200 stands for any 2xx: FastAPI documents one status per route.
RECEIVED = "Received: any 2xx ends the delivery as succeeded (what the body says is kept in the log)."
RESPONSES: dict[int | str, dict[str, Any]] = {
    "410": {"description": "Gone: stop this delivery now; no more attempts of it are made."},
    "429": {
        "description": "Too many requests (also 503): retried on the schedule, no earlier than `Retry-After`."
    },
    "default": {
        "description": "Anything else, a redirect, a timeout or a refused connection is a failed attempt, "
        "retried on the endpoint's schedule."
    },
}


def _operation(event_type: EventType) -> dict[str, Any]:
    """What FastAPI cannot read off a function: the body's schema, as made in domain/schemas.py."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                # Its example is added by `with_examples`, once FastAPI has made the document.
                "application/json": {"schema": SCHEMAS[event_type.name]}
            },
        },
        "parameters": HEADERS,
    }


def _documented() -> None:
    """Never called: a webhook is sent by us, not served."""


def receiver_webhooks() -> APIRouter:
    """A router of one documented POST per event type a receiver can get, for `FastAPI(webhooks=...)`."""
    router = APIRouter()
    for event_type in (*EVENT_TYPES, *OPERATIONAL_TYPES):
        kind = "operational event about your endpoint" if event_type.operational else "event"
        router.add_api_route(
            event_type.name,
            _documented,
            methods=["POST"],
            tags=[TAG],
            summary=event_type.name,
            description=f"{event_type.description}\n\nThe {kind} `{event_type.name}`, as POSTed to a "
            "subscribed endpoint. Its schema is also served at "
            f"`GET /v1/webhooks/event-types/{event_type.name}`.",
            operation_id=f"webhook_{event_type.name.replace('.', '_')}",
            status_code=200,
            response_class=Response,
            response_description=RECEIVED,
            responses=RESPONSES,
            openapi_extra=_operation(event_type),
        )
    return router


def with_examples(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with each webhook's example body, exactly as sent.

    Set after FastAPI has made the document: its encoder drops every null in it (`exclude_none`), and a
    field whose example is null is a field a receiver's generated type must still have.
    """
    for event_type in (*EVENT_TYPES, *OPERATIONAL_TYPES):
        item = document.get("webhooks", {}).get(event_type.name)
        if item is not None:
            item["post"]["requestBody"]["content"]["application/json"]["example"] = example_body(event_type)
    return document
