"""`webhooks listen` and `webhooks trigger`, end to end: the CLI as a subprocess against the real stack,
forwarding to a real receiver on 127.0.0.1 that verifies signatures with `standardwebhooks`."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from launcher import Stack
from tests.conftest import KEYS, create_endpoint, wait_delivery, wait_for
from tests.receiver import Answer, Received, Receiver

WORKTREE = Path(__file__).resolve().parents[1]


def cli_env(stack: Stack, *, api_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    env.update(
        WEBHOOKS_API_URL=api_url or stack.api_url,
        WEBHOOKS_API_KEY=KEYS["tenant_a"],
        PYTHONPATH=str(WORKTREE),
        PYTHONUNBUFFERED="1",
        PYTHONFAULTHANDLER="1",  # a SIGABRT prints every thread's stack: what a CLI that hangs waits on
    )
    return env


class Listener:
    """A running `webhooks listen`: its lines as they come, and what it printed at start."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.secret = self.expect("webhook signing secret: ").split(": ", 1)[1].strip()
        self.endpoint_id = self.seen[-2].split("listening endpoint ", 1)[1].strip()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.put(line.rstrip("\n"))

    def expect(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} in {timeout:g} s; saw {self.seen}") from None
            self.seen.append(line)
            if text in line:
                return line

    def stopped(self, timeout: float = 30) -> int:
        """The exit code once it has stopped; if it has not within `timeout`, what each of its threads
        was doing, from `faulthandler` (a failure of this kind once came without a clue)."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            self.process.wait(timeout=10)
            assert self.process.stderr is not None
            stacks = self.process.stderr.read()
            while not self.lines.empty():
                self.seen.append(self.lines.get_nowait())
            raise AssertionError(
                f"still running {timeout:g} s after it was told to stop; it printed {self.seen}, and its "
                f"threads were at:\n{stacks}"
            ) from None


# Sets SIGINT ignored, then becomes the CLI: an ignored signal stays ignored across exec, as the CLI finds
# it under `webhooks listen &`. Not `preexec_fn`, which runs Python between fork and exec in a parent with
# threads (this one's receivers), where the child can deadlock before it execs.
IGNORING_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


@contextmanager
def listening(
    stack: Stack, url: str, *args: str, api_url: str | None = None, sigint_ignored: bool = False
) -> Iterator[Listener]:
    """`webhooks listen` running; `sigint_ignored`: started as a shell starts a command in the background,
    with SIGINT ignored (a suite run in the background hands that to every process it starts, too)."""
    command = [sys.executable, "-m", "cli", "listen", "--forward-to", url, *args]
    if sigint_ignored:
        command = [sys.executable, "-c", IGNORING_SIGINT, *command]
    process = subprocess.Popen(
        command,
        env=cli_env(stack, api_url=api_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    listener: Listener | None = None
    try:
        listener = Listener(process)
        yield listener
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        if listener is not None:
            listener.reader.join(timeout=10)
        assert process.stderr is not None
        errors = process.stderr.read()
        process.stderr.close()
        assert "Traceback" not in errors, errors


def verifying(secret: list[str], *, delay: float = 0.0) -> Any:
    """A receiver's decision: 200 if `standardwebhooks` verifies the request with the secret, else 401."""

    def decide(request: Received) -> Answer:
        try:
            Webhook(secret[0]).verify(request.body, request.headers)
        except (WebhookVerificationError, IndexError):
            return Answer(401, b'{"verified":false}')
        return Answer(200, b'{"verified":true}', headers={"x-receiver": "laptop"}, delay=delay)

    return decide


