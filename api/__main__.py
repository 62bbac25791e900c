"""`python -m api [uvicorn's options]`: the API process, uvicorn serving `api.main:create_app`.

The same as `uvicorn --factory api.main:create_app [options]` (every option of uvicorn's: `--host`,
`--port`, `--http`, …), but for how it ends. uvicorn stops gracefully on SIGTERM or SIGINT, then raises
the signal again for its default action: killed (unless it is a container's PID 1), and the request
spans the tracer still buffered lost with the process. Here it ends instead: the spans are exported, and
the process leaves with code 0 without the interpreter's finalization, which the Temporal SDK's own
threads can abort, as the worker does (core/temporal.py, `run_then_exit`).

One server process: with `--workers` or `--reload`, uvicorn serves from child processes of its own,
which end as bare uvicorn's do. Scale out with more containers or processes instead, each its own
`python -m api` (the image and compose run one).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from uvicorn.main import main as uvicorn_command

from core.temporal import run_then_exit
from core.tracing import shutdown_tracing

APP = ("--factory", "api.main:create_app")


def _stopped(signum: int, frame: FrameType | None) -> None:
    """A stop signal, before uvicorn has started or once it has shut down and hands the signal back."""
    raise SystemExit(0)


def main() -> None:
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    run_then_exit(
        lambda: uvicorn_command.main([*APP, *sys.argv[1:]], prog_name="python -m api"),
        before_leaving=shutdown_tracing,
    )


if __name__ == "__main__":
    main()
