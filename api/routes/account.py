"""Who the caller is: the tenant and scopes of an API key or a portal session, for the dashboard."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AnyCaller
from api.schemas import AppearancePublic, MePublic, SessionPublic
from domain.access import Scope
from store.keys import jwks_path

router = APIRouter(prefix="/v1", tags=["account"])


@router.get("/me")
def get_me(caller: AnyCaller) -> MePublic:
    """The tenant your credential belongs to, what it may do, its session if it is one, and your JWKS."""
    session = None
    if caller.session_id is not None and caller.expires_at is not None:
        session = SessionPublic(
            id=caller.session_id,
            expires_at=caller.expires_at,
            appearance=AppearancePublic.of(caller.appearance),
        )
    return MePublic(
        tenant=caller.tenant,
        jwks_path=jwks_path(caller.tenant),
        scopes=[s for s in Scope if caller.allows(s)],
        session=session,
    )
