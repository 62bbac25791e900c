"""Finding events and deliveries by the business object (issue 23, item 2), end to end: the real API,
worker and Temporal dev server (SQLite visibility), and the `webhooks` command.

Each test uses ids of its own (a random run prefix), so the session's shared stack and tenant hold other
tests' events too: every assertion is about the exact set found, which another test's events cannot join.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from launcher import Stack
from tests.conftest import create_endpoint, wait_for
from tests.receiver import Receiver
from tests.test_cli import failed, ok_json, webhooks

TYPES = ["invoice.created", "invoice.voided", "customer.updated"]


def emit_object(api: httpx.Client, webhook_type: str, data_object: dict[str, Any]) -> str:
    response = api.post("/v1/events", json={"webhook_type": webhook_type, "data": {"object": data_object}})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def found(api: httpx.Client, path: str, **params: str) -> set[str]:
    response = api.get(path, params={**params, "limit": "100"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    return {item["id"] for item in body["items"]}


def test_events_and_deliveries_are_found_by_their_object_and_customer(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    run = uuid.uuid4().hex[:8]
    inv, cus = f"inv_{run}_", f"cus_{run}_"
    first = create_endpoint(api, receiver.url(f"/find-{run}-1"), event_types=TYPES)["id"]
    second = create_endpoint(api, receiver.url(f"/find-{run}-2"), event_types=["invoice.created"])["id"]
    events = {
        "41": emit_object(api, "invoice.created", {"id": f"{inv}0041", "customer_id": f"{cus}a"}),
        "42": emit_object(api, "invoice.created", {"id": f"{inv}0042", "customer_id": f"{cus}a"}),
        "42v": emit_object(api, "invoice.voided", {"id": f"{inv}0042", "customer_id": f"{cus}a"}),
        "43": emit_object(api, "invoice.created", {"id": f"{inv}0043", "customer_id": f"{cus}b"}),
        "142": emit_object(api, "invoice.created", {"id": f"{inv}1042", "customer_id": f"{cus}b"}),
        "cus": emit_object(api, "customer.updated", {"id": f"{cus}a", "name": "Acme"}),
    }

    def mine(path: str, **params: str) -> set[str]:
        """Deliveries to this test's endpoints: another test's endpoint taking every type gets ours too."""
        return {d for d in found(api, path, **params) if d.endswith((f":{first}", f":{second}"))}

    def deliveries_of(*keys: str) -> set[str]:
        out = set()
        for key in keys:
            out.add(f"{events[key]}:{first}")
            if key != "42v" and key != "cus":
                out.add(f"{events[key]}:{second}")
        return out

    # Visibility is eventually consistent: wait until every delivery of the run is listed once.
    everything = deliveries_of(*events)
    wait_for(
        lambda: (
            (
                mine("/v1/webhooks/deliveries", object_id=f"{inv}*")
                | mine("/v1/webhooks/deliveries", object_id=f"{cus}a")
            )
            == everything
        ),
        what="every delivery of the run to be listed",
    )

    # Exact: one invoice's events (created, then voided) and their deliveries, on every endpoint.
    assert found(api, "/v1/events", object_id=f"{inv}0042") == {events["42"], events["42v"]}
    assert mine("/v1/webhooks/deliveries", object_id=f"{inv}0042") == deliveries_of("42", "42v")
    # On one endpoint only.
    assert found(api, f"/v1/webhooks/endpoints/{second}/deliveries", object_id=f"{inv}0042") == {
        f"{events['42']}:{second}"
    }
    # A prefix: inv_…_004* is 0041, 0042 and 0043, not 1042.
    assert found(api, "/v1/events", object_id=f"{inv}004*") == {events[k] for k in ("41", "42", "42v", "43")}
    assert mine("/v1/webhooks/deliveries", object_id=f"{inv}004*") == deliveries_of("41", "42", "42v", "43")
    # A customer: its invoices' events and its own (a customer event's object is the customer).
    assert found(api, "/v1/events", customer_id=f"{cus}a") == {events[k] for k in ("41", "42", "42v", "cus")}
    assert found(api, "/v1/events", customer_id=f"{cus}*", object_id=f"{inv}1042") == {events["142"]}
    # An id that was never emitted finds nothing, and an exact id is not a prefix.
    assert found(api, "/v1/events", object_id=f"{inv}004") == set()

    listed = api.get("/v1/events", params={"object_id": f"{inv}0043"}).json()["items"]
    assert [(e["object_id"], e["customer_id"], e["webhook_type"]) for e in listed] == [
        (f"{inv}0043", f"{cus}b", "invoice.created")
    ]

    # The command line: the same searches.
    cli_events = ok_json(stack, "events", "list", "--object-id", f"{inv}0042")
    assert {e["id"] for e in cli_events["items"]} == {events["42"], events["42v"]}
    cli_deliveries = ok_json(stack, "deliveries", "list", "--object-id", f"{inv}004*", "--limit", "100")
    assert {d["id"] for d in cli_deliveries["items"] if d["endpoint_id"] in (first, second)} == deliveries_of(
        "41", "42", "42v", "43"
    )
    table = webhooks(stack, "events", "list", "--customer-id", f"{cus}b")
    assert table.returncode == 0, table.stderr
    assert events["43"] in table.stdout and events["142"] in table.stdout and f"{inv}1042" in table.stdout
    assert events["41"] not in table.stdout


def test_a_search_that_could_find_nothing_is_refused_saying_what_to_fix(
    stack: Stack, api: httpx.Client
) -> None:
    for path in ("/v1/events", "/v1/webhooks/deliveries"):
        for value, fix in (
            ("inv 42", "letters, digits"),
            ("*", "is empty"),
            ("inv*42", "one * at the end"),
            ("i" * 129, "longer than 128"),
        ):
            response = api.get(path, params={"object_id": value})
            assert response.status_code == 422, (path, value, response.text)
            [error] = response.json()["detail"]
            assert error["loc"] == ["query", "object_id"]
            assert fix in error["msg"]
        response = api.get(path, params={"customer_id": "cus'7"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "customer_id"]
    refused = failed(webhooks(stack, "events", "list", "--object-id", "inv 42"))
    assert "object_id may hold letters, digits" in refused


def test_an_object_without_an_indexable_id_is_delivered_and_listed_without_one(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    run = uuid.uuid4().hex[:8]
    create_endpoint(api, receiver.url(f"/odd-{run}"), event_types=["invoice.created"])
    event_id = emit_object(
        api, "invoice.created", {"id": f"inv {run} with spaces", "customer_id": f"cus_{run}"}
    )
    wait_for(lambda: receiver.requests(f"/odd-{run}"), what="the delivery")
    [item] = wait_for(
        lambda: api.get("/v1/events", params={"customer_id": f"cus_{run}"}).json()["items"], what="the event"
    )
    assert item["id"] == event_id
    assert item["object_id"] is None and item["customer_id"] == f"cus_{run}"
