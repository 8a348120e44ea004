"""The submission guard (Redis, optional): a per-caller rate limit and duplicate-upload
suppression. It runs inside the submit routes, after authentication, keyed by the verified
caller: an unauthenticated request is refused before it costs a Redis round trip, and the
spelling of the Authorization header cannot open a new rate-limit bucket."""

from __future__ import annotations

import hashlib
import time
from typing import Protocol

from ocr_runtime.api.errors import RateLimited


class SubmissionGuard(Protocol):
    @property
    def per_minute(self) -> int: ...

    async def allow(self, client: str, now: float | None = None) -> bool:
        """Count one request of `client` in the current minute; False once over the limit."""

    async def idempotency_key(self, client: str, digest: str) -> str | None:
        """The key every duplicate of this upload shares within the window (None: no
        suppression, the guard is unavailable)."""


async def check_rate(guard: SubmissionGuard | None, caller: str) -> None:
    if guard is not None and not await guard.allow(caller):
        retry_after = 60 - int(time.time()) % 60  # the window is the wall-clock minute
        raise RateLimited(f"over {guard.per_minute} requests per minute", retry_after)


async def duplicate_key(guard: SubmissionGuard | None, caller: str, image: bytes) -> str | None:
    if guard is None:
        return None
    return await guard.idempotency_key(caller, hashlib.sha256(image).hexdigest())
