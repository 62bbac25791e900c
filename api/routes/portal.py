"""Portal sessions: the dashboard, embedded in the tenant's own product, without an API key in the browser.

The product's backend opens a session with its API key (the `portal` scope) and hands the `url` (or the
token) to the browser; the session can do what the dashboard does for that tenant, never emit, never
open another session, and ends at `expires_at` or when revoked.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import PortalCaller, PortalDep, PortalTenant, SettingsDep
from api.schemas import AppearancePublic, ErrorPublic, PortalSessionCreate, PortalSessionPublic

router = APIRouter(prefix="/v1/portal/sessions", tags=["portal"])


@router.post("", status_code=201)
def open_session(
    request: Request,
    caller: PortalCaller,
    portal: PortalDep,
    settings: SettingsDep,
    body: PortalSessionCreate | None = None,
) -> PortalSessionPublic:
    """Open a dashboard session for your account: its token, and the dashboard's URL signed in with it."""
    asked = body or PortalSessionCreate()
    opened = portal.open(
        caller,
        expires_in=asked.expires_in,
        read_only=asked.read_only,
        appearance=asked.appearance.to_domain() if asked.appearance else None,
    )
    # The address browsers know, which the backend calling here may not use (an internal name, say).
    base = settings.public_api_url or str(request.base_url).rstrip("/")
    # In the fragment, which browsers never send to a server nor put in a Referer.
    url = f"{base}/dashboard/#session={opened.token}"
    return PortalSessionPublic(
        id=opened.id,
        token=opened.token,
        url=url,
        expires_at=opened.expires_at,
        read_only=opened.read_only,
        appearance=AppearancePublic.of(opened.appearance),
    )


@router.delete(
    "/{session_id}",
    status_code=204,
    responses={404: {"model": ErrorPublic, "description": "Not a session of yours"}},
)
async def revoke_session(session_id: str, tenant: PortalTenant, portal: PortalDep) -> Response:
    """End one of your sessions now (any replica refuses its token from then on)."""
    await portal.revoke(tenant, session_id)
    return Response(status_code=204)
