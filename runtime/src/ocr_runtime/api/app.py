"""The FastAPI application factory. Every collaborator comes in explicitly: the composition
root (bootstrap) decides which adapters serve which port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import ocr_runtime
from ocr_runtime.api.auth import ApiKeyCheck
from ocr_runtime.api.direct import DirectFastAPI, direct_routes
from ocr_runtime.api.errors import error_body, handle_ocr_error, handle_validation_error
from ocr_runtime.api.guard import SubmissionGuard
from ocr_runtime.api.limits import SLOTS_PER_CPU, SubmissionSlots, decode_pool
from ocr_runtime.api.middleware import RequestContextMiddleware
from ocr_runtime.api.routes import DIRECT_ROUTES, ApiServices, jobs_router, ops_router
from ocr_runtime.application import (
    ImageLimits,
    JobCompletions,
    SubmitJob,
    install_pixel_guard,
)
from ocr_runtime.application.errors import TransientError
from ocr_runtime.application.model import ModelIdentity
from ocr_runtime.application.ports import BlobStore, JobIntake, JobPublisher, JobRepository
from ocr_runtime.core.cpu import available_cpus
from ocr_runtime.core.heap import freeze_startup_heap
from ocr_runtime.core.metrics import ApiMetrics, register_model_ready
from ocr_runtime.core.settings import Settings
from ocr_runtime.domain import OcrError

logger = logging.getLogger(__name__)

Lifespan = Callable[[], AbstractAsyncContextManager[None]]
# A database or broker restart takes seconds: clients come back after about this long.
TRANSIENT_RETRY_AFTER_S = 2


def create_app(
    settings: Settings,
    repository: JobRepository,
    blobs: BlobStore,
    publisher: JobPublisher,
    engine_ready: Callable[[], bool] | None = None,
    *,
    registry: CollectorRegistry | None = None,
    lifespan: Lifespan | None = None,
    completions: JobCompletions | None = None,
    intake: JobIntake | None = None,
    guard: SubmissionGuard | None = None,
    model: ModelIdentity | None = None,
) -> FastAPI:
    """`engine_ready`: whether this process's model is loaded (None: no model here, as in the
    api role). `registry`: where the metrics live (a fresh one by default; pass the process's
    to expose worker metrics too). `lifespan`: resources to start before serving and stop
    after (producers, worker loops). `completions`: in-process completion signals, when the
    worker shares this process (all-in-one), so POST /v1/ocr answers without polling lag.
    `intake`: stores image and job together (default: `blobs`, then `repository`).
    `guard`: rate limit and duplicate suppression of submissions (Redis), after auth.
    A `TransientError` from the storage or the queue answers 503 with Retry-After (clients
    retry); any other unexpected error is a bug (500)."""
    install_pixel_guard(settings.max_pixels)
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ApiMetrics(registry)
    if engine_ready is not None:
        register_model_ready(registry, engine_ready)
    limits = ImageLimits.from_settings(settings)
    cpus = available_cpus()
    decoder = decode_pool(cpus)
    slots = SubmissionSlots(SLOTS_PER_CPU * cpus)
    metrics.upload_slots.set(slots.capacity)
    metrics.uploads_in_progress.set_function(lambda: slots.in_use)
    services = ApiServices(
        settings=settings,
        repository=repository,
        publisher=publisher,
        submit=SubmitJob(
            repository, blobs, publisher, limits, intake=intake, decode_executor=decoder
        ),
        metrics=metrics,
        engine_ready=engine_ready,
        model=model,
        completions=completions,
        guard=guard,
        slots=slots,
    )

    @asynccontextmanager
    async def app_lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            if lifespan is None:
                freeze_startup_heap()
                yield
                return
            async with lifespan():
                freeze_startup_heap()
                yield
        finally:
            decoder.shutdown(wait=False, cancel_futures=True)

    app = DirectFastAPI(
        title="OCR runtime",
        version=ocr_runtime.__version__,
        description="Queue OCR jobs, poll their results, or OCR synchronously.",
        lifespan=app_lifespan,
    )
    app.state.registry = registry
    jobs = jobs_router(services, ApiKeyCheck(settings.api_key_hashes))
    app.include_router(jobs)
    app.include_router(ops_router(services))
    app.add_exception_handler(OcrError, handle_ocr_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_middleware(_CatchAll)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    # The same request id, access log and 500 guard wrap a submission served directly.
    app.serve_directly(
        direct_routes(jobs, DIRECT_ROUTES),
        wrap=lambda inner: RequestContextMiddleware(_CatchAll(inner), metrics=metrics),
    )
    return app


async def _handle_http_exception(_: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown route, wrong method) in our error shape."""
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    body = error_body(codes.get(exc.status_code, "http_error"), str(exc.detail))
    return JSONResponse(body, exc.status_code, headers=exc.headers)


class _CatchAll:
    """Unexpected exceptions become a JSON 500 inside the request-id middleware, so even that
    response carries X-Request-ID (Starlette's own handler sits outside all middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, tracking_send)
        except Exception as exc:
            if scope["type"] != "http" or started:
                raise
            await self._respond(exc)(scope, receive, send)

    def _respond(self, exc: Exception) -> JSONResponse:
        if isinstance(exc, TransientError):
            logger.warning("storage or queue unavailable: %r", exc)
            body = error_body("unavailable", "the database or the queue is unavailable; retry")
            return JSONResponse(body, 503, headers={"Retry-After": str(TRANSIENT_RETRY_AFTER_S)})
        logger.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal server error"), 500)
