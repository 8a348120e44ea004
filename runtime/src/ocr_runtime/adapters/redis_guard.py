"""Optional Redis guard of the API's submissions (`SubmissionGuard`), applied by the routes
after authentication, keyed by the verified caller.

- Per-caller rate limit on submissions: a fixed one-minute window per caller (verified API
  key, else peer address), `OCR_RATE_LIMIT_PER_MINUTE`; over the limit -> 429 with Retry-After.
- Duplicate-submission suppression: the same image from the same caller within
  `OCR_DEDUP_WINDOW_S` maps to the first job. The guard gives such requests an Idempotency-Key
  derived from the image and the window, so the API's own idempotency returns the first job.

Both fail open: when Redis is unreachable the request goes through unguarded (the system
works without Redis; correctness never depends on it)."""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ocr_runtime.adapters.failures import boundary
from ocr_runtime.core.settings import Settings

log = logging.getLogger(__name__)

_REDIS_TIMEOUT_S = 0.5


@boundary
class RedisGuard:
    def __init__(self, client: aioredis.Redis, *, per_minute: int, dedup_window_s: int) -> None:
        self._redis = client
        self.per_minute = per_minute
        self.dedup_window_s = dedup_window_s

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
