"""Core rules of the OCR job: imports nothing of ours and no framework."""

from ocr_runtime.domain.errors import (
    DomainError,
    IllegalTransition,
    ImageTooLarge,
    InvalidImage,
    OcrError,
    TooManyPixels,
    UnsupportedMediaType,
)
from ocr_runtime.domain.job import (
    TRANSITIONS,
    Job,
    JobError,
    JobErrorCode,
    JobStatus,
    new_job_id,
    statuses_allowing,
)
from ocr_runtime.domain.ocr import Box, OcrLine, OcrResult

__all__ = [
    "TRANSITIONS",
    "Box",
    "DomainError",
    "IllegalTransition",
    "ImageTooLarge",
    "InvalidImage",
    "Job",
    "JobError",
    "JobErrorCode",
    "JobStatus",
    "OcrError",
    "OcrLine",
    "OcrResult",
    "TooManyPixels",
    "UnsupportedMediaType",
    "new_job_id",
    "statuses_allowing",
]
