"""Bad input through the real API: a 4xx whose message says what to fix, never a 5xx.

Each case here was a 500 or a 502 before: a lone UTF-16 surrogate anywhere in a JSON body (it reached
the store, the signer or the error echo and could not be encoded), a body that is not UTF-8 or not JSON,
and a list cursor that was damaged or made up (Temporal could not read it and said "something went
wrong"). Malformed URLs and event ids are in test_endpoints_api.py and test_events_api.py.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import NOWHERE, create_endpoint, emit, wait_for

JSON = {"content-type": "application/json"}
LONE_HIGH = "\\ud800"  # as JSON text: the escape of a high surrogate with no low one after it
LONE_LOW = "\\udfff"


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        (
            "/v1/webhooks/endpoints",
            f'{{"url": "http://127.0.0.1:9/h", "description": "a{LONE_HIGH}"}}',
            ["body", "description"],
        ),
        ("/v1/webhooks/endpoints", f'{{"url": "http://127.0.0.1:9/{LONE_LOW}"}}', ["body", "url"]),
        (
            "/v1/webhooks/endpoints",
            f'{{"url": "http://127.0.0.1:9/h", "event_types": ["invoice.created", "{LONE_HIGH}"]}}',
            ["body", "event_types", 1],
        ),
        (
            "/v1/events",
            f'{{"webhook_type": "invoice.created", "data": {{"object": {{"note": ["ok", "{LONE_HIGH}"]}}}}}}',
            ["body", "data", "object", "note", 1],
        ),
        (
            "/v1/events",
            f'{{"webhook_type": "invoice.created", "data": {{"object": {{"{LONE_LOW}": 1}}}}}}',
            ["body", "data", "object", '"\\udfff"'],
        ),
        (
            "/v1/events",
            f'{{"webhook_type": "{LONE_HIGH}", "data": {{"object": {{}}}}}}',
            ["body", "webhook_type"],
        ),
        (
            "/v1/events",
            f'{{"webhook_type": "invoice.created", "data": {{"object": {{}}}}, "id": "a{LONE_HIGH}"}}',
            ["body", "id"],
        ),
    ],
)
def test_a_lone_surrogate_is_422_naming_where_it_is(
    api: httpx.Client, path: str, body: str, loc: list[str | int]
) -> None:
    response = api.post(path, content=body.encode(), headers=JSON)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == loc
    assert "lone UTF-16 surrogate" in error["msg"]
    assert "both halves of its surrogate pair" in error["msg"]


def test_a_lone_surrogate_in_a_patch_is_422(api: httpx.Client) -> None:
    endpoint_id = create_endpoint(api, f"{NOWHERE}/s")["id"]
    body = f'{{"description": "{LONE_HIGH}"}}'.encode()
    response = api.patch(f"/v1/webhooks/endpoints/{endpoint_id}", content=body, headers=JSON)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "description"]


def test_a_surrogate_pair_is_text_and_is_accepted(api: httpx.Client) -> None:
    # What json.dumps writes by default for an emoji: both halves, escaped. It is 😀, and welcome.
    body = b'{"url": "http://127.0.0.1:9/p", "description": "\\ud83d\\ude00 and \\\\ud800 as text"}'
    response = api.post("/v1/webhooks/endpoints", content=body, headers=JSON)
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "\U0001f600 and \\ud800 as text"
    event = b'{"webhook_type": "invoice.created", "data": {"object": {"\\ud83d\\ude00": "\\ud83d\\ude00"}}}'
    assert api.post("/v1/events", content=event, headers=JSON).status_code == 202


def test_a_body_that_is_not_utf8_is_422(api: httpx.Client) -> None:
    response = api.post("/v1/webhooks/endpoints", content=b'{"url": "http://x/\xff"}', headers=JSON)
    assert response.status_code == 422
    assert "not valid UTF-8" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize("content_type", [None, "text/plain"])
def test_a_body_that_is_not_json_is_415(api: httpx.Client, content_type: str | None) -> None:
    # Bytes that are not UTF-8 either: FastAPI's error echo could not encode them (a 500 before).
    headers = {"content-type": content_type} if content_type else {}
    response = api.post("/v1/events", content=b"\xff\xfe", headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


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


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("rate_limit_per_second", 1e-300, "greater than or equal to 0.1"),
        ("rate_limit_per_second", 0, "greater than or equal to 0.1"),
        ("headers", {"X-Token": "caf\u20ac"}, "visible ASCII"),
    ],
)
def test_an_endpoint_setting_that_could_never_deliver_is_422(
    api: httpx.Client, field: str, value: object, says: str
) -> None:
    """A rate no token ever comes at, a header httpx cannot send: every delivery would be retried for
    ever. Refused when saved, saying what to send instead."""
    response = api.post("/v1/webhooks/endpoints", json={"url": f"{NOWHERE}/never", field: value})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"][:2] == ["body", field] and says in error["msg"]
