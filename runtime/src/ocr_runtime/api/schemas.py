"""Response models: the HTTP contract, and what OpenAPI documents."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from ocr_runtime.domain import Job, JobStatus, OcrLine, OcrPage, OcrResult, PageSource


class LineView(BaseModel):
    text: str
    confidence: float
    box: list[list[float]] = Field(description="Four [x, y] corners, clockwise from top-left.")


class PageView(BaseModel):
    page: int = Field(description="Page number, from 1.")
    width: int = Field(description="Width in pixels (a PDF page: at the rendering DPI).")
    height: int
    source: PageSource = Field(
        description="ocr: recognised from the pixels; text_layer: read from the PDF's text."
    )
    text: str = Field(description="The page's lines in reading order, one per row.")
    lines: list[LineView] = Field(description="Boxes in this page's pixel coordinates.")


class ResultView(BaseModel):
    text: str = Field(description="All lines in reading order, one per row; pages separated "
                      "by a form feed (\\f).")  # fmt: skip
    lines: list[LineView] = Field(description="Every page's lines, pages in order.")
    pages: list[PageView] = Field(description="One entry per page; one for a single image.")


class JobErrorView(BaseModel):
    code: str
    message: str


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus


class ProgressView(BaseModel):
    pages_done: int = Field(description="Pages recognised (or read from their text) so far.")
    pages: int = Field(description="Pages of the document.")


class JobView(BaseModel):
    job_id: str
    status: JobStatus
    result: ResultView | None
    error: JobErrorView | None
    created_at: datetime
    finished_at: datetime | None
    progress: ProgressView | None = Field(
        None,
        description="While a document too large for one engine call runs; null otherwise.",
    )


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
    model: dict[str, str] | None = Field(
        None, description="name, version and checksum of the model this process serves"
    )


def _lines(lines: tuple[OcrLine, ...]) -> list[LineView]:
    return [
        LineView(text=ln.text, confidence=ln.confidence, box=[list(p) for p in ln.box])
        for ln in lines
    ]


def result_view(job: Job, result: OcrResult) -> ResultView:
    # Results stored before documents existed have no pages: they were one image each.
    pages = result.pages or (OcrPage(1, job.width, job.height, result.lines),)
    return ResultView(
        text=result.text,
        lines=_lines(result.lines),
        pages=[
            PageView(page=p.page, width=p.width, height=p.height, source=p.source,
                     text=p.text, lines=_lines(p.lines))
            for p in pages
        ],
    )  # fmt: skip


def job_view(job: Job) -> JobView:
    result = None if job.result is None else result_view(job, job.result)
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
        progress=_progress(job),
    )


def _progress(job: Job) -> ProgressView | None:
    if job.status is not JobStatus.RUNNING or job.pages is None or job.pages_done is None:
        return None
    return ProgressView(pages_done=job.pages_done, pages=job.pages)


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": meaning}
    for status, meaning in {
        400: "Empty or malformed body",
        401: "Missing or invalid API key",
        413: "Image over the byte limit",
        415: "Unsupported media type",
        422: "Not an image or PDF, truncated, over the pixel or page limit, a password-"
        "protected PDF, or missing field",
        503: "Queue unavailable",
    }.items()
}
