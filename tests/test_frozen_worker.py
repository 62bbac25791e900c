"""A worker frozen mid-POST, for less than the heartbeat timeout: found by `make chaos` (RELIABILITY.md).

The receiver answers in time, but the worker is stopped (SIGSTOP) before it reads the answer. When it
resumes, the attempt's own deadline, which ran on while the process was stopped, used to fire before the
answer waiting in the socket was read: the attempt was logged as the receiver's timeout and the next
attempt of the schedule sent the POST again, a fault of ours paid for with one of the receiver's
attempts. The attempt's deadline now does not count the time the worker stood still
(activities/stalls.py), and the answer is read.
"""

from __future__ import annotations

import time

import httpx

from launcher import Stack
from tests.conftest import create_endpoint, emit, settled, wait_delivery, wait_for
from tests.faults import paused
from tests.receiver import Answer, Receiver

# From the POST's arrival: longer than the test stack's attempt timeout (5 s), shorter than the heartbeat
# timeout (10 s) less the time between two heartbeats (2 s), after which Temporal would make the try
# again as lost. Counted from the arrival, not from when the test saw it: on a loaded machine that can be
# seconds later, and the freeze would then outlast the heartbeat timeout.
FREEZE_SECONDS = 6.5
ANSWER_AFTER = 4.0  # the receiver's answer to the POST, within the attempt timeout


def test_a_worker_frozen_mid_post_does_not_cost_the_receiver_an_attempt(
    stack: Stack, api: httpx.Client, receiver: Receiver
) -> None:
    # The receiver holds each POST for 4 s: long enough to freeze the worker while one is in flight, on a
    # loaded machine too (the test sees the POST a poll and a pause after it came).
    endpoint = create_endpoint(api, receiver.script("/frozen", [Answer(200, delay=ANSWER_AFTER)]))
    event_id = emit(api, "invoice.voided")["id"]
    [posted] = wait_for(lambda: receiver.requests("/frozen"), what="the POST to reach the receiver")
    with paused(stack.worker):
        frozen_at = time.time()
        time.sleep(max(0.0, posted.at + FREEZE_SECONDS - time.time()))
    # Frozen while the POST was in flight, or the test proves nothing about a freeze mid-POST.
    assert frozen_at < posted.at + ANSWER_AFTER, "the worker was frozen only after the answer came"
    final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled, timeout=90)
    assert final["status"] == "succeeded"
    # The receiver answered 200 after 4 s, within the 5 s timeout: one attempt, the one it answered.
    assert [a["status_code"] for a in final["attempts"]] == [200], final["attempts"]
    assert len(receiver.requests("/frozen")) == 1
