"""The FastAPI application: `uvicorn --factory api.main:create_app`.

The Temporal client, the endpoint store and the JWT signer (each tenant's keys) are made once in
`lifespan` and reached by routes through `api/deps.py`. Temporal being down is a 503 with a message,
never a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import RetryConfig
from temporalio.service import RPCError

from api import metrics
from api.deps import Services
from api.routes import account, deliveries, endpoints, event_types, events, system
from api.webhook_logs import WebhookLogs
from core.keys import jwt_signer
from core.settings import Settings
from core.store import EndpointStore
from core.temporal import connect, is_timeout, is_unreachable

DASHBOARD_DIR = Path(__file__).parent / "dashboard"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = EndpointStore(settings.sqlalchemy_url)
        store.create_schema()
        # Lazy: the API starts (and says 503) while Temporal is still coming up or down.
        temporal = await connect(
            settings.temporal_target,
            settings.temporal_namespace,
            lazy=True,
            retry_config=_retries_within(settings.temporal_rpc_timeout),
        )
        signer = jwt_signer(settings, store)
        logs = WebhookLogs(
            temporal, rpc_timeout=timedelta(seconds=settings.temporal_rpc_timeout), ui_base=settings.ui_url
        )
        app.state.services = Services(settings, temporal, store, signer, logs)
        try:
            yield
        finally:
            store.close()

    app = FastAPI(
        title="Flexprice webhooks",
        version="1.0.0",
        description="Durable webhook delivery on Temporal. Every /v1 route needs an `x-api-key` header.",
        lifespan=lifespan,
    )
    for module in (event_types, endpoints, events, deliveries, system, account):
        app.include_router(module.router)
    app.include_router(metrics.router)
    # The dashboard: static files calling this same API with the key the person signs in with.
    app.mount("/dashboard", StaticFiles(directory=DASHBOARD_DIR, html=True), name="dashboard")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @app.exception_handler(RPCError)
    @app.exception_handler(RuntimeError)
    async def temporal_error(_request: Request, err: Exception) -> JSONResponse:
        if is_timeout(err):
            # Our own rpc_timeout ends a call as CANCELLED, Temporal's as DEADLINE_EXCEEDED: either way
            # a write may have been applied, and only a retry with the same id is safe.
            return _unavailable(
                "Temporal did not answer in time; the request may have been applied. "
                "Retry it with the same id"
            )
        if is_unreachable(err):
            return _unavailable("Temporal is unavailable; nothing was accepted, try again")
        if isinstance(err, RPCError):
            return JSONResponse({"detail": f"Temporal refused the request: {err.message}"}, 502)
        raise err

    @app.exception_handler(SQLAlchemyError)
    async def store_unavailable(_request: Request, err: SQLAlchemyError) -> JSONResponse:
        return _unavailable("the endpoint store is unavailable; nothing was changed, try again")

    return app


RETRY_AFTER_SECONDS = 5


def _retries_within(seconds: float) -> RetryConfig:
    """The client's retries of an unreachable Temporal, kept inside one RPC timeout.

    The SDK retries an unreachable server for 10 s whatever a call's `rpc_timeout` says, so a Temporal
    that died under a connected API made every answer wait 10 s. Within the timeout, a restart still
    goes unnoticed; past it, the client gets its 503 and its own Retry-After.
    """
    millis = int(seconds * 1000)
    return RetryConfig(max_elapsed_time_millis=millis, max_interval_millis=max(100, min(1000, millis // 4)))


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, 503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
