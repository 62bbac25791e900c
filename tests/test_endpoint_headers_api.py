"""Custom headers readable and removable (issue 23, item 4), through the real API, worker and Temporal to
a real receiver: each header's name listed, values masked only when marked secret or named like a
credential, PATCH changing them one by one (a value sets, null removes, `"headers": null` removes all),
and what a receiver gets after each change. The store keeps the values sealed and the marks as names.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
from sqlalchemy import select, update

from core.crypto import is_sealed
from domain.endpoint_headers import HeaderSetting
from launcher import Stack
from store.database import EndpointStore
from store.tables import EndpointRow
from tests.conftest import add_endpoint, create_endpoint, emit, settled, wait_delivery
from tests.receiver import Receiver
from tests.test_cli import failed, ok_json, webhooks


def patch(api: httpx.Client, endpoint_id: str, headers: Any) -> httpx.Response:
    return api.patch(f"/v1/webhooks/endpoints/{endpoint_id}", json={"headers": headers})


def sent(api: httpx.Client, receiver: Receiver, path: str, endpoint_id: str) -> dict[str, str]:
    """The headers the receiver got on a new event's delivery."""
    before = len(receiver.requests(path))
    event_id = emit(api, "customer.created")["id"]
    wait_delivery(api, f"{event_id}:{endpoint_id}", settled)
    [request] = receiver.requests(path)[before:]
    return request.headers


def test_headers_are_shown_unless_secret_and_removed_one_by_one_or_all(
    api: httpx.Client, receiver: Receiver
) -> None:
    path = "/custom-headers"
    endpoint = create_endpoint(
        api,
        receiver.url(path),
        event_types=["customer.created"],
        headers={
            "Authorization": "Bearer gateway-token-1234",  # named like a credential
            "X-Team": "billing",
            "X-Tenant-Ref": {"value": "acme-eu-0042", "secret": True},  # marked
            "X-Api-Key": {"value": "k-9876-abcdef", "secret": False},  # named like one: masked anyway
        },
    )
    endpoint_id = endpoint["id"]
    assert endpoint["headers"] == {
        "Authorization": "••••1234",
        "X-Team": "billing",
        "X-Tenant-Ref": "••••0042",
        "X-Api-Key": "••••cdef",
    }
    assert sorted(endpoint["secret_headers"]) == ["Authorization", "X-Api-Key", "X-Tenant-Ref"]
    assert api.get(f"/v1/webhooks/endpoints/{endpoint_id}").json()["headers"] == endpoint["headers"]

    # One removed (in another case than it was given): the others stay, with their values and marks.
    removed = patch(api, endpoint_id, {"x-team": None})
    assert removed.status_code == 200, removed.text
    assert set(removed.json()["headers"]) == {"Authorization", "X-Tenant-Ref", "X-Api-Key"}
    assert removed.json()["headers"]["X-Tenant-Ref"] == "••••0042"
    got = sent(api, receiver, path, endpoint_id)
    assert "x-team" not in got
    assert got["authorization"] == "Bearer gateway-token-1234"
    assert got["x-tenant-ref"] == "acme-eu-0042"
    assert got["x-api-key"] == "k-9876-abcdef"

    # One added beside the others, one set again and unmarked (so shown), one removed that is not there.
    changed = patch(
        api,
        endpoint_id,
        {"X-Region": "eu", "x-tenant-ref": {"value": "acme-eu-0043", "secret": False}, "X-Gone": None},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["headers"] == {
        "Authorization": "••••1234",
        "X-Api-Key": "••••cdef",
        "x-tenant-ref": "acme-eu-0043",
        "X-Region": "eu",
    }
    assert sorted(changed.json()["secret_headers"]) == ["Authorization", "X-Api-Key"]
    # An empty change changes nothing; a PATCH without headers leaves them alone.
    assert patch(api, endpoint_id, {}).json()["headers"] == changed.json()["headers"]
    described = api.patch(f"/v1/webhooks/endpoints/{endpoint_id}", json={"description": "gateway"})
    assert described.json()["headers"] == changed.json()["headers"]
    got = sent(api, receiver, path, endpoint_id)
    assert (got["x-region"], got["x-tenant-ref"], got["x-api-key"]) == ("eu", "acme-eu-0043", "k-9876-abcdef")

    # All removed.
    cleared = patch(api, endpoint_id, None)
    assert cleared.status_code == 200
    assert (cleared.json()["headers"], cleared.json()["secret_headers"]) == ({}, [])
    got = sent(api, receiver, path, endpoint_id)
    assert not {"authorization", "x-api-key", "x-tenant-ref", "x-region"} & set(got)


def test_a_header_change_that_could_not_be_sent_is_refused_saying_why(api: httpx.Client) -> None:
    endpoint = create_endpoint(api, "http://127.0.0.1:9/h", headers={f"X-H{n}": "v" for n in range(19)})
    endpoint_id = endpoint["id"]
    cases: list[tuple[Any, str]] = [
        ({"X-A": "1", "x-a": None}, "given twice"),
        ({"X-New-1": "1", "X-New-2": "2"}, "at most 20 headers"),  # 19 kept + 2: one too many
        ({"Bad Name": None}, "not a valid HTTP field name"),
        ({"X-A": {"value": "v", "secret": True, "note": "x"}}, "Extra inputs are not permitted"),
        ({"Webhook-Signature": {"value": "v1,forged", "secret": True}}, "set by the service itself"),
    ]
    for change, says in cases:
        response = patch(api, endpoint_id, change)
        assert response.status_code == 422, (change, response.text)
        assert says in response.text, (change, response.text)
    # Nothing of a refused change was applied.
    assert len(api.get(f"/v1/webhooks/endpoints/{endpoint_id}").json()["headers"]) == 19
    created = api.post(
        "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/h", "headers": {"X-A": None}}
    )
    assert created.status_code == 422
    assert created.json()["detail"][0]["loc"][:2] == ["body", "headers"]


