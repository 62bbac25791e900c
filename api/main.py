"""The FastAPI application: `uvicorn --factory api.main:create_app`.

The Temporal client, the endpoint store and the JWT signer are made once in `lifespan` and reached by
routes through `api/deps.py`. Temporal being down is a 503 with a message, never a 500. Every request
passes `api/request_guard.py` (key, size, time, Unicode) before the application reads its body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from temporalio.service import RPCError, RPCStatusCode

from api import metrics
from api.deps import Services
from api.request_guard import RequestGuard
from api.routes import account, deliveries, endpoints, event_types, events, system
from core.settings import Settings, load_jwt_signer
from core.store import EndpointStore
from core.temporal import connect, is_unreachable

DASHBOARD_DIR = Path(__file__).parent / "dashboard"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = EndpointStore(settings.sqlalchemy_url)
        store.create_schema()
        # Lazy: the API starts (and says 503) while Temporal is still coming up or down.
        temporal = await connect(settings.temporal_target, settings.temporal_namespace, lazy=True)
        signer = load_jwt_signer(settings)
        app.state.services = Services(settings, temporal, store, signer)
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
    # In front of routing: nothing of the application runs, not even body parsing, before it passes.
    app.add_middleware(RequestGuard, settings=settings)
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
        if is_unreachable(err):
            if isinstance(err, RPCError) and err.status is RPCStatusCode.DEADLINE_EXCEEDED:
                # A timed-out write may still have been applied: only a retry with the same id is safe.
                detail = (
                    "Temporal did not answer in time; the request may have been applied. "
                    "Retry it with the same id"
                )
            else:
                detail = "Temporal is unavailable; nothing was accepted, try again"
            return JSONResponse({"detail": detail}, 503)
        if isinstance(err, RPCError):
            return JSONResponse({"detail": f"Temporal refused the request: {err.message}"}, 502)
        raise err

    @app.exception_handler(OperationalError)
    async def store_unavailable(_request: Request, err: OperationalError) -> JSONResponse:
        return JSONResponse(
            {"detail": "the endpoint store is unavailable; nothing was changed, try again"}, 503
        )

    return app
