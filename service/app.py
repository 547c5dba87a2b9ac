"""The FastAPI application: ``create_app(settings)`` and ``serve(settings)``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.contracts.manifest import BundleIntegrityError
from service.errors import BundleNotFoundError, install_error_handlers
from service.metrics import MetricsMiddleware, ServiceMetrics
from service.routes import ROUTERS
from service.runtime import ServiceRuntime
from service.settings import Settings, get_settings

log = logging.getLogger("service")


def _lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            runtime = await ServiceRuntime.start(settings)
        except (BundleIntegrityError, BundleNotFoundError) as error:
            log.error("refusing to start: %s", error)
            raise
        app.state.runtime = runtime
        try:
            yield
        finally:
            app.state.runtime = None
            await runtime.close()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ranking service; the lifespan loads, verifies and warms the bundle, opens the store."""
    settings = settings or get_settings()
    app = FastAPI(
        title="ReaSeq ranking service",
        version="1",
        summary="Ranks candidate items for a user with target attention over real and "
        "generated behaviours.",
        lifespan=_lifespan(settings),
    )
    app.state.runtime = None
    app.state.metrics = ServiceMetrics()
    app.dependency_overrides[get_settings] = lambda: settings
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


def serve(settings: Settings | None = None) -> None:
    """Run the service under uvicorn (uvloop and httptools when installed)."""
    import uvicorn

    settings = settings or get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="auto",
        http="auto",
        log_level=settings.log_level,
        access_log=False,
    )
