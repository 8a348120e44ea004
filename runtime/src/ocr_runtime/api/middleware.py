"""Pure ASGI middleware (no per-request task or body copy): request id, metrics, access log."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocr_runtime.core.logging import request_id_var
from ocr_runtime.core.metrics import ApiMetrics

logger = logging.getLogger("ocr_runtime.api.access")

REQUEST_ID_HEADER = "x-request-id"
# A client's id is echoed only if it is short and plain (it lands in logs and headers).
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _VALID_REQUEST_ID.fullmatch(text) else None
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        self._metrics.in_flight.inc()
        try:
            await self._app(scope, receive, send_with_id)
        finally:
            self._metrics.in_flight.dec()
            self._observe(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        self._metrics.requests.labels(method, template, str(status)).inc()
        self._metrics.latency.labels(method, template).observe(elapsed)
        if logger.isEnabledFor(logging.DEBUG) or status >= 500:
            logger.log(
                logging.WARNING if status >= 500 else logging.DEBUG,
                "%s %s %d %.1fms", method, scope.get("path", ""), status, elapsed * 1000,
            )  # fmt: skip
