"""Webhook endpoints: where a tenant's events are delivered, and how they are signed."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import EndpointsDep, ManageTenant, ReadTenant
from api.schemas import (
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointPublic,
    EndpointSecret,
    EndpointUpdate,
)
from core.models import SignatureMethod

router = APIRouter(prefix="/v1/webhooks/endpoints", tags=["endpoints"])


@router.post("", status_code=201)
async def create_endpoint(
    body: EndpointCreate, tenant: ManageTenant, endpoints: EndpointsDep
) -> EndpointCreated:
    """Register an endpoint; the response holds its signing secret (hmac)."""
    endpoint = await endpoints.create(tenant, **body.model_dump())
    return EndpointCreated(
        **EndpointPublic.of(endpoint).model_dump(),
        secret=endpoint.secret if endpoint.signature_method is SignatureMethod.HMAC else None,
    )


@router.get("")
async def list_endpoints(tenant: ReadTenant, endpoints: EndpointsDep) -> EndpointList:
    """Every endpoint of your account, oldest first (secrets are never listed)."""
    return EndpointList(items=[EndpointPublic.of(e) for e in await endpoints.list(tenant)])


@router.get("/{endpoint_id}")
async def get_endpoint(endpoint_id: str, tenant: ReadTenant, endpoints: EndpointsDep) -> EndpointPublic:
    """One endpoint."""
    return EndpointPublic.of(await endpoints.get(tenant, endpoint_id))


@router.patch("/{endpoint_id}")
async def update_endpoint(
    endpoint_id: str, body: EndpointUpdate, tenant: ManageTenant, endpoints: EndpointsDep
) -> EndpointPublic:
    """Change an endpoint's URL, method, event types, description or enabled flag."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return EndpointPublic.of(await endpoints.update(tenant, endpoint_id, changes))


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: str, tenant: ManageTenant, endpoints: EndpointsDep) -> Response:
    """Delete an endpoint; its deliveries still scheduled stop at their next attempt."""
    await endpoints.delete(tenant, endpoint_id)
    return Response(status_code=204)


@router.get("/{endpoint_id}/secret")
async def get_endpoint_secret(
    endpoint_id: str, tenant: ManageTenant, endpoints: EndpointsDep
) -> EndpointSecret:
    """The signing secret of an hmac endpoint."""
    return EndpointSecret(secret=await endpoints.secret(tenant, endpoint_id))
