"""What travels on the queues. Claim check: messages carry ids, never image bytes. The id of
the HTTP request that submitted a job travels beside it in a Kafka header, so that every log
line about the job, in any process, names both."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from ocr_runtime.application.results import lines_payload, pages_payload, result_from_payload
from ocr_runtime.domain import JobError, JobErrorCode, OcrResult, TextLayer

REQUEST_ID_HEADER = "ocr-request-id"


def request_id_from(headers: Mapping[str, bytes]) -> str | None:
    raw = headers.get(REQUEST_ID_HEADER)
    return None if raw is None else raw.decode(errors="replace")[:128]


@dataclass(frozen=True, slots=True)
class JobMessage:
    job_id: str
    blob_id: str
    width: int
    height: int
    submitted_at: float  # unix seconds, for end-to-end latency
    attempt: int = 1  # the attempt in progress (counted in the database)
    request_id: str | None = None  # travels in a header, not in the body
    text_layer: TextLayer = TextLayer.IGNORE

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def log_context(self) -> dict[str, str | None]:
        """`extra=` of every log line about this job."""
        return {"job_id": self.job_id, "request_id": self.request_id}

    def to_bytes(self) -> bytes:
        body = {
            "job_id": self.job_id,
            "blob_id": self.blob_id,
            "width": self.width,
            "height": self.height,
            "submitted_at": self.submitted_at,
            "attempt": self.attempt,
            "text_layer": self.text_layer.value,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_delivery(cls, value: bytes, headers: Mapping[str, bytes]) -> JobMessage:
        return replace(cls.from_bytes(value), request_id=request_id_from(headers))

    @classmethod
    def from_bytes(cls, raw: bytes) -> JobMessage:
        """Raises ValueError/KeyError/TypeError on a malformed message (a poison message)."""
        data = json.loads(raw)
        return cls(
            job_id=str(data["job_id"]),
            blob_id=str(data["blob_id"]),
            width=int(data["width"]),
            height=int(data["height"]),
            submitted_at=float(data["submitted_at"]),
            attempt=int(data.get("attempt", 1)),
            # Messages written before the option existed carry none.
            text_layer=TextLayer(data.get("text_layer", TextLayer.IGNORE.value)),
        )

    def next_attempt(self) -> JobMessage:
        """The same job, to be delivered again after a transient failure."""
        return replace(self, attempt=self.attempt + 1)


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """A finished attempt: exactly one of `result` or `error` is set."""

    job_id: str
    finished_at: datetime
    result: OcrResult | None = None
    error: JobError | None = None
    submitted_at: float | None = None
    blob_id: str | None = None  # so whoever records the outcome can drop the image
    request_id: str | None = None  # travels in a header, not in the body

    @property
    def log_context(self) -> dict[str, str | None]:
        return {"job_id": self.job_id, "request_id": self.request_id}

    @classmethod
    def from_delivery(cls, value: bytes, headers: Mapping[str, bytes]) -> JobOutcome:
        return replace(cls.from_bytes(value), request_id=request_id_from(headers))

    def to_bytes(self) -> bytes:
        body: dict[str, object] = {
            "job_id": self.job_id,
            "finished_at": self.finished_at.isoformat(),
            "submitted_at": self.submitted_at,
            "blob_id": self.blob_id,
            "result": None,
            "error": None,
        }
        if self.result is not None:
            body["result"] = lines_payload(self.result)
            body["pages"] = pages_payload(self.result)
        if self.error is not None:
            body["error"] = {"code": self.error.code.value, "message": self.error.message}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> JobOutcome:
        data = json.loads(raw)
        result = None
        if data.get("result") is not None:
            result = result_from_payload(data["result"], data.get("pages"))
        error = None
        if data.get("error") is not None:
            error = JobError(JobErrorCode(data["error"]["code"]), data["error"]["message"])
        return cls(
            job_id=data["job_id"],
            finished_at=datetime.fromisoformat(data["finished_at"]),
            result=result,
            error=error,
            submitted_at=data.get("submitted_at"),
            blob_id=data.get("blob_id"),
        )
