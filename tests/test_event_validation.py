"""WEBHOOKS_VALIDATE_EVENTS per tenant, end to end: an API process with `tenant_a:strict,*:off` over the
session's stack (its Temporal, worker and store). tenant_a's event off its schema is a 422 naming the
field, and nothing of it is delivered; tenant_b's same event is accepted and delivered; tenant_a's event
that conforms is delivered too."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import httpx

from domain.catalog import SUBSCRIBABLE_BY_NAME
from launcher import Stack
from tests.conftest import KEYS, api_replica, create_endpoint, wait_delivery, wait_for
from tests.receiver import Answer, Receiver
from tests.test_listen import cli_env


def test_strict_validation_holds_for_the_tenants_it_names(
    stack: Stack, api: httpx.Client, api_b: httpx.Client, receiver: Receiver
) -> None:
    url_a = receiver.script("/a", [Answer(200)])
    url_b = receiver.script("/b", [Answer(200)])
    endpoint_a = create_endpoint(api, url_a, event_types=["invoice.created"])
    endpoint_b = create_endpoint(api_b, url_b, event_types=["invoice.created"])
    example = SUBSCRIBABLE_BY_NAME["invoice.created"].example
    off_schema = {**copy.deepcopy(example), "amount_due": 100}  # a decimal string in the schema
    del off_schema["currency"]

    with api_replica(stack, WEBHOOKS_VALIDATE_EVENTS="tenant_a:strict,*:off") as replica:
        strict = httpx.Client(base_url=replica, headers={"x-api-key": KEYS["tenant_a"]}, timeout=30)
        lax = httpx.Client(base_url=replica, headers={"x-api-key": KEYS["tenant_b"]}, timeout=30)
        with strict, lax:
            refused = strict.post(
                "/v1/events",
                json={
                    "id": "evt_strict_off",
                    "webhook_type": "invoice.created",
                    "data": {"object": off_schema},
                },
            )
            assert refused.status_code == 422, refused.text
            text = refused.text
            assert "data.object.currency is required" in text
            assert "GET /v1/webhooks/event-types/invoice.created" in text
            # Nothing of a refused event was accepted.
            assert strict.get("/v1/events/evt_strict_off").status_code == 404

            # `webhooks trigger --set` off the schema: refused for the strict tenant, the field named.
            command = [
                sys.executable,
                "-m",
                "cli",
                "trigger",
                "invoice.created",
                "--set",
                "data.object.amount_due=100",
            ]
            tried = subprocess.run(
                command, env=cli_env(stack, api_url=replica), capture_output=True, text=True, timeout=60
            )
            assert tried.returncode == 1 and "data.object.amount_due must be of type string" in tried.stderr

            accepted_b = lax.post(
                "/v1/events", json={"webhook_type": "invoice.created", "data": {"object": off_schema}}
            )
            assert accepted_b.status_code == 202, accepted_b.text
            accepted_a = strict.post(
                "/v1/events", json={"webhook_type": "invoice.created", "data": {"object": example}}
            )
            assert accepted_a.status_code == 202, accepted_a.text

    delivered_b = f"{accepted_b.json()['id']}:{endpoint_b['id']}"
    delivered_a = f"{accepted_a.json()['id']}:{endpoint_a['id']}"
    wait_delivery(api_b, delivered_b, lambda d: d["status"] == "succeeded")
    wait_delivery(api, delivered_a, lambda d: d["status"] == "succeeded")
    wait_for(lambda: receiver.requests("/a") and receiver.requests("/b"), what="both receivers")
    assert json.loads(receiver.requests("/b")[0].body)["data"]["object"]["amount_due"] == 100
    assert json.loads(receiver.requests("/a")[0].body)["data"]["object"] == example
    assert [json.loads(r.body)["data"]["object"].get("amount_due") for r in receiver.requests("/a")] == [
        example["amount_due"]
    ]
