"""The routes the dashboard adds: who am I, per-endpoint delivery counts, and the page being served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx
import pytest

from launcher import Stack
from tests.conftest import NOWHERE, api_client, create_endpoint, emit, standalone_api, wait_delivery, wait_for
from tests.receiver import Answer, Receiver


def test_me_names_the_tenant_of_the_key(stack: Stack) -> None:
    with api_client(stack, "tenant_a") as a, api_client(stack, "tenant_b") as b:
        assert a.get("/v1/me").json() == {
            "tenant": "tenant_a",
            "jwks_path": "/v1/webhooks/jwks/tenant_a.json",
            "scopes": ["emit", "read", "manage", "portal"],
            "session": None,
        }
        assert b.get("/v1/me").json() == {
            "tenant": "tenant_b",
            "jwks_path": "/v1/webhooks/jwks/tenant_b.json",
            "scopes": ["emit", "read", "manage", "portal"],
            "session": None,
        }
    with api_client(stack, tenant=None) as anonymous:
        assert anonymous.get("/v1/me").status_code == 401
        assert anonymous.get("/v1/me", headers={"x-api-key": "wrong"}).status_code == 401


def test_stats_count_an_endpoints_deliveries_by_status(api: httpx.Client, receiver: Receiver) -> None:
    ok = create_endpoint(api, receiver.script("/ok", []))
    down = create_endpoint(api, receiver.script("/down", [Answer(500, b"no")]))
    first, second = emit(api, "wallet.created")["id"], emit(api, "wallet.updated")["id"]
    for event_id in (first, second):
        wait_delivery(api, f"{event_id}:{down['id']}", lambda d: d["status"] == "failed")
        wait_delivery(api, f"{event_id}:{ok['id']}", lambda d: d["status"] == "succeeded")

    def counts(endpoint_id: str, expected: dict[str, int]) -> dict[str, object] | None:
        body = dict(api.get(f"/v1/webhooks/endpoints/{endpoint_id}/stats").json())
        return body if {k: body[k] for k in expected} == expected else None

    # Visibility is eventually consistent: the counts catch up within moments.
    ok_stats = wait_for(
        lambda: counts(ok["id"], {"succeeded": 2, "failed": 0, "pending": 0}), what="ok counts"
    )
    wait_for(lambda: counts(down["id"], {"succeeded": 0, "failed": 2, "pending": 0}), what="down counts")
    assert ok_stats["endpoint_id"] == ok["id"]
    assert ok_stats["since"]
    # The window is counted from now: a one-hour window still holds these fresh deliveries.
    assert api.get(f"/v1/webhooks/endpoints/{ok['id']}/stats?hours=1").json()["succeeded"] == 2
    # `created_before` alone counts the `hours` before it: a window that ended two days ago holds none
    # of them (it was a 422 naming `created_after`, which this request does not send).
    ended = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    past = api.get(f"/v1/webhooks/endpoints/{ok['id']}/stats", params={"created_before": ended})
    assert past.status_code == 200, past.text
    assert {k: past.json()[k] for k in ("succeeded", "failed", "pending")} == {
        "succeeded": 0,
        "failed": 0,
        "pending": 0,
    }
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    now = api.get(f"/v1/webhooks/endpoints/{ok['id']}/stats", params={"created_before": later, "hours": 1})
    assert now.json()["succeeded"] == 2


def test_a_delivery_retried_into_success_is_no_longer_failed(api: httpx.Client, receiver: Receiver) -> None:
    endpoint = create_endpoint(api, receiver.script("/flaky", [Answer(500, b"no")]))
    delivery_id = f"{emit(api, 'invoice.voided')['id']}:{endpoint['id']}"
    wait_delivery(api, delivery_id, lambda d: d["status"] == "failed")
    receiver.script("/flaky", [Answer(200, b"yes")])
    assert api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry").status_code == 202
    wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")

    def settled() -> dict[str, object] | None:
        stats = dict(api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/stats").json())
        return stats if stats["succeeded"] == 1 else None

    # Temporal deletes the replaced failed run asynchronously; neither the lists nor the counts show it.
    stats = wait_for(settled, what="the retried delivery to count as succeeded")
    assert (stats["failed"], stats["pending"]) == (0, 0)
    for path in (f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries", "/v1/webhooks/deliveries"):
        failed = api.get(path, params={"status": "failed"}).json()["items"]
        assert delivery_id not in [d["id"] for d in failed], path
    everything = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries").json()["items"]
    assert [(d["id"], d["status"]) for d in everything] == [(delivery_id, "succeeded")]


def test_delivery_lists_take_a_window_on_when_the_event_was_accepted(
    api: httpx.Client, api_b: httpx.Client
) -> None:
    endpoint = create_endpoint(api, f"{NOWHERE}/window", retry_schedule=[600])
    first = emit(api, "invoice.created")
    # The second event is accepted a whole second later, whatever the clocks' precision.
    accepted_first = datetime.fromisoformat(first["created_at"])
    wait_for(lambda: datetime.now(UTC) > accepted_first + timedelta(seconds=1.1), what="a second to pass")
    second = emit(api, "invoice.created")
    between = (accepted_first + timedelta(seconds=1)).isoformat()
    later = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    ids = {f"{e['id']}:{endpoint['id']}" for e in (first, second)}

    def listed(path: str, **params: str) -> list[str]:
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["items"] if d["id"] in ids]

    for path in (f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries", "/v1/webhooks/deliveries"):
        wait_for(partial(lambda p: len(listed(p)) == 2, path), what="both deliveries listed")
        assert listed(path, created_after=between) == [f"{second['id']}:{endpoint['id']}"]
        assert listed(path, created_before=between) == [f"{first['id']}:{endpoint['id']}"]
        around = {
            "created_after": (accepted_first - timedelta(seconds=1)).isoformat(),
            "created_before": later,
        }
        assert sorted(listed(path, **around)) == sorted(ids)
        backwards = api.get(path, params={"created_after": second["created_at"], "created_before": between})
        assert backwards.status_code == 422
        assert "swap them" in backwards.json()["detail"][0]["msg"]
        naive = api.get(path, params={"created_after": "2026-11-26T09:00:00"})
        assert naive.status_code == 422
        assert naive.json()["detail"][0]["loc"] == ["query", "created_after"]
    # Failing, with its next attempt ten minutes away: the list says when (once visibility has it).
    waiting = wait_delivery(
        api, f"{second['id']}:{endpoint['id']}", lambda d: d["next_attempt_at"] is not None
    )

    def row() -> dict[str, object] | None:
        items = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries").json()["items"]
        return next((d for d in items if d["id"] == waiting["id"] and d["next_attempt_at"]), None)

    listed_row = wait_for(row, what="the next attempt in the list")
    assert listed_row["status"] == "pending" and listed_row["next_attempt_at"] == waiting["next_attempt_at"]
    # Another tenant's window holds none of these.
    assert (
        not {
            d["id"]
            for d in api_b.get("/v1/webhooks/deliveries", params={"created_after": between}).json()["items"]
        }
        & ids
    )


def test_stats_of_an_unknown_or_foreign_endpoint_is_404(api: httpx.Client, api_b: httpx.Client) -> None:
    endpoint_id = create_endpoint(api, f"{NOWHERE}/a")["id"]
    assert api_b.get(f"/v1/webhooks/endpoints/{endpoint_id}/stats").status_code == 404
    assert api.get("/v1/webhooks/endpoints/ep_nope/stats").status_code == 404
    assert api.get(f"/v1/webhooks/endpoints/{endpoint_id}/stats?hours=0").status_code == 422
    with api_client_for(api, None) as anonymous:
        assert anonymous.get(f"/v1/webhooks/endpoints/{endpoint_id}/stats").status_code == 401


def api_client_for(api: httpx.Client, key: str | None) -> httpx.Client:
    return httpx.Client(base_url=api.base_url, headers={"x-api-key": key} if key else {}, timeout=30)


def test_dashboard_is_served_by_the_api(stack: Stack) -> None:
    root = httpx.get(f"{stack.api_url}/", follow_redirects=False)
    assert root.status_code in (302, 307)
    assert root.headers["location"] == "/dashboard/"
    page = httpx.get(f"{stack.api_url}/dashboard/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="js/app.js"' in page.text
    script = httpx.get(f"{stack.api_url}/dashboard/js/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]


def test_dashboard_answers_with_its_security_headers(stack: Stack) -> None:
    # As headers, not meta tags: frame-ancestors and X-Frame-Options work only there.
    for path in ("/dashboard/", "/dashboard/js/app.js", "/dashboard/style.css"):
        headers = httpx.get(f"{stack.api_url}{path}").headers
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy, path
        assert "frame-ancestors 'none'" in policy, path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path


def test_dashboard_files_load_nothing_from_the_internet() -> None:
    folder = Path(__file__).parent.parent / "api" / "dashboard"
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text()
        assert "http://" not in text and "https://" not in text.replace("https://example.com", ""), path
        # Data reaches the page as text, never as markup.
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, path


@pytest.mark.stack  # an API process of its own
def test_me_needs_no_temporal(tmp_path: Path) -> None:
    with standalone_api({"WEBHOOKS_DATA_DIR": str(tmp_path), "WEBHOOKS_API_KEYS": "t:k"}) as base_url:
        assert httpx.get(f"{base_url}/v1/me", headers={"x-api-key": "k"}, timeout=30).json() == {
            "tenant": "t",
            "jwks_path": "/v1/webhooks/jwks/t.json",
            "scopes": ["emit", "read", "manage", "portal"],
            "session": None,
        }
        response = httpx.post(
            f"{base_url}/v1/webhooks/endpoints",
            headers={"x-api-key": "k"},
            json={"url": "https://example.com/h"},
            timeout=30,
        )
        stats = httpx.get(
            f"{base_url}/v1/webhooks/endpoints/{response.json()['id']}/stats",
            headers={"x-api-key": "k"},
            timeout=30,
        )
        assert stats.status_code == 503
        assert "Temporal is unavailable" in stats.json()["detail"]
