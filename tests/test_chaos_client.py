"""The chaos run's client (chaos/client.py): a burst sends every event when its block ends well, and gives
up at once when a Ctrl-C interrupts it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer

import pytest

from chaos.client import Burst
from launcher import free_port
from tests.conftest import wait_for
from tests.local_http import QuietHandler

DEADLINE = 600.0  # what a burst gives a refused event, as a long fault's does
# Far below the deadline, far above what stopping takes (the pause between two sends, 1 s, is cut short).
STOPPED_WITHIN = 30.0


@contextmanager
def accepting_api() -> Iterator[str]:
    """An API on 127.0.0.1 that accepts every event (202 and its `created_at`, as ours answers)."""

    class Accept(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.dumps({"created_at": datetime.now(UTC).isoformat()}).encode()
            self.answer(202, body, {"content-type": "application/json"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_burst_whose_block_ends_well_has_sent_every_event() -> None:
    with accepting_api() as url, Burst(url, "key", "ok", count=6, seconds=0.3, deadline_seconds=60) as burst:
        burst.start()  # and no `wait`: the block's end waits
    assert all(e.accepted for e in burst.emissions)


def test_a_burst_interrupted_during_an_outage_stops_its_threads_long_before_its_deadline() -> None:
    """The API down, each thread sends its event again until the deadline: a Ctrl-C then kept `make
    chaos` from exiting for minutes, the interpreter waiting for those threads."""
    refusing = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with (
        pytest.raises(KeyboardInterrupt),
        Burst(refusing, "key", "outage", count=4, seconds=0.1, deadline_seconds=DEADLINE, threads=4) as burst,
    ):
        burst.start()
        wait_for(lambda: all(e.answers for e in burst.emissions), what="each event refused once")
        interrupted = time.monotonic()
        raise KeyboardInterrupt
    assert time.monotonic() - interrupted < STOPPED_WITHIN  # not the deadline, nor a pause after pause
    assert not [t.name for t in threading.enumerate() if t.name.startswith("chaos-client")]
    assert not any(e.accepted for e in burst.emissions)
