"""Core rules of the OCR job: imports nothing of ours and no framework."""

from ocr_runtime.domain.errors import (
    DomainError,
    EncryptedDocument,
    IllegalTransition,
    ImageTooLarge,
    InvalidImage,
    OcrError,
    TooManyPages,
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
from ocr_runtime.domain.ocr import (
    PAGE_SEPARATOR,
    Box,
    OcrLine,
    OcrPage,
    OcrResult,
    PageSource,
    TextLayer,
)

__all__ = [
    "PAGE_SEPARATOR",
    "TRANSITIONS",
    "Box",
    "DomainError",
    "EncryptedDocument",
    "IllegalTransition",
    "ImageTooLarge",
    "InvalidImage",
    "Job",
    "JobError",
    "JobErrorCode",
    "JobStatus",
    "OcrError",
    "OcrLine",
    "OcrPage",
    "OcrResult",
    "PageSource",
    "TextLayer",
    "TooManyPages",
    "TooManyPixels",
    "UnsupportedMediaType",
    "new_job_id",
    "statuses_allowing",
]
