"""An attempt to a listening endpoint (`webhooks listen`): handed to the session's CLI, completed later.

`deliver_once` signs the request exactly as for any endpoint, leaves it in the store for the session's
CLI with this try's task token (store/listen.py), and ends with `activity.raise_complete_async()`. The API
then hands it to the CLI on its long poll, heartbeats the try while it waits, and completes it with the
`AttemptRecord` of what the local server answered (service/listen.py). A try whose heartbeats stop (no
CLI polls, an API replica died) is made again by Temporal and replaces its hand-off; a session that ends
fails what it held as "listener gone", an attempt like any failed one: retried on the schedule, and open
to a manual retry.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity

from core.signing import JwtSigner, signature_headers
from domain.models import AttemptOutcome, AttemptRecord, DeliverRequest
from store.database import Endpoint, EndpointStore
from store.listen import ListenStore, handoff_id

# What an attempt to a listening endpoint says when no CLI holds its session: the log's words for it.
LISTENER_GONE = "listener gone: no `webhooks listen` session holds this endpoint now"
USER_AGENT = "flexprice-webhooks/1.0"
SEQUENCE_HEADER = "webhook-sequence"
STORE_TIMEOUT = 5.0  # as activities/delivery.py's: past it, the store counts as unavailable


def listener_gone(request: dict[str, Any], *, reason: str, started_at: datetime) -> AttemptRecord:
    """The record of a handed-off attempt whose session ended before its CLI answered."""
    return AttemptRecord(
        attempt=int(request["attempt"]),
        trigger=request["trigger"],
        started_at=started_at,
        duration_ms=max(0, round((datetime.now(UTC) - started_at).total_seconds() * 1000)),
        outcome=AttemptOutcome.RETRYABLE,
        error=f"listener gone: {reason}",
        body=kept_body(request),
    )


def kept_body(request: dict[str, Any]) -> str | None:
    """The body a handed-off attempt's record keeps: the delivery's own copy, kept by its first attempt
    (`AttemptRecord.body`); None for the others."""
    return str(request["body"]) if request.get("keeps_body") else None


class ListenHandoffs:
    """What `deliver_once` needs for a listening endpoint: the store's sessions, and how long a silent
    session lives."""

    def __init__(self, store: EndpointStore, jwt_signer: JwtSigner, *, session_timeout: timedelta) -> None:
        self._listen = ListenStore(store)
        self._jwt = jwt_signer
        self._timeout = session_timeout

    async def hand_off(self, request: DeliverRequest, endpoint: Endpoint, *, keeps_body: bool = False) -> str:
        """Hand the attempt to the endpoint's live session and complete it later (raises the SDK's
        complete-async signal); without one, the error to record (`LISTENER_GONE`). Store errors propagate
        (the caller makes them faults of ours). `keeps_body`: the record that completes it keeps the body
        (the delivery's first attempt). The request's body is read already."""
        body = request.body
        assert body is not None, "the body is read before the attempt is handed off"
        session = await asyncio.wait_for(
            asyncio.to_thread(self._listen.live_session, endpoint.id, timeout=self._timeout), STORE_TIMEOUT
        )
        if session is None:
            return LISTENER_GONE
        now = datetime.now(UTC)
        # In a thread: a jwt tenant's keys are read from the store now and then (store/keys.py).
        sign = asyncio.to_thread(
            signature_headers,
            method=endpoint.signature_method,
            msg_id=request.delivery_id,
            timestamp=int(now.timestamp()),
            body=body,
            secret=endpoint.secret,
            previous_secrets=endpoint.signing_secrets(now)[1:],
            jwt_signer=self._jwt,
            tenant=request.tenant,
            endpoint_id=endpoint.id,
        )
        headers = await asyncio.wait_for(sign, STORE_TIMEOUT)
        headers["content-type"] = "application/json"
        headers["user-agent"] = USER_AGENT
        if request.sequence is not None:
            headers[SEQUENCE_HEADER] = str(request.sequence)
        try:
            webhook_type = str(json.loads(body).get("webhook_type", ""))
        except (ValueError, AttributeError):
            webhook_type = ""
        info = activity.info()
        handed = {
            # The payload codec binds what completes the activity to its workflow (core/crypto.py).
            "workflow_id": info.workflow_id,
            "workflow_type": info.workflow_type,
            "activity_type": info.activity_type,
            "delivery_id": request.delivery_id,
            "endpoint_id": endpoint.id,
            "webhook_type": webhook_type,
            "attempt": request.attempt,
            "trigger": request.trigger.value,
            "timeout": request.timeout,
            "headers": headers,
            "body": body,
            "keeps_body": keeps_body,
        }
        handoff = handoff_id(request.delivery_id, request.attempt)
        token = info.task_token
        await asyncio.wait_for(
            asyncio.to_thread(self._listen.put, session, handoff, token, handed), STORE_TIMEOUT
        )
        activity.raise_complete_async()