def test_listen_forwards_verified_deliveries_to_a_local_url_and_logs_the_answer(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    secret: list[str] = []
    url = receiver.respond("/hooks", verifying(secret))
    with listening(stack, url, "--events", "invoice.created,invoice.voided") as cli:
        secret.append(cli.secret)
        assert cli.secret.startswith("whsec_")
        endpoint = api.get(f"/v1/webhooks/endpoints/{cli.endpoint_id}").json()
        assert endpoint["event_types"] == ["invoice.created", "invoice.voided"] and endpoint["enabled"]

        event = api.post(
            "/v1/events", json={"webhook_type": "invoice.created", "data": {"object": {"id": "inv_listen"}}}
        ).json()
        delivery_id = f"{event['id']}:{cli.endpoint_id}"
        line = cli.expect(delivery_id)
        assert "invoice.created" in line and "→ 200" in line and " ms" in line

        found = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
        [attempt] = found["attempts"]
        assert attempt["status_code"] == 200 and attempt["response_body"] == '{"verified":true}'
        assert ("x-receiver", "laptop") in [tuple(h) for h in attempt["response_headers"]]
        [request] = receiver.requests("/hooks")
        assert request.headers["webhook-id"] == delivery_id
        assert json.loads(request.body)["data"]["object"] == {"id": "inv_listen"}

        cli.process.send_signal(signal.SIGINT)
        assert cli.stopped() == 0
        assert cli.expect("stopped: session")
    ended = api.get(f"/v1/webhooks/endpoints/{cli.endpoint_id}").json()
    assert not ended["enabled"] and ended["disabled"]["by"] == "listen"


def test_a_killed_listener_loses_no_delivery(stack: Stack, api: httpx.Client, receiver: Receiver) -> None:
    secret: list[str] = []
    # Slow enough that the CLI is killed while the local server still works on the delivery.
    url = receiver.respond("/slow", verifying(secret, delay=3.0))
    with listening(stack, url) as first:
        secret.append(first.secret)
        event = api.post(
            "/v1/events", json={"webhook_type": "invoice.voided", "data": {"object": {"id": "inv_kill"}}}
        ).json()
        delivery_id = f"{event['id']}:{first.endpoint_id}"
        wait_for(lambda: receiver.requests("/slow"), what="the forwarded delivery")
        first.process.kill()
        first.process.wait(timeout=10)

    # The session ends after its timeout (6 s in tests): the attempt it held fails as "listener gone",
    # and so does each scheduled one while no listener runs.
    failed = wait_delivery(api, delivery_id, lambda d: d["status"] == "failed", timeout=60)
    assert failed["attempts"][0]["error"].startswith("listener gone")
    assert all(a["status_code"] is None for a in failed["attempts"])

    url = receiver.respond("/again", verifying(secret))
    with listening(stack, url) as second:
        # The same listening endpoint and secret: the receiver's configuration survives a restart.
        assert (second.endpoint_id, second.secret) == (first.endpoint_id, first.secret)
        retried = api.post(f"/v1/webhooks/deliveries/{delivery_id}/retry")
        assert retried.status_code == 202, retried.text
        assert "→ 200" in second.expect(delivery_id)
        done = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
        assert done["attempts"][-1]["trigger"] == "manual"
        assert done["attempts"][-1]["response_body"] == '{"verified":true}'
        second.process.send_signal(signal.SIGTERM)
        assert second.stopped() == 0


def test_trigger_emits_the_catalog_example(stack: Stack, api: httpx.Client, receiver: Receiver) -> None:
    url = receiver.script("/trigger", [Answer(200), Answer(200), Answer(200)])
    endpoint = create_endpoint(api, url, event_types=["invoice.created"])
    env = cli_env(stack)

    def trigger(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "cli", "trigger", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    emitted = trigger("invoice.created", "--set", "data.object.amount_due=100", "--set", "data.object.x.y=z")
    assert emitted.returncode == 0, emitted.stderr
    assert emitted.stdout.startswith("triggered invoice.created: event evt_")
    wait_for(lambda: receiver.requests("/trigger"), what="the triggered event")
    sent = json.loads(receiver.requests("/trigger")[0].body)
    assert sent["webhook_type"] == "invoice.created"
    assert sent["data"]["object"]["amount_due"] == 100 and sent["data"]["object"]["x"] == {"y": "z"}
    assert sent["data"]["object"]["currency"]  # the rest of the catalog's example

    tested = trigger("customer.created", "--endpoint", endpoint["id"], "--json")
    assert tested.returncode == 0, tested.stderr
    delivery_id = json.loads(tested.stdout)["delivery_id"]
    found = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
    assert found["origin"] == "test" and found["webhook_type"] == "customer.created"

    # --endpoint and --set together: a test event whose object is the example with the field changed.
    changed = trigger(
        "invoice.voided", "--endpoint", endpoint["id"], "--set", "data.object.amount_due=100", "--json"
    )
    assert changed.returncode == 0, changed.stderr
    changed_id = json.loads(changed.stdout)["delivery_id"]
    wait_delivery(api, changed_id, lambda d: d["status"] == "succeeded")
    tested_body = json.loads(
        next(r.body for r in receiver.requests("/trigger") if r.headers["webhook-id"] == changed_id)
    )
    assert tested_body["webhook_type"] == "invoice.voided"
    assert tested_body["data"]["object"]["amount_due"] == 100
    assert tested_body["data"]["object"]["currency"]  # the rest of the catalog's example

    described = api.get("/v1/webhooks/event-types/invoice.created").json()
    assert described["schema"]["properties"]["webhook_type"] == {"const": "invoice.created"}
    assert described["example"]["currency"] == "usd"
    assert api.get("/v1/webhooks/event-types/invoice.nope").status_code == 404

    wrong = trigger("invoice.created", "--set", "amount=1")
    assert wrong.returncode == 2 and "data.object.FIELD=VALUE" in wrong.stderr


def test_ctrl_c_stops_listen_even_when_started_with_sigint_ignored(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    # `webhooks listen &` in a script, or under a runner started in the background, inherits SIGINT
    # ignored; Python then leaves it ignored, and a Ctrl-C (or `kill -INT`) did nothing: the session
    # stayed open until its timeout and the process ran on.
    url = receiver.respond("/ignored", verifying([]))
    with listening(stack, url, sigint_ignored=True) as cli:
        cli.process.send_signal(signal.SIGINT)
        assert cli.stopped() == 0
        assert cli.expect("stopped: session")
    ended = api.get(f"/v1/webhooks/endpoints/{cli.endpoint_id}").json()
    assert not ended["enabled"] and ended["disabled"]["by"] == "listen"
