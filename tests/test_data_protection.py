"""Customer data and secrets never in plain text outside the API.

Read as an operator or an attacker with Temporal's ports would: the `temporal` CLI's view of a delivery's
history, with every base64 field decoded, holds no value of the payload and no secret; the files of the
data dir are private and hold neither; a workflow started by someone without the key never runs; the
codec endpoint shows payloads to operators only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.common.v1 import Payloads, WorkflowType
from temporalio.api.enums.v1 import EventType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from core.crypto import FORM, KEY_ID, EncryptionCodec, LaterForm, MissingKey, new_key_entry
from core.temporal import connect
from domain.ids import delivery_workflow_id, event_workflow_id
from domain.models import DeliveryInput, DeliveryPolicy, EventInput
from history.events import converter_for, read_event_input
from launcher import Stack, _bin, settings_from
from service.limits import CODEC_SIGN_IN_SECONDS, CODEC_SIGN_INS
from tests.conftest import (
    KEYS,
    OPERATOR_KEY,
    TEST_ENCRYPTION_KEYS,
    api_client,
    api_replica,
    create_endpoint,
    emit,
    settled,
    standalone_api,
    wait_delivery,
    wait_for,
)
from tests.receiver import Receiver

MARKER = "Marker Holdings 7f3a9c"  # a customer's name: it must appear nowhere outside the API
# The customer id is the one value of a payload that leaves it, by design: a search attribute, so that the
# event can be found by its customer (docs/data-protection.md).
CUSTOMER = "cus_indexed_7f3a9c"
AMOUNT = "98765.43"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _decoded_everywhere(text: str) -> str:
    """The text, plus every string in it that decodes as base64, decoded: what a reader could see."""
    seen = [text]
    for value in _strings(json.loads(text)):
        try:
            seen.append(base64.b64decode(value, validate=True).decode("utf-8", errors="replace"))
        except (binascii.Error, ValueError):
            continue
    return "\n".join(seen)


def _cli_history(stack: Stack, workflow_id: str) -> str:
    result = subprocess.run(
        [
            _bin("temporal"),
            "workflow",
            "show",
            "--workflow-id",
            workflow_id,
            "--address",
            stack.settings.temporal_target,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


@pytest.fixture
def delivered(api: httpx.Client, receiver: Receiver) -> tuple[dict[str, Any], str, str]:
    """An hmac delivery of an event whose object carries MARKER and AMOUNT: (endpoint, event id, delivery)."""
    endpoint = create_endpoint(api, receiver.script("/private", []))
    data_object = {"customer_id": CUSTOMER, "customer_name": MARKER, "amount": AMOUNT}
    event_id = emit(api, "invoice.payment_status_updated", data={"object": data_object})["id"]
    delivery_id = f"{event_id}:{endpoint['id']}"
    final = wait_delivery(api, delivery_id, settled)
    # The API, scoped to the tenant, still shows the payload.
    assert final["payload"]["data"]["object"] == data_object
    return endpoint, event_id, delivery_id


def test_histories_hold_no_payload_value_and_no_secret(
    stack: Stack, delivered: tuple[dict[str, Any], str, str]
) -> None:
    endpoint, event_id, delivery_id = delivered
    for workflow_id in (f"event:tenant_a:{event_id}", delivery_workflow_id("tenant_a", delivery_id)):
        history = _decoded_everywhere(_cli_history(stack, workflow_id))
        assert "binary/encrypted" in history  # the payloads are there, encrypted
        for secret in (MARKER, AMOUNT, endpoint["secret"]):
            assert secret not in history, (workflow_id, secret)
        # The customer id only as its search attribute: once as the workflow starts (an event's, or a
        # delivery's started by its event, where its parent's history holds it again).
        assert CUSTOMER in history
        assert history.count(CUSTOMER) == history.count("WebhookCustomerId"), workflow_id


def test_the_data_dir_is_private_and_holds_no_secret_in_plain_text(
    stack: Stack, delivered: tuple[dict[str, Any], str, str]
) -> None:
    endpoint, _, _ = delivered
    data_dir = stack.settings.data_dir
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"temporal.db", "webhooks.db"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        content = path.read_bytes()
        for secret in (MARKER, endpoint["secret"], endpoint["url"]):
            assert secret.encode() not in content, (path, secret)


def test_a_new_data_dir_gets_its_keys_private_from_the_start(tmp_path: Path) -> None:
    from core.settings import Settings
    from launcher import prepare_data_dir

    data_dir = tmp_path / "fresh"
    old_umask = os.umask(0o022)  # a usual umask: the files must be private whatever it is
    try:
        prepare_data_dir(Settings(data_dir=data_dir))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in ("encryption-keys", "operator-key"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
    # Kept: a second start reads the same keys.
    before = (data_dir / "encryption-keys").read_text()
    prepare_data_dir(Settings(data_dir=data_dir))
    assert (data_dir / "encryption-keys").read_text() == before


def _start_without_the_key(stack: Stack, workflow_id: str, delivery: DeliveryInput) -> None:
    """What someone with Temporal's gRPC port, and no key, can do: start a delivery of their own."""

    async def start() -> None:
        client = await Client.connect(stack.settings.temporal_target, data_converter=pydantic_data_converter)
        await client.start_workflow(
            "DeliveryWorkflow", delivery, id=workflow_id, task_queue=stack.settings.task_queue
        )

    asyncio.run(start())