def test_values_stay_sealed_in_the_store_and_only_names_are_marked(store: EndpointStore) -> None:
    endpoint = add_endpoint(
        store,
        "acme",
        url="https://example.com/h",
        headers={"X-Tenant-Ref": "acme-eu-0042", "X-Team": "billing"},
        secret_headers=["X-Tenant-Ref", "X-Not-There"],
    )
    assert endpoint.secret_headers == frozenset({"x-tenant-ref"})
    with store.engine.connect() as conn:
        row = conn.execute(select(EndpointRow.headers, EndpointRow.secret_headers)).one()
    assert row.headers is not None and is_sealed(row.headers)
    assert "acme-eu-0042" not in row.headers and "billing" not in row.headers
    assert row.secret_headers == ["x-tenant-ref"]


def test_the_command_line_sets_shows_and_removes_headers(stack: Stack, api: httpx.Client) -> None:
    created = ok_json(
        stack,
        "endpoints",
        "add",
        "http://127.0.0.1:9/cli-headers",
        "--header",
        "X-Team: billing",
        "--secret-header",
        "X-Tenant-Ref: acme-eu-0042",
    )
    endpoint_id = created["id"]
    assert created["headers"] == {"X-Team": "billing", "X-Tenant-Ref": "••••0042"}
    shown = webhooks(stack, "endpoints", "headers", endpoint_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ["X-Team: billing", "X-Tenant-Ref: ••••0042  (secret)"]
    changed = ok_json(
        stack, "endpoints", "headers", endpoint_id, "--remove", "X-Team", "--set", "X-Region: eu"
    )
    assert changed["headers"] == {"X-Tenant-Ref": "••••0042", "X-Region": "eu"}
    assert "remove-all" in failed(
        webhooks(stack, "endpoints", "headers", endpoint_id, "--remove-all", "--remove", "X-Region"), code=2
    )
    emptied = webhooks(stack, "endpoints", "headers", endpoint_id, "--remove-all")
    assert emptied.returncode == 0 and emptied.stdout.strip() == "no custom headers"
    assert api.get(f"/v1/webhooks/endpoints/{endpoint_id}").json()["headers"] == {}


def test_two_header_changes_at_once_each_keep_the_others(store: EndpointStore) -> None:
    endpoint = add_endpoint(store, "acme", url="https://example.com/h")
    rounds = 9  # two writers, 18 headers: under the 20 an endpoint may have
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for n in range(rounds):
                barrier.wait(timeout=30)
                store.update("acme", endpoint.id, header_changes={f"X-{name}-{n}": HeaderSetting(str(n))})
        except BaseException as err:  # noqa: BLE001 (reported below, with the thread's name)
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    found = store.get("acme", endpoint.id)
    assert found is not None
    assert found.headers == {f"X-{w}-{n}": str(n) for w in ("A", "B") for n in range(rounds)}


def test_headers_from_before_marks_stay_masked_and_a_new_value_keeps_its_mark(store: EndpointStore) -> None:
    """The API masked every header's value before headers could be marked: a row of then (no marks
    stored) keeps them masked after the upgrade; and a new value of a marked header stays marked unless
    the change says `secret: false`."""
    endpoint = add_endpoint(
        store, "acme", url="https://example.com/h", headers={"X-Gateway-Auth": "gw-1", "X-Team": "billing"}
    )
    with store.engine.begin() as conn:  # as migration 0006 leaves a row made before it
        conn.execute(update(EndpointRow).values(secret_headers=None))
    old = store.get("acme", endpoint.id)
    assert old is not None and old.secret_headers == frozenset({"x-gateway-auth", "x-team"})

    changed = store.update("acme", endpoint.id, header_changes={"X-Gateway-Auth": HeaderSetting("gw-2")})
    assert changed is not None and changed.headers["X-Gateway-Auth"] == "gw-2"
    assert "x-gateway-auth" in changed.secret_headers and "x-team" in changed.secret_headers
    unmarked = store.update(
        "acme", endpoint.id, header_changes={"X-Team": HeaderSetting("ops", secret=False)}
    )
    assert unmarked is not None and unmarked.secret_headers == frozenset({"x-gateway-auth"})
