"""Per-endpoint limits on attempts in flight, so that one slow endpoint cannot starve the others.

Every attempt of a worker shares one HTTP connection pool. Without a limit, an endpoint that hangs until
the timeout would soon hold every connection, and healthy endpoints' deliveries would queue behind it.
A gate per endpoint lets at most `limit` of its attempts hold a connection at once; the rest wait for
their turn. The caller bounds the wait: an attempt's deadline covers its time at the gate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class EndpointGates:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def slot(self, endpoint_id: str) -> AsyncIterator[None]:
        gate = self._gates.get(endpoint_id)
        if gate is None:
            gate = self._gates[endpoint_id] = asyncio.Semaphore(self.limit)
        self._users[endpoint_id] = self._users.get(endpoint_id, 0) + 1
        try:
            async with gate:
                yield
        finally:
            self._users[endpoint_id] -= 1
            if not self._users[endpoint_id]:  # forget idle endpoints: the map stays small
                del self._users[endpoint_id]
                del self._gates[endpoint_id]

    def in_use(self) -> int:
        """Endpoints with attempts waiting or in flight."""
        return len(self._gates)
