"""Errors of the use cases. Same root as the domain's (`OcrError`), so the API maps every one
of them to HTTP in one handler."""

from __future__ import annotations

from ocr_runtime.domain import OcrError


class JobNotFound(OcrError):  # noqa: N818 (names are the contract)
    code = "not_found"
    http_status = 404


class WaitTimeout(OcrError):  # noqa: N818 (names are the contract)
    """The job did not finish within the caller's wait; it keeps running."""

    code = "timeout"
    http_status = 504

    def __init__(self, job_id: str, timeout_s: float) -> None:
        super().__init__(
            f"job {job_id} not finished within {timeout_s:g} s; poll GET /v1/jobs/"
            f"{job_id} for its result"
        )
        self.job_id = job_id

    def details(self) -> dict[str, str]:
        return {"job_id": self.job_id}


class QueueUnavailable(OcrError):  # noqa: N818 (names are the contract)
    """The job could not be handed to the queue; nothing will process it."""

    code = "queue_unavailable"
    http_status = 503


class QueueFull(QueueUnavailable):
    """The queue refuses more work for now (back-pressure); retry later."""

    code = "queue_full"


class IdempotencyKeyReused(OcrError):  # noqa: N818 (names are the contract)
    """The Idempotency-Key names an earlier submission of another image."""

    code = "idempotency_key_reused"
    http_status = 422

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"this Idempotency-Key was already used for a different image (job {job_id}); "
            "use a new key for a new image"
        )
        self.job_id = job_id

    def details(self) -> dict[str, str]:
        return {"job_id": self.job_id}


class InfrastructureError(Exception):
    """A failure of the outside world (database, broker, blob store, Redis), typed by what
    the caller should do about it. Adapters raise these at their boundary, with the library's
    own exception as `__cause__`; callers never look at library exception types."""


class TransientError(InfrastructureError):
    """Retry: the service is away, overloaded or the connection broke. No job is at fault."""


class ConflictError(TransientError):
    """A lost lock race (deadlock, lock wait timeout): retry; a transaction that keeps
    losing is likelier to pass in smaller pieces."""


class PermanentError(InfrastructureError):
    """Retrying the same thing fails the same way (a refused value, a constraint, a
    permission error): charge it to the work or isolate the part at fault."""


class AccessDenied(PermanentError):  # noqa: N818 (says what happened, like the others)
    """A service refused this process's credentials or certificate: only a change of
    configuration helps, so a process that meets it at start stops and says so."""
