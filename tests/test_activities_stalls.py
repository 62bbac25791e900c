"""activities/stalls.py: a deadline that a stall of the worker's event loop does not use up."""

from __future__ import annotations

import asyncio
import time

import pytest

from activities.stalls import LoopStalls


async def _answer_after(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "answer"


async def test_an_answer_due_in_time_is_read_after_the_loop_stood_still() -> None:
    stalls = LoopStalls()
    waiting = asyncio.create_task(stalls.wait_for(asyncio.create_task(_answer_after(0.6)), 1.0))
    await asyncio.sleep(0.4)
    time.sleep(2.0)  # the loop stands still, as under SIGSTOP: every timer is due when it resumes
    assert await waiting == "answer"
    assert stalls.stalled_since(0.0) >= 1.0


async def test_without_a_stall_the_timeout_holds() -> None:
    stalls = LoopStalls()
    slow = asyncio.create_task(_answer_after(5))
    with pytest.raises(TimeoutError):
        await stalls.wait_for(slow, 0.3)
    assert slow.cancelled()


async def test_the_task_s_own_error_comes_through() -> None:
    async def refused() -> str:
        raise ConnectionRefusedError("nothing listens")

    with pytest.raises(ConnectionRefusedError):
        await LoopStalls().wait_for(asyncio.create_task(refused()), 1.0)
