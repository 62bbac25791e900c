"""`webhooks listen` over two API replicas sharing one store and one Temporal (the session's stack).

The CLI reaches the API through a load balancer (tests/balancer.py) whose replica 1 is a second API
process and whose fallback, replica 2, is the stack's own API, where the events are emitted. The CLI
long-polls replica 1 and reports there; replica 1 is then killed (SIGKILL) while the local server works
on a delivery: the CLI's next poll and its report land on replica 2, and the session goes on, with
nothing lost and nothing delivered twice.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from subprocess import Popen
from urllib.parse import urlsplit

import httpx

from launcher import Stack
from tests.balancer import REFUSED, balancer
from tests.conftest import standalone_api_process, wait_delivery, wait_for
from tests.receiver import Receiver
from tests.test_listen import listening, verifying


@contextmanager
def killable_replica(stack: Stack) -> Iterator[tuple[str, Popen[bytes]]]:
    """Another API process of `stack` (as tests/conftest.py's `api_replica`), with its process."""
    shared = {name: value for name, value in stack.env.items() if name.startswith("WEBHOOKS_")}
    shared["WEBHOOKS_TEMPORAL_ADDRESS"] = f"127.0.0.1:{stack.settings.temporal_port}"
    shared["WEBHOOKS_TEMPORAL_UI_URL"] = stack.settings.ui_url or ""
    with standalone_api_process(shared) as (base_url, process):
        yield base_url, process


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def test_a_session_goes_on_when_the_replica_it_polls_is_killed(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    secret: list[str] = []
    url = receiver.respond("/replicas", verifying(secret, delay=4.0))
    with killable_replica(stack) as (replica_1, process_1):
        one, two = port_of(replica_1), port_of(stack.api_url)
        with balancer([one, two]) as (front, front_url), listening(stack, url, api_url=front_url) as cli:
            secret.append(cli.secret)

            def emit(object_id: str) -> str:
                # Through replica 2, which the CLI does not talk to while replica 1 lives.
                body = {"webhook_type": "invoice.created", "data": {"object": {"id": object_id}}}
                accepted = api.post("/v1/events", json=body)
                assert accepted.status_code == 202, accepted.text
                return f"{accepted.json()['id']}:{cli.endpoint_id}"

            first = emit("inv_replica_first")
            assert "→ 200" in cli.expect(first)
            wait_delivery(api, first, lambda d: d["status"] == "succeeded")
            assert front.requests(one, "/poll") and front.requests(one, "/answers/")
            assert front.requests(two, "/v1/webhooks/listen") == []

            # Replica 1 dies while the local server works on the next delivery (4 s).
            second = emit("inv_replica_second")
            wait_for(lambda: len(receiver.requests("/replicas")) == 2, what="the second forwarded delivery")
            process_1.kill()
            process_1.wait(timeout=10)
            line = cli.expect(second, timeout=60)
            assert "→ 200" in line and "not logged" not in line, line
            done = wait_delivery(api, second, lambda d: d["status"] == "succeeded")
            [attempt] = done["attempts"]
            assert attempt["response_body"] == '{"verified":true}'
            assert front.requests(two, "/answers/"), "the report did not reach replica 2"

            # The session goes on through replica 2: the next event is forwarded as the first was.
            third = emit("inv_replica_third")
            assert "→ 200" in cli.expect(third, timeout=60)
            wait_delivery(api, third, lambda d: d["status"] == "succeeded")
            assert front.requests(two, "/poll")

            cli.process.send_signal(signal.SIGINT)
            assert cli.process.wait(timeout=30) == 0
            cli.expect("stopped: session")

    # Each delivery reached the local server once: none lost, none made again.
    sent = [json.loads(r.body)["data"]["object"]["id"] for r in receiver.requests("/replicas")]
    assert sent == ["inv_replica_first", "inv_replica_second", "inv_replica_third"]
    ended = api.get(f"/v1/webhooks/endpoints/{cli.endpoint_id}").json()
    assert not ended["enabled"] and ended["disabled"]["by"] == "listen"


def test_a_report_that_finds_no_replica_is_sent_again(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    """Replica 1 dies while the local server works, and for a moment no replica answers (a balancer
    between a dead backend and its replacement): the CLI's report is refused, sent again once replica 2
    takes over, and the attempt is logged as the local server answered it, forwarded once."""
    secret: list[str] = []
    url = receiver.respond("/no-replica", verifying(secret, delay=3.0))
    with killable_replica(stack) as (replica_1, process_1):
        one, two = port_of(replica_1), port_of(stack.api_url)
        with balancer([one]) as (front, front_url), listening(stack, url, api_url=front_url) as cli:
            secret.append(cli.secret)
            body = {"webhook_type": "invoice.created", "data": {"object": {"id": "inv_no_replica"}}}
            accepted = api.post("/v1/events", json=body)
            assert accepted.status_code == 202, accepted.text
            delivery_id = f"{accepted.json()['id']}:{cli.endpoint_id}"
            wait_for(lambda: receiver.requests("/no-replica"), what="the forwarded delivery")
            front.ports = []
            process_1.kill()
            process_1.wait(timeout=10)
            wait_for(lambda: front.requests(REFUSED, "/answers/"), what="the report, refused")
            front.ports = [two]
            line = cli.expect(delivery_id, timeout=60)
            assert "→ 200" in line and "not logged" not in line, line
            done = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
            [attempt] = done["attempts"]
            assert attempt["status_code"] == 200 and attempt["response_body"] == '{"verified":true}'
            assert front.requests(two, "/answers/")
            cli.process.send_signal(signal.SIGINT)
            assert cli.process.wait(timeout=30) == 0
    assert len(receiver.requests("/no-replica")) == 1


def test_a_session_that_ended_while_no_api_answered_is_opened_again(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    """No replica answers the CLI for longer than a session lives (a laptop asleep, an outage): the
    session ends, and the delivery it was sent fails as "listener gone", not lost. When an API answers
    again, `listen` opens a new session of the same endpoint and secret and goes on; the failed
    delivery, retried, reaches the local server."""
    secret: list[str] = []
    url = receiver.respond("/reopened", verifying(secret))
    with killable_replica(stack) as (replica_1, process_1):
        one, two = port_of(replica_1), port_of(stack.api_url)
        with balancer([one]) as (front, front_url), listening(stack, url, api_url=front_url) as cli:
            secret.append(cli.secret)
            front.ports = []
            process_1.kill()
            process_1.wait(timeout=10)
            body = {"webhook_type": "invoice.created", "data": {"object": {"id": "inv_while_away"}}}
            accepted = api.post("/v1/events", json=body)
            assert accepted.status_code == 202, accepted.text
            away = f"{accepted.json()['id']}:{cli.endpoint_id}"
            failed = wait_delivery(api, away, lambda d: d["status"] == "failed", timeout=90)
            assert failed["attempts"][0]["error"].startswith("listener gone")
            assert receiver.requests("/reopened") == []

            front.ports = [two]
            line = cli.expect("opened session", timeout=60)
            assert cli.endpoint_id in line
            retried = api.post(f"/v1/webhooks/deliveries/{away}/retry")
            assert retried.status_code == 202, retried.text
            assert "→ 200" in cli.expect(away, timeout=60)
            done = wait_delivery(api, away, lambda d: d["status"] == "succeeded")
            assert done["attempts"][-1]["trigger"] == "manual"

            cli.process.send_signal(signal.SIGINT)
            assert cli.process.wait(timeout=30) == 0
            cli.expect("stopped: session")
    assert [json.loads(r.body)["data"]["object"]["id"] for r in receiver.requests("/reopened")] == [
        "inv_while_away"
    ]
