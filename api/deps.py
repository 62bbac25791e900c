"""What routes receive by injection: settings, the Temporal client, the endpoint store, the tenant."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from temporalio.client import Client

from api.webhook_logs import WebhookLogs
from core.settings import Settings
from core.signing import JwtSigner
from core.store import EndpointStore


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    temporal: Client
    store: EndpointStore
    jwt_signer: JwtSigner
    logs: WebhookLogs


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_tenant(
    services: ServicesDep,
    x_api_key: Annotated[str | None, Header(description="Your API key")] = None,
) -> str:
    if x_api_key:
        for key, tenant in services.settings.tenants_by_key.items():
            if hmac.compare_digest(key.encode(), x_api_key.encode()):
                return tenant
    raise HTTPException(
        status_code=401,
        detail="missing or invalid x-api-key header",
        headers={"WWW-Authenticate": "ApiKey"},
    )


TenantDep = Annotated[str, Depends(get_tenant)]
