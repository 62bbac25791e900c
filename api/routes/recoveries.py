"""Recoveries of an endpoint: its failed deliveries re-attempted, or the events it missed replayed, with
their progress, and cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ManageTenant, ReadTenant, RecoveriesDep, WebUiLinks
from api.schemas import RecoverCreate, RecoveryList, RecoveryPublic, ReplayCreate

router = APIRouter(prefix="/v1/webhooks/endpoints/{endpoint_id}", tags=["recoveries"])


@router.post("/recover", status_code=202)
async def recover_endpoint(
    endpoint_id: str, body: RecoverCreate, tenant: ManageTenant, recoveries: RecoveriesDep, links: WebUiLinks
) -> RecoveryPublic:
    """Re-attempt once each failed delivery of the endpoint created in the window, paced; logged `recover`."""
    view = await recoveries.recover(tenant, endpoint_id, since=body.since, until=body.until)
    return RecoveryPublic.of(view, links=links)


@router.post("/replay", status_code=202)
async def replay_endpoint(
    endpoint_id: str, body: ReplayCreate, tenant: ManageTenant, recoveries: RecoveriesDep, links: WebUiLinks
) -> RecoveryPublic:
    """Deliver to the endpoint the events of the window it never received, paced; marked `replay`. On an
    ordered endpoint, each key's events go to the end of its lane, oldest first, with new sequences."""
    view = await recoveries.replay(
        tenant, endpoint_id, since=body.since, until=body.until, event_types=body.event_types
    )
    return RecoveryPublic.of(view, links=links)


@router.get("/recoveries")
async def list_recoveries(
    endpoint_id: str,
    tenant: ReadTenant,
    recoveries: RecoveriesDep,
    links: WebUiLinks,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> RecoveryList:
    """The endpoint's recoveries and replays, the running one first, then the newest."""
    return RecoveryList.of(
        await recoveries.list(tenant, endpoint_id, limit=limit, cursor=cursor), links=links
    )


@router.get("/recoveries/{recovery_id}")
async def get_recovery(
    endpoint_id: str, recovery_id: str, tenant: ReadTenant, recoveries: RecoveriesDep, links: WebUiLinks
) -> RecoveryPublic:
    """One recovery's progress: done, failed, skipped, expired and left."""
    return RecoveryPublic.of(await recoveries.get(tenant, endpoint_id, recovery_id), links=links)


@router.delete("/recoveries/{recovery_id}", status_code=202)
async def cancel_recovery(
    endpoint_id: str, recovery_id: str, tenant: ManageTenant, recoveries: RecoveriesDep, links: WebUiLinks
) -> RecoveryPublic:
    """Cancel a running recovery: what is in flight finishes, nothing more is started."""
    return RecoveryPublic.of(await recoveries.cancel(tenant, endpoint_id, recovery_id), links=links)
