"""Routes. Each handler validates, calls one use case and shapes the answer; the model never
runs here (the API only queues work). No `from __future__ import annotations`: FastAPI must
see the route-local `Annotated` metadata (limits taken from the settings)."""

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from ocr_runtime.api.auth import ApiKeyCheck
from ocr_runtime.api.errors import error_body
from ocr_runtime.api.guard import SubmissionGuard, check_rate, duplicate_key
from ocr_runtime.api.limits import SubmissionSlots
from ocr_runtime.api.schemas import (
    ERROR_RESPONSES,
    CheckState,
    ErrorResponse,
    Health,
    JobAccepted,
    JobView,
    Readiness,
    job_view,
)
from ocr_runtime.api.upload import read_file_field
from ocr_runtime.application import (
    JobCompletions,
    JobNotFound,
    SubmitJob,
    Upload,
    WaitTimeout,
    get_job,
    wait_for_job,
)
from ocr_runtime.application.model import ModelIdentity
from ocr_runtime.application.ports import JobPublisher, JobRepository
from ocr_runtime.core.logging import job_id_var
from ocr_runtime.core.metrics import METRICS_CONTENT_TYPE, ApiMetrics, render_metrics
from ocr_runtime.core.settings import Settings
from ocr_runtime.domain import Job, OcrError, TextLayer

IMAGE_FIELD = "image"
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_PING_TIMEOUT_S = 2.0
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [IMAGE_FIELD],
                    "properties": {
                        IMAGE_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "An image (JPEG, PNG, WebP, BMP, TIFF, HEIC) or a PDF.",
                        }
                    },
                }
            }
        },
    }
}
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$",
           description="Repeat a request with the same key to get the same job back."),
]  # fmt: skip
TextLayerQuery = Annotated[
    TextLayer,
    Query(description="PDF pages that carry text: `ignore` it and recognise the pixels, or "
          "`prefer` it (those pages come back with source `text_layer`; pages without text, "
          "and other formats, are recognised)."),
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ApiServices:
    settings: Settings
    repository: JobRepository
    publisher: JobPublisher
    submit: SubmitJob
    metrics: ApiMetrics
    engine_ready: Callable[[], bool] | None
    # The model this process serves (all-in-one), reported by /readyz.
    model: ModelIdentity | None
    completions: JobCompletions | None
    guard: SubmissionGuard | None = None
    slots: SubmissionSlots | None = None


def jobs_router(services: ApiServices, auth: ApiKeyCheck) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(auth)], tags=["ocr"],
                       responses=ERROR_RESPONSES)  # fmt: skip
    # The same dependency as the router's (run once per request): who is calling.
    Caller = Annotated[str, Depends(auth)]  # noqa: N806
    settings = services.settings
    max_wait = settings.sync_timeout_max_s
    wait_help = f"Seconds to wait (default {settings.sync_timeout_default_s:g})."

    async def submit(request: Request, key: str | None, caller: str, text_layer: TextLayer) -> Job:
        try:
            await check_rate(services.guard, caller)
            async with services.slots.hold() if services.slots else contextlib.nullcontext():
                part = await read_file_field(request, IMAGE_FIELD, settings.max_upload_bytes)
                if key is None:
                    key = await duplicate_key(services.guard, caller, part.data)
                upload = Upload(part.data, part.content_type, key, caller, text_layer)
                del part  # the upload holds the only reference to the bytes
                job = await services.submit(upload)
        except OcrError as exc:
            services.metrics.rejected.labels(exc.code).inc()
            raise
        services.metrics.jobs_submitted.inc()
        job_id_var.set(job.job_id)  # the access log line and later logs carry it
        return job

    @router.post("/jobs", status_code=202, response_model=JobAccepted, openapi_extra=_UPLOAD_BODY,
                 summary="Queue an OCR job")  # fmt: skip
    async def create_job(
        request: Request,
        response: Response,
        caller: Caller,
        idempotency_key: IdempotencyKey = None,
        text_layer: TextLayerQuery = TextLayer.IGNORE,
    ) -> JobAccepted:
        job = await submit(request, idempotency_key, caller, text_layer)
        response.headers["Location"] = f"/v1/jobs/{job.job_id}"
        return JobAccepted(job_id=job.job_id, status=job.status)

    @router.get("/jobs/{job_id}", response_model=JobView, summary="A job and its result")
    async def read_job(job_id: str) -> JobView:
        if not _JOB_ID.fullmatch(job_id):
            raise JobNotFound(f"no job {job_id[:64]}")
        job_id_var.set(job_id)
        return job_view(await get_job(services.repository, job_id))

    @router.post("/ocr", response_model=JobView, openapi_extra=_UPLOAD_BODY,
                 summary="OCR an image and wait for the result",
                 responses={504: {"model": ErrorResponse, "description": "Not done in time; "
                                  "the body carries job_id to poll"}})  # fmt: skip
    async def ocr(
        request: Request,
        caller: Caller,
        wait_s: Annotated[
            float | None, Query(alias="timeout", gt=0, le=max_wait, description=wait_help)
        ] = None,
        idempotency_key: IdempotencyKey = None,
        text_layer: TextLayerQuery = TextLayer.IGNORE,
    ) -> JobView:
        job = await submit(request, idempotency_key, caller, text_layer)
        try:
            done = await wait_for_job(
                services.repository,
                job.job_id,
                settings.sync_timeout_default_s if wait_s is None else wait_s,
                services.completions,
            )
        except WaitTimeout:
            services.metrics.sync_timeouts.inc()
            raise
        return job_view(done)

    return router


async def _check(probe: Callable[[], Awaitable[None]]) -> CheckState:
    try:
        await asyncio.wait_for(probe(), _PING_TIMEOUT_S)
    except Exception:
        return CheckState.FAILING
    return CheckState.OK


def ops_router(services: ApiServices) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", response_model=Health, summary="Liveness")
    async def healthz() -> Health:
        return Health()

    @router.get("/readyz", response_model=Readiness, summary="Model, database and queue ready",
                responses={503: {"model": Readiness}})  # fmt: skip
    async def readyz() -> JSONResponse:
        model = CheckState.NOT_APPLICABLE
        if services.engine_ready is not None:
            model = CheckState.OK if services.engine_ready() else CheckState.FAILING
        database, queue = await asyncio.gather(
            _check(services.repository.ping), _check(services.publisher.ping)
        )
        checks = {"model": model, "database": database, "queue": queue}
        ready = CheckState.FAILING not in checks.values()
        model_view = None if services.model is None else services.model.as_dict()
        body = Readiness(ready=ready, checks=checks, model=model_view)
        return JSONResponse(body.model_dump(mode="json", exclude_none=True), 200 if ready else 503)

    @router.get("/metrics", response_class=Response, summary="Prometheus metrics",
                responses={200: {"content": {METRICS_CONTENT_TYPE: {}}}})  # fmt: skip
    async def metrics(request: Request) -> Response:
        registry = request.app.state.registry
        return Response(render_metrics(registry), media_type=METRICS_CONTENT_TYPE)

    return router


def not_found_body(path: str) -> dict[str, object]:
    return error_body("not_found", f"no route {path}")
