"""`deliver_once` on its own, against real receivers: an endpoint's limit of attempts in flight keeps a
slow endpoint apart, an attempt held back ends its try and says so when it is made, and our own faults
raise (for Temporal to retry) instead of becoming attempts."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities.delivery import (
    FAULT_RETRY_CAP,
    HEARTBEAT_EVERY,
    DeliveryActivities,
    EarlierTries,
    FaultTracebacks,
    StoreUnavailable,
    classify,
    fault_retry_delay,
    parse_retry_after,
    report_infra_failure,
    try_lease_id,
)
from core.crypto import Keyring, new_key_entry
from core.settings import Settings
from core.signing import JwtSigner, load_or_create_rsa_key
from domain.models import AttemptOutcome, AttemptRecord, AttemptTrigger, DeliverRequest, SignatureMethod
from store import migrate
from store.database import EndpointStore
from store.flow import EndpointFlow
from store.keys import jwt_signer
from tests.conftest import TEST_ENCRYPTION_KEYS, TEST_KEYRING, add_endpoint
from tests.receiver import Answer, Receiver


def _request(endpoint_id: str, n: int, timeout: float, *, interactive: bool = False) -> DeliverRequest:
    return DeliverRequest(
        tenant="t",
        endpoint_id=endpoint_id,
        delivery_id=f"evt_{n}:{endpoint_id}",
        body="{}",
        attempt=1,
        trigger=AttemptTrigger.SCHEDULED,
        timeout=timeout,
        interactive=interactive,
    )


@pytest.fixture
def signer(tmp_path: Path) -> JwtSigner:
    return JwtSigner.from_pem(load_or_create_rsa_key(tmp_path / "k.pem"), issuer="t")


def _endpoint(store: EndpointStore, url: str) -> str:
    return add_endpoint(store, "t", url=url).id


def _env(heartbeats: list[list[Any]] | None = None) -> ActivityEnvironment:
    """An activity environment whose first try was scheduled now (the record's `queued_ms`)."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, scheduled_time=datetime.now(UTC))
    if heartbeats is not None:
        env.on_heartbeat = lambda *details: heartbeats.append(list(details))
    return env


async def test_a_slow_endpoint_does_not_hold_up_a_healthy_one(
    store: EndpointStore, signer: JwtSigner
) -> None:
    with Receiver() as receiver:
        # Its answer comes long after the attempt's timeout: at 3 s against 2.5, a CI run beside a CPU hog
        # read the answer as received, the test's event loop held up past both moments, and the answer
        # that was waiting read before the timer that had expired.
        slow = _endpoint(store, receiver.script("/slow", [Answer(200, delay=8)]))
        healthy = _endpoint(store, receiver.script("/healthy", []))
        async with httpx.AsyncClient() as http:
            activities = DeliveryActivities(http, store, signer, endpoint_concurrency=1)

            def attempt(request: DeliverRequest) -> Awaitable[AttemptRecord]:
                return _env().run(activities.deliver_once, request)

            # One attempt holds the slow endpoint's only place in flight until it times out (2.5 s); two
            # more find it taken: one waits a moment for its turn, the other ends its try at once.
            slow_attempts = [asyncio.ensure_future(attempt(_request(slow, 0, timeout=2.5)))]
            # The others start once its POST is at the receiver, its place taken: after a fixed 0.2 s, a
            # CI run beside a CPU hog had one of them take the place first.
            while not receiver.requests("/slow"):
                await asyncio.sleep(0.02)
            slow_attempts += [asyncio.ensure_future(attempt(_request(slow, n, timeout=2))) for n in (1, 2)]
            record = await attempt(_request(healthy, 99, timeout=2))
            assert record.outcome is AttemptOutcome.SUCCEEDED
            # The healthy attempt was made while the slow endpoint's first was still in flight.
            assert not slow_attempts[0].done()
            outcomes = await asyncio.gather(*slow_attempts, return_exceptions=True)
    # One attempt was made and timed out; the two held back were not made: each ended its try with a
    # turn to come back at, for Temporal to make the next try then, and no POST was sent for them.
    [made] = [o for o in outcomes if isinstance(o, AttemptRecord)]
    assert made.error == "timed out after 2.5 s"
    held = [o for o in outcomes if not isinstance(o, AttemptRecord)]
    assert [(type(o), getattr(o, "type", None)) for o in held] == [
        (ApplicationError, "EndpointThrottled")
    ] * 2
    assert all(isinstance(o, ApplicationError) and o.next_retry_delay for o in held)
    assert len(receiver.requests("/slow")) == 1


async def test_an_attempt_held_back_comes_back_and_its_post_gets_its_whole_timeout(
    store: EndpointStore, signer: JwtSigner
) -> None:
    with Receiver() as receiver:
        # Answers in 2 s; each POST may take 3.5. The second waits about 2 s for the first's slot, so a
        # timeout that counted the wait would leave it 1.5 s, too short; the whole 3.5 leaves 1.5 s of slack
        # for a loaded machine.
        endpoint = _endpoint(store, receiver.script("/queue", [Answer(200, delay=2)]))
        async with httpx.AsyncClient() as http:
            activities = DeliveryActivities(http, store, signer, endpoint_concurrency=1)
            first = asyncio.ensure_future(
                _env().run(activities.deliver_once, _request(endpoint, 1, timeout=3.5))
            )
            while not receiver.requests("/queue"):
                await asyncio.sleep(0.02)
            # Its turn comes after the first's (about a second, the mean time the endpoint is assumed
            # to take), too late to wait for inside the try if the first is still in flight then.
            notes: list[list[Any]] = []
            env = _env(notes)
            second = _request(endpoint, 2, timeout=3.5)
            try:
                held: AttemptRecord | None = await env.run(activities.deliver_once, second)
            except ApplicationError as err:
                assert err.type == "EndpointThrottled" and err.next_retry_delay is not None
                held = None
            assert (await first).outcome is AttemptOutcome.SUCCEEDED
            if held is None:  # Temporal's next try, with what the first left for it
                env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=notes[-1])
                held = await env.run(activities.deliver_once, second)
    # The POST had its whole 3.5 s after the wait: the receiver's 2 s answer arrived in time.
    assert held.outcome is AttemptOutcome.SUCCEEDED
    assert held.throttled_by == "the endpoint's limit of 1 attempts in flight at once"
    assert held.infra_failures == 0  # held back is not a fault of ours
    assert held.queued_ms is not None and held.queued_ms >= 1000


