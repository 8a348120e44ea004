"""Use cases. They depend on the domain and on the ports in `ports.py`, nothing else of ours."""

from ocr_runtime.application.documents import decode_document, inspect_document
from ocr_runtime.application.errors import (
    IdempotencyKeyReused,
    JobNotFound,
    QueueFull,
    QueueUnavailable,
    WaitTimeout,
)
from ocr_runtime.application.images import (
    SUPPORTED_FORMATS,
    ImageInfo,
    ImageLimits,
    check_media_type,
    decode_image,
    inspect_image,
    install_pixel_guard,
)
from ocr_runtime.application.messages import JobMessage, JobOutcome
from ocr_runtime.application.pdf import RenderTimeout
from ocr_runtime.application.process import BatchProcessor, BatchReport, retry_delay_s
from ocr_runtime.application.queries import JobCompletions, get_job, wait_for_job
from ocr_runtime.application.record import RecordingOutcomeSink, RecordOutcomes
from ocr_runtime.application.submit import SubmitJob, Upload

__all__ = [
    "SUPPORTED_FORMATS",
    "BatchProcessor",
    "BatchReport",
    "IdempotencyKeyReused",
    "ImageInfo",
    "ImageLimits",
    "JobCompletions",
    "JobMessage",
    "JobNotFound",
    "JobOutcome",
    "QueueFull",
    "QueueUnavailable",
    "RecordOutcomes",
    "RecordingOutcomeSink",
    "RenderTimeout",
    "SubmitJob",
    "Upload",
    "WaitTimeout",
    "check_media_type",
    "decode_document",
    "decode_image",
    "get_job",
    "inspect_document",
    "inspect_image",
    "install_pixel_guard",
    "retry_delay_s",
    "wait_for_job",
]
