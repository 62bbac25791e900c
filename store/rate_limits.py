"""Token buckets at the API's door, shared by every API replica: one row per bucket in the store.

A limit kept in one API process would let N replicas accept N times as much, so each bucket is a row
that every replica takes tokens from with one atomic UPDATE. A bucket of `capacity` tokens refills at
`rate` a second: a client may spend `capacity` at once, then `rate` a second.

- `emit:{credential}`: the events one API key may emit (`WEBHOOKS_EMIT_RATE`, `WEBHOOKS_EMIT_BURST`);
- `test:{tenant}`: the test events one tenant may send (`WEBHOOKS_TEST_EVENTS_PER_MINUTE`).

(An endpoint's own rate limit is the workers', in store/flow.py.)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from store.tables import TokenBucketRow


@dataclass(frozen=True, slots=True)
class Quota:
    """What a bucket said: whether the request may go, and what the `RateLimit` headers tell a client."""

    allowed: bool
    remaining: int  # whole tokens left after this request
    reset: float  # seconds until the bucket is full again
    retry_after: float  # seconds until one token is there (0 when allowed)


class TokenBuckets:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect: Any = sqlite if engine.dialect.name == "sqlite" else postgresql

    def take(self, *keys: str, rate: float, capacity: float, now: float | None = None) -> Quota:
        """Take one token of every bucket of `keys` if each has one, else of none: one bucket kept under
        several names (an API key's under each encryption key, service/access.py's `key_ids`), which
        replicas that differ in their current key share, mid-rotation too. It is as full as its emptiest."""
        now = time.time() if now is None else now
        grown = TokenBucketRow.tokens + (now - TokenBucketRow.updated_at) * rate
        refilled = case((grown > capacity, capacity), else_=grown)
        if not keys:
            raise ValueError("a bucket needs a name")
        names = sorted(set(keys))  # locked in one order by every replica: they queue, never deadlock
        mine = TokenBucketRow.key.in_(names)
        state = select(TokenBucketRow.tokens, TokenBucketRow.updated_at).where(mine)
        with self._engine.connect() as conn:
            transaction = conn.begin()
            conn.execute(
                self._dialect.insert(TokenBucketRow)
                .values([{"key": name, "tokens": capacity, "updated_at": now} for name in names])
                .on_conflict_do_nothing(index_elements=["key"])
            )
            # Stops at the first bucket without a token, and takes back what it took before it.
            allowed = all(
                conn.execute(
                    update(TokenBucketRow)
                    .where(TokenBucketRow.key == name, refilled >= 1)
                    .values(tokens=refilled - 1, updated_at=now)
                ).rowcount
                for name in names
            )
            if allowed:
                rows = conn.execute(state).all()
                transaction.commit()
            else:
                transaction.rollback()
                rows = conn.execute(state).all()
        # Taken: the rows are as of now. Not taken: as of their last take, and grown since; a name
        # without a row (made, then taken back) is a full bucket.
        tokens = min(
            [min(capacity, float(row.tokens) + (now - float(row.updated_at)) * rate) for row in rows],
            default=capacity,
        )
        return Quota(
            allowed=allowed,
            remaining=max(0, math.floor(tokens)),
            reset=max(0.0, (capacity - tokens) / rate),
            retry_after=0.0 if allowed else max(0.001, (1 - tokens) / rate),
        )
