"""Endpoints: where a tenant's events go and how they are signed (the endpoint store, with its rules).

A URL is checked before it is saved (core/destinations.py: http(s), no credentials, and unless private
addresses are allowed, no loopback, private or reserved address in any spelling). A jwt endpoint has no
shared secret to show: its receivers verify with the tenant's public keys, the first of which is made
with the tenant's first jwt endpoint, so that it is in the JWKS before any delivery. Every endpoint comes
with its health (store/health.py); disabling one by hand tells the tenant (`webhook_endpoint.disabled`).
"""

from __future__ import annotations

import base64
import binascii
import builtins
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from core.crypto import looks_random
from core.destinations import DestinationError, validate_url
from core.signing import KeySource, generate_secret
from domain.models import SignatureMethod
from service.boundary import boundary, in_store
from service.errors import Conflict, InvalidInput, LimitReached, NotFound
from service.models import EndpointView
from store.database import Endpoint, EndpointStore, TooManyEndpoints
from store.flow import EndpointFlow
from store.health import EndpointHealth, Tell
from store.keys import jwks_path

# Fields PATCH may set to null: `event_types` (every type), `rate_limit_per_second` (the server's
# maximum, WEBHOOKS_ENDPOINT_MAX_RATE), `retry_schedule` (the service's), `headers` and `alert_emails`
# (none).
NULLABLE = frozenset({"event_types", "rate_limit_per_second", "retry_schedule", "headers", "alert_emails"})


def checked_secret(secret: str) -> str:
    """A secret supplied by the tenant (a migration from another provider): `whsec_` + base64 of 24-64."""
    body = secret.removeprefix("whsec_")
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):  # ValueError: not ASCII at all
        raw = b""
    if not secret.startswith("whsec_") or not 24 <= len(raw) <= 64:
        raise InvalidInput(
            "secret must be whsec_ followed by the base64 of 24 to 64 random bytes", field=("secret",)
        )
    if not looks_random(raw):
        raise InvalidInput(
            f"secret is not random: its {len(raw)} bytes take only {len(set(raw))} values. Leave it out "
            'and one is made, or make one with python3 -c "import base64, secrets; '
            "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\"",
            field=("secret",),
        )
    return secret


