"""store/recoveries.py: the recoveries each tenant has running or starting, counted one request at a time
(the service asks Temporal which still run, service/recoveries.py; tests/test_limits.py goes through
real API replicas). On SQLite and on a real PostgreSQL, whose advisory lock is what counts requests one at a
time there."""

from __future__ import annotations

import threading

import pytest

from store.database import EndpointStore
from store.recoveries import RecoverySlots


@pytest.fixture
def slots(migrated_store: EndpointStore) -> RecoverySlots:
    """The slots of a store of the test's own (tests/conftest.py's `migrated_store`: SQLite, PostgreSQL)."""
    return RecoverySlots(migrated_store.engine)


def test_a_tenant_takes_at_most_its_slots_and_an_endpoint_takes_its_own_again(slots: RecoverySlots) -> None:
    one = slots.take("t", "ep_1", most=2, now=1.0)
    two = slots.take("t", "ep_2", most=2, now=2.0)
    assert one is not None and two is not None
    assert slots.take("t", "ep_3", most=2, now=3.0) is None  # one too many: nothing kept of it
    slots.started("t", one, "run-1")
    assert [(s.endpoint_id, s.reserved_at, s.run_id) for s in slots.held("t")] == [
        ("ep_1", 1.0, "run-1"),
        ("ep_2", 2.0, None),
    ]
    again = slots.take("t", "ep_2", most=2, now=4.0)  # its own again, taken anew
    assert again is not None and again.token != two.token
    assert slots.take("u", "ep_9", most=1) is not None  # another tenant's are its own
    slots.free("t", [one])
    assert slots.take("t", "ep_3", most=2, now=5.0) is not None
    assert [s.endpoint_id for s in slots.held("t")] == ["ep_2", "ep_3"]


def test_a_slot_taken_again_since_it_was_read_is_neither_freed_nor_marked_started(
    slots: RecoverySlots,
) -> None:
    """A request that read the slot of an endpoint's ended recovery frees it as it read it: the same
    endpoint's next recovery, which took it again meanwhile, keeps it."""
    read = slots.take("t", "ep_1", most=2, now=1.0)
    assert read is not None
    again = slots.take("t", "ep_1", most=2, now=2.0)
    slots.free("t", [read])
    slots.started("t", read, "run-old")
    assert slots.held("t") == [again]


def test_slots_taken_at_the_same_moment_are_counted_one_at_a_time(slots: RecoverySlots) -> None:
    """Twelve requests at once, each for an endpoint of its own, and a bound of three: three get one."""
    start = threading.Barrier(12)
    taken: list[bool] = []

    def take(n: int) -> None:
        start.wait()
        taken.append(slots.take("t", f"ep_{n}", most=3) is not None)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == [False] * 9 + [True] * 3
    assert len(slots.held("t")) == 3