async def _start_with_input_as_is(
    stack: Stack,
    workflow_id: str,
    input: Payloads,
    workflow_type: str = "DeliveryWorkflow",
    *,
    task_queue: str | None = None,
) -> None:
    """A workflow (a delivery) started with `input` as it is, through no codec: what someone with Temporal's
    gRPC port can send."""
    plain = await Client.connect(stack.settings.temporal_target)
    await plain.workflow_service.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace=plain.namespace,
            workflow_id=workflow_id,
            workflow_type=WorkflowType(name=workflow_type),
            task_queue=TaskQueue(name=task_queue or stack.settings.task_queue),
            input=input,
            request_id=workflow_id,
        )
    )


def _workflow_task_failures(stack: Stack, workflow_id: str) -> int:
    async def failures() -> int:
        client = await connect(stack.settings)
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        return sum(1 for e in history.events if e.event_type is EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)

    return asyncio.run(failures())


def _made_up_delivery(endpoint_id: str, event_id: str) -> DeliveryInput:
    """A delivery no event made: a payment marked succeeded, to an endpoint of tenant_a's."""
    return DeliveryInput(
        tenant="tenant_a",
        event_id=event_id,
        endpoint_id=endpoint_id,
        delivery_id=f"{event_id}:{endpoint_id}",
        webhook_type="invoice.payment_status_updated",
        body='{"webhook_type":"invoice.payment_status_updated","data":{"object":{"payment_status":"succeeded"}}}',
        created_at="2026-11-27T00:00:00Z",
        policy=DeliveryPolicy(retry_delays=[1], attempt_timeout=5),
    )


