"""Alert mails end to end: a real API, worker and Temporal dev server, real receivers, and a real SMTP
server (aiosmtpd) on 127.0.0.1 that is stopped and started again. An endpoint that starts failing,
recovers or is disabled is mailed once per change, to its own and its tenant's addresses; a mail server
that refuses for a while gets the mail later, once.

A stack of its own: the shared one has no SMTP server, and its tenant's addresses are a setting.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from core.temporal import connect
from domain import ids
from domain.alerts import AlertMailResult
from launcher import Stack
from tests.conftest import (
    api_client,
    create_endpoint,
    emit,
    running_stack,
    settled,
    wait_delivery,
    wait_for,
)
from tests.receiver import Answer, Receiver
from tests.smtp_server import Mail, SmtpServer
from tests.test_cli import failed, ok_json, webhooks
from workflows.alert import AlertMailWorkflow

TEAM = "team@tenant-a.example"
PUBLIC = "https://webhooks.example.com"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def mail_stack(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory.mktemp("alert-mail"),
        WEBHOOKS_SMTP_URL=smtp.url,
        WEBHOOKS_ALERT_FROM="alerts@flexprice.example",
        WEBHOOKS_TENANT_ALERT_EMAILS=f"tenant_a:{TEAM}",
        WEBHOOKS_PUBLIC_API_URL=PUBLIC,
    ) as stack:
        yield stack


@pytest.fixture
def api(mail_stack: Stack) -> Iterator[httpx.Client]:
    with api_client(mail_stack) as client:
        yield client


def _mails_of(smtp: SmtpServer, endpoint_id: str) -> list[Mail]:
    return [m for m in smtp.mails() if m.message["X-Webhooks-Endpoint"] == endpoint_id]


def _notice_id(mail: Mail) -> str:
    found = re.fullmatch(
        r"<(opv_[^.]+)\.tenant_a@flexprice-webhooks\.invalid>", str(mail.message["Message-ID"])
    )
    assert found, mail.message["Message-ID"]
    return found.group(1)


def _result(stack: Stack, mail: Mail) -> AlertMailResult:
    """The mail's workflow, found by the id its Message-ID names, once it has closed."""

    async def closed() -> AlertMailResult:
        client: Client = await connect(stack.settings)
        workflow_id = ids.alert_workflow_id("tenant_a", _notice_id(mail))
        return await client.get_workflow_handle_for(AlertMailWorkflow.run, workflow_id).result()

    return asyncio.run(closed())


def _fail_one_event(api: httpx.Client, endpoint_id: str) -> None:
    event_id = emit(api, "invoice.created")["id"]
    wait_delivery(api, f"{event_id}:{endpoint_id}", settled)


def test_alert_addresses_are_checked_kept_and_cleared_through_the_api(api: httpx.Client) -> None:
    refused = api.post(
        "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/x", "alert_emails": ["ops at acme.com"]}
    )
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "alert_emails"]
    assert (
        "alert_emails[0]: 'ops at acme.com' is not an e-mail address; write it like ops@acme.com"
        in error["msg"]
    )

    endpoint = create_endpoint(api, "http://127.0.0.1:9/x", alert_emails=["ops@acme.com", "OPS@acme.com"])
    assert endpoint["alert_emails"] == ["ops@acme.com"]
    path = f"/v1/webhooks/endpoints/{endpoint['id']}"
    assert api.get(path).json()["alert_emails"] == ["ops@acme.com"]
    too_many = api.patch(path, json={"alert_emails": [f"o{i}@acme.com" for i in range(11)]})
    assert too_many.status_code == 422 and "at most 10" in too_many.text
    assert api.patch(path, json={"alert_emails": ["cfo@acme.com"]}).json()["alert_emails"] == ["cfo@acme.com"]
    assert api.patch(path, json={"description": "kept"}).json()["alert_emails"] == ["cfo@acme.com"]
    assert api.patch(path, json={"alert_emails": None}).json()["alert_emails"] == []
    assert api.delete(path).status_code == 204


