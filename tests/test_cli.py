"""The `webhooks` console script, installed with the project, run as a subprocess against the stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.main import CliError, parse_when
from launcher import Stack, free_port
from tests.conftest import KEYS, create_endpoint, emit, settled, wait_delivery, wait_for
from tests.receiver import Answer, Receiver

SCRIPT = Path(sys.executable).parent / "webhooks"  # the console script of [project.scripts]


def webhooks(
    stack: Stack | None, *args: str, key: str | None = KEYS["tenant_a"]
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    if stack is not None:
        env["WEBHOOKS_API_URL"] = stack.api_url
    if key is not None:
        env["WEBHOOKS_API_KEY"] = key
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def ok_json(stack: Stack, *args: str) -> Any:
    result = webhooks(stack, *args, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def failed(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("webhooks: error: ") or result.stderr.startswith("usage: ")
    return result.stderr


def test_endpoints_events_and_deliveries(stack: Stack, api: httpx.Client, receiver: Receiver) -> None:
    assert SCRIPT.exists()
    url = receiver.script("/cli", [Answer(500), Answer(200)])
    endpoint = ok_json(
        stack, "endpoints", "add", url, "--event-type", "invoice.created", "--description", "cli"
    )
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["event_types"] == ["invoice.created"]
    listed = webhooks(stack, "endpoints", "list")
    assert listed.returncode == 0
    assert endpoint["id"] in listed.stdout and "healthy" in listed.stdout and url in listed.stdout

    accepted = ok_json(
        stack, "events", "emit", "invoice.created", "--data", '{"id": "inv_cli"}', "--id", "cli-evt-1"
    )
    assert accepted["id"] == "cli-evt-1"
    delivery_id = f"cli-evt-1:{endpoint['id']}"
    wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    [first, second] = receiver.requests("/cli")
    assert json.loads(second.body)["data"] == {"object": {"id": "inv_cli"}}

    def listed_as_succeeded() -> bool:
        # The list reads Temporal's visibility, written a moment after the delivery's own state.
        items = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries").json()["items"]
        return bool(items) and items[0]["status"] == "succeeded"

    wait_for(listed_as_succeeded, what="the delivery listed as succeeded")
    rows = ok_json(stack, "deliveries", "list", "--endpoint", endpoint["id"])["items"]
    assert [(d["id"], d["status"], d["attempt_count"]) for d in rows] == [(delivery_id, "succeeded", 2)]
    shown = webhooks(stack, "deliveries", "show", delivery_id)
    assert shown.returncode == 0
    assert "succeeded" in shown.stdout and "500" in shown.stdout and "200" in shown.stdout
    assert ok_json(stack, "deliveries", "show", delivery_id)["attempts"][1]["status_code"] == 200

    retried = webhooks(stack, "deliveries", "retry", delivery_id)
    assert retried.returncode == 0 and "attempt 3" in retried.stdout
    wait_for(lambda: len(receiver.requests("/cli")) == 3, what="the manual attempt")

    assert ok_json(stack, "endpoints", "disable", endpoint["id"])["enabled"] is False
    # The API refuses a retry to a disabled endpoint: its reason, exit 1, no traceback.
    assert "409 Conflict: endpoint" in failed(webhooks(stack, "deliveries", "retry", delivery_id))
    assert "disabled" in webhooks(stack, "endpoints", "list").stdout


def test_adding_a_jwt_endpoint_says_what_its_receivers_check(stack: Stack, api: httpx.Client) -> None:
    added = webhooks(stack, "endpoints", "add", "http://127.0.0.1:9/jwt", "--method", "jwt")
    assert added.returncode == 0, added.stderr
    [endpoint] = api.get("/v1/webhooks/endpoints").json()["items"]
    assert f"{stack.api_url}/v1/webhooks/jwks/tenant_a.json" in added.stdout
    assert f"aud is not {endpoint['id']}" in added.stdout


def test_user_errors_are_one_clear_line(stack: Stack, api: httpx.Client) -> None:
    assert "401 Unauthorized: missing or invalid x-api-key" in failed(
        webhooks(stack, "endpoints", "list", key="nope")
    )
    # A flag overrides the environment.
    assert "401" in failed(webhooks(stack, "endpoints", "list", "--api-key", "nope"))
    assert webhooks(stack, "--api-key", KEYS["tenant_a"], "endpoints", "list", key="nope").returncode == 0
    assert "404 Not Found: delivery" in failed(webhooks(stack, "deliveries", "show", "evt_x:ep_y"))
    assert "url: " in failed(webhooks(stack, "endpoints", "add", "ftp://example.com"))  # the API's 422
    assert "not valid JSON" in failed(webhooks(stack, "events", "emit", "invoice.created", "--data", "{"), 2)
    assert "unknown event type" in failed(webhooks(stack, "events", "emit", "invoice.nope"), 2)
    assert "no API key" in failed(webhooks(stack, "endpoints", "list", key=None), 2)
    down = webhooks(None, "--api-url", f"http://127.0.0.1:{free_port()}", "endpoints", "list")
    assert "cannot reach the API" in failed(down)
    failed(webhooks(stack, "endpoints", "frobnicate"), 2)  # argparse's usage error


def test_operating_an_endpoint_from_the_command_line(stack: Stack, api: httpx.Client) -> None:
    endpoint = ok_json(
        stack,
        "endpoints",
        "add",
        "http://127.0.0.1:9/nowhere",
        "--header",
        "X-Gateway-Key: secret-value-9876",
        "--rate-limit",
        "5",
        "--retry-schedule",
        "5,60",
    )
    assert endpoint["headers"] == {"X-Gateway-Key": "••••9876"}
    assert (endpoint["rate_limit_per_second"], endpoint["retry_schedule"]) == (5, [5, 60])
    rotated = webhooks(stack, "endpoints", "rotate-secret", endpoint["id"], "--grace", "60")
    assert rotated.returncode == 0, rotated.stderr
    assert "new signing secret: whsec_" in rotated.stdout and "signs beside it until" in rotated.stdout
    secret = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/secret").json()["secret"]
    assert secret in rotated.stdout and secret != endpoint["secret"]
    refused = failed(webhooks(stack, "endpoints", "add", "http://x.example", "--header", "no-colon"), 2)
    assert "a header is NAME:VALUE" in refused


def test_an_ordered_endpoint_and_ordering_keys_from_the_command_line(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    """`endpoints add --ordered --on-failure`, `endpoints update` to change either, and `events emit
    --ordering-key`: the same names as the API's (docs/delivery.md, "Ordered delivery")."""
    url = receiver.script("/cli-ordered", [Answer(200)])
    endpoint = ok_json(stack, "endpoints", "add", url, "--ordered", "--on-failure", "skip")
    assert (endpoint["ordered"], endpoint["ordered_on_failure"]) == (True, "skip")
    listed = webhooks(stack, "endpoints", "list")
    assert "ordered (skip)" in listed.stdout, listed.stdout
    updated = ok_json(stack, "endpoints", "update", endpoint["id"], "--on-failure", "block")
    assert (updated["ordered"], updated["ordered_on_failure"]) == (True, "block")
    unordered = ok_json(stack, "endpoints", "update", endpoint["id"], "--unordered")
    assert (unordered["ordered"], unordered["ordered_on_failure"]) == (False, "block")
    again = ok_json(stack, "endpoints", "update", endpoint["id"], "--ordered")
    assert again["ordered"] is True
    neither = failed(webhooks(stack, "endpoints", "update", endpoint["id"]), 2)
    assert "nothing to change" in neither
    both = failed(webhooks(stack, "endpoints", "update", endpoint["id"], "--ordered", "--unordered"), 2)
    assert "not allowed with" in both

    accepted = ok_json(
        stack, "events", "emit", "invoice.created", "--data", '{"id": "inv_o1"}', "--ordering-key", "cus_42"
    )
    delivered = wait_for(lambda: receiver.requests("/cli-ordered"), what="the ordered delivery")
    assert delivered[0].headers["webhook-id"] == f"{accepted['id']}:{endpoint['id']}"
    assert delivered[0].headers["webhook-sequence"] == "1"
    lane = api.get(f"/v1/webhooks/endpoints/{endpoint['id']}/lane", params={"ordering_key": "cus_42"}).json()
    assert lane["sequence"] == 1
    bad = failed(
        webhooks(stack, "events", "emit", "invoice.created", "--data", "{}", "--ordering-key", "cus 42\t")
    )
    assert "ordering_key" in bad and "printable ASCII" in bad