async def test_an_unreadable_store_raises_and_leaves_the_reason_for_the_next_try(
    tmp_path: Path, signer: JwtSigner
) -> None:
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this file is not a SQLite database" * 100)
    store = EndpointStore(f"sqlite:///{broken}", TEST_KEYRING)
    heartbeats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.extend(details)
    async with httpx.AsyncClient() as http:
        activities = DeliveryActivities(http, store, signer)
        with pytest.raises(ApplicationError) as raised:
            await env.run(activities.deliver_once, _request("ep_x", 1, timeout=2))
    store.close()
    assert heartbeats[0] == "the endpoint store could not be read"
    # Its own wait before the next try, and benign to the SDK, which would log its traceback each time.
    assert raised.value.type == "StoreUnavailable" and raised.value.message == heartbeats[0]
    assert raised.value.next_retry_delay == timedelta(seconds=1)
    assert raised.value.category is ApplicationErrorCategory.BENIGN
    assert raised.value.__cause__ is None  # the store's error stays in the worker's log


@pytest.mark.parametrize("sealed", ["the endpoint", "its tenant's signing key"])
async def test_what_is_sealed_with_a_key_this_worker_lacks_fails_the_try_as_ours_saying_so(
    tmp_path: Path, sealed: str
) -> None:
    """Mid-rotation, a worker not given the new key yet reads an endpoint, or a jwt tenant's signing key,
    written with it: a fault of ours, tried again until a worker with the key makes the attempt, and said
    as such, not as a bug of ours."""
    url = f"sqlite:///{tmp_path / 'endpoints.db'}"
    rotated = EndpointStore(url, Keyring.parse(f"{new_key_entry('rotated')},{TEST_ENCRYPTION_KEYS}"))
    behind = EndpointStore(url, TEST_KEYRING)  # the worker's: not given the new key yet
    heartbeats: list[list[Any]] = []
    try:
        migrate.upgrade(rotated)
        with Receiver() as receiver:
            if sealed == "the endpoint":
                endpoint = add_endpoint(rotated, "t", url=receiver.script("/in", []))
            else:  # the endpoint readable, the tenant's first signing key made by a process with the new key
                endpoint = add_endpoint(
                    behind, "t", url=receiver.script("/in", []), signature_method=SignatureMethod.JWT
                )
                jwt_signer(Settings(), rotated).jwks("t")
            async with httpx.AsyncClient() as http:
                activities = DeliveryActivities(http, behind, jwt_signer(Settings(), behind))
                with pytest.raises(ApplicationError) as raised:
                    await _env(heartbeats).run(activities.deliver_once, _request(endpoint.id, 1, timeout=2))
            assert receiver.requests("/in") == []
    finally:
        rotated.close()
        behind.close()
    assert raised.value.type == "EndpointNotYetReadable" and not raised.value.non_retryable
    assert raised.value.message == "this worker cannot read the endpoint's settings yet (a key it lacks)"
    assert raised.value.message in heartbeats[-1]  # what the next try's log line says


