"""Core rules of the OCR job: imports nothing of ours and no framework."""

from ocr_runtime.domain.errors import DomainError, IllegalTransition, InvalidImage
from ocr_runtime.domain.job import Job, JobError, JobErrorCode, JobStatus
from ocr_runtime.domain.ocr import OcrLine, OcrResult

__all__ = [
    "DomainError",
    "IllegalTransition",
    "InvalidImage",
    "Job",
    "JobError",
    "JobErrorCode",
    "JobStatus",
    "OcrLine",
    "OcrResult",
]
