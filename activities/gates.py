"""Per-endpoint limits on attempts in flight, so that one slow endpoint cannot starve the others.

Every attempt of a worker shares one HTTP connection pool. Without a limit, an endpoint that hangs until
the timeout would soon hold every connection, and healthy endpoints' deliveries would queue behind it.
A gate per endpoint lets at most `limit` of its attempts hold a connection at once; the rest wait for
their turn, up to a bound: an attempt that gets no slot in time is not made (`NoSlot`), and the caller
tries again later, so a POST never starts with part of its timeout already spent at the gate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class NoSlot(Exception):
    """No slot of the endpoint's gate freed up within the wait allowed."""


class EndpointGates:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def slot(self, endpoint_id: str, *, wait: float) -> AsyncIterator[None]:
        """Hold one of the endpoint's slots for the block; `NoSlot` if none frees up within `wait` s."""
        gate = self._gates.get(endpoint_id)
        if gate is None:
            gate = self._gates[endpoint_id] = asyncio.Semaphore(self.limit)
        self._users[endpoint_id] = self._users.get(endpoint_id, 0) + 1
        try:
            try:
                async with asyncio.timeout(wait):
                    await gate.acquire()
            except TimeoutError:
                raise NoSlot() from None
            try:
                yield
            finally:
                gate.release()
        finally:
            self._users[endpoint_id] -= 1
            if not self._users[endpoint_id]:  # forget idle endpoints: the map stays small
                del self._users[endpoint_id]
                del self._gates[endpoint_id]

    def in_use(self) -> int:
        """Endpoints with attempts waiting or in flight."""
        return len(self._gates)