class Endpoints:
    def __init__(
        self,
        store: EndpointStore,
        *,
        allow_private_urls: bool,
        disable_after: timedelta,
        tell: Tell,
        keys: KeySource,
        max_per_tenant: int = 100,
        max_rate: float = 100.0,
        max_concurrency: int = 8,
        end_lanes: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        # Ends a deleted endpoint's ordered lanes (service/lanes.py, `Lanes.end`); never raises.
        self._end_lanes = end_lanes
        self._allow_private = allow_private_urls
        self._health = EndpointHealth(store.engine, disable_after=disable_after)
        self._flow = EndpointFlow(store.soft_engine, max_concurrency=max_concurrency)
        self._tell = tell
        self._keys = keys
        self._max_per_tenant = max_per_tenant
        self._max_rate = max_rate

    def _checked_rate(self, rate: float | None) -> None:
        if rate is not None and rate > self._max_rate:
            raise InvalidInput(
                f"rate_limit_per_second is at most {self._max_rate:g} here (WEBHOOKS_ENDPOINT_MAX_RATE); "
                "give a lower one, or null for that maximum",
                field=("rate_limit_per_second",),
                value=rate,
            )

    def _checked_url(self, url: str) -> str:
        try:
            return validate_url(url, allow_private=self._allow_private)
        except DestinationError as err:
            raise InvalidInput(str(err), field=("url",), value=url) from None

    async def _views(self, endpoints: builtins.list[Endpoint]) -> builtins.list[EndpointView]:
        now = datetime.now(UTC)
        health = await in_store(self._health.read, [(e.id, e.enabled) for e in endpoints], now=now)
        flow = await in_store(self._flow.read, [e.id for e in endpoints], now=now.timestamp())
        return [
            EndpointView(
                e,
                health[e.id],
                now,
                flow[e.id],
                min(e.rate_limit_per_second or self._max_rate, self._max_rate),
            )
            for e in endpoints
        ]

    async def _view(self, endpoint: Endpoint) -> EndpointView:
        [view] = await self._views([endpoint])
        return view

    async def _publish_key(self, tenant: str, method: SignatureMethod | None) -> None:
        """Before a jwt endpoint is saved, its tenant's first signing key, if it has none: a receiver set
        up for the endpoint then finds it in the JWKS before the first token arrives. (The JWKS route
        makes none: a fetch must not tell which tenants exist.)"""
        if method is SignatureMethod.JWT:
            await in_store(self._keys.published_keys, tenant, create=True)

    async def _endpoint(self, tenant: str, endpoint_id: str) -> Endpoint:
        endpoint = await in_store(self._store.get, tenant, endpoint_id)
        if endpoint is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        return endpoint

    @boundary
    async def create(self, tenant: str, **fields: Any) -> EndpointView:
        """A new endpoint (the fields of `EndpointStore.create`), its URL and rate limit checked first; one
        past the tenant's bound is refused."""
        self._checked_rate(fields.get("rate_limit_per_second"))
        url = self._checked_url(fields["url"])
        await self._publish_key(tenant, fields.get("signature_method"))
        try:
            endpoint = await in_store(
                self._store.create,
                tenant,
                **{**fields, "url": url},
                max_per_tenant=self._max_per_tenant,
            )
        except TooManyEndpoints as err:
            raise LimitReached(
                f"this account has {err.limit} endpoints, the most one may have "
                "(WEBHOOKS_MAX_ENDPOINTS_PER_TENANT); delete one it no longer uses, or send several event "
                "types to one endpoint",
                setting="WEBHOOKS_MAX_ENDPOINTS_PER_TENANT",
            ) from None
        return await self._view(endpoint)

    @boundary
    async def list(self, tenant: str) -> builtins.list[EndpointView]:
        return await self._views(await in_store(self._store.for_tenant, tenant))

    @boundary
    async def get(self, tenant: str, endpoint_id: str) -> EndpointView:
        return await self._view(await self._endpoint(tenant, endpoint_id))

    @boundary
    async def update(self, tenant: str, endpoint_id: str, changes: dict[str, Any]) -> EndpointView:
        """Apply `changes` (the fields a PATCH named); None only where a field may be null."""
        for name, value in changes.items():
            if value is None and name not in NULLABLE:
                raise InvalidInput(f"{name} cannot be null", field=(name,))
        if "url" in changes:
            changes = {**changes, "url": self._checked_url(changes["url"])}
        self._checked_rate(changes.get("rate_limit_per_second"))
        before = await self._endpoint(tenant, endpoint_id)
        await self._publish_key(tenant, changes.get("signature_method"))
        try:
            updated = await in_store(self._store.update, tenant, endpoint_id, **changes)
        except ValueError as err:  # the headers as the change leaves them could not be sent
            raise InvalidInput(str(err), field=("headers",)) from None
        if updated is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        if before.enabled and not updated.enabled:  # owed by the store's change: told now, or by a sweep
            await self._tell(tenant, endpoint_id)
        return await self._view(updated)

    @boundary
    async def delete(self, tenant: str, endpoint_id: str) -> None:
        if not await in_store(self._store.delete, tenant, endpoint_id):
            raise NotFound(f"endpoint {endpoint_id} not found")
        await in_store(self._flow.forget, endpoint_id)
        # After the delete, so that no lane told can find its endpoint still there. An endpoint made
        # unordered may still have lanes: those are told too.
        if self._end_lanes is not None:
            await self._end_lanes(tenant, endpoint_id)

    @boundary
    async def secret(self, tenant: str, endpoint_id: str) -> str:
        endpoint = await self._endpoint(tenant, endpoint_id)
        if endpoint.signature_method is not SignatureMethod.HMAC:
            raise Conflict(
                "this endpoint signs with jwt and has no shared secret; verify its deliveries with the keys "
                f"at {jwks_path(tenant)} and check that each token's aud is {endpoint.id}"
            )
        return endpoint.secret

    @boundary
    async def rotate_secret(
        self, tenant: str, endpoint_id: str, *, grace: timedelta, secret: str | None = None
    ) -> Endpoint:
        """A new secret (given, or made); the previous one keeps signing beside it for `grace`. A jwt
        endpoint has none to rotate: its tokens are signed with its tenant's keys."""
        new = checked_secret(secret) if secret is not None else generate_secret()
        if (await self._endpoint(tenant, endpoint_id)).signature_method is not SignatureMethod.HMAC:
            raise Conflict(
                "this endpoint signs with jwt and has no shared secret to rotate; its tokens are signed with "
                f"the keys at {jwks_path(tenant)}, which the operator rotates (`python -m cli.keys rotate`)"
            )
        rotated = await in_store(self._store.rotate_secret, tenant, endpoint_id, secret=new, grace=grace)
        if rotated is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        return rotated
