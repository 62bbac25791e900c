"""The catalog is exactly the seed documentation's 31 events, and the API serves it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from core.catalog import EVENT_TYPES, receives

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
    # And the three the service sends about endpoints, in a group of their own.
    operational = {i["name"]: i["group"] for i in items if i["operational"]}
    assert operational == {
        "webhook_endpoint.failing": "Webhook Endpoint Events",
        "webhook_endpoint.recovered": "Webhook Endpoint Events",
        "webhook_endpoint.disabled": "Webhook Endpoint Events",
    }
    assert all(i["object_type"] == i["name"].split(".")[0] for i in items)
    assert {i["name"]: i["object_type"] for i in items}["wallet_transaction.updated"] == "wallet_transaction"


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
