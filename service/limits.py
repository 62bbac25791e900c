"""Bounds at the API's door: what one credential or tenant may ask for, shared by every API replica.

Each bound is a setting with a default (docs/delivery.md, "Fairness and limits"), and a request past it
gets a 4xx that names the bound and says how to go on:

- events one API key may emit: a token bucket of `WEBHOOKS_EMIT_BURST` events refilled at
  `WEBHOOKS_EMIT_RATE` a second, kept in the store so that two API processes share it; past it, 429 with
  `Retry-After`, and every answer carries the IETF httpapi draft's `RateLimit-Policy` and `RateLimit`;
- test events a tenant may send: `WEBHOOKS_TEST_EVENTS_PER_MINUTE` (429, `Retry-After`);
- endpoints a tenant may have, recoveries it may have running, deliveries one recovery may make: in
  service/endpoints.py and service/recoveries.py, with these messages.
"""

from __future__ import annotations

import math

from core.settings import Settings
from service.boundary import in_store
from service.errors import QuotaPolicy, RateLimited
from store.database import EndpointStore
from store.rate_limits import Quota, TokenBuckets


def _policy(name: str, quota: Quota, *, capacity: int, rate: float) -> QuotaPolicy:
    """The bucket as the draft's policy: its burst, per the seconds it takes to refill it (at least one),
    so that `RateLimit`'s remaining and reset, which count the bucket's tokens, read against it. A bucket
    smaller than its rate a second is said as the burst a second: slower than it allows, never faster."""
    return QuotaPolicy(
        name=name,
        quota=capacity,
        window=max(1, math.ceil(capacity / rate)),
        remaining=quota.remaining,
        reset=math.ceil(quota.reset),
    )


# The operator key at the codec's sign-in page: an operator types it a few times a day.
CODEC_SIGN_INS = 10
CODEC_SIGN_IN_SECONDS = 6


class DoorLimits:
    def __init__(self, store: EndpointStore, settings: Settings) -> None:
        self._buckets = TokenBuckets(store.soft_engine)
        self._settings = settings

    async def emission(self, credentials: tuple[str, ...]) -> QuotaPolicy:
        """Count one emission against the bucket of the credential named `credentials` (`Principal`'s);
        `RateLimited` when it is empty. What is left of it either way, for the answer's `RateLimit`
        headers."""
        rate, burst = self._settings.emit_rate, self._settings.emit_burst
        buckets = [f"emit:{credential}" for credential in credentials]
        quota = await in_store(self._buckets.take, *buckets, rate=rate, capacity=burst)
        policy = _policy("emit", quota, capacity=burst, rate=rate)
        if not quota.allowed:
            raise RateLimited(
                f"this API key emitted more than {burst} events at once and {rate:g} a second since "
                "(WEBHOOKS_EMIT_BURST, WEBHOOKS_EMIT_RATE); nothing was accepted: send it again after "
                "Retry-After, and pace emissions by the RateLimit header",
                retry_after=math.ceil(quota.retry_after),
                quota=policy,
            )
        return policy

    async def codec_sign_in(self, client: str) -> None:
        """Count one try of the operator key at `/codec/` from `client` (its address); `RateLimited` past
        CODEC_SIGN_INS at once, then one every CODEC_SIGN_IN_SECONDS: guessing the key takes forever."""
        rate = 1 / CODEC_SIGN_IN_SECONDS
        quota = await in_store(self._buckets.take, f"codec:{client}", rate=rate, capacity=CODEC_SIGN_INS)
        if not quota.allowed:
            raise RateLimited(
                f"{CODEC_SIGN_INS} tries of the operator key at once, then one every "
                f"{CODEC_SIGN_IN_SECONDS} seconds, is the most from one address: try again after "
                "Retry-After",
                retry_after=math.ceil(quota.retry_after),
            )

    async def test_event(self, tenant: str) -> None:
        """Count one test event of the tenant; `RateLimited` past the per-minute bound."""
        per_minute = self._settings.test_events_per_minute
        rate = per_minute / 60
        quota = await in_store(self._buckets.take, f"test:{tenant}", rate=rate, capacity=per_minute)
        if not quota.allowed:
            raise RateLimited(
                f"{per_minute} test events at once, then {per_minute} a minute, is the most a tenant may "
                "send (WEBHOOKS_TEST_EVENTS_PER_MINUTE); none was sent: send it again after Retry-After",
                retry_after=math.ceil(quota.retry_after),
                quota=_policy("test-events", quota, capacity=per_minute, rate=rate),
            )
