"""The catalog is exactly the seed documentation's 31 events, and the API serves it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from core.catalog import EVENT_TYPES

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
    assert {i["name"]: i["description"] for i in items} == seed_events()
    assert all(i["object_type"] == i["name"].split(".")[0] for i in items)
    assert {i["name"]: i["object_type"] for i in items}["wallet_transaction.updated"] == "wallet_transaction"