def test_tries_of_ours_back_off_to_ten_seconds() -> None:
    waits = [fault_retry_delay(n).total_seconds() for n in range(8)]
    assert waits == [1, 2, 4, 8, 10, 10, 10, 10]
    assert fault_retry_delay(10**6) == FAULT_RETRY_CAP


def _store_fault(message: str) -> StoreUnavailable:
    try:
        try:
            raise OSError(message)
        except OSError as err:
            raise StoreUnavailable() from err
    except StoreUnavailable as fault:
        return fault


def test_a_kind_of_fault_has_its_traceback_logged_once_an_outage(caplog: pytest.LogCaptureFixture) -> None:
    tracebacks = FaultTracebacks(quiet=60)
    first, again = _store_fault("refused\n[SQL: SELECT secret]"), _store_fault("refused")
    assert tracebacks.due(first, now=0) and not tracebacks.due(again, now=30)
    assert not tracebacks.due(again, now=89)  # seen 59 s before: the same outage
    assert tracebacks.due(again, now=200)  # not seen for longer than the quiet: the next one
    assert tracebacks.due(ValueError("a bug"), now=200)  # another kind
    request = _request("ep_1", 1, timeout=2)
    with caplog.at_level(logging.WARNING, logger="webhooks.attempts"):
        for traceback in (True, False):
            ActivityEnvironment().run(
                report_infra_failure, request, first, str(first), timedelta(seconds=4), traceback=traceback
            )
    [with_traceback, without] = caplog.records
    assert with_traceback.exc_info is not None and without.exc_info is None
    fields = without.fields  # type: ignore[attr-defined]
    assert fields["cause"] == "OSError: refused"  # its first line: never the statement that failed
    assert fields["retry_in_s"] == 4


async def test_an_attempt_made_after_failed_tries_says_so(store: EndpointStore, signer: JwtSigner) -> None:
    with Receiver() as receiver:
        endpoint = _endpoint(store, receiver.script("/late", []))
        env = ActivityEnvironment()
        # The third try of this attempt, the second having recorded why it failed.
        reason = "the endpoint store could not be read"
        env.info = dataclasses.replace(env.info, attempt=3, heartbeat_details=[reason])
        async with httpx.AsyncClient() as http:
            activities = DeliveryActivities(http, store, signer)
            record = await env.run(activities.deliver_once, _request(endpoint, 1, timeout=2))
            env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[])
            lost = await env.run(activities.deliver_once, _request(endpoint, 2, timeout=2))
    assert record.outcome is AttemptOutcome.SUCCEEDED
    assert (record.infra_failures, record.infra_error) == (2, reason)
    assert lost.infra_failures == 1
    assert lost.infra_error is not None and "did not finish" in lost.infra_error


