"""Response models: the HTTP contract, and what OpenAPI documents."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from ocr_runtime.domain import Job, JobStatus


class LineView(BaseModel):
    text: str
    confidence: float
    box: list[list[float]] = Field(description="Four [x, y] corners, clockwise from top-left.")


class ResultView(BaseModel):
    text: str = Field(description="All lines in reading order, one per row.")
    lines: list[LineView]


class JobErrorView(BaseModel):
    code: str
    message: str


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus


class JobView(BaseModel):
    job_id: str
    status: JobStatus
    result: ResultView | None
    error: JobErrorView | None
    created_at: datetime
    finished_at: datetime | None


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
    request_id: str | None = None
    job_id: str | None = Field(None, description="Set on 504: the job keeps running.")


class Health(BaseModel):
    status: str = "ok"


class CheckState(StrEnum):
    OK = "ok"
    FAILING = "failing"
    NOT_APPLICABLE = "n/a"


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, CheckState]


def job_view(job: Job) -> JobView:
    result = None
    if job.result is not None:
        result = ResultView(
            text=job.result.text,
            lines=[
                LineView(text=ln.text, confidence=ln.confidence, box=[list(p) for p in ln.box])
                for ln in job.result.lines
            ],
        )
    error = (
        None
        if job.error is None
        else JobErrorView(code=job.error.code.value, message=job.error.message)
    )
    return JobView(
        job_id=job.job_id,
        status=job.status,
        result=result,
        error=error,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": meaning}
    for status, meaning in {
        400: "Empty or malformed body",
        401: "Missing or invalid API key",
        413: "Image over the byte limit",
        415: "Unsupported media type",
        422: "Not an image, truncated, over the pixel limit, or missing field",
        503: "Queue unavailable",
    }.items()
}