def test_endpoints_test_sends_one_and_says_how_it_went(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    url = receiver.script("/cli-test", [Answer(200), Answer(503, b"down for maintenance")])
    endpoint = create_endpoint(api, url, event_types=["wallet.created"])

    ok = webhooks(stack, "endpoints", "test", endpoint["id"])
    assert ok.returncode == 0, ok.stderr
    sent_line, outcome_line = ok.stdout.splitlines()
    [request] = receiver.requests("/cli-test")
    delivery_id = request.headers["webhook-id"]
    assert delivery_id.startswith("test_") and delivery_id.endswith(f":{endpoint['id']}")
    assert sent_line == f"sent a test wallet.created event: delivery {delivery_id}"
    assert outcome_line.startswith("succeeded: HTTP 200 in ")

    # The receiver now answers 503: the outcome says so, and that it will be retried; exit 1.
    refused = printed_json(stack, "endpoints", "test", endpoint["id"], "--type", "invoice.voided", code=1)
    assert refused["webhook_type"] == "invoice.voided"
    assert refused["delivery"]["origin"] == "test"
    assert refused["delivery"]["attempts"][0]["status_code"] == 503
    text = webhooks(stack, "endpoints", "test", endpoint["id"], "--type", "invoice.voided")
    assert text.returncode == 1 and text.stderr == ""
    assert "attempt 1 failed: HTTP 503 down for maintenance" in text.stdout
    assert "retried on the schedule" in text.stdout and "webhooks deliveries show test_" in text.stdout

    # A receiver slower than --timeout: the command stops waiting and says where to follow it.
    slow = create_endpoint(api, receiver.script("/cli-slow", [Answer(200, delay=3)]))
    waited = webhooks(stack, "endpoints", "test", slow["id"], "--timeout", "0.5")
    assert waited.returncode == 1 and waited.stderr == ""
    assert "no attempt within 0.5 s" in waited.stdout and "webhooks deliveries show test_" in waited.stdout

    assert "unknown event type" in failed(
        webhooks(stack, "endpoints", "test", endpoint["id"], "--type", "x.y"), 2
    )
    assert "404 Not Found: endpoint ep_nope not found" in failed(
        webhooks(stack, "endpoints", "test", "ep_nope")
    )
    api.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"enabled": False})
    assert "409 Conflict: endpoint" in failed(webhooks(stack, "endpoints", "test", endpoint["id"]))


