"""The FastAPI application: ``create_app(settings)`` and ``serve(settings)``."""

from __future__ import annotations

import gc
import logging
import logging.config
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from service.contracts.manifest import BundleIntegrityError
from service.errors import BundleNotFoundError
from service.experiments.prediction_log import PredictionLogUnavailable
from service.http.api_keys import KeyFileError
from service.http.connections import GUARD_STATE_KEY, ConnectionGuard, fit_open_files
from service.http.errors import install_error_handlers
from service.http.guards import install_guards
from service.http.middleware import ObservabilityMiddleware
from service.observability.logs import logging_config
from service.observability.metrics import ServiceMetrics
from service.observability.multiprocess import clear_multiprocess_dir
from service.observability.pauses import PAUSES
from service.observability.tracing import (
    StageTracer,
    TracingUnavailable,
    check_tracing_available,
    load_tracer,
)
from service.routes import ROUTERS
from service.runtime import ServiceRuntime
from service.settings import Settings, get_settings
from service.threads import MAX_DEFAULT_WORKERS, CorePin, pin_worker
from service.worker_state import clear_worker_state

log = logging.getLogger("service")

GIL_SWITCH_INTERVAL_S = 0.0001

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
WORKER_STATE_VARIABLE = "REASEQ_WORKER_STATE_DIR"


def _lifespan(settings: Settings, metrics: ServiceMetrics, tracer: StageTracer):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
        log.info("starting", extra={"settings": settings.model_dump(mode="json")})
        # Before the runtime starts its scoring threads, which take the event loop's core.
        worker_core_pin(settings)
        try:
            runtime = await ServiceRuntime.load(settings, metrics, tracer)
        except (BundleIntegrityError, BundleNotFoundError, PredictionLogUnavailable) as error:
            log.error("refusing to start: %s", error)
            raise
        # Readiness answers "not warmed up" from here until the warm-up has finished.
        app.state.runtime = runtime
        try:
            await runtime.warm_up()
        except BaseException:
            app.state.runtime = None
            await runtime.close()
            raise
        # What start-up built (bundle, snapshot, tables) lives as long as the process: keep it
        # out of the cyclic collector's generations, so collections stay short under load.
        gc.collect()
        gc.freeze()
        # The event loop shares the GIL with the scoring threads, whose Python glue between
        # NumPy and onnxruntime calls holds it; the default 5 ms switch interval lets one such
        # stretch stall every request in flight. A shorter interval hands it back sooner. The
        # other way round counts as much: a scoring thread takes the GIL back after each
        # onnxruntime call (a dozen per batch), and each time waits for the event loop to let
        # go, up to one interval; at 0.5 ms the model stage of the slowest requests under load
        # took about three times its CPU time.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        # The event-loop lag behind each answer's Server-Timing "lag" part.
        PAUSES.watch_loop()
        try:
            # The server's connection handling finds its guard in the lifespan state.
            yield {GUARD_STATE_KEY: _connection_guard(settings, metrics)}
        finally:
            app.state.runtime = None
            await runtime.close()
            metrics.close()

    return lifespan


def worker_core_pin(settings: Settings) -> CorePin | None:
    """A core of its own for this worker of several (they claim cores through their shared
    folder) where ``REASEQ_PIN_WORKERS`` asks for it, held until the process exits; ``None``
    otherwise."""
    if not settings.pin_workers or settings.worker_state_dir is None:
        return None
    return pin_worker(settings.worker_state_dir, settings.worker_processes)


