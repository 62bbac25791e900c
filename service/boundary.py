"""Where the service meets Temporal and the store: their errors become the service's own (errors.py).

`@boundary` on a public service method: a Temporal call that timed out may have been applied (the client's
own `rpc_timeout` ends a call as CANCELLED, Temporal's deadline as DEADLINE_EXCEEDED), and the store's
errors mean it is unavailable. Anything else is a bug and is left to propagate.

UNAVAILABLE does not prove that nothing was done: the connection may break after Temporal took the request
(a server killed mid-call), and the client retries such calls itself within the timeout, so the last
error ("tcp connect error") may follow a first try that was applied. A method that changes something in
Temporal (`@boundary(changes_temporal=True)`: a start, an update, a cancel) answers "may have been applied"
then; one that only reads says that nothing changed, whether Temporal timed out or broke the connection
(a read applies nothing), and to try again. A client that never connected sent nothing.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, cast, overload

from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import FailureError
from temporalio.service import RPCError

from core.crypto import NotYetReadable
from core.logs import FIELDS
from core.temporal import is_timeout, is_unreachable
from service.errors import (
    CannotReadYet,
    Conflict,
    MayHaveBeenApplied,
    StoreUnavailable,
    TemporalUnavailable,
    UpstreamRefused,
)

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
# As the worker's attempts do: a store that does not answer in this long is unavailable (SQLite waits
# about ten seconds for a lock before it says so, twice for some requests).
STORE_TIMEOUT_SECONDS = 5.0
TIMED_OUT = "Temporal did not answer in time; the request may have been applied. Retry it with the same id"
READ_TIMED_OUT = "Temporal did not answer in time; nothing changed, try again"
READ_LOST = "Temporal is unavailable; nothing changed, try again"
LOST = (
    "Temporal is unavailable or the connection broke; the request may have been applied. "
    "Retry it with the same id"
)


@contextmanager
def translated(*, changes_temporal: bool = False) -> Iterator[None]:
    try:
        yield
    except RPCError as err:
        if is_timeout(err):
            if changes_temporal:
                raise MayHaveBeenApplied(TIMED_OUT) from err
            raise TemporalUnavailable(READ_TIMED_OUT) from err
        if is_unreachable(err):
            if changes_temporal:
                raise MayHaveBeenApplied(LOST) from err
            raise TemporalUnavailable(READ_LOST) from err
        raise UpstreamRefused(f"Temporal refused the request: {err.message}") from err
    except RuntimeError as err:
        if is_unreachable(err):  # a lazy client that could not connect
            raise (TemporalUnavailable() if changes_temporal else TemporalUnavailable(READ_LOST)) from err
        raise
    except SQLAlchemyError as err:
        raise StoreUnavailable() from err
    except NotYetReadable as err:
        # Which key or form is the operator's to read, not the client's.
        log.warning("cannot read yet", extra={FIELDS: {"error": str(err)}})
        # What could not be read may be the answer to a change already made.
        raise CannotReadYet(may_have_been_applied=changes_temporal) from err


async def updated(update: Awaitable[R], *, not_taken: str) -> R:
    """The answer of `update` (a workflow update's call), or its failure as the service's: refused by the
    workflow (its validator or its handler) is a `Conflict` with the workflow's reason; not taken by a worker
    within the call's timeout is `MayHaveBeenApplied(not_taken)`, where `not_taken` says what to read before
    asking again, since it may still be applied when a worker is back. An `RPCError` is the caller's."""
    try:
        return await update
    except WorkflowUpdateFailedError as err:
        # The workflow's own words: an exception of its arrives typed, and its str() names the Python class.
        cause = err.cause
        raise Conflict(cause.message if isinstance(cause, FailureError) else str(cause or err)) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise MayHaveBeenApplied(not_taken) from None


async def in_store(call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`call` run in a thread, within `STORE_TIMEOUT_SECONDS`, else `StoreUnavailable` (the thread is left
    to finish on its own: a hung database holds it, not the request)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(call, *args, **kwargs), STORE_TIMEOUT_SECONDS)
    except TimeoutError:
        raise StoreUnavailable() from None


@overload
def boundary(method: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def boundary(*, changes_temporal: bool) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def boundary(method: Callable[P, R] | None = None, /, *, changes_temporal: bool = False) -> Any:
    """Translate the errors of Temporal and the store raised by `method` (sync or async);
    `changes_temporal` for a method that starts, updates or cancels something in Temporal."""
    if method is None:
        return functools.partial(_boundary, changes_temporal=changes_temporal)
    return _boundary(method, changes_temporal=changes_temporal)


def _boundary(method: Callable[P, R], *, changes_temporal: bool) -> Callable[P, R]:
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def translate_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            with translated(changes_temporal=changes_temporal):
                return await method(*args, **kwargs)

        return cast(Callable[P, R], translate_async)

    @functools.wraps(method)
    def translate(*args: P.args, **kwargs: P.kwargs) -> R:
        with translated(changes_temporal=changes_temporal):
            return method(*args, **kwargs)

    return translate
