"""service/boundary.py: what a failed Temporal call means to the caller, for a read and for a change."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from core.crypto import LaterForm, MissingKey
from service.boundary import boundary, updated
from service.errors import CannotReadYet, Conflict, MayHaveBeenApplied, TemporalUnavailable, Unavailable


def _failing(status: RPCStatusCode, message: str) -> RPCError:
    return RPCError(message, status, b"")


class Service:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    @boundary
    async def read(self) -> None:
        raise self.error

    @boundary(changes_temporal=True)
    async def change(self) -> None:
        raise self.error

    @boundary(changes_temporal=True)
    def change_sync(self) -> None:
        raise self.error


async def test_an_unreachable_temporal_may_have_applied_a_change_but_did_nothing_for_a_read() -> None:
    # What the client says once a server died under it, whether or not its first try got through.
    service = Service(_failing(RPCStatusCode.UNAVAILABLE, "tcp connect error"))
    with pytest.raises(TemporalUnavailable, match="nothing changed, try again"):
        await service.read()
    with pytest.raises(MayHaveBeenApplied, match="may have been applied. Retry it with the same id"):
        await service.change()
    with pytest.raises(MayHaveBeenApplied):
        service.change_sync()


async def test_a_client_that_never_connected_sent_nothing_even_for_a_change() -> None:
    service = Service(RuntimeError("Failed client connect: connection refused"))
    with pytest.raises(TemporalUnavailable, match="nothing was accepted"):
        await service.change()
    with pytest.raises(TemporalUnavailable, match="nothing changed, try again"):
        await service.read()


@pytest.mark.parametrize("status", [RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED])
async def test_no_answer_in_time_may_have_applied_a_change_but_a_read_changed_nothing(
    status: RPCStatusCode,
) -> None:
    service = Service(_failing(status, "deadline"))
    with pytest.raises(MayHaveBeenApplied, match="may have been applied. Retry it with the same id"):
        await service.change()
    # A read applies nothing: "retry it with the same id" would have the caller think it might have.
    with pytest.raises(TemporalUnavailable, match="in time; nothing changed, try again") as read:
        await service.read()
    assert "may have been applied" not in read.value.message


async def _raising(error: BaseException) -> str:
    raise error


async def test_an_update_refused_by_the_workflow_is_a_conflict_with_its_reason() -> None:
    refused = WorkflowUpdateFailedError(ApplicationError("this delivery's retry window has ended"))
    with pytest.raises(Conflict, match="^this delivery's retry window has ended$"):
        await updated(_raising(refused), not_taken="read the log")
    # A validator's ValueError arrives typed: its reason alone, not "ValueError: …" (an attack session
    # read the Python class in a lane skip's 409).
    typed = WorkflowUpdateFailedError(ApplicationError("this lane is not blocked", type="ValueError"))
    with pytest.raises(Conflict, match="^this lane is not blocked$"):
        await updated(_raising(typed), not_taken="read the log")


async def test_an_update_no_worker_took_may_have_been_applied_and_says_what_to_read() -> None:
    with pytest.raises(MayHaveBeenApplied, match="^no worker took it; read the log first$"):
        await updated(
            _raising(WorkflowUpdateRPCTimeoutOrCancelledError()),
            not_taken="no worker took it; read the log first",
        )


async def test_an_update_s_other_rpc_errors_are_its_caller_s_and_its_answer_passes_through() -> None:
    with pytest.raises(RPCError):
        await updated(_raising(_failing(RPCStatusCode.NOT_FOUND, "closed")), not_taken="")

    async def answered() -> str:
        return "succeeded"

    assert await updated(answered(), not_taken="") == "succeeded"


@pytest.mark.parametrize(
    "error",
    [
        MissingKey("encrypted with key 'k2', which is not in WEBHOOKS_ENCRYPTION_KEYS"),
        LaterForm("a payload of form '2', which a later version wrote: this one reads none"),
    ],
)
async def test_data_this_process_cannot_read_yet_is_unavailable_for_now_not_a_server_error(
    error: Exception,
) -> None:
    """Mid-rotation or mid-upgrade, an API process may meet a payload sealed with a key it lacks, or in a
    later version's form: the data is kept, and another process, or this one later, reads it. A 503 that
    says to try again, not a 500; the key's id is the operator's to read in the log, not the client's."""
    with pytest.raises(CannotReadYet, match="nothing is lost; try again") as read:
        await Service(error).read()
    # What could not be read may be Temporal's answer to a change it made (a manual retry's, a cancel's).
    with pytest.raises(CannotReadYet, match="may have been applied. Retry it with the same id") as change:
        await Service(error).change()
    for raised in (read, change):
        assert "k2" not in raised.value.message and "WEBHOOKS_" not in raised.value.message
        assert isinstance(raised.value, Unavailable)
