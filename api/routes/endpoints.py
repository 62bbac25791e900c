"""Webhook endpoints: where a tenant's events are delivered, and how they are signed."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response

from api.deps import EndpointsDep, EventsDep, LanesDep, ManageTenant, ReadTenant
from api.errors import RATE_LIMITED
from api.schemas import (
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointPublic,
    EndpointSecret,
    EndpointTestAccepted,
    EndpointTestCreate,
    EndpointUpdate,
    LanePublic,
    LaneSkip,
    SecretRotate,
    SecretRotated,
)
from domain.models import SignatureMethod

router = APIRouter(prefix="/v1/webhooks/endpoints", tags=["endpoints"])


@router.post("", status_code=201)
async def create_endpoint(
    body: EndpointCreate, tenant: ManageTenant, endpoints: EndpointsDep
) -> EndpointCreated:
    """Register an endpoint; the response holds its signing secret (hmac)."""
    view = await endpoints.create(tenant, **body.fields())
    hmac = view.endpoint.signature_method is SignatureMethod.HMAC
    return EndpointCreated(
        **EndpointPublic.of(view).model_dump(), secret=view.endpoint.secret if hmac else None
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
    return EndpointPublic.of(await endpoints.update(tenant, endpoint_id, body.changes()))


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: str, tenant: ManageTenant, endpoints: EndpointsDep) -> Response:
    """Delete an endpoint; its deliveries still scheduled stop at their next attempt."""
    await endpoints.delete(tenant, endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/secret/rotate")
async def rotate_endpoint_secret(
    endpoint_id: str, tenant: ManageTenant, endpoints: EndpointsDep, body: SecretRotate | None = None
) -> SecretRotated:
    """A new signing secret; until `grace_seconds` pass, deliveries carry the previous one's signature too."""
    body = body or SecretRotate()
    rotated = await endpoints.rotate_secret(
        tenant, endpoint_id, grace=timedelta(seconds=body.grace_seconds), secret=body.secret
    )
    return SecretRotated(secret=rotated.secret, previous_secret_expires_at=rotated.previous_secret_expires_at)


@router.get("/{endpoint_id}/secret")
async def get_endpoint_secret(
    endpoint_id: str, tenant: ManageTenant, endpoints: EndpointsDep
) -> EndpointSecret:
    """The signing secret of an hmac endpoint."""
    return EndpointSecret(secret=await endpoints.secret(tenant, endpoint_id))


@router.post("/{endpoint_id}/test", status_code=202, responses=RATE_LIMITED)
async def send_test_event(
    endpoint_id: str, tenant: ManageTenant, events: EventsDep, body: EndpointTestCreate | None = None
) -> EndpointTestAccepted:
    """Send the endpoint alone an example event of a type: a delivery like any other, marked test."""
    webhook_type = body.webhook_type if body else None
    if body is not None and body.object is not None:  # `webhooks trigger --set`
        sent = await events.send_test(tenant, endpoint_id, webhook_type, data_object=body.object)
    else:
        sent = await events.send_test(tenant, endpoint_id, webhook_type)
    return EndpointTestAccepted.of(sent)


@router.get("/{endpoint_id}/lane")
async def get_lane(
    endpoint_id: str, tenant: ReadTenant, lanes: LanesDep, ordering_key: str | None = None
) -> LanePublic:
    """An ordered endpoint's lane of one ordering key: its head, its last sequence, whether it is blocked."""
    return LanePublic.of(await lanes.get(tenant, endpoint_id, ordering_key))


@router.post("/{endpoint_id}/lane/skip")
async def skip_lane_head(
    endpoint_id: str, body: LaneSkip, tenant: ManageTenant, lanes: LanesDep
) -> LanePublic:
    """Move a blocked lane past its head, which stays failed; the lane's next event is sent."""
    return LanePublic.of(await lanes.skip(tenant, endpoint_id, body.ordering_key, body.delivery_id))
