"""Errors of the HTTP layer, under the same root as the others, and the one handler that turns
any `OcrError` into the JSON error body."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ocr_runtime.core.logging import request_id_var
from ocr_runtime.domain import OcrError

logger = logging.getLogger(__name__)


class BadRequest(OcrError):  # noqa: N818 (named after the HTTP meaning)
    code = "bad_request"
    http_status = 400


class EmptyBody(BadRequest):
    code = "empty_body"


class MissingField(OcrError):  # noqa: N818
    code = "missing_field"
    http_status = 422


class InvalidParameter(OcrError):  # noqa: N818
    code = "invalid_parameter"
    http_status = 422


class Unauthorized(OcrError):  # noqa: N818
    code = "unauthorized"
    http_status = 401


class RetryLater(OcrError):  # noqa: N818
    """Refused for now; the response says when to come back (Retry-After)."""

    http_status = 503

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class RateLimited(RetryLater):
    code = "rate_limited"
    http_status = 429


class NotReady(OcrError):  # noqa: N818
    code = "not_ready"
    http_status = 503


def error_body(code: str, message: str, extra: dict[str, str] | None = None) -> dict[str, object]:
    body: dict[str, object] = {"error": {"code": code, "message": message}}
    body.update(extra or {})
    request_id = request_id_var.get()
    if request_id is not None:
        body["request_id"] = request_id
    return body


async def handle_ocr_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OcrError)
    if exc.http_status >= 500:
        logger.warning("request failed: %s: %s", exc.code, exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    if isinstance(exc, RetryLater):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details()), exc.http_status, headers=headers
    )


async def handle_validation_error(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own parameter validation, in our error shape."""
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
        for err in exc.errors()
    )
    return JSONResponse(error_body(InvalidParameter.code, problems), 422)


async def handle_unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal server error"), 500)