def test_a_delivery_started_without_the_key_is_never_made(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    endpoint = create_endpoint(api, receiver.script("/forged", []))
    forged = _made_up_delivery(endpoint["id"], "forged")
    workflow_id = delivery_workflow_id("tenant_a", forged.delivery_id)
    _start_without_the_key(stack, workflow_id, forged)
    # The worker refuses the input (it was not made with our key): its workflow task fails, again and
    # again, and no POST is ever signed or sent.
    wait_for(lambda: _workflow_task_failures(stack, workflow_id) >= 1, what="the worker to refuse it")
    assert receiver.requests("/forged") == []
    _terminate(stack, workflow_id)


def test_an_encrypted_input_copied_into_another_workflow_is_refused(
    stack: Stack, receiver: Receiver, delivered: tuple[dict[str, Any], str, str]
) -> None:
    _, _, delivery_id = delivered
    source = delivery_workflow_id("tenant_a", delivery_id)

    async def replay_elsewhere() -> str:
        plain = await Client.connect(stack.settings.temporal_target)
        history = await plain.get_workflow_handle(source).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        # Copy the encrypted input as it is, into a workflow of another id (a second "delivery").
        target = source + "-copy"
        await _start_with_input_as_is(stack, target, started.input)
        return target

    before = len(receiver.requests("/private"))
    target = asyncio.run(replay_elsewhere())
    wait_for(lambda: _workflow_task_failures(stack, target) >= 1, what="the worker to refuse the copy")
    assert len(receiver.requests("/private")) == before
    _terminate(stack, target)


def test_an_event_copied_to_another_tenant_s_event_id_gives_an_attempt_no_body_to_send(
    stack: Stack, delivered: tuple[dict[str, Any], str, str]
) -> None:
    """An attempt reads its event's body from the event's history, outside any workflow: that read refuses a
    copy of tenant A's event started as tenant B's, so B's deliveries can neither sign nor log A's payload."""
    _, event_id, _ = delivered
    source = event_workflow_id("tenant_a", event_id)
    target = event_workflow_id("tenant_b", event_id)

    async def copy_and_read() -> tuple[EventInput | None, EventInput | None]:
        plain = await Client.connect(stack.settings.temporal_target)
        history = await plain.get_workflow_handle(source).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        await _start_with_input_as_is(stack, target, started.input, "EventWorkflow")
        client = await connect(stack.settings)
        timeout = timedelta(seconds=10)
        return (
            await read_event_input(client, "tenant_a", event_id, rpc_timeout=timeout),
            await read_event_input(client, "tenant_b", event_id, rpc_timeout=timeout),
        )

    own, copied = asyncio.run(copy_and_read())
    assert own is not None and own.tenant == "tenant_a"
    assert copied is None
    _terminate(stack, target)


def test_an_event_read_by_a_process_without_its_key_is_waited_for_not_taken_for_gone(
    stack: Stack, delivered: tuple[dict[str, Any], str, str]
) -> None:
    """Mid-rotation, a worker may lack the key an event was sealed with: its read of the event raises (the
    attempt is tried again until the key is there), never answers that the event is not kept, which would
    make an attempt send nothing, a lane skip it and a replay leave it out for good."""
    _, event_id, _ = delivered
    without = settings_from({**stack.env, "WEBHOOKS_ENCRYPTION_KEYS": new_key_entry("elsewhere")})

    async def read() -> None:
        client = await connect(without)
        await read_event_input(client, "tenant_a", event_id, rpc_timeout=timedelta(seconds=10))

    with pytest.raises(MissingKey, match="not in WEBHOOKS_ENCRYPTION_KEYS"):
        asyncio.run(read())


def test_an_event_in_a_later_version_s_form_is_waited_for_not_taken_for_gone(
    stack: Stack, delivered: tuple[dict[str, Any], str, str]
) -> None:
    """An event a later version wrote (mid-upgrade, or read after a rollback) carries metadata this version
    does not know: its read raises, as for a missing key (the attempt is tried again until an upgraded
    worker takes it), never answers that the event is not kept, which would drop it for good."""
    _, event_id, _ = delivered
    later_id = f"{event_id}-later"
    target = event_workflow_id("tenant_a", later_id)

    async def start_later_and_read() -> None:
        # The event's input as a later version would write it for this event's workflow: sealed for it,
        # naming its form.
        client = await connect(stack.settings)
        history = await client.get_workflow_handle(event_workflow_id("tenant_a", event_id)).fetch_history()
        [event] = await converter_for(client, event_workflow_id("tenant_a", event_id)).decode(
            history.events[0].workflow_execution_started_event_attributes.input.payloads, [EventInput]
        )
        later = event.model_copy(update={"event_id": later_id})
        [payload] = await converter_for(client, target).encode([later])
        payload.metadata[FORM] = b"2"
        # On a queue no worker polls: only the read is under test.
        await _start_with_input_as_is(
            stack, target, Payloads(payloads=[payload]), "EventWorkflow", task_queue="nobody-polls"
        )
        await read_event_input(client, "tenant_a", later_id, rpc_timeout=timedelta(seconds=10))

    with pytest.raises(LaterForm, match="a payload of form '2', which a later version wrote"):
        asyncio.run(start_later_and_read())
    _terminate(stack, target)


def test_an_api_process_without_an_event_s_key_answers_try_again_not_a_server_error(
    stack: Stack, api: httpx.Client
) -> None:
    """Mid-rotation, one API process may seal with a new key before another has it: the other's read of
    that event answers 503 and when to ask again (the event is kept, and read once the key is there), not
    a 500. (The docs' rotation gives every process the new key before any seals with it.)"""
    rotated = f"{new_key_entry('rotated')},{TEST_ENCRYPTION_KEYS}"
    with api_replica(stack, WEBHOOKS_ENCRYPTION_KEYS=rotated) as base_url:
        with httpx.Client(base_url=base_url, headers={"x-api-key": KEYS["tenant_a"]}, timeout=30) as new:
            event_id = emit(new, "invoice.created")["id"]
    answer = api.get(f"/v1/events/{event_id}")
    assert answer.status_code == 503, answer.text
    assert "nothing is lost; try again" in answer.json()["detail"]
    assert "rotated" not in answer.text  # which key is the operator's to read, in the API's log
    assert int(answer.headers["Retry-After"]) > 0
    _terminate(stack, event_workflow_id("tenant_a", event_id))  # its worker has not got the key either


def test_a_delivery_copied_to_another_tenant_s_id_is_not_in_that_tenant_s_log(
    stack: Stack, delivered: tuple[dict[str, Any], str, str]
) -> None:
    """The log reads a delivery's history outside any workflow: it refuses a copy of tenant A's delivery
    started under tenant B's id, as the worker does, so B reads no delivery there, not A's."""
    _, _, delivery_id = delivered
    source = delivery_workflow_id("tenant_a", delivery_id)
    target = delivery_workflow_id("tenant_b", delivery_id)

    async def copy() -> None:
        plain = await Client.connect(stack.settings.temporal_target)
        history = await plain.get_workflow_handle(source).fetch_history()
        await _start_with_input_as_is(
            stack, target, history.events[0].workflow_execution_started_event_attributes.input
        )

    asyncio.run(copy())
    with api_client(stack, "tenant_b") as b:
        answer = b.get(f"/v1/webhooks/deliveries/{delivery_id}")
    assert answer.status_code == 404, answer.text
    _terminate(stack, target)


def test_an_encrypted_input_bound_to_no_workflow_is_refused(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    """What `/codec/encode` made (issue 20, 1): a payload encrypted with our key but for no workflow. Started
    as a delivery by someone with Temporal's gRPC port, with their own URL's endpoint and body, it used to
    be decrypted and signed; a payload read in a workflow must have been made for that workflow."""
    endpoint = create_endpoint(api, receiver.script("/unbound", []))
    forged = _made_up_delivery(endpoint["id"], "unbound")
    workflow_id = delivery_workflow_id("tenant_a", forged.delivery_id)

    async def start_unbound() -> None:
        converter = pydantic_data_converter
        [payload] = converter.payload_converter.to_payloads([forged])
        [sealed] = await EncryptionCodec(stack.settings.keyring).encode([payload])  # no workflow context
        await _start_with_input_as_is(stack, workflow_id, Payloads(payloads=[sealed]))

    asyncio.run(start_unbound())
    wait_for(lambda: _workflow_task_failures(stack, workflow_id) >= 1, what="the worker to refuse it")
    assert receiver.requests("/unbound") == []
    _terminate(stack, workflow_id)


def _terminate(stack: Stack, workflow_id: str) -> None:
    async def terminate() -> None:
        client = await connect(stack.settings)
        await client.get_workflow_handle(workflow_id).terminate("test: refused input")

    asyncio.run(terminate())


def _encrypted_input(stack: Stack, workflow_id: str) -> dict[str, Any]:
    """The workflow's input payload as the Web UI holds it (proto JSON: base64 metadata and data)."""
    history = json.loads(_cli_history(stack, workflow_id))
    return dict(history["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0])


def test_the_codec_endpoint_decodes_for_operators_only(
    stack: Stack, api: httpx.Client, delivered: tuple[dict[str, Any], str, str]
) -> None:
    _, event_id, _ = delivered
    # The event's input: the one copy of the body its history keeps (a delivery's input has none).
    payload = _encrypted_input(stack, f"event:tenant_a:{event_id}")
    body = {"payloads": [payload]}
    ui_origin = stack.settings.ui_url
    assert ui_origin is not None
    codec = f"{stack.api_url}/codec"
    headers = {"X-Namespace": stack.settings.temporal_namespace, "Origin": ui_origin}

    # No credential, a tenant's API key, a wrong key: refused.
    for extra in ({}, {"x-api-key": api.headers["x-api-key"]}, {"Authorization": "Bearer nope"}):
        response = httpx.post(f"{codec}/decode", json=body, headers={**headers, **extra})
        assert response.status_code == 401, extra
        assert response.headers["access-control-allow-origin"] == ui_origin
    # The operator key, as a bearer token: the payload, decoded.
    operator = {**headers, "Authorization": f"Bearer {OPERATOR_KEY}"}
    response = httpx.post(f"{codec}/decode", json=body, headers=operator)
    assert response.status_code == 200, response.text
    [decoded] = response.json()["payloads"]
    assert base64.b64decode(decoded["metadata"]["encoding"]) == b"json/plain"
    assert MARKER in base64.b64decode(decoded["data"]).decode()
    # No encode: what it made would be bound to no workflow (refused by the worker, issue 20, 1).
    assert httpx.post(f"{codec}/encode", json={"payloads": [decoded]}, headers=operator).status_code == 404
    # A payload that was never encrypted (a tracing header) is shown as it is, beside the decoded ones.
    plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}, "data": decoded["data"]}
    both = httpx.post(f"{codec}/decode", json={"payloads": [plain, *body["payloads"]]}, headers=operator)
    assert both.status_code == 200, both.text
    assert [p["data"] for p in both.json()["payloads"]] == [decoded["data"], decoded["data"]]
    # Sealed data too short for its nonce and tag, a key id that is not text: each a 422 saying why, no 500.
    [sealed] = body["payloads"]
    for malformed, says in (
        ({**sealed, "data": ""}, "too short"),
        (
            {
                **sealed,
                "metadata": {**sealed["metadata"], KEY_ID: base64.b64encode(b"\xff").decode()},
            },
            "not text",
        ),
    ):
        refused = httpx.post(f"{codec}/decode", json={"payloads": [malformed]}, headers=operator)
        assert refused.status_code == 422 and says in refused.json()["detail"], refused.text
    # Sealed with a key this API is not given yet (a rotation under way): shown sealed, the rest decoded.
    not_given = base64.b64encode(b"not-given-yet").decode()
    unknown = {**sealed, "metadata": {**sealed["metadata"], KEY_ID: not_given}}
    mixed = httpx.post(f"{codec}/decode", json={"payloads": [unknown, sealed]}, headers=operator)
    assert mixed.status_code == 200, mixed.text
    assert mixed.json()["payloads"] == [unknown, decoded]
    # Another namespace: refused.
    other = {**operator, "X-Namespace": "someone-else"}
    assert httpx.post(f"{codec}/decode", json=body, headers=other).status_code == 403

    # The session an operator signs in with at /codec/: a cookie the Web UI sends with credentials.
    with httpx.Client(base_url=codec) as browser:
        assert browser.post("/session", data={"key": "wrong"}).status_code == 401
        assert browser.post("/session", data={"key": OPERATOR_KEY}).status_code == 200
        cookie = browser.cookies.get("webhooks_operator")
        assert cookie is not None
        assert browser.post("/decode", json=body, headers=headers).status_code == 200
    # A made-up session cookie is no session, and no 500 ("²" passes str.isdigit, not int()).
    for made_up in (b"\xb2.x", b"99999999999.forged", b"no-dot"):
        forged: list[tuple[bytes, bytes]] = [(b"cookie", b"webhooks_operator=" + made_up)]
        assert httpx.get(f"{codec}/", headers=forged).status_code == 200  # the sign-in page
        with_cookie = [(k.encode(), v.encode()) for k, v in headers.items()] + forged
        assert httpx.post(f"{codec}/decode", json=body, headers=with_cookie).status_code == 401

    # CORS: the Web UI's origin only.
    preflight = {"Origin": ui_origin, "Access-Control-Request-Method": "POST"}
    allowed = httpx.options(f"{codec}/decode", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == ui_origin
    assert allowed.headers["access-control-allow-credentials"] == "true"
    elsewhere = httpx.options(f"{codec}/decode", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in elsewhere.headers


def test_a_store_written_before_sealing_is_sealed_by_its_upgrade(tmp_path: Path) -> None:
    from sqlalchemy import text

    from store.database import EndpointStore
    from store.migrate import upgrade
    from tests.conftest import TEST_KEYRING, add_endpoint

    database = tmp_path / "old.db"
    store = EndpointStore(f"sqlite:///{database}", TEST_KEYRING)
    upgrade(store)
    endpoint = add_endpoint(store, "t", url="https://example.com/hook?token=abc123")
    # As an older version wrote it: in plain text.
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE endpoints SET secret = :secret, url = :url WHERE id = :id"),
            {"secret": endpoint.secret, "url": endpoint.url, "id": endpoint.id},
        )
    assert b"token=abc123" in database.read_bytes() + Path(f"{database}-wal").read_bytes()
    upgrade(store)  # what `make run` and compose's migrate service do before anything starts
    with store.engine.connect() as conn:
        secret, url = conn.execute(text("SELECT secret, url FROM endpoints")).one()
    assert secret.startswith("enc:v1:") and url.startswith("enc:v1:")
    assert store.get("t", endpoint.id) == endpoint
    store.close()


@pytest.mark.stack  # an API process of its own
def test_the_codec_sign_in_bounds_guesses_and_its_page_cannot_be_framed(tmp_path: Path) -> None:
    """Issue 20, 5: 30 wrong operator keys were tried in 0.04 s, on a page without CSP or X-Frame-Options."""
    env = {
        "WEBHOOKS_DATA_DIR": str(tmp_path),
        "WEBHOOKS_API_KEYS": "t:k",
        "WEBHOOKS_OPERATOR_KEY": OPERATOR_KEY,
    }
    with standalone_api(env) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        page = client.get("/codec/")
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "default-src 'none'" in page.headers["content-security-policy"]
        answers = [
            client.post("/codec/session", data={"key": f"guess-{i}"}) for i in range(CODEC_SIGN_INS + 2)
        ]
        assert [a.status_code for a in answers[:CODEC_SIGN_INS]] == [401] * CODEC_SIGN_INS
        refused = answers[CODEC_SIGN_INS]
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= CODEC_SIGN_IN_SECONDS
        assert "tries of the operator key" in refused.text
        # The right key too must wait: the bound counts tries, not failures, so it leaks nothing.
        assert client.post("/codec/session", data={"key": OPERATOR_KEY}).status_code == 429
