"""Webhook endpoints: where a tenant's events are delivered, and how they are signed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response
from fastapi.exceptions import RequestValidationError

from api.deps import ServicesDep, TenantDep
from api.routes.system import jwks_path
from api.schemas import (
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointPublic,
    EndpointSecret,
    EndpointUpdate,
)
from core.destinations import DestinationError, validate_url
from core.models import SignatureMethod
from core.store import Endpoint

router = APIRouter(prefix="/v1/webhooks/endpoints", tags=["endpoints"])


def checked_url(url: str, *, allow_private: bool) -> str:
    try:
        return validate_url(url, allow_private=allow_private)
    except DestinationError as err:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "url"), "msg": str(err), "input": url}]
        ) from None


def found(endpoint: Endpoint | None, endpoint_id: str) -> Endpoint:
    if endpoint is None:
        raise HTTPException(404, f"endpoint {endpoint_id} not found")
    return endpoint


@router.post("", status_code=201)
def create_endpoint(body: EndpointCreate, tenant: TenantDep, services: ServicesDep) -> EndpointCreated:
    """Register an endpoint; the response holds its signing secret (hmac)."""
    endpoint = services.store.create(
        tenant,
        url=checked_url(body.url, allow_private=services.settings.allow_private_urls),
        signature_method=body.signature_method,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    return EndpointCreated(
        **EndpointPublic.of(endpoint).model_dump(),
        secret=endpoint.secret if endpoint.signature_method is SignatureMethod.HMAC else None,
    )


@router.get("")
def list_endpoints(tenant: TenantDep, services: ServicesDep) -> EndpointList:
    """Every endpoint of your account, oldest first (secrets are never listed)."""
    return EndpointList(items=[EndpointPublic.of(e) for e in services.store.for_tenant(tenant)])


@router.get("/{endpoint_id}")
def get_endpoint(endpoint_id: str, tenant: TenantDep, services: ServicesDep) -> EndpointPublic:
    """One endpoint."""
    return EndpointPublic.of(found(services.store.get(tenant, endpoint_id), endpoint_id))


@router.patch("/{endpoint_id}")
def update_endpoint(
    endpoint_id: str, body: EndpointUpdate, tenant: TenantDep, services: ServicesDep
) -> EndpointPublic:
    """Change an endpoint's URL, method, event types, description or enabled flag."""
    changes: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None and name != "event_types":
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body", name),
                        "msg": f"{name} cannot be null",
                        "input": None,
                    }
                ]
            )
        changes[name] = value
    if "url" in changes:
        changes["url"] = checked_url(changes["url"], allow_private=services.settings.allow_private_urls)
    return EndpointPublic.of(found(services.store.update(tenant, endpoint_id, **changes), endpoint_id))


@router.delete("/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: str, tenant: TenantDep, services: ServicesDep) -> Response:
    """Delete an endpoint; its deliveries still scheduled stop at their next attempt."""
    if not services.store.delete(tenant, endpoint_id):
        raise HTTPException(404, f"endpoint {endpoint_id} not found")
    return Response(status_code=204)


@router.get("/{endpoint_id}/secret")
def get_endpoint_secret(endpoint_id: str, tenant: TenantDep, services: ServicesDep) -> EndpointSecret:
    """The signing secret of an hmac endpoint."""
    endpoint = found(services.store.get(tenant, endpoint_id), endpoint_id)
    if endpoint.signature_method is not SignatureMethod.HMAC:
        raise HTTPException(
            409,
            "this endpoint signs with jwt and has no shared secret; verify its deliveries with the keys "
            f"at {jwks_path(tenant)} and check that each token's aud is {endpoint.id}",
        )
    return EndpointSecret(secret=endpoint.secret)
