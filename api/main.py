"""The FastAPI application: `uvicorn --factory api.main:create_app`.

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

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import RetryConfig

from api import errors, metrics
from api.deps import Services
from api.request_guard import RequestGuard
from api.routes import account, codec, deliveries, endpoints, event_types, events, recoveries, system
from api.schemas import ErrorPublic
from core.keys import jwt_signer
from core.settings import Settings
from core.store import EndpointStore
from core.temporal import connect
from service.deliveries import Deliveries
from service.endpoints import Endpoints
from service.events import Events
from service.recoveries import Recoveries

DASHBOARD_DIR = Path(__file__).parent / "dashboard"
# Only this origin, and never inside another site's frame (which meta tags cannot forbid): a payload
# that slipped past textContent still could not run, phone home or be overlaid for clickjacking.
DASHBOARD_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
DASHBOARD_HEADERS = {
    "Content-Security-Policy": DASHBOARD_CSP,
    "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Every refusal is `{"detail": "..."}` (FastAPI documents its own 422 shape beside these): the statuses
# that api/request_guard.py and the routes answer, as the OpenAPI schema shows them.
Responses = dict[int | str, dict[str, Any]]
COMMON_RESPONSES: Responses = {
    401: {"model": ErrorPublic, "description": "Missing or invalid `x-api-key`"},
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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = EndpointStore(settings.sqlalchemy_url, settings.keyring)
        store.create_schema()
        # Lazy: the API starts (and says 503) while Temporal is still coming up or down.
        temporal = await connect(
            settings, lazy=True, retry_config=_retries_within(settings.temporal_rpc_timeout)
        )
        deliveries = Deliveries(
            temporal,
            store,
            rpc_timeout=timedelta(seconds=settings.temporal_rpc_timeout),
            ui_base=settings.ui_url,
            cursor_key=settings.cursor_key,
        )
        app.state.services = Services(
            settings=settings,
            temporal=temporal,
            store=store,
            jwt_signer=jwt_signer(settings, store),
            events=Events(temporal, store, deliveries, settings),
            deliveries=deliveries,
            endpoints=Endpoints(store, allow_private_urls=settings.allow_private_urls),
            recoveries=Recoveries(temporal, store, settings),
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
        description="Durable webhook delivery on Temporal. Every /v1 route needs an `x-api-key` header.",
        lifespan=lifespan,
        redoc_url=None,
        swagger_ui_parameters={"validatorUrl": None},
    )
    # In front of routing: nothing of the application runs, not even body parsing, before it passes.
    app.add_middleware(RequestGuard, settings=settings)
    for module in (event_types, account):
        app.include_router(module.router, responses=COMMON_RESPONSES)
    for module in (endpoints, events, deliveries, recoveries):
        app.include_router(module.router, responses=RESOURCE_RESPONSES)
    app.include_router(system.router)
    app.include_router(metrics.router)
    app.include_router(codec.router)
    # The dashboard: static files calling this same API with the key the person signs in with.
    dashboard = StaticFiles(directory=DASHBOARD_DIR, html=True)
    app.mount("/dashboard", WithHeaders(dashboard, DASHBOARD_HEADERS), name="dashboard")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    errors.install(app)
    return app


def _retries_within(seconds: float) -> RetryConfig:
    """The client's retries of an unreachable Temporal, kept inside one RPC timeout.

    The SDK retries an unreachable server for 10 s whatever a call's `rpc_timeout` says, so a Temporal
    that died under a connected API made every answer wait 10 s. Within the timeout, a restart still
    goes unnoticed; past it, the client gets its 503 and its own Retry-After.
    """
    millis = int(seconds * 1000)
    return RetryConfig(max_elapsed_time_millis=millis, max_interval_millis=max(100, min(1000, millis // 4)))