async def test_a_try_heartbeats_while_its_post_runs_with_the_notes_it_was_given(
    store: EndpointStore, signer: JwtSigner
) -> None:
    """A receiver slower than a heartbeat's interval: the try heartbeats as it waits (so that Temporal
    can tell it from a lost one), with the notes it was given (so that, lost, it counts as one)."""
    answer_after = HEARTBEAT_EVERY.total_seconds() + 0.8
    with Receiver() as receiver:
        endpoint = _endpoint(store, receiver.script("/slow", [Answer(200, delay=answer_after)]))
        heartbeats: list[list[Any]] = []
        env = _env(heartbeats)
        given = ["the endpoint store could not be read", {"tries": 1, "throttled": 0, "held": False}]
        env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=given)
        async with httpx.AsyncClient() as http:
            activities = DeliveryActivities(http, store, signer)
            started = time.monotonic()
            record = await env.run(activities.deliver_once, _request(endpoint, 1, timeout=10))
            took = time.monotonic() - started
        made = len(heartbeats)
        await asyncio.sleep(HEARTBEAT_EVERY.total_seconds() + 0.5)
    assert record.outcome is AttemptOutcome.SUCCEEDED
    # At least one, each with the notes; one every HEARTBEAT_EVERY while the try ran (two when a loaded
    # machine held the answer up past the second: a CI run beside a CPU hog did); none once it ended.
    assert heartbeats and all(h == given for h in heartbeats), heartbeats
    assert len(heartbeats) <= took / HEARTBEAT_EVERY.total_seconds(), (len(heartbeats), took)
    assert len(heartbeats) == made
    assert record.infra_failures == 1


async def test_the_try_made_again_after_a_lost_one_frees_the_lease_it_left(
    store: EndpointStore, signer: JwtSigner
) -> None:
    """The endpoint's one place in flight held by a try whose worker died: the try made in its place
    goes at once, rather than wait for the lease to expire."""
    with Receiver() as receiver:
        endpoint = _endpoint(store, receiver.script("/again", []))
        request = _request(endpoint, 1, timeout=2)
        dead = EndpointFlow(store.engine, max_concurrency=1).admit(
            endpoint, "t", rate=100, lease_seconds=60, lease_id=try_lease_id(request, 1)
        )
        assert dead.lease is not None
        env = _env()
        env.info = dataclasses.replace(env.info, attempt=2, heartbeat_details=[])  # try 1 left nothing
        async with httpx.AsyncClient() as http:
            activities = DeliveryActivities(http, store, signer, endpoint_concurrency=1)
            record = await env.run(activities.deliver_once, request)
    assert record.outcome is AttemptOutcome.SUCCEEDED and record.throttled_by is None
    assert record.infra_failures == 1 and record.infra_error is not None
    assert len(receiver.requests("/again")) == 1


async def _attempt_with_headers(
    store: EndpointStore, signer: JwtSigner, url: str, headers: dict[str, str], *, timeout: float
) -> tuple[str, AttemptRecord]:
    """One first attempt to `url` by an endpoint with these custom headers: its id and the record."""
    endpoint = add_endpoint(store, "t", url=url, headers=headers).id
    async with httpx.AsyncClient() as http:
        activities = DeliveryActivities(http, store, signer)
        record = await ActivityEnvironment().run(
            activities.deliver_once, _request(endpoint, 1, timeout=timeout)
        )
    return endpoint, record


async def test_an_attempt_logs_its_headers_masked_and_the_answers_status_line(
    store: EndpointStore, signer: JwtSigner
) -> None:
    with Receiver() as receiver:
        url = receiver.script(
            "/headers",
            [
                Answer(
                    503,
                    b"busy",
                    headers={
                        "retry-after": "7",
                        "x-trace": "t1",
                        "set-cookie": "gw_session=abc123; HttpOnly",
                        "x-api-key": "k_live_42",
                    },
                )
            ],
        )
        endpoint, record = await _attempt_with_headers(
            store, signer, url, {"Authorization": "Bearer gateway-token-1234"}, timeout=2
        )
        [received] = receiver.requests("/headers")
    assert record.request_headers is not None
    sent = dict(record.request_headers)
    assert sent["webhook-id"] == f"evt_1:{endpoint}" == received.headers["webhook-id"]
    assert sent["webhook-timestamp"] == received.headers["webhook-timestamp"]
    assert sent["content-type"] == "application/json"
    # The signature and the custom header's value were sent in full, and are logged masked.
    assert received.headers["webhook-signature"].startswith("v1,") and sent["webhook-signature"] == "v1,••••"
    assert received.headers["authorization"] == "Bearer gateway-token-1234"
    assert sent["Authorization"] == "••••1234"
    assert record.response_status_line == "HTTP/1.1 503 Service Unavailable"
    assert record.response_headers is not None
    answered = dict(record.response_headers)
    assert (answered["retry-after"], answered["x-trace"]) == ("7", "t1")
    # The receiver's own credentials and sessions are no reader's business either.
    assert (answered["set-cookie"], answered["x-api-key"]) == ("••••", "••••")


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, AttemptOutcome.SUCCEEDED),
        (201, AttemptOutcome.SUCCEEDED),
        (202, AttemptOutcome.SUCCEEDED),
        (204, AttemptOutcome.SUCCEEDED),
        (299, AttemptOutcome.SUCCEEDED),
        (301, AttemptOutcome.RETRYABLE),
        (400, AttemptOutcome.RETRYABLE),
        (410, AttemptOutcome.GONE),
        (429, AttemptOutcome.RETRYABLE),
        (500, AttemptOutcome.RETRYABLE),
    ],
)
def test_classify(status: int, outcome: AttemptOutcome) -> None:
    assert classify(status) is outcome


