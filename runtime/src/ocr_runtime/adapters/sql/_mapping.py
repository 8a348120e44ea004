"""Rows <-> domain objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ocr_runtime.application.results import lines_payload, pages_payload, result_from_payload
from ocr_runtime.domain import Job, JobError, JobErrorCode, JobStatus, OcrResult, TextLayer

# Error messages come from exceptions of any size; the column is a TEXT.
MAX_ERROR_MESSAGE = 2000


def to_db_time(value: datetime | None) -> datetime | None:
    """Naive UTC: what both SQLite and MySQL DATETIME store without surprises."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


def from_db_time(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def result_to_json(result: OcrResult) -> str:
    body = {"lines": lines_payload(result), "pages": pages_payload(result)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def result_from_json(raw: str) -> OcrResult:
    data = json.loads(raw)
    if isinstance(data, list):  # stored before pages existed: the lines alone
        return result_from_payload(data, None)
    return result_from_payload(data["lines"], data.get("pages"))


def job_to_row(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "blob_id": job.blob_id,
        "status": job.status.value,
        "attempts": job.attempts,
        "idempotency_key": job.idempotency_key,
        "width": job.width,
        "height": job.height,
        "result": None if job.result is None else result_to_json(job.result),
        "error_code": None if job.error is None else job.error.code.value,
        "error_message": None if job.error is None else job.error.message[:MAX_ERROR_MESSAGE],
        "created_at": to_db_time(job.created_at),
        "started_at": to_db_time(job.started_at),
        "finished_at": to_db_time(job.finished_at),
        "published_at": to_db_time(job.published_at),
        "image_sha256": job.image_sha256,
        "text_layer": job.text_layer.value,
        "pages": job.pages,
        "pages_done": job.pages_done,
    }


def job_from_row(row: Any) -> Job:
    error = None
    if row.error_code is not None:
        error = JobError(JobErrorCode(row.error_code), row.error_message or "")
    created_at = from_db_time(row.created_at)
    assert created_at is not None  # NOT NULL column
    return Job(
        job_id=row.job_id,
        blob_id=row.blob_id,
        status=JobStatus(row.status),
        attempts=row.attempts,
        result=None if row.result is None else result_from_json(row.result),
        error=error,
        idempotency_key=row.idempotency_key,
        width=row.width,
        height=row.height,
        created_at=created_at,
        started_at=from_db_time(row.started_at),
        finished_at=from_db_time(row.finished_at),
        published_at=from_db_time(row.published_at),
        image_sha256=row.image_sha256,
        text_layer=TextLayer(row.text_layer),
        pages=row.pages,
        pages_done=row.pages_done,
    )
