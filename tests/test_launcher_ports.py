"""launcher.start_on_fresh_ports: a stack of the tests, the bench or the chaos run, made again on fresh
ports when one of its processes dies while starting (a port another run took meanwhile). The stacks are
stand-ins: what is under test is the loop; every stack test starts real ones through it."""

from __future__ import annotations

from typing import cast

import pytest

from launcher import Stack, start_on_fresh_ports


class Starting:
    """A stack whose start dies or not, as it is told; what was done to it."""

    def __init__(self, dies: bool) -> None:
        self.dies = dies
        self.timeouts: list[float] = []
        self.stopped = False

    def start(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        if self.dies:
            raise RuntimeError("temporal exited with code 1")

    def stop(self) -> None:
        self.stopped = True


def test_a_stack_that_died_while_starting_is_stopped_and_made_again() -> None:
    made: list[Starting] = []

    def make() -> Stack:
        made.append(Starting(dies=len(made) < 2))
        return cast(Stack, made[-1])

    started = start_on_fresh_ports(make, timeout=90)
    assert cast(object, started) is made[2]
    assert [s.stopped for s in made] == [True, True, False]
    assert [s.timeouts for s in made] == [[90], [90], [90]]


def test_a_stack_that_dies_every_time_is_given_up_on_with_the_last_error() -> None:
    made: list[Starting] = []

    def make() -> Stack:
        made.append(Starting(dies=True))
        return cast(Stack, made[-1])

    with pytest.raises(RuntimeError, match="temporal exited with code 1"):
        start_on_fresh_ports(make, tries=3)
    assert len(made) == 3 and all(s.stopped for s in made)