def test_retry_after() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120
    http_date = (now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(http_date, now=now) == 90
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None
    # Whatever a receiver sends, a number a timedelta can hold, or nothing.
    assert parse_retry_after("²", now=now) is None  # str.isdigit() says yes, float() says no
    assert parse_retry_after("9" * 30, now=now) == 86_400
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=now) == 86_400


async def test_whatever_a_receiver_answers_is_an_attempt_not_a_fault_of_ours(
    store: EndpointStore, signer: JwtSigner
) -> None:
    """After the POST, nothing raises: a raise would make Temporal send it again, for ever."""
    hostile = [
        Answer(429, b"", {"Retry-After": "\u00b2"}),
        Answer(503, b"", {"Retry-After": "9" * 40}),
        Answer(429, b"", {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}),
    ]
    with Receiver() as receiver:
        endpoint = _endpoint(store, receiver.script("/hostile", hostile))
        async with httpx.AsyncClient() as http:
            activities = DeliveryActivities(http, store, signer)
            # Interactive, as a manual retry is: the 503's Retry-After pauses the endpoint for the others.
            records = [
                await ActivityEnvironment().run(
                    activities.deliver_once, _request(endpoint, n, timeout=5, interactive=True)
                )
                for n in range(len(hostile))
            ]
    assert [r.status_code for r in records] == [429, 503, 429]
    assert [r.retry_after_seconds for r in records] == [None, 86_400, 86_400]


async def test_a_header_httpx_cannot_send_fails_the_attempt_and_sends_nothing(
    store: EndpointStore, signer: JwtSigner
) -> None:
    """A custom header saved before values had to be ASCII: a failed attempt that says what to change,
    not an internal error retried for ever."""
    with Receiver() as receiver:
        url = receiver.script("/never", [])
        _, record = await _attempt_with_headers(store, signer, url, {"X-Token": "caf\u20ac"}, timeout=5)
        assert receiver.requests("/never") == []
    assert record.outcome is AttemptOutcome.RETRYABLE
    assert record.error == "a custom header's value is not ASCII; change the endpoint's headers"


def test_what_earlier_tries_left_is_read_whatever_worker_left_it() -> None:
    # A worker of the version before left the reason alone.
    assert EarlierTries.from_details(3, ["the endpoint store could not be read"]) == EarlierTries(
        2, "the endpoint store could not be read"
    )
    # Two tries held back by the endpoint's limits, the last with its turn: no fault of ours.
    held = EarlierTries(throttled=1, throttled_by="its rate limit").notes(
        2, throttled_by="its limit", turn=5.0
    )
    earlier = EarlierTries.from_details(3, held)
    assert (earlier.faults, earlier.throttled, earlier.throttled_by, earlier.last_held, earlier.turn) == (
        0,
        2,
        "its limit",
        True,
        5.0,
    )
    # The try after those notes died with its worker: a fault, and the turn is not the next try's.
    lost = EarlierTries.from_details(4, held)
    assert (lost.faults, lost.fault, lost.last_held, lost.turn) == (1, lost.fault, False, None)
    assert lost.fault is not None and "did not finish" in lost.fault
