"""`webhooks listen`: a session, its long poll, the CLI's answers, and its end (service/listen.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import ListeningDep, ManageCaller
from api.schemas import (
    ListenAnswerCreate,
    ListenAnswered,
    ListenDelivery,
    ListenPoll,
    ListenSessionCreate,
    ListenSessionPublic,
)
from service.listen import MAX_WAIT, LocalAnswer

router = APIRouter(prefix="/v1/webhooks/listen", tags=["listen"])


@router.post("", status_code=201)
async def open_listen_session(
    body: ListenSessionCreate, caller: ManageCaller, listening: ListeningDep
) -> ListenSessionPublic:
    """Open a session: your credential's listening endpoint is enabled, and its signing secret returned."""
    session, endpoint = await listening.open(caller, event_types=body.event_types, forward_to=body.forward_to)
    return ListenSessionPublic(
        session_id=session.id,
        endpoint_id=endpoint.id,
        secret=endpoint.secret,
        event_types=endpoint.event_types,
        session_timeout_seconds=listening.session_timeout.total_seconds(),
    )


@router.post("/{session_id}/poll")
async def poll_listen_session(
    session_id: str,
    caller: ManageCaller,
    listening: ListeningDep,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description="seconds to wait for a delivery")] = 20.0,
) -> ListenPoll:
    """Wait up to `wait` seconds for deliveries to the session's endpoint, yours to POST and answer."""
    handoffs = await listening.poll(caller, session_id, wait=wait)
    return ListenPoll(
        deliveries=[
            ListenDelivery(
                id=h.id,
                delivery_id=h.request["delivery_id"],
                webhook_type=h.request["webhook_type"],
                attempt=h.request["attempt"],
                timeout=h.request["timeout"],
                headers=h.request["headers"],
                body=h.request["body"],
            )
            for h in handoffs
        ]
    )


@router.post("/{session_id}/answers/{delivery_key}")
async def answer_listen_delivery(
    session_id: str,
    delivery_key: str,
    body: ListenAnswerCreate,
    caller: ManageCaller,
    listening: ListeningDep,
) -> ListenAnswered:
    """Report what the local server answered: the attempt is logged with it, and retried if it failed."""
    record = await listening.answer(
        caller,
        session_id,
        delivery_key,
        LocalAnswer(
            status_code=body.status_code,
            duration_ms=body.duration_ms,
            body=body.body,
            headers=tuple(body.headers),
            status_line=body.status_line,
            error=body.error,
        ),
    )
    return ListenAnswered(outcome=record.outcome.value, status_code=record.status_code)


@router.delete("/{session_id}", status_code=204)
async def close_listen_session(session_id: str, caller: ManageCaller, listening: ListeningDep) -> Response:
    """End a session: its endpoint is disabled, and what it held fails as "listener gone"."""
    await listening.close(caller, session_id)
    return Response(status_code=204)