def _connection_guard(settings: Settings, metrics: ServiceMetrics) -> ConnectionGuard:
    return ConnectionGuard(
        max_open=fit_open_files(settings.max_connections),
        header_timeout_s=settings.header_read_timeout_ms / 1000.0,
        max_header_bytes=settings.max_header_bytes,
        open_gauge=metrics.connections_open,
        dropped=metrics.connections_dropped,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ranking service; the lifespan loads, verifies and warms the bundle, opens the store.

    Raises :class:`TracingUnavailable` when tracing is on and OpenTelemetry is not installed.
    """
    settings = settings or get_settings()
    metrics = ServiceMetrics(
        latency_objective_s=settings.latency_objective_ms / 1000.0,
        multiprocess_dir=settings.metrics_multiproc_dir,
    )
    tracer = load_tracer(
        settings.tracing_enabled, settings.tracing_exporter, settings.tracing_service_name
    )
    app = FastAPI(
        title="ReaSeq ranking service",
        version="1",
        summary="Ranks candidate items for a user with target attention over real and "
        "generated behaviours.",
        lifespan=_lifespan(settings, metrics, tracer),
    )
    app.state.runtime = None
    app.state.metrics = metrics
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_guards(app, settings, metrics)
    app.add_middleware(
        ObservabilityMiddleware,
        metrics=metrics,
        tracer=tracer,
        access_log_enabled=settings.access_log,
    )
    tracer.instrument(app)
    return app


def worker_count_reason(settings: Settings) -> str:
    """Why the service starts as many workers as it does, for its start-up line."""
    if settings.workers is not None:
        return "REASEQ_WORKERS"
    if settings.on_device:
        return "the device path: one process owns the device; set REASEQ_WORKERS for more"
    return f"one per usable core, at most {MAX_DEFAULT_WORKERS}"


def serve(settings: Settings | None = None) -> None:
    """Run the service under uvicorn (uvloop when installed), on httptools with a cap on open
    connections and a time and a size limit on request headers (:mod:`service.http.connections`).

    With more than one worker (``REASEQ_WORKERS``) uvicorn starts that many worker processes,
    each building the app from the ``REASEQ_*`` environment; they share metrics through
    ``PROMETHEUS_MULTIPROC_DIR`` (a temporary folder of this run's when unset), which is emptied
    here, before any worker writes to it.
    """
    import uvicorn

    from service.http.uvicorn_protocol import GUARDED_PROTOCOL

    settings = settings or get_settings()
    log_config = logging_config(settings.log_level, settings.log_format, settings.secret_values())
    logging.config.dictConfig(log_config)
    try:
        check_tracing_available(settings.tracing_enabled, settings.tracing_exporter)
    except TracingUnavailable as error:
        raise SystemExit(f"refusing to start: {error}") from error
    try:
        settings.service_keys()  # an unreadable key file stops the start here, in one line
    except KeyFileError as error:
        raise SystemExit(f"refusing to start: {error}") from error
    workers = settings.worker_processes
    multiproc_dir = settings.metrics_multiproc_dir
    private_dir: Path | None = None
    if multiproc_dir is None and workers > 1:
        # Whichever worker answers a scrape must report them all: without a folder named, the
        # workers share one of this run's own, removed when the service stops.
        private_dir = multiproc_dir = Path(tempfile.mkdtemp(prefix="reaseq-metrics-"))
    private_state: Path | None = None
    if workers > 1:
        # Each worker builds its settings from the environment: the same count sizes its
        # admission slots and attention threads, whoever chose it.
        os.environ["REASEQ_WORKERS"] = str(workers)
        # The workers share what the admin endpoints change through a folder: one of this
        # run's own unless one is named, and never a change left by an earlier run.
        state_dir = settings.worker_state_dir
        if state_dir is None:
            private_state = state_dir = Path(tempfile.mkdtemp(prefix="reaseq-workers-"))
        clear_worker_state(state_dir)
        os.environ[WORKER_STATE_VARIABLE] = str(state_dir)
    if multiproc_dir is not None:
        clear_multiprocess_dir(multiproc_dir)
        # Workers inherit the environment: prometheus-client reads the variable at import.
        os.environ[MULTIPROC_VARIABLE] = str(multiproc_dir)
    log.info(
        "starting %d worker process%s (%s)",
        workers,
        "es" if workers > 1 else "",
        worker_count_reason(settings),
    )
    options = {
        "host": settings.host,
        "port": settings.port,
        "loop": "auto",
        "http": GUARDED_PROTOCOL,
        "log_level": settings.log_level,
        "log_config": log_config,
        "access_log": False,  # the middleware writes the access log, with the request ID
        # uvicorn is started from Python, so its own flag and variable do not apply here.
        "timeout_graceful_shutdown": settings.graceful_shutdown_s,
    }
    try:
        if workers == 1:
            uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
        else:
            uvicorn.run("service.app:create_app", factory=True, workers=workers, **options)  # type: ignore[arg-type]
    finally:
        for private in (private_dir, private_state):
            if private is not None:
                shutil.rmtree(private, ignore_errors=True)
