"""Per-endpoint rate limits, shared by every worker: a token bucket per endpoint in the endpoint store.

A limiter per worker process would let N workers send N times the limit; the limit is the endpoint's,
so its bucket is one row that every worker takes tokens from with one atomic UPDATE. The bucket holds
at most one token: an endpoint limited to R per second gets at most R + 1 deliveries in any one-second
window (the burst allowance is that one), paced 1/R apart when busy.

Waiting for a token is not an attempt: `take` waits up to `wait` seconds, then says no, and the caller
tries again later without using up the receiver's schedule.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import Engine, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core.tables import RateBucketRow

CAPACITY = 1.0


def _refilled(rate: float, now: float) -> Any:
    """The bucket's tokens at `now`, as SQL (capped at CAPACITY)."""
    grown = RateBucketRow.tokens + (now - RateBucketRow.updated_at) * rate
    return case((grown > CAPACITY, CAPACITY), else_=grown)


class RateLimits:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def try_take(self, endpoint_id: str, rate: float) -> float:
        """Take a token if there is one: 0.0 then; else the seconds until one is due."""
        now = time.time()
        dialect = sqlite if self._engine.dialect.name == "sqlite" else postgresql
        with self._engine.begin() as conn:
            conn.execute(
                dialect.insert(RateBucketRow)
                .values(endpoint_id=endpoint_id, tokens=CAPACITY, updated_at=now)
                .on_conflict_do_nothing(index_elements=["endpoint_id"])
            )
            mine = RateBucketRow.endpoint_id == endpoint_id
            taken = conn.execute(
                update(RateBucketRow)
                .where(mine, _refilled(rate, now) >= 1)
                .values(tokens=_refilled(rate, now) - 1, updated_at=now)
            )
            if taken.rowcount:
                return 0.0
            tokens = conn.execute(select(_refilled(rate, now)).where(mine)).scalar_one()
        return max(0.001, (1 - float(tokens)) / rate)

    async def take(self, endpoint_id: str, rate: float, *, wait: float) -> bool:
        """Wait up to `wait` seconds for a token of the endpoint's bucket; whether one was taken."""
        deadline = time.monotonic() + wait
        while True:
            due = await asyncio.to_thread(self.try_take, endpoint_id, rate)
            if due == 0.0:
                return True
            if time.monotonic() + due > deadline:
                return False
            await asyncio.sleep(due)
