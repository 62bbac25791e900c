"""store/rate_limits.py: token buckets kept in the store, one bucket under several names (an API key's
under each encryption key), on SQLite and on a real PostgreSQL, whose row locks are what replicas meet.
tests/test_limits.py goes through real API replicas; tests/test_key_rotation.py through replicas that
differ in their current key."""

from __future__ import annotations

import threading

import pytest

from store.database import EndpointStore
from store.rate_limits import TokenBuckets

# So slow that no token comes back within a test: every count below is exact.
RATE = 1e-6


@pytest.fixture
def buckets(migrated_store: EndpointStore) -> TokenBuckets:
    """The buckets of a store of the test's own (tests/conftest.py's `migrated_store`: SQLite, PostgreSQL)."""
    return TokenBuckets(migrated_store.engine)


def test_a_bucket_gives_its_capacity_then_says_when_the_next_token_comes(buckets: TokenBuckets) -> None:
    first, second = (buckets.take("emit:a", rate=0.5, capacity=2, now=100.0) for _ in range(2))
    assert (first.allowed, first.remaining, second.allowed, second.remaining) == (True, 1, True, 0)
    refused = buckets.take("emit:a", rate=0.5, capacity=2, now=100.0)
    assert (refused.allowed, refused.remaining, refused.retry_after, refused.reset) == (False, 0, 2.0, 4.0)
    assert buckets.take("emit:a", rate=0.5, capacity=2, now=102.0).allowed  # a token a 2 s


def test_a_bucket_under_two_names_is_as_full_as_its_emptiest_and_a_refusal_takes_nothing(
    buckets: TokenBuckets,
) -> None:
    """A replica with the old current key counts under one name; one with the new key first, under both
    (its own first): together they spend one bucket of 2, not two."""
    assert buckets.take("emit:old", rate=RATE, capacity=2).remaining == 1
    assert buckets.take("emit:new", "emit:old", rate=RATE, capacity=2).remaining == 0
    refused = buckets.take("emit:new", "emit:old", rate=RATE, capacity=2)
    assert not refused.allowed and refused.remaining == 0
    # The refusal took nothing of `emit:new`, which has one token left; a name never used is full.
    assert buckets.take("emit:new", rate=RATE, capacity=2).allowed
    assert buckets.take("emit:third", "emit:new", rate=RATE, capacity=2).allowed is False
    assert buckets.take("emit:third", rate=RATE, capacity=2).remaining == 1


def test_replicas_that_name_a_bucket_in_either_order_share_it_and_never_deadlock(
    buckets: TokenBuckets,
) -> None:
    """Mid-rotation, one replica lists the new key first and another second: 40 takes at once, half in
    each order, give exactly the bucket's 10 tokens, and none fails on a lock the other holds (a deadlock)."""
    start = threading.Barrier(40)
    allowed: list[bool] = []
    errors: list[BaseException] = []

    def take(names: tuple[str, str]) -> None:
        start.wait()
        try:
            allowed.append(buckets.take(*names, rate=RATE, capacity=10).allowed)
        except BaseException as err:  # noqa: BLE001 - counted, and the test fails on it
            errors.append(err)

    orders = [("emit:k1", "emit:k2"), ("emit:k2", "emit:k1")] * 20
    threads = [threading.Thread(target=take, args=(names,)) for names in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(allowed) == 40
    assert allowed.count(True) == 10
