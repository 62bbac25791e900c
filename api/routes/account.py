"""Who the caller is: the tenant an API key belongs to, for the dashboard's sign-in."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import TenantDep
from api.schemas import MePublic
from core.keys import jwks_path

router = APIRouter(prefix="/v1", tags=["account"])


@router.get("/me")
def get_me(tenant: TenantDep) -> MePublic:
    """The tenant your API key belongs to (401 for a missing or wrong key), and its JWKS."""
    return MePublic(tenant=tenant, jwks_path=jwks_path(tenant))