def printed_json(stack: Stack, *args: str, code: int) -> Any:
    """The command's JSON, printed whatever its outcome (a test event refused by the receiver, say)."""
    result = webhooks(stack, *args, "--json")
    assert (result.returncode, result.stderr) == (code, "")
    return json.loads(result.stdout)


def test_recover_and_replay_an_endpoint_and_follow_them(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    endpoint = create_endpoint(api, receiver.script("/cli-rec", [Answer(500)]), event_types=["fee.created"])
    ep = endpoint["id"]
    since = datetime.now(UTC).isoformat()
    time.sleep(0.2)
    event_id = emit(api, "fee.created")["id"]
    wait_delivery(api, f"{event_id}:{ep}", settled)
    wait_for(
        lambda: api.get(f"/v1/webhooks/endpoints/{ep}/stats").json()["failed"] == 1, what="the failure listed"
    )
    receiver.script("/cli-rec", [Answer(200)])

    started = ok_json(stack, "endpoints", "recover", ep, "--since", since)
    assert (started["kind"], started["total"]) == ("recover", 1)

    def finished() -> Any:
        shown = ok_json(stack, "recoveries", "show", ep, started["id"])
        return shown if shown["status"] != "running" else None

    assert wait_for(finished, what="the recovery")["done"] == 1
    shown = webhooks(stack, "recoveries", "show", ep, started["id"])
    assert shown.returncode == 0 and "completed" in shown.stdout and "1 done" in shown.stdout
    listed = webhooks(stack, "recoveries", "list", ep)
    assert listed.returncode == 0 and started["id"] in listed.stdout
    # Already finished: the API's reason, exit 1.
    assert "409 Conflict: recovery" in failed(webhooks(stack, "recoveries", "cancel", ep, started["id"]))

    replayed = ok_json(stack, "endpoints", "replay", ep, "--since", since, "--event-type", "fee.created")
    assert (replayed["kind"], replayed["event_types"], replayed["total"]) == ("replay", ["fee.created"], 1)
    assert "is not a time" in failed(webhooks(stack, "endpoints", "recover", ep, "--since", "yesterday"), 2)
    assert "is not a time" in failed(
        webhooks(stack, "endpoints", "recover", ep, "--since", "2026-11-26T10:00:00"), 2
    )


def test_a_time_is_iso_with_its_timezone_or_a_time_ago() -> None:
    assert parse_when("2026-11-26T10:00:00Z") == "2026-11-26T10:00:00+00:00"
    assert parse_when("2026-11-26T11:00:00+01:00") == "2026-11-26T11:00:00+01:00"
    six_hours_ago = datetime.fromisoformat(str(parse_when("6h")))
    assert abs((datetime.now(UTC) - six_hours_ago).total_seconds() - 6 * 3600) < 60
    assert parse_when(None) is None
    for value in ("yesterday", "2026-11-26T10:00:00", "6 h", "-6h"):
        with pytest.raises(CliError) as refused:
            parse_when(value)
        assert refused.value.code == 2


def test_the_command_line_loads_neither_the_store_nor_temporal() -> None:
    """The CLI is a thin HTTP client that a developer runs many times an hour (`webhooks listen` among
    them): it starts in a quarter of a second, and SQLAlchemy with Temporal's SDK would add half a second
    to every start (they once came in for one string, `SILENT_CLI`)."""
    heavy = ("sqlalchemy", "temporalio", "alembic", "opentelemetry")
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, cli.main, cli.listen; print([m for m in {heavy!r} if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout
