"""Endpoints: where a tenant's events go and how they are signed (the endpoint store, with its rules).

A URL is checked before it is saved (core/destinations.py: http(s), no credentials, and unless private
addresses are allowed, no loopback, private or reserved address in any spelling). A jwt endpoint has no
shared secret to show: its receivers verify with the tenant's public keys.
"""

from __future__ import annotations

import builtins
from typing import Any

from core.destinations import DestinationError, validate_url
from core.keys import jwks_path
from core.models import SignatureMethod
from core.store import Endpoint, EndpointStore
from service.boundary import boundary, in_store
from service.errors import Conflict, InvalidInput, NotFound

# Fields PATCH may set to null: only `event_types` (null: every type).
NULLABLE = frozenset({"event_types"})


class Endpoints:
    def __init__(self, store: EndpointStore, *, allow_private_urls: bool) -> None:
        self._store = store
        self._allow_private = allow_private_urls

    def _checked_url(self, url: str) -> str:
        try:
            return validate_url(url, allow_private=self._allow_private)
        except DestinationError as err:
            raise InvalidInput(str(err), field=("url",), value=url) from None

    @boundary
    async def create(
        self,
        tenant: str,
        *,
        url: str,
        signature_method: SignatureMethod,
        event_types: list[str] | None,
        description: str,
        enabled: bool,
    ) -> Endpoint:
        return await in_store(
            self._store.create,
            tenant,
            url=self._checked_url(url),
            signature_method=signature_method,
            event_types=event_types,
            description=description,
            enabled=enabled,
        )

    @boundary
    async def list(self, tenant: str) -> builtins.list[Endpoint]:
        return await in_store(self._store.for_tenant, tenant)

    @boundary
    async def get(self, tenant: str, endpoint_id: str) -> Endpoint:
        endpoint = await in_store(self._store.get, tenant, endpoint_id)
        if endpoint is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        return endpoint

    @boundary
    async def update(self, tenant: str, endpoint_id: str, changes: dict[str, Any]) -> Endpoint:
        """Apply `changes` (the fields a PATCH named); None only where a field may be null."""
        for name, value in changes.items():
            if value is None and name not in NULLABLE:
                raise InvalidInput(f"{name} cannot be null", field=(name,))
        if "url" in changes:
            changes = {**changes, "url": self._checked_url(changes["url"])}
        updated = await in_store(self._store.update, tenant, endpoint_id, **changes)
        if updated is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        return updated

    @boundary
    async def delete(self, tenant: str, endpoint_id: str) -> None:
        if not await in_store(self._store.delete, tenant, endpoint_id):
            raise NotFound(f"endpoint {endpoint_id} not found")

    @boundary
    async def secret(self, tenant: str, endpoint_id: str) -> str:
        endpoint = await self.get(tenant, endpoint_id)
        if endpoint.signature_method is not SignatureMethod.HMAC:
            raise Conflict(
                "this endpoint signs with jwt and has no shared secret; verify its deliveries with the keys "
                f"at {jwks_path(tenant)} and check that each token's aud is {endpoint.id}"
            )
        return endpoint.secret
