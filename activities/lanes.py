"""What an ordered lane (workflows/lane.py) asks of the outside world: telling the tenant it is blocked.

`webhook_endpoint.lane_blocked` goes the way every operational event goes: owed in the store's outbox
(store/health.py) in one transaction, then sent at once, or by the worker's sweep if Temporal or the store
cannot take it now. The notice's id names the endpoint and the moment the lane blocked, so a retried
activity owes it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import activity

from domain.models import LaneBlocked
from store.database import EndpointStore
from store.health import Transition, owe

STORE_TIMEOUT = 5.0


class LaneActivities:
    def __init__(self, store: EndpointStore, *, tell: Callable[[str, str], Awaitable[None]]) -> None:
        self._store = store
        self._tell = tell

    @activity.defn
    async def lane_blocked(self, blocked: LaneBlocked) -> None:
        """Owe `webhook_endpoint.lane_blocked` and send it (a fault of ours raises, and is retried)."""

        def write() -> None:
            with self._store.engine.begin() as conn:
                owe(
                    conn,
                    blocked.tenant,
                    blocked.endpoint_id,
                    Transition.LANE_BLOCKED,
                    blocked.at,
                    lane={
                        "ordering_key": blocked.ordering_key,
                        "head": {"delivery_id": blocked.delivery_id, "sequence": blocked.sequence},
                    },
                )

        await asyncio.wait_for(asyncio.to_thread(write), STORE_TIMEOUT)
        await self._tell(blocked.tenant, blocked.endpoint_id)
