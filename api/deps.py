"""What routes receive by injection: the service's operations, settings, and the caller's tenant.

Each route depends on the one service it calls (`EventsDep`, `DeliveriesDep`, `EndpointsDep`,
`PortalDep`, `RecoveriesDep`), built once in `api.main`'s lifespan; tests swap them with
`app.dependency_overrides`.
Each /v1 route also declares the scope it needs, by the type of its tenant parameter (`ReadTenant`,
`ManageTenant`, `EmitTenant`, `PortalTenant`, below): the one place a route says who may call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from core.settings import Settings
from core.signing import JwtSigner
from domain.access import Principal, Scope
from service.access import PortalSessions, principal_for_key
from service.deliveries import Deliveries
from service.endpoints import Endpoints
from service.errors import Forbidden, Unauthenticated
from service.events import Events
from service.lanes import Lanes
from service.listen import Listening
from service.recoveries import Recoveries
from store.database import EndpointStore

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    temporal: Client
    store: EndpointStore
    jwt_signer: JwtSigner
    events: Events
    deliveries: Deliveries
    endpoints: Endpoints
    portal: PortalSessions
    recoveries: Recoveries
    lanes: Lanes
    listening: Listening


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _one_service(pick: Callable[[Services], T]) -> Callable[[Services], T]:
    """A dependency that gives routes one part of `Services`: its own function, so that a test can
    override that part alone (`app.dependency_overrides[get_events]`)."""

    def one_service(services: ServicesDep) -> T:
        return pick(services)

    return one_service


get_settings = _one_service(lambda services: services.settings)
get_events = _one_service(lambda services: services.events)
get_deliveries = _one_service(lambda services: services.deliveries)
get_endpoints = _one_service(lambda services: services.endpoints)
get_portal = _one_service(lambda services: services.portal)
get_recoveries = _one_service(lambda services: services.recoveries)
get_lanes = _one_service(lambda services: services.lanes)
get_listening = _one_service(lambda services: services.listening)

SettingsDep = Annotated[Settings, Depends(get_settings)]
EventsDep = Annotated[Events, Depends(get_events)]
DeliveriesDep = Annotated[Deliveries, Depends(get_deliveries)]
EndpointsDep = Annotated[Endpoints, Depends(get_endpoints)]
PortalDep = Annotated[PortalSessions, Depends(get_portal)]
RecoveriesDep = Annotated[Recoveries, Depends(get_recoveries)]
LanesDep = Annotated[Lanes, Depends(get_lanes)]
ListeningDep = Annotated[Listening, Depends(get_listening)]


UNAUTHORIZED = "missing or invalid x-api-key header"
AUTH_CHALLENGE = {"WWW-Authenticate": "ApiKey"}
# Receivers fetch a tenant's public keys without an API key; the old single JWKS answers 410 to anyone.
PUBLIC_V1_PATHS = frozenset({"/v1/webhooks/jwks.json"})
PUBLIC_V1_PREFIX = "/v1/webhooks/jwks/"
# Where api/request_guard.py leaves the caller it authenticated, in the request's scope["state"].
CALLER_STATE = "webhooks.caller"


def needs_key(path: str) -> bool:
    """Whether a request to `path` must carry a credential, an API key or a portal session token (every
    /v1 route but the public ones)."""
    if path in PUBLIC_V1_PATHS or (path.startswith(PUBLIC_V1_PREFIX) and path.endswith(".json")):
        return False
    return path == "/v1" or path.startswith("/v1/")


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def authenticate(
    settings: Settings,
    sessions: Callable[[], PortalSessions],
    api_key: str | None,
    authorization: str | None,
) -> Principal:
    """The caller: by its `x-api-key` when it sends one, else by its portal session token
    (`Authorization: Bearer`); `Unauthenticated` saying what was wrong. `sessions` is asked for only
    when a token is to be checked (that needs the store; a key needs only the settings)."""
    token = bearer_token(authorization)
    if api_key is None and token is not None:
        return await sessions().authenticate(token)
    principal = principal_for_key(settings, api_key)
    if principal is None:
        raise Unauthenticated(UNAUTHORIZED)
    return principal


# Documented as the schema's security schemes: /docs gets an "Authorize" button, and clients and tools
# that read the schema know every route but the JWKS needs one of them. Checked below, not by FastAPI.
API_KEY = APIKeyHeader(name="x-api-key", description="Your API key", auto_error=False)
PORTAL_SESSION = HTTPBearer(
    scheme_name="PortalSession",
    description="A portal session token, from POST /v1/portal/sessions (the dashboard's routes only)",
    auto_error=False,
)


async def get_caller(
    request: Request,
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Security(API_KEY)],
    _portal_session: Annotated[HTTPAuthorizationCredentials | None, Security(PORTAL_SESSION)],
) -> Principal:
    # api/request_guard.py has already authenticated the request before reading its body, and left the
    # caller here; checking again is what keeps routes safe when mounted without the guard.
    known = request.scope.get("state", {}).get(CALLER_STATE)
    if isinstance(known, Principal):
        return known
    authorization = request.headers.get("authorization")
    return await authenticate(settings, lambda: get_services(request).portal, x_api_key, authorization)


CallerDep = Annotated[Principal, Depends(get_caller)]

# How a route declares what it needs, in one place, its signature: a parameter typed with one of the
# aliases below (`tenant: ReadTenant`). A credential without the scope is 403, naming it. Every /v1
# route that takes a credential declares exactly one (tests/test_portal_api.py checks the table).
_DECLARED: dict[Callable[..., object], Scope | None] = {}


def _checked(caller: Principal, scope: Scope | None) -> Principal:
    if scope is not None and not caller.allows(scope):
        raise Forbidden(caller.lacks(scope))
    return caller


def _tenant_with(scope: Scope) -> Callable[..., str]:
    def tenant_with_scope(caller: CallerDep) -> str:
        return _checked(caller, scope).tenant

    _DECLARED[tenant_with_scope] = scope
    return tenant_with_scope


def _caller_with(scope: Scope | None) -> Callable[..., Principal]:
    def caller_with_scope(caller: CallerDep) -> Principal:
        return _checked(caller, scope)

    _DECLARED[caller_with_scope] = scope
    return caller_with_scope


ReadTenant = Annotated[str, Depends(_tenant_with(Scope.READ))]
"""The caller's tenant, if it may read: endpoints, events, deliveries, stats, event types."""
ManageTenant = Annotated[str, Depends(_tenant_with(Scope.MANAGE))]
"""The caller's tenant, if it may change endpoints, read their secrets, retry deliveries: change anything."""
EmitTenant = Annotated[str, Depends(_tenant_with(Scope.EMIT))]
"""The caller's tenant, if it may emit events (never a portal session)."""
PortalTenant = Annotated[str, Depends(_tenant_with(Scope.PORTAL))]
"""The caller's tenant, if it may open and revoke portal sessions (never a portal session)."""
PortalCaller = Annotated[Principal, Depends(_caller_with(Scope.PORTAL))]
"""The caller, if it may open portal sessions: its tenant, and the API key the session will live with."""
EmitCaller = Annotated[Principal, Depends(_caller_with(Scope.EMIT))]
"""The caller, if it may emit events: its tenant, and the credential its emissions are counted against."""
ManageCaller = Annotated[Principal, Depends(_caller_with(Scope.MANAGE))]
"""The caller, if it may manage: its tenant, and the credential a `webhooks listen` session belongs to."""
AnyCaller = Annotated[Principal, Depends(_caller_with(None))]
"""Any valid credential, whatever its scopes (`GET /v1/me`: who am I)."""


def _web_ui_links(caller: CallerDep) -> bool:
    return not caller.is_session


WebUiLinks = Annotated[bool, Depends(_web_ui_links)]
"""Whether answers may link into the Temporal Web UI: never for a portal session (a customer of a tenant
has no business with our Temporal host, namespace and workflow ids)."""


def declared_scopes(dependant: Dependant) -> list[Scope | None]:
    """The scopes a route's dependencies declare (None: any credential); empty if it takes none."""
    found: list[Scope | None] = []
    pending = [dependant]
    while pending:
        current = pending.pop()
        if current.call in _DECLARED:
            found.append(_DECLARED[current.call])
        pending.extend(current.dependencies)
    return found
