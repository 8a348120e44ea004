"""Routes. Each handler validates, calls one use case and shapes the answer; the model never
runs here (the API only queues work). No `from __future__ import annotations`: FastAPI reads
the handlers' annotations at import."""

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from ocr_runtime.api.auth import ApiKeyCheck
from ocr_runtime.api.errors import error_body
from ocr_runtime.api.guard import SubmissionGuard, check_rate, duplicate_key
from ocr_runtime.api.limits import SubmissionSlots
from ocr_runtime.api.params import submission_parameters, submission_params, wait_seconds
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
from ocr_runtime.domain import Job, OcrError

IMAGE_FIELD = "image"
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_PING_TIMEOUT_S = 2.0
# Served by `api.direct`, past FastAPI's per-request machinery: the submission hot path.
DIRECT_ROUTES = frozenset({("POST", "/v1/jobs")})
_UPLOAD_BODY = {
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


def _upload_doc(parameters: list[dict[str, object]]) -> dict[str, object]:
    return {"requestBody": _UPLOAD_BODY, "parameters": parameters}


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
    """The job routes. The two that submit take only the request (see `api.params`) and
    check the API key themselves, before reading the body."""
    router = APIRouter(prefix="/v1", tags=["ocr"], responses=ERROR_RESPONSES)
    settings = services.settings
    wait_default = settings.sync_timeout_default_s

    async def submit(request: Request, caller: str) -> Job:
        try:
            params = submission_params(request)
            await check_rate(services.guard, caller)
            async with services.slots.hold() if services.slots else contextlib.nullcontext():
                part = await read_file_field(request, IMAGE_FIELD, settings.max_upload_bytes)
                key = params.idempotency_key
                if key is None:
                    key = await duplicate_key(services.guard, caller, part.data)
                upload = Upload(part.data, part.content_type, key, caller, params.text_layer)
                del part  # the upload holds the only reference to the bytes
                job = await services.submit(upload)
        except OcrError as exc:
            services.metrics.rejected.labels(exc.code).inc()
            raise
        services.metrics.jobs_submitted.inc()
        job_id_var.set(job.job_id)  # the access log line and later logs carry it
        return job

    @router.post("/jobs", status_code=202, response_model=JobAccepted, summary="Queue an OCR job",
                 openapi_extra=_upload_doc(submission_parameters()))  # fmt: skip
    async def create_job(request: Request) -> Response:
        job = await submit(request, await auth(request))
        accepted = JobAccepted(job_id=job.job_id, status=job.status)
        return Response(accepted.model_dump_json(), 202, media_type="application/json",
                        headers={"Location": f"/v1/jobs/{job.job_id}"})  # fmt: skip

    @router.get("/jobs/{job_id}", response_model=JobView, dependencies=[Depends(auth)],
                summary="A job and its result")  # fmt: skip
    async def read_job(job_id: str) -> JobView:
        if not _JOB_ID.fullmatch(job_id):
            raise JobNotFound(f"no job {job_id[:64]}")
        job_id_var.set(job_id)
        return job_view(await get_job(services.repository, job_id))

    ocr_parameters = submission_parameters(
        wait_default_s=wait_default, wait_max_s=settings.sync_timeout_max_s
    )

    @router.post("/ocr", response_model=JobView, openapi_extra=_upload_doc(ocr_parameters),
                 summary="OCR an image and wait for the result",
                 responses={504: {"model": ErrorResponse, "description": "Not done in time; "
                                  "the body carries job_id to poll"}})  # fmt: skip
    async def ocr(request: Request) -> JobView:
        caller = await auth(request)
        # Checked before the upload is stored: a bad timeout stores nothing.
        wait_s = wait_seconds(request, default=wait_default, maximum=settings.sync_timeout_max_s)
        job = await submit(request, caller)
        try:
            done = await wait_for_job(services.repository, job.job_id, wait_s, services.completions)
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
