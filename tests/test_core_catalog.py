"""The catalog is exactly the seed documentation's 31 events, each with an example, and the API serves it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from domain.catalog import EVENT_TYPES, OPERATIONAL_TYPES, SUBSCRIBABLE_BY_NAME, EventType, receives
from service.events import serialize
from service.models import EventSubmission
from store.health import Transition, operational_object

SEED = Path(__file__).parent.parent / "docs" / "flexprice-webhooks.txt"


def seed_events() -> dict[str, str]:
    text = SEED.read_text()
    return dict(re.findall(r"^([a-z_]+\.[a-z_]+)(Sent .+)$", text, re.M))


def test_catalog_matches_the_seed_documentation() -> None:
    documented = seed_events()
    assert len(documented) == 31
    assert {t.name: t.description for t in EVENT_TYPES} == documented


def test_event_types_route_lists_the_catalog(api: httpx.Client) -> None:
    response = api.get("/v1/webhooks/event-types")
    assert response.status_code == 200
    items = response.json()["items"]
    business = [i for i in items if not i["operational"]]
    assert {i["name"]: i["description"] for i in business} == seed_events()
    # And the four the service sends about endpoints, in a group of their own.
    operational = {i["name"]: i["group"] for i in items if i["operational"]}
    assert operational == {
        "webhook_endpoint.failing": "Webhook Endpoint Events",
        "webhook_endpoint.recovered": "Webhook Endpoint Events",
        "webhook_endpoint.disabled": "Webhook Endpoint Events",
        "webhook_endpoint.lane_blocked": "Webhook Endpoint Events",
    }
    assert all(i["object_type"] == i["name"].split(".")[0] for i in items)
    assert {i["name"]: i["object_type"] for i in items}["wallet_transaction.updated"] == "wallet_transaction"
    # Each with its example object, as the catalog holds it.
    assert {i["name"]: i["example"] for i in items} == {
        t.name: t.example for t in SUBSCRIBABLE_BY_NAME.values()
    }


@pytest.mark.parametrize("event_type", [*EVENT_TYPES, *OPERATIONAL_TYPES], ids=lambda t: t.name)
def test_every_type_has_an_example_object_that_the_emit_path_accepts(event_type: EventType) -> None:
    example = event_type.example
    assert isinstance(example, dict) and example, "an example is a JSON object with something in it"
    object_type, body = serialize(EventSubmission(webhook_type=event_type.name, object=example))
    assert object_type == event_type.object_type
    assert json.loads(body) == {
        "webhook_type": event_type.name,
        "object_type": event_type.object_type,
        "data": {"object": example},
    }
    assert len(body.encode()) < Settings.model_fields["max_payload_bytes"].default
    # Plausible: Flexprice's kinds of values, never floats for money or timestamps that are not ISO 8601.
    for name, value in _leaves(example):
        assert not isinstance(value, float), f"{name} is a float; amounts are decimal strings"
        if name.endswith(("_at", "_date", "_start", "_end", "_since")) and value is not None:
            assert isinstance(value, str), f"{name}: {value!r}"
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value), f"{name}: {value!r}"
        if (
            name in ("amount", "balance")
            or name.startswith("amount_")
            or name.endswith(("_amount", "_balance"))
        ):
            assert isinstance(value, str) and re.fullmatch(r"-?\d+\.\d\d", value), f"{name}: {value!r}"
            assert example.get("currency") == "usd", f"{name} has no currency beside it"


def _leaves(value: object, name: str = "") -> list[tuple[str, object]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, key)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item, name)]
    return [(name, value)]


def _sent_about(transition: Transition) -> dict[str, Any]:
    """What the service's own builder makes for `transition`, about a disabled-by-rule endpoint."""
    at = datetime(2026, 11, 25, 6, tzinfo=UTC)
    return operational_object(
        "ep_1",
        transition,
        description="",
        enabled=transition is not Transition.DISABLED,
        disabled=("failing too long", "rule", at) if transition is Transition.DISABLED else None,
        failing_since=at,
        consecutive_failures=3,
        last_error="503",
        last_status_code=503,
        lane={"ordering_key": "k", "head": {"delivery_id": "evt_1:ep_1", "sequence": 1}}
        if transition is Transition.LANE_BLOCKED
        else None,
    )


@pytest.mark.parametrize("transition", list(Transition))
def test_operational_examples_have_the_shape_the_service_sends(transition: Transition) -> None:
    example = SUBSCRIBABLE_BY_NAME[f"webhook_endpoint.{transition.value}"].example
    sent = _sent_about(transition)
    assert set(example) == set(sent)
    assert example["transition"] == sent["transition"] == transition.value
    assert (example["disabled"] is None) == (sent["disabled"] is None)
    if sent["disabled"] is not None:
        assert set(example["disabled"]) == set(sent["disabled"])
        assert example["disabled"]["by"] == "rule" and example["enabled"] is False
    # Nothing it is made from can hold a secret: no secret, header or URL goes in (see its signature).
    assert not any("secret" in key or "header" in key or "url" in key for key in example)


def test_every_event_type_means_the_31_and_operational_ones_are_named() -> None:
    assert receives(None, "invoice.created")
    assert not receives(None, "webhook_endpoint.disabled")
    assert receives(["webhook_endpoint.disabled"], "webhook_endpoint.disabled")
    assert not receives(["invoice.created"], "invoice.voided")


def test_operational_types_cannot_be_emitted(api: httpx.Client) -> None:
    body = {"webhook_type": "webhook_endpoint.disabled", "data": {"object": {}}}
    response = api.post("/v1/events", json=body)
    assert response.status_code == 422
    assert "sent by the service itself" in response.json()["detail"][0]["msg"]
