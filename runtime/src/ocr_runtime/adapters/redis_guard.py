"""Optional Redis guard in front of the API (seed 001: "Redis (optional): dedup, rate limit").

- Per-client rate limit on submissions: a fixed one-minute window per client (API key digest,
  else peer address), `OCR_RATE_LIMIT_PER_MINUTE`; over the limit -> 429 with Retry-After.
- Duplicate-submission suppression: the same upload from the same client within
  `OCR_DEDUP_WINDOW_S` maps to the first job. The guard gives such requests an Idempotency-Key
  derived from the content and the window, so the API's own idempotency returns the first job.

Both fail open: when Redis is unreachable the request goes through unguarded (the system
works without Redis; correctness never depends on it)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocr_runtime.core.settings import Settings

log = logging.getLogger(__name__)

_GUARDED_PATHS = frozenset({"/v1/jobs", "/v1/ocr"})
_BODY_SLACK_BYTES = 64 * 1024  # multipart framing around the image
_REDIS_TIMEOUT_S = 0.5


class RedisGuard:
    def __init__(
        self, client: aioredis.Redis, *, per_minute: int, dedup_window_s: int, max_body: int
    ) -> None:
        self._redis = client
        self.per_minute = per_minute
        self.dedup_window_s = dedup_window_s
        self.max_body = max_body

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisGuard | None:
        if settings.redis_url is None:
            return None
        client = aioredis.Redis.from_url(
            settings.redis_url.get_secret_value(),
            socket_timeout=_REDIS_TIMEOUT_S,
            socket_connect_timeout=_REDIS_TIMEOUT_S,
        )
        return cls(
            client,
            per_minute=settings.rate_limit_per_minute,
            dedup_window_s=settings.dedup_window_s,
            max_body=settings.max_upload_bytes + _BODY_SLACK_BYTES,
        )

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def allow(self, client: str, now: float | None = None) -> bool:
        """Count one request of `client` in the current minute; False once over the limit."""
        if self.per_minute <= 0:
            return True
        window = int((now if now is not None else time.time()) // 60)
        key = f"ocr:rl:{client}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("rate limit skipped, Redis unavailable: %s", exc)
            return True
        return int(count) <= self.per_minute

    async def idempotency_key(self, client: str, digest: str) -> str | None:
        """The key every duplicate of this upload shares within the window (None: Redis
        unavailable, no suppression)."""
        slot = f"ocr:dedup:{client}:{digest}"
        fresh = f"dedup-{digest[:48]}-{int(time.time())}"
        try:
            await self._redis.set(slot, fresh, nx=True, ex=self.dedup_window_s)
            stored = await self._redis.get(slot)
        except (RedisError, OSError) as exc:
            log.warning("duplicate suppression skipped, Redis unavailable: %s", exc)
            return None
        return stored.decode() if isinstance(stored, bytes) else fresh


class SubmissionGuardMiddleware:
    """ASGI middleware applying a `RedisGuard` to job submissions."""

    def __init__(self, app: ASGIApp, guard: RedisGuard) -> None:
        self._app = app
        self._guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in _GUARDED_PATHS
        ):
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        client = _client_id(scope, headers)
        if not await self._guard.allow(client):
            await _too_many(send, self._guard.per_minute)
            return
        if b"idempotency-key" in headers:
            await self._app(scope, receive, send)
            return
        messages, complete = await _read_body(receive, self._guard.max_body)
        replay = _replaying(messages, receive)
        if not complete:  # too big to fingerprint: the API answers 413 itself
            await self._app(scope, replay, send)
            return
        digest = _fingerprint(_body_of(messages), headers.get(b"content-type", b""))
        key = await self._guard.idempotency_key(client, digest)
        if key is not None:
            scope = {**scope, "headers": [*scope["headers"], (b"idempotency-key", key.encode())]}
        await self._app(scope, replay, send)


def _client_id(scope: Scope, headers: dict[bytes, bytes]) -> str:
    auth = headers.get(b"authorization")
    if auth:
        return "key-" + hashlib.sha256(auth).hexdigest()[:24]
    peer = scope.get("client")
    return f"ip-{peer[0]}" if peer else "ip-unknown"


def _fingerprint(body: bytes, content_type: bytes) -> str:
    """SHA-256 of the body without its multipart boundary (random per request)."""
    marker = b"boundary="
    if marker in content_type:
        boundary = content_type.split(marker, 1)[1].split(b";", 1)[0].strip(b'" ')
        if boundary:
            body = body.replace(boundary, b"")
    return hashlib.sha256(body).hexdigest()


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], bool]:
    """The request's messages up to `limit` bytes; whether the body ended within it."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, False
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, True
        if size > limit:
            return messages, False


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _body_of(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")


async def _too_many(send: Send, per_minute: int) -> None:
    body = json.dumps(
        {"error": {"code": "rate_limited", "message": f"over {per_minute} requests per minute"}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", str(60 - int(time.time()) % 60).encode()),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", uuid.uuid4().hex.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
