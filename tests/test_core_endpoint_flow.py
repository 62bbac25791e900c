"""An endpoint's flow on a real store, at chosen instants: leases, the adaptive window, Retry-After, the
rate limit and turns (store/flow.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.database import EndpointStore
from store.flow import MAX_PAUSE_SECONDS, MAX_TURN_AHEAD, EndpointFlow, Lease, Signal
from store.tables import EndpointLeaseRow

T0 = 1_800_000_000.0
LEASE = 30.0
FAST = 10_000.0  # a rate that holds back nothing a millisecond apart


@pytest.fixture
def flow(store: EndpointStore) -> EndpointFlow:
    return EndpointFlow(store.engine, max_concurrency=4)


def _fill(flow: EndpointFlow, n: int, *, at: float = T0) -> list[Lease]:
    """`n` attempts to ep_1 admitted a millisecond apart from `at`."""
    leases = [
        flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=at + i / 1000).lease for i in range(n)
    ]
    assert all(lease is not None for lease in leases)
    return [lease for lease in leases if lease is not None]


def _answered_429(flow: EndpointFlow, lease: Lease, *, retry_after: float) -> None:
    """Delivery d1's attempt on `lease` answered at T0 + 1 with a 429 whose Retry-After asks for
    `retry_after` seconds: the endpoint pauses that long."""
    flow.release(
        lease,
        signal=Signal.OVERLOAD,
        seconds=0.1,
        retry_after=retry_after,
        reason="HTTP 429",
        delivery_id="d1",
        now=T0 + 1,
    )


def test_at_most_the_limit_in_flight_and_each_refused_attempt_gets_its_own_turn(flow: EndpointFlow) -> None:
    leases = _fill(flow, 4)
    first = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + 0.01)
    second = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + 0.01)
    assert first.lease is None and second.lease is None
    assert first.reason == "the endpoint's limit of 4 attempts in flight at once"
    # Turns one after another, spaced by the mean attempt time (1 s until measured) over the limit.
    assert (first.retry_in, second.retry_in) == pytest.approx((0.25, 0.5))
    assert flow.admit("ep_2", "t", rate=FAST, lease_seconds=LEASE, now=T0).lease is not None  # not another
    flow.release(leases[0], signal=Signal.SUCCESS, seconds=0.1, now=T0 + 0.1)
    assert flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + 0.1).lease is not None


def test_a_lease_left_by_a_dead_worker_expires(flow: EndpointFlow, store: EndpointStore) -> None:
    _fill(flow, 4)
    assert flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + LEASE - 1).lease is None
    later = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + LEASE + 1).lease
    assert later is not None
    # The next attempt to end takes the expired ones with its own.
    flow.release(later, signal=Signal.SUCCESS, seconds=0.1, now=T0 + LEASE + 2)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(EndpointLeaseRow)).scalar_one() == 0


def test_the_try_that_replaces_a_lost_one_frees_its_lease(flow: EndpointFlow) -> None:
    """A worker that died holding every slot of the endpoint: the tries made again in place of its own
    need not wait for the leases to expire."""
    lost = [
        flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, lease_id=f"lost-{i}", now=T0 + i / 1000).lease
        for i in range(4)
    ]
    assert all(lost) and flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + 10).lease is None
    again = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, replaces="lost-0", now=T0 + 10)
    assert again.lease is not None
    assert flow.read(["ep_1"], now=T0 + 10)["ep_1"].in_flight == 4
    # Only its own: another endpoint's lease, or one that is not there, is left alone.
    assert flow.admit("ep_2", "t", rate=FAST, lease_seconds=LEASE, lease_id="other", now=T0).lease
    assert (
        flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, replaces="other", now=T0 + 10).lease is None
    )
    assert flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, replaces="gone", now=T0 + 10).lease is None
    assert flow.read(["ep_2"], now=T0 + 10)["ep_2"].in_flight == 1


def test_overload_halves_the_window_once_per_window_and_successes_raise_it_again(flow: EndpointFlow) -> None:
    leases = _fill(flow, 4)
    # Four attempts in flight all see the 503: one decrease, not four.
    for n, lease in enumerate(leases):
        flow.release(lease, signal=Signal.OVERLOAD, seconds=1, reason="HTTP 503", now=T0 + 1 + n)
    view = flow.read(["ep_1"], now=T0 + 5)["ep_1"]
    assert (view.limit, view.in_flight, view.lowered_by) == (2, 0, "HTTP 503")
    # An attempt that started after that decrease and still overloads it halves it again.
    [later] = _fill(flow, 1, at=T0 + 6)
    flow.release(later, signal=Signal.OVERLOAD, seconds=1, reason="timed out after 15 s", now=T0 + 7)
    assert flow.read(["ep_1"], now=T0 + 7)["ep_1"].limit == 1
    assert _fill(flow, 1, at=T0 + 8)
    assert flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + 8).lease is None
    # Additive increase: a window's worth of successes adds one, up to the maximum and no further.
    for n in range(40):
        [lease] = _fill(flow, 1, at=T0 + LEASE * 2 + n)
        flow.release(lease, signal=Signal.SUCCESS, seconds=0.1, now=T0 + LEASE * 2 + n)
    view = flow.read(["ep_1"], now=T0 + LEASE * 3)["ep_1"]
    assert (view.limit, view.lowered_by) == (4, None)


def test_a_retry_after_pauses_every_other_attempt_until_it_ends(flow: EndpointFlow) -> None:
    [lease] = _fill(flow, 1)
    _answered_429(flow, lease, retry_after=30)
    held = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, delivery_id="d2", now=T0 + 10)
    assert held.lease is None and held.reason is not None and "Retry-After" in held.reason
    assert held.retry_in > 20  # the pause's end, and a turn after it
    # Not the delivery that was answered (its schedule waits), nor an attempt someone waits for.
    assert flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, delivery_id="d1", now=T0 + 10).lease
    manual = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, honour_pause=False, now=T0 + 10.5)
    assert manual.lease is not None
    assert flow.read(["ep_1"], now=T0 + 10)["ep_1"].pause_reason == "HTTP 429"
    # A 2xx says the receiver takes deliveries again: the pause ends.
    flow.release(manual.lease, signal=Signal.SUCCESS, seconds=0.1, now=T0 + 11)
    assert flow.read(["ep_1"], now=T0 + 11)["ep_1"].paused_until is None
    assert flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, delivery_id="d3", now=T0 + 11).lease


def test_a_pause_lasts_a_day_at_most(flow: EndpointFlow) -> None:
    [lease] = _fill(flow, 1)
    flow.release(lease, signal=Signal.OVERLOAD, seconds=0.1, retry_after=10**9, reason="HTTP 503", now=T0)
    assert flow.read(["ep_1"], now=T0 + MAX_PAUSE_SECONDS - 1)["ep_1"].paused_until is not None
    assert flow.read(["ep_1"], now=T0 + MAX_PAUSE_SECONDS + 1)["ep_1"].paused_until is None


def test_the_rate_limit_spaces_attempts_and_hands_out_turns_one_apart(flow: EndpointFlow) -> None:
    assert flow.admit("ep_1", "t", rate=2, lease_seconds=LEASE, now=T0).lease is not None
    turns = [flow.admit("ep_1", "t", rate=2, lease_seconds=LEASE, now=T0) for _ in range(3)]
    assert all(t.lease is None and t.reason == "the endpoint's rate limit (2/s)" for t in turns)
    assert [t.retry_in for t in turns] == pytest.approx([0.5, 1.0, 1.5])
    assert flow.admit("ep_1", "t", rate=2, lease_seconds=LEASE, now=T0 + 0.5).lease is not None


def test_an_endpoint_never_sent_to_reads_as_free(tmp_path: Path, store: EndpointStore) -> None:
    view = EndpointFlow(store.engine, max_concurrency=8).read(["ep_new"])["ep_new"]
    assert (view.in_flight, view.limit, view.max_limit, view.paused_until) == (0, 8, 8, None)


def test_turns_are_estimates_checked_again_within_two_minutes(flow: EndpointFlow) -> None:
    _fill(flow, 4)
    # A backlog for a slow endpoint (the mean attempt time, 1 s, over its limit of 4: 0.25 s a turn).
    turns = [flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + 1).retry_in for _ in range(800)]
    assert turns[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert turns[400] == pytest.approx(100.25)
    # Past the horizon, each comes back within it, at times spread over its second half, not together.
    beyond = turns[480:]
    assert all(MAX_TURN_AHEAD / 2 <= t <= MAX_TURN_AHEAD for t in beyond)
    assert len({round(t) for t in beyond}) > 30


def test_an_endpoint_that_starts_to_hang_spaces_its_turns_by_its_oldest_attempt(flow: EndpointFlow) -> None:
    # Fast so far (10 ms an attempt), then four attempts in flight for 10 s: a turn is worth 10 s / 4.
    [lease] = _fill(flow, 1)
    for n in range(30):
        flow.release(lease, signal=Signal.SUCCESS, seconds=0.01, now=T0 + n)
        [lease] = _fill(flow, 1, at=T0 + n + 0.5)
    _fill(flow, 3, at=T0 + 30)
    held = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + 39.5)
    assert held.lease is None and held.retry_in == pytest.approx(10 / 4)


def test_a_2xx_in_flight_before_the_pause_does_not_end_it(flow: EndpointFlow) -> None:
    first, second = _fill(flow, 2)
    _answered_429(flow, first, retry_after=60)
    # Sent before the receiver asked for the pause, answered after: it says nothing of the pause.
    flow.release(second, signal=Signal.SUCCESS, seconds=1, now=T0 + 2)
    assert flow.read(["ep_1"], now=T0 + 3)["ep_1"].paused_until is not None


def test_a_lease_given_up_on_is_freed_and_a_deleted_endpoint_keeps_nothing(flow: EndpointFlow) -> None:
    admitted = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, lease_id="lease-1", now=T0)
    assert admitted.lease is not None and admitted.lease.id == "lease-1"
    flow.abandon("lease-1")
    assert flow.read(["ep_1"], now=T0)["ep_1"].in_flight == 0
    [lease] = _fill(flow, 1, at=T0 + 1)
    flow.forget("ep_1")
    flow.release(lease, signal=Signal.OVERLOAD, seconds=1, reason="HTTP 503", now=T0 + 2)
    assert flow.read(["ep_1"], now=T0 + 2)["ep_1"] == flow.read(["ep_never"], now=T0 + 2)["ep_never"]


def test_an_attempt_back_before_its_turn_keeps_it(flow: EndpointFlow) -> None:
    _fill(flow, 4)
    first = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + 1)
    second = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + 1)
    assert first.turn is not None and second.turn is not None and first.turn < second.turn
    # Back early, still no room: the same turn, and the queue has not grown behind it.
    again = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, turn=first.turn, now=T0 + 1.1)
    assert (again.lease, again.turn) == (None, first.turn)
    assert again.retry_in == pytest.approx(first.turn - (T0 + 1.1))
    third = flow.admit("ep_1", "t", rate=FAST, lease_seconds=LEASE, now=T0 + 1.1)
    assert third.turn is not None
    # Right behind the second: a turn's worth (the oldest attempt in flight, 1.1 s, over 4) later.
    assert third.turn - second.turn == pytest.approx(1.1 / 4)