def test_failing_recovered_and_disabled_are_each_mailed_once(
    mail_stack: Stack, api: httpx.Client, smtp: SmtpServer, receiver: Receiver
) -> None:
    flaky = "/flaky?token=s3cr3t"  # a URL's query often holds a token: no mail shows it
    url = receiver.script(flaky, [Answer(500)])
    endpoint = create_endpoint(
        api, url, description="Billing sync", alert_emails=["ops@acme.com"], event_types=["invoice.created"]
    )
    ep = endpoint["id"]

    # Failing: three attempts in a row failed (the event's four all fail).
    _fail_one_event(api, ep)
    [failing] = wait_for(lambda: _mails_of(smtp, ep), timeout=60, what="the failing mail")
    assert failing.sender == "alerts@flexprice.example"
    assert failing.recipients == ["ops@acme.com", TEAM]
    assert failing.message["Subject"] == "Webhook endpoint failing: Billing sync"
    text = failing.text
    assert f"Endpoint         {ep}" in text and "Description      Billing sync" in text
    assert f"URL              {url.split('/flaky')[0]}/…" in text  # the host only: a path may hold a token
    assert re.search(r"When             \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text)
    assert "Last status      HTTP 500" in text
    assert f"Open it in the dashboard: {PUBLIC}/dashboard/#/webhooks/{ep}" in text
    assert (
        "s3cr3t" not in failing.message.as_string() and endpoint["secret"] not in failing.message.as_string()
    )
    # Durable and visible in Temporal: its workflow, named by the change, says who took it.
    assert _result(mail_stack, failing) == AlertMailResult(sent=True, recipients=["ops@acme.com", TEAM])

    # Still failing: more failed attempts in the same state are no change, and no mail.
    _fail_one_event(api, ep)

    # Recovered: the first success after that.
    receiver.script(flaky, [Answer(200)])
    _fail_one_event(api, ep)
    wait_for(lambda: len(_mails_of(smtp, ep)) >= 2, timeout=60, what="the recovered mail")
    recovered = _mails_of(smtp, ep)[1]
    assert recovered.message["Subject"] == "Webhook endpoint recovered: Billing sync"
    assert "recovered: an attempt succeeded at " in recovered.text and "HTTP 200" in recovered.text

    # Disabled by hand.
    assert api.patch(f"/v1/webhooks/endpoints/{ep}", json={"enabled": False}).status_code == 200
    wait_for(lambda: len(_mails_of(smtp, ep)) >= 3, timeout=60, what="the disabled mail")
    subjects = [m.message["Subject"] for m in _mails_of(smtp, ep)]
    # One mail per change, in order: the second run of failures, in the same state, sent none.
    assert subjects == [
        "Webhook endpoint failing: Billing sync",
        "Webhook endpoint recovered: Billing sync",
        "Webhook endpoint disabled: Billing sync",
    ]
    assert "was disabled by hand at " in _mails_of(smtp, ep)[2].text
    assert len({_notice_id(m) for m in _mails_of(smtp, ep)}) == 3


def _alert_workflow(stack: Stack, endpoint_id: str) -> dict[str, Any] | None:
    """The endpoint's alert workflow while it runs: its id and its pending send's attempt and failure."""

    async def found() -> dict[str, Any] | None:
        client = await connect(stack.settings)
        query = f"WorkflowType = 'AlertMailWorkflow' AND WebhookEndpointId = '{endpoint_id}'"
        async for listed in client.list_workflows(query):
            description = await client.get_workflow_handle(listed.id).describe()
            pending = description.raw_description.pending_activities
            return {
                "id": listed.id,
                "status": description.status,
                "attempt": pending[0].attempt if pending else 0,
                "failure": pending[0].last_failure.message if pending else "",
            }
        return None

    return asyncio.run(found())


def test_a_mail_server_that_refuses_for_a_while_gets_the_mail_later_once(
    mail_stack: Stack, api: httpx.Client, smtp: SmtpServer, receiver: Receiver
) -> None:
    endpoint = create_endpoint(
        api,
        receiver.script("/down", [Answer(503)]),
        alert_emails=["ops@acme.com"],
        event_types=["invoice.created"],
    )
    ep = endpoint["id"]
    smtp.stop()
    try:
        _fail_one_event(api, ep)
        # The send was tried, refused (nothing listens), and is waiting to be tried again.
        refused = wait_for(
            lambda: (w := _alert_workflow(mail_stack, ep)) and w["attempt"] >= 2 and w,
            timeout=60,
            what="the alert mail's send to be refused and retried",
        )
        assert refused["status"] == WorkflowExecutionStatus.RUNNING
        assert "ConnectionRefusedError" in refused["failure"]
        assert _mails_of(smtp, ep) == []
    finally:
        smtp.start()
    [mail] = wait_for(lambda: _mails_of(smtp, ep), timeout=90, what="the mail, once the server is back")
    assert mail.message["Subject"].startswith("Webhook endpoint failing: ")
    assert ids.alert_workflow_id("tenant_a", _notice_id(mail)) == refused["id"]
    assert _result(mail_stack, mail).sent is True
    # Closed: nothing sends it again (the worker's sweeps go on meanwhile).
    _fail_one_event(api, ep)
    assert len(_mails_of(smtp, ep)) == 1


def test_alert_addresses_from_the_command_line(mail_stack: Stack) -> None:
    added = webhooks(
        mail_stack, "endpoints", "add", "http://127.0.0.1:9/cli", "--alert-email", "ops@acme.com"
    )
    assert added.returncode == 0, added.stderr
    assert "its health changes are mailed to ops@acme.com" in added.stdout
    ep = re.search(r"created (ep_[0-9a-f]+)", added.stdout)
    assert ep is not None
    shown = webhooks(mail_stack, "endpoints", "alert-emails", ep.group(1))
    assert (
        shown.stdout.strip() == f"{ep.group(1)}: failing, disabled and recovered are mailed to ops@acme.com"
    )
    changed = ok_json(mail_stack, "endpoints", "alert-emails", ep.group(1), "cfo@acme.com", "ops@acme.com")
    assert changed["alert_emails"] == ["cfo@acme.com", "ops@acme.com"]
    refused = failed(webhooks(mail_stack, "endpoints", "alert-emails", ep.group(1), "cfo at acme"))
    assert "'cfo at acme' is not an e-mail address; write it like ops@acme.com" in refused
    cleared = webhooks(mail_stack, "endpoints", "alert-emails", ep.group(1), "--clear")
    assert "has no alert addresses of its own" in cleared.stdout
    assert ok_json(mail_stack, "endpoints", "alert-emails", ep.group(1))["alert_emails"] == []
