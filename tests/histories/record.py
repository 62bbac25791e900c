"""Record workflow histories for the replay test: `python -m tests.histories.record [GROUP ...]`.

Runs a few delivery, recovery, ordered-lane and alert mail scenarios on a fresh stack and writes each
workflow's history as JSON beside this file, named `{RECORDED_AS}_{scenario}.json`; GROUP (`deliveries`,
`recoveries`, `lanes`, `alerts`) records only those, on a stack of their own. A lane never closes while its
endpoint exists: its history is taken once it has nothing left to do, open. After a change to workflow code
(made with `workflow.patched`, so that running workflows keep replaying), raise `RECORDED_AS` and record
the new shapes beside the old files. Never re-record older files: they come from older code, so that
test_replay.py catches a change that running workflows could not replay.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from core.temporal import connect
from domain import ids
from launcher import Stack
from tests.conftest import (
    api_client,
    create_endpoint,
    emit,
    retry_at_once,
    settled,
    stack_env,
    wait_delivery,
    wait_for,
)
from tests.receiver import Answer, Receiver
from tests.smtp_server import SmtpServer
from workflows.delivery import RETRY_JOIN_WINDOW

HERE = Path(__file__).parent
INDEX = HERE / "workflow-ids.json"
# The set of histories this code records. Sets before v3 came from workflow code that was retired
# before the first release (see docs/development.md, "Changing workflow code"). v4: a retry joins the
# attempt a retry made if it comes less than `RETRY_JOIN_WINDOW` after its end (patch
# `RETRY_JOIN_PATCH`); only the deliveries were recorded again (v3_delivery_retry_burst was recorded by
# the v3 code, before the change). The v4 lanes were recorded by the lane code of before v5. v5: a lane
# whose head finds its endpoint deleted ends (patch `ENDS_WITH_ITS_ENDPOINT`, workflows/lane.py); only the
# lanes were recorded again. v6: an event's body is kept once (issue 25, 3): a delivery starts, and its
# attempts are given, no body, and its first attempt's record keeps it; the event tells its lanes without
# it. Payloads only, no command changed (no patch); the deliveries and the lanes were recorded again.
RECORDED_AS = "v6"
# Short, so that the recorded deliveries close and their histories are whole.
RETRY_WINDOW_SECONDS = 3


def delivery_scenarios(api: httpx.Client, receiver: Receiver) -> dict[str, str]:
    """Workflow ids by the file name their history goes to."""
    recorded: dict[str, str] = {}
    flaky = create_endpoint(api, receiver.script("/flaky", [Answer(500), Answer(200)]))
    steady = create_endpoint(api, receiver.script("/steady", []), signature_method="jwt")
    event_id = emit(api, "invoice.created", id="replay-fanout")["id"]
    for name, endpoint in (("delivery_retried_then_succeeded", flaky), ("delivery_jwt_first_try", steady)):
        wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
        recorded[name] = f"delivery:tenant_a:{event_id}:{endpoint['id']}"
    recorded["event_fanout_two_endpoints"] = f"event:tenant_a:{event_id}"
    for endpoint in (flaky, steady):
        api.delete(f"/v1/webhooks/endpoints/{endpoint['id']}")

    later = create_endpoint(api, receiver.script("/later", [Answer(429, headers={"Retry-After": "120"})]))
    event_id = emit(api, "customer.updated", id="replay-manual")["id"]
    delivery_id = f"{event_id}:{later['id']}"
    wait_delivery(api, delivery_id, lambda d: d["next_attempt_at"] is not None)
    receiver.script("/later", [Answer(200)])
    api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry")
    wait_delivery(api, delivery_id, settled)
    recorded["delivery_manual_retry_while_scheduled"] = f"delivery:tenant_a:{delivery_id}"
    api.delete(f"/v1/webhooks/endpoints/{later['id']}")

    gone = create_endpoint(api, receiver.script("/gone", [Answer(503)]))
    event_id = emit(api, "wallet.updated", id="replay-deleted")["id"]
    time.sleep(0.5)
    api.delete(f"/v1/webhooks/endpoints/{gone['id']}")
    wait_delivery(api, f"{event_id}:{gone['id']}", settled)
    recorded["delivery_endpoint_deleted"] = f"delivery:tenant_a:{event_id}:{gone['id']}"

    down = create_endpoint(api, receiver.script("/down", [Answer(500)]))
    event_id = emit(api, "invoice.voided", id="replay-rerun")["id"]
    delivery_id = f"{event_id}:{down['id']}"
    wait_delivery(api, delivery_id, settled)
    receiver.script("/down", [Answer(200)])
    api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry")
    wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    recorded["delivery_manual_retry_in_retry_window"] = f"delivery:tenant_a:{delivery_id}"
    recorded.update(retry_burst_scenario(api, receiver))
    return recorded


def retry_burst_scenario(api: httpx.Client, receiver: Receiver) -> dict[str, str]:
    """Twenty retries of one delivery at once, while its next scheduled attempt is a minute away; then,
    once past the time in which a retry joins the attempt before it, one more, which succeeds."""
    burst = create_endpoint(api, receiver.script("/burst", [Answer(500)]), retry_schedule=[60])
    event_id = emit(api, "invoice.payment_failure", id="replay-burst")["id"]
    delivery_id = f"{event_id}:{burst['id']}"
    wait_delivery(api, delivery_id, lambda d: d["next_attempt_at"] is not None)
    answers = retry_at_once(api, delivery_id, 20)
    assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
    time.sleep(RETRY_JOIN_WINDOW.total_seconds() + 1)
    receiver.script("/burst", [Answer(200)])
    api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry")
    wait_delivery(api, delivery_id, settled)
    return {"delivery_retry_burst": f"delivery:tenant_a:{delivery_id}"}


def lane_scenarios(api: httpx.Client, receiver: Receiver) -> dict[str, str]:
    """An ordered lane that delivers in order, one that blocks and is skipped past by hand, and one whose
    head finds its endpoint deleted (each lane then idle, blocked or ended: nothing left in flight)."""
    recorded: dict[str, str] = {}

    def lane(endpoint_id: str, key: str | None) -> str:
        return ids.lane_workflow_id("tenant_a", endpoint_id, key)

    steady = create_endpoint(api, receiver.script("/lane-steady", []), ordered=True)
    for i in range(3):
        emit(api, "invoice.created", id=f"replay-lane-{i}", ordering_key="cus_1")
    wait_delivery(api, f"replay-lane-2:{steady['id']}", lambda d: d["status"] == "succeeded")
    recorded["lane_in_order"] = lane(steady["id"], "cus_1")

    stuck = create_endpoint(
        api,
        receiver.script("/lane-stuck", [Answer(500), Answer(500), Answer(200)]),
        ordered=True,
        retry_schedule=[0.2],
    )
    for i in range(2):
        emit(api, "invoice.created", id=f"replay-lane-stuck-{i}")
    lane_url = f"/v1/webhooks/endpoints/{stuck['id']}/lane"
    wait_for(lambda: api.get(lane_url).json()["blocked"], what="the lane blocked")
    skipped = api.post(f"{lane_url}/skip", json={"delivery_id": f"replay-lane-stuck-0:{stuck['id']}"})
    assert skipped.status_code == 200, skipped.text
    wait_delivery(api, f"replay-lane-stuck-1:{stuck['id']}", lambda d: d["status"] == "succeeded")
    recorded["lane_blocked_then_skipped"] = lane(stuck["id"], None)

    doomed = create_endpoint(
        api, receiver.script("/lane-doomed", [Answer(503)]), ordered=True, retry_schedule=[1, 1]
    )
    for i in range(2):
        emit(api, "invoice.created", id=f"replay-lane-doomed-{i}", ordering_key="sub_9")
    wait_for(lambda: receiver.requests("/lane-doomed"), what="the head's first attempt")
    api.delete(f"/v1/webhooks/endpoints/{doomed['id']}")
    wait_delivery(api, f"replay-lane-doomed-0:{doomed['id']}", lambda d: d["status"] == "failed")
    recorded["lane_head_endpoint_deleted"] = lane(doomed["id"], "sub_9")
    time.sleep(3)  # the lane acts on its head's end (blocks, or ends), and then has nothing in flight
    return recorded


def recovery_scenarios(api: httpx.Client, receiver: Receiver) -> dict[str, str]:
    """A recover, a replay and a cancelled recover, each on an endpoint of its own (one workflow id per
    endpoint, whose only run is then the one recorded)."""
    recorded: dict[str, str] = {}

    def finished(endpoint_id: str, recovery_id: str) -> None:
        path = f"/v1/webhooks/endpoints/{endpoint_id}/recoveries/{recovery_id}"
        wait_for(lambda: api.get(path).json()["status"] != "running", timeout=120, what=recovery_id)

    def failed_deliveries(path: str, count: int, prefix: str) -> tuple[str, str]:
        endpoint = create_endpoint(api, receiver.script(path, [Answer(500)]))
        since = datetime.now(UTC).isoformat()
        time.sleep(0.2)
        for i in range(count):
            wait_delivery(api, f"{emit(api, id=f'{prefix}-{i}')['id']}:{endpoint['id']}", settled)
        stats = f"/v1/webhooks/endpoints/{endpoint['id']}/stats"
        wait_for(lambda: api.get(stats).json()["failed"] == count, what="the failures listed")
        receiver.script(path, [Answer(200)])
        return endpoint["id"], since

    endpoint_id, since = failed_deliveries("/recover", 12, "replay-recover")
    recovery = api.post(f"/v1/webhooks/endpoints/{endpoint_id}/recover", json={"since": since}).json()
    finished(endpoint_id, recovery["id"])
    recorded["recovery_recover_two_pages"] = f"recovery:tenant_a:{endpoint_id}"

    endpoint_id, since = failed_deliveries("/cancel", 30, "replay-cancel")
    recovery = api.post(f"/v1/webhooks/endpoints/{endpoint_id}/recover", json={"since": since}).json()
    api.delete(f"/v1/webhooks/endpoints/{endpoint_id}/recoveries/{recovery['id']}")
    finished(endpoint_id, recovery["id"])
    recorded["recovery_recover_canceled"] = f"recovery:tenant_a:{endpoint_id}"

    missed = create_endpoint(api, receiver.script("/missed", []), enabled=False)
    since = datetime.now(UTC).isoformat()
    time.sleep(0.2)
    for i in range(3):
        emit(api, "customer.updated", id=f"replay-missed-{i}")
    api.patch(f"/v1/webhooks/endpoints/{missed['id']}", json={"enabled": True})
    recovery = api.post(f"/v1/webhooks/endpoints/{missed['id']}/replay", json={"since": since}).json()
    finished(missed["id"], recovery["id"])
    recorded["recovery_replay"] = f"recovery:tenant_a:{missed['id']}"
    return recorded


def alert_scenarios(api: httpx.Client, receiver: Receiver) -> dict[str, str]:
    """An alert mail sent at its first try, and one whose mail server was down a while (its send refused,
    retried, then taken)."""
    smtp = _SMTP
    assert smtp is not None

    def mailed(path: str) -> str:
        endpoint = create_endpoint(
            api,
            receiver.script(path, [Answer(500)]),
            alert_emails=["ops@acme.com"],
            event_types=["invoice.created"],
        )
        wait_delivery(api, f"{emit(api)['id']}:{endpoint['id']}", settled)
        return str(endpoint["id"])

    def workflow_id(endpoint_id: str) -> str:
        [mail] = wait_for(
            lambda: [m for m in smtp.mails() if m.message["X-Webhooks-Endpoint"] == endpoint_id],
            timeout=90,
            what="the alert mail",
        )
        notice_id = str(mail.message["Message-ID"]).strip("<>").split(".")[0]
        return ids.alert_workflow_id("tenant_a", notice_id)

    recorded = {"alert_mail_sent": workflow_id(mailed("/alert-sent"))}
    smtp.stop()
    try:
        endpoint_id = mailed("/alert-later")
        time.sleep(8)  # the send refused at 0 s, 2 s and 6 s
    finally:
        smtp.start()
    recorded["alert_mail_retried"] = workflow_id(endpoint_id)
    return recorded


_SMTP: SmtpServer | None = None  # the alert group's mail server, which its stack is told of


@contextmanager
def mail_server(group: str) -> Iterator[dict[str, str]]:
    """For the alert group, a real SMTP server, and the settings that send to it."""
    global _SMTP
    if group != "alerts":
        yield {}
        return
    _SMTP = SmtpServer()
    _SMTP.start()
    try:
        yield {"WEBHOOKS_SMTP_URL": _SMTP.url, "WEBHOOKS_ALERT_FROM": "alerts@flexprice.example"}
    finally:
        _SMTP.stop()
        _SMTP = None


# Each group of scenarios, and the retry window of its stack: short for deliveries, so that the recorded
# ones close and their histories are whole; the default for recoveries, whose deliveries must still take
# an attempt when recovered.
GROUPS: dict[str, tuple[Callable[[httpx.Client, Receiver], dict[str, str]], int | None]] = {
    "deliveries": (delivery_scenarios, RETRY_WINDOW_SECONDS),
    "recoveries": (recovery_scenarios, None),
    "alerts": (alert_scenarios, None),
    "lanes": (lane_scenarios, None),
}


async def save(stack: Stack, recorded: dict[str, str]) -> None:
    client = await connect(stack.settings)
    index = json.loads(INDEX.read_text()) if INDEX.exists() else {}
    for name, workflow_id in recorded.items():
        if not workflow_id.startswith("lane:"):  # a lane stays open: recorded as it stands, idle
            await client.get_workflow_handle(workflow_id).result()  # the retry window has ended
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        (HERE / f"{RECORDED_AS}_{name}.json").write_text(history.to_json())
        index[f"{RECORDED_AS}_{name}"] = workflow_id
    # Payloads are bound to their workflow's id (core/crypto.py): a replay needs the id it ran under.
    INDEX.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def record(group: str) -> int:
    scenarios, retry_window = GROUPS[group]
    with tempfile.TemporaryDirectory() as data_dir, Receiver() as receiver, mail_server(group) as mail_env:
        overrides = {"WEBHOOKS_RETRY_WINDOW_SECONDS": str(retry_window)} if retry_window else {}
        overrides.update(mail_env)
        stack = Stack(stack_env(Path(data_dir), **overrides), log_file=Path(data_dir) / "stack.log")
        try:
            stack.start()
            with api_client(stack) as api:
                recorded = scenarios(api, receiver)
            asyncio.run(save(stack, recorded))
        finally:
            stack.stop()
    return len(recorded)


def main() -> None:
    groups = sys.argv[1:] or list(GROUPS)
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise SystemExit(f"unknown group {', '.join(unknown)}; the groups are {', '.join(GROUPS)}")
    count = sum(record(group) for group in groups)
    print(f"recorded {count} histories in {HERE}")  # noqa: T201


if __name__ == "__main__":
    main()
