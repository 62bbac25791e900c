"""The FastAPI application, which `python -m api` serves (api/__main__.py; `uvicorn --factory
api.main:create_app` serves it too, but loses the last spans when stopped).

The Temporal client, the endpoint store and the JWT signer (each tenant's keys) are made once in
`lifespan` and reached by routes through `api/deps.py`. Temporal being down is a 503 with a message,
never a 500. Every request passes `api/request_guard.py` (key, size, time, Unicode) before the
application reads its body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import RetryConfig

from api import errors, metrics
from api.deps import Services, declared_scopes
from api.request_guard import RequestGuard
from api.routes import (
    account,
    codec,
    deliveries,
    endpoints,
    event_types,
    events,
    listen,
    portal,
    recoveries,
    system,
)
from api.schemas import ErrorPublic
from api.tracing import TraceRequests
from api.webhooks import receiver_webhooks, with_examples
from core.settings import Settings
from core.temporal import connect
from core.tracing import configure_tracing
from service.access import PortalSessions
from service.deliveries import Deliveries
from service.endpoints import Endpoints
from service.events import Events
from service.lanes import Lanes
from service.listen import Listening
from service.recoveries import Recoveries
from store.database import EndpointStore, require_keys
from store.keys import jwt_signer
from store.revision import require_current

DASHBOARD_DIR = Path(__file__).parent / "dashboard"
# Only this origin, and inside no other site's frame but the ones the operator lists (which meta tags
# cannot say): a payload that slipped past textContent still could not run, phone home or be overlaid
# for clickjacking by a site of someone else's.
# Images also from the origins that may frame it: a portal session's logo is served by the product
# embedding the page (domain/appearance.py; service/access.py refuses a logo of any other origin).
DASHBOARD_CSP = (
    "default-src 'self'; img-src 'self' data:{image_origins}; object-src 'none'; base-uri 'none'; "
    "form-action 'none'"
)


def dashboard_headers(frame_ancestors: tuple[str, ...]) -> dict[str, str]:
    """The dashboard's security headers: framed by `frame_ancestors` only (the operator's list), and
    showing images of its own and of theirs."""
    ancestors = " ".join(frame_ancestors) or "'none'"
    policy = DASHBOARD_CSP.format(image_origins="".join(f" {origin}" for origin in frame_ancestors))
    headers = {
        "Content-Security-Policy": f"{policy}; frame-ancestors {ancestors}",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if not frame_ancestors:
        # For browsers that predate frame-ancestors. It cannot list origins (ALLOW-FROM is gone), so with
        # origins allowed it is left out: DENY would contradict the CSP, and browsers that read both
        # follow frame-ancestors anyway.
        headers["X-Frame-Options"] = "DENY"
    return headers


# Every refusal is `{"detail": "..."}` (FastAPI documents its own 422 shape beside these): the statuses
# that api/request_guard.py and the routes answer, as the OpenAPI schema shows them.
Responses = dict[int | str, dict[str, Any]]
COMMON_RESPONSES: Responses = {
    401: {
        "model": ErrorPublic,
        "description": "Missing or invalid `x-api-key`, or a portal session expired, revoked or not ours",
    },
    403: {"model": ErrorPublic, "description": "The credential lacks the scope this route needs (named)"},
    408: {"model": ErrorPublic, "description": "The body did not arrive in time"},
    413: {"model": ErrorPublic, "description": "The body is too large"},
    415: {"model": ErrorPublic, "description": "The body is not JSON"},
    503: {"model": ErrorPublic, "description": "Temporal or the endpoint store is unavailable; try again"},
}
RESOURCE_RESPONSES: Responses = {
    **COMMON_RESPONSES,
    404: {"model": ErrorPublic, "description": "Not found (or another tenant's)"},
    409: {"model": ErrorPublic, "description": "Conflicts with the resource's state; `detail` says how"},
}
# The tenants' routers, each with the error answers its OpenAPI entries list; then the routers of the
# service itself (health, metrics, the operators' codec), which document their own.
RESOURCE_ROUTERS: tuple[tuple[APIRouter, Responses], ...] = (
    (event_types.router, COMMON_RESPONSES),
    (account.router, COMMON_RESPONSES),
    (portal.router, COMMON_RESPONSES),
    (endpoints.router, RESOURCE_RESPONSES),
    (events.router, RESOURCE_RESPONSES),
    (deliveries.router, RESOURCE_RESPONSES),
    (recoveries.router, RESOURCE_RESPONSES),
    (listen.router, RESOURCE_RESPONSES),
)
SERVICE_ROUTERS = (system.router, metrics.router, codec.router)
ROUTERS = tuple(router for router, _ in RESOURCE_ROUTERS) + SERVICE_ROUTERS


class WithHeaders:
    """An ASGI app answering as `app` does, with `headers` added to every response."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # Before the Temporal client is made (in lifespan), which takes the tracing interceptor if on.
    tracing = configure_tracing("webhooks-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = EndpointStore(settings.sqlalchemy_url, settings.keyring)
        # Made and upgraded by `python -m cli.migrate` before the API starts, never here.
        require_current(store.engine)
        require_keys(store)  # or every read of an endpoint would answer 500
        # Lazy: the API starts (and says 503) while Temporal is still coming up or down.
        temporal = await connect(
            settings, lazy=True, retry_config=_retries_within(settings.temporal_rpc_timeout)
        )
        deliveries = Deliveries(
            temporal,
            store,
            rpc_timeout=timedelta(seconds=settings.temporal_rpc_timeout),
            ui_base=settings.ui_url,
            cursor_keys=settings.cursor_keys,
        )
        events = Events(temporal, store, settings, deliveries=deliveries)
        signer = jwt_signer(settings, store)
        lanes = Lanes(temporal, store, rpc_timeout=timedelta(seconds=settings.temporal_rpc_timeout))
        app.state.services = Services(
            settings=settings,
            temporal=temporal,
            store=store,
            jwt_signer=signer,
            events=events,
            deliveries=deliveries,
            endpoints=Endpoints(
                store,
                allow_private_urls=settings.allow_private_urls,
                disable_after=settings.disable_after_delta,
                tell=events.tell,
                keys=signer.keys,
                max_per_tenant=settings.max_endpoints_per_tenant,
                max_rate=settings.endpoint_max_rate,
                max_concurrency=settings.endpoint_concurrency,
                end_lanes=lanes.end,
            ),
            portal=PortalSessions(store, settings),
            recoveries=Recoveries(temporal, store, settings),
            lanes=lanes,
            listening=Listening(temporal, store, settings),
        )
        try:
            yield
        finally:
            store.close()

    # /docs is Swagger UI served from the fastapi-offline package, not a CDN: a machine without internet
    # still shows it. Its validator badge would call swagger.io: off. No ReDoc: its page fetches its
    # logo from redocly's CDN.
    app: FastAPI = FastAPIOffline(
        title="Flexprice webhooks",
        version="1.0.0",
        description=(
            "Durable webhook delivery on Temporal. Every /v1 route but the JWKS needs an `x-api-key` header, "
            "or, for the dashboard's routes, a portal session token as `Authorization: Bearer`; each route "
            "names the scope it needs."
        ),
        lifespan=lifespan,
        redoc_url=None,
        swagger_ui_parameters={"validatorUrl": None},
        # FastAPI's own spans would carry the query string and exception messages, its metrics double
        # ours: api/tracing.py makes the request's span instead.
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    # In front of routing: nothing of the application runs, not even body parsing, before it passes.
    app.add_middleware(RequestGuard, settings=settings)
    for router, responses in RESOURCE_ROUTERS:
        _document_scopes(router)
        app.include_router(router, responses=responses)
    for router in SERVICE_ROUTERS:
        app.include_router(router)
    # Documented only (OpenAPI 3.1 `webhooks`): the POST a receiver gets for each event type.
    app.webhooks.include_router(receiver_webhooks())
    made = app.openapi

    def openapi() -> dict[str, Any]:
        return with_examples(made())

    app.openapi = openapi  # type: ignore[method-assign]
    # The dashboard: static files calling this same API with the key the person signs in with, or with
    # a portal session; what it needs to know about its embedding (no secret) comes from embedding.json.
    headers = dashboard_headers(settings.frame_ancestors)

    @app.get("/dashboard/embedding.json", include_in_schema=False)
    def embedding() -> JSONResponse:
        return JSONResponse(
            {
                "frame_ancestors": list(settings.frame_ancestors),
                # Links into the Temporal Web UI help only an operator who can open it: off unless said.
                "temporal_links": settings.dashboard_temporal_links and settings.ui_url is not None,
            },
            headers=headers,
        )

    dashboard = StaticFiles(directory=DASHBOARD_DIR, html=True)
    app.mount("/dashboard", WithHeaders(dashboard, headers), name="dashboard")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    errors.install(app)
    if tracing:
        # Outermost: a request the guard refuses is traced too.
        app.add_middleware(TraceRequests)
    return app


def _document_scopes(router: APIRouter) -> None:
    """Each route's scope, as it declares it (api/deps.py), at the end of its OpenAPI description."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            for scope in declared_scopes(route.dependant):
                note = f"Needs {f'scope `{scope.value}`' if scope is not None else 'any credential'}."
                if not route.description.endswith(note):  # the routers are shared by every app made
                    route.description = f"{route.description}\n\n{note}".lstrip()


def _retries_within(seconds: float) -> RetryConfig:
    """The client's retries of an unreachable Temporal, kept inside one RPC timeout.

    The SDK retries an unreachable server for 10 s whatever a call's `rpc_timeout` says, so a Temporal
    that died under a connected API made every answer wait 10 s. Within the timeout, a restart still
    goes unnoticed; past it, the client gets its 503 and its own Retry-After.
    """
    millis = int(seconds * 1000)
    return RetryConfig(max_elapsed_time_millis=millis, max_interval_millis=max(100, min(1000, millis // 4)))
