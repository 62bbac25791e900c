"""What routes receive by injection: the service's operations, settings, the tenant of the API key.

Each route depends on the one service it calls (`EventsDep`, `DeliveriesDep`, `EndpointsDep`,
`RecoveriesDep`), built once
in `api.main`'s lifespan; tests swap them with `app.dependency_overrides`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from temporalio.client import Client

from core.settings import Settings
from core.signing import JwtSigner
from core.store import EndpointStore
from service.deliveries import Deliveries
from service.endpoints import Endpoints
from service.events import Events
from service.recoveries import Recoveries


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    temporal: Client
    store: EndpointStore
    jwt_signer: JwtSigner
    events: Events
    deliveries: Deliveries
    endpoints: Endpoints
    recoveries: Recoveries


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_events(services: ServicesDep) -> Events:
    return services.events


def get_deliveries(services: ServicesDep) -> Deliveries:
    return services.deliveries


def get_endpoints(services: ServicesDep) -> Endpoints:
    return services.endpoints


def get_recoveries(services: ServicesDep) -> Recoveries:
    return services.recoveries


SettingsDep = Annotated[Settings, Depends(get_settings)]
EventsDep = Annotated[Events, Depends(get_events)]
DeliveriesDep = Annotated[Deliveries, Depends(get_deliveries)]
EndpointsDep = Annotated[Endpoints, Depends(get_endpoints)]
RecoveriesDep = Annotated[Recoveries, Depends(get_recoveries)]


UNAUTHORIZED = "missing or invalid x-api-key header"
AUTH_CHALLENGE = {"WWW-Authenticate": "ApiKey"}
# The only /v1 routes a caller reaches without a key: receivers fetch the public keys anonymously.
# Receivers fetch a tenant's public keys without an API key; the old single JWKS answers 410 to anyone.
PUBLIC_V1_PATHS = frozenset({"/v1/webhooks/jwks.json"})
PUBLIC_V1_PREFIX = "/v1/webhooks/jwks/"


def needs_key(path: str) -> bool:
    """Whether a request to `path` must carry a valid `x-api-key` (every /v1 route but the public ones)."""
    if path in PUBLIC_V1_PATHS or (path.startswith(PUBLIC_V1_PREFIX) and path.endswith(".json")):
        return False
    return path == "/v1" or path.startswith("/v1/")


def tenant_for_key(settings: Settings, x_api_key: str | None) -> str | None:
    """The tenant `x_api_key` belongs to, or None; keys are compared in constant time."""
    if x_api_key:
        for key, tenant in settings.tenants_by_key.items():
            if hmac.compare_digest(key.encode(), x_api_key.encode()):
                return tenant
    return None


# Documented as the schema's security scheme: /docs gets an "Authorize" button, and clients and tools
# that read the schema know every route but the JWKS needs it. Checked below, not by FastAPI (no 403).
API_KEY = APIKeyHeader(name="x-api-key", description="Your API key", auto_error=False)


def get_tenant(settings: SettingsDep, x_api_key: Annotated[str | None, Security(API_KEY)]) -> str:
    # api/request_guard.py has already refused a request without a valid key before reading its body;
    # this is what routes receive, and what keeps them safe when mounted without the guard.
    tenant = tenant_for_key(settings, x_api_key)
    if tenant is None:
        raise HTTPException(status_code=401, detail=UNAUTHORIZED, headers=AUTH_CHALLENGE)
    return tenant


TenantDep = Annotated[str, Depends(get_tenant)]
