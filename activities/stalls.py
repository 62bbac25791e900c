"""How long this process's event loop stood still: a deadline that a stall of ours does not eat.

A worker frozen (SIGSTOP, a VM paused, swap) or an event loop blocked stops every clock the loop reads
but not the wall: when it resumes, every timeout that was running has expired at once, and an answer the
receiver sent in time, waiting in the socket, is read after the timeout fired. That would log the
receiver's in-time answer as its timeout. `LoopStalls` ticks every `TICK` seconds and counts the time the
loop lost beyond that; `wait_for` gives a task its timeout plus whatever stall happened meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TypeVar

T = TypeVar("T")
TICK = 0.25
# A late tick up to this much is ordinary scheduling noise; beyond it, the loop stood still.
SLACK = 0.75


class LoopStalls:
    def __init__(self) -> None:
        self._stalls: list[tuple[float, float]] = []  # (start, end) in loop time, the recent ones
        self._last_tick: float | None = None
        self._ticker: asyncio.Task[None] | None = None

    def _ensure_ticking(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._last_tick = asyncio.get_running_loop().time()
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TICK)
            now = loop.time()
            assert self._last_tick is not None
            if now - self._last_tick > TICK + SLACK:
                self._stalls.append((self._last_tick + TICK, now))
                self._stalls = [s for s in self._stalls if now - s[1] < 3600]
            self._last_tick = now

    def stalled_since(self, start: float) -> float:
        """Seconds the loop stood still since `start` (loop time), the stall going on now included."""
        now = asyncio.get_running_loop().time()
        lost = sum(max(0.0, min(end, now) - max(begin, start)) for begin, end in self._stalls)
        if self._last_tick is not None and now - self._last_tick > TICK + SLACK:
            lost += now - max(self._last_tick + TICK, start)  # a stall its tick has not recorded yet
        return lost

    async def wait_for(self, task: asyncio.Task[T], timeout: float) -> T:
        """`task`'s result if it completes within `timeout` plus any stall meanwhile; else cancel it and
        raise TimeoutError."""
        self._ensure_ticking()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            while True:
                remaining = started + timeout + self.stalled_since(started) - loop.time()
                if remaining <= 0:
                    raise TimeoutError
                done, _ = await asyncio.wait({task}, timeout=remaining)
                if done:
                    return task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
