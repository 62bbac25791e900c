"""The chaos run's client (chaos/client.py): a burst that a Ctrl-C interrupts gives up at once."""

from __future__ import annotations

import threading
import time

import pytest

from chaos.client import Burst
from launcher import free_port
from tests.conftest import wait_for

DEADLINE = 600.0  # what a burst gives a refused event, as a long fault's does


def test_a_burst_interrupted_during_an_outage_stops_its_threads_long_before_its_deadline() -> None:
    """The API down, each thread sends its event again until the deadline: a Ctrl-C then kept `make
    chaos` from exiting for minutes, the interpreter waiting for those threads."""
    refusing = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with (
        pytest.raises(KeyboardInterrupt),
        Burst(refusing, "key", "outage", count=4, seconds=0.1, deadline_seconds=DEADLINE, threads=4) as burst,
    ):
        burst.start()
        wait_for(lambda: all(e.answers for e in burst.emissions), what="each event refused once")
        raise KeyboardInterrupt
    assert not [t.name for t in threading.enumerate() if t.name.startswith("chaos-client")]
    assert time.monotonic() - started < DEADLINE / 2
    assert not any(e.accepted for e in burst.emissions)
