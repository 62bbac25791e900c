"""Bad input through the real API: a 4xx whose message says what to fix, never a 5xx.

Each case here was a 500 or a 502 before: a list cursor that was damaged or made up (Temporal could not
read it and said "something went wrong"). Malformed URLs and event ids are in test_endpoints_api.py and
test_events_api.py.
"""

from __future__ import annotations

import base64

import httpx

from tests.conftest import NOWHERE, create_endpoint, emit, wait_for


def test_a_damaged_or_made_up_cursor_is_422(api: httpx.Client, api_b: httpx.Client) -> None:
    endpoint_id = create_endpoint(api, f"{NOWHERE}/cursor")["id"]
    for _ in range(3):
        emit(api, "invoice.created")
    path = f"/v1/webhooks/endpoints/{endpoint_id}/deliveries"

    def second_page_cursor() -> str | None:
        return str(api.get(path, params={"limit": 1}).json()["next_cursor"] or "") or None

    cursor = wait_for(second_page_cursor, what="a listing with a second page")
    assert api.get(path, params={"limit": 1, "cursor": cursor}).status_code == 200
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    flipped = bytes([raw[-5] ^ 1])
    tampered = base64.urlsafe_b64encode(raw[:-5] + flipped + raw[-4:]).rstrip(b"=").decode()
    made_up = [
        tampered,
        cursor[:-6],  # truncated
        cursor + "AAAA",
        "abc",
        "e30",  # base64 of "{}"
        base64.urlsafe_b64encode(b'{"CloseTime":"garbage"}').decode(),
        "!!!",
    ]
    for bad in made_up:
        response = api.get(path, params={"limit": 1, "cursor": bad})
        assert response.status_code == 422, (bad, response.text)
        [error] = response.json()["detail"]
        assert error["loc"] == ["query", "cursor"]
        assert "list again without it" in error["msg"]
    # Another tenant cannot use it either (on its own listing: the endpoint is not theirs).
    foreign = api_b.get("/v1/webhooks/deliveries", params={"cursor": cursor})
    assert foreign.status_code == 422


def test_an_unknown_event_type_filter_is_a_validation_error(api: httpx.Client) -> None:
    response = api.get("/v1/webhooks/deliveries", params={"event_type": "invoice.nope"})
    assert response.status_code == 422
    [error] = response.json()["detail"]  # FastAPI's shape, as the OpenAPI schema says
    assert error["loc"] == ["query", "event_type"]
    assert "event-types" in error["msg"]
