"""The optional Redis guard in front of the API: duplicate uploads map to the first job,
and a client over its per-minute limit gets 429."""

from __future__ import annotations

import hashlib
import time
import uuid

import httpx
import pytest
from redis import Redis

from tests.dataplane.conftest import Stack
from tests.dataplane.support import RuntimeProcess, png
from tests.support.ports import free_port

pytestmark = pytest.mark.integration


def guarded_api(stack: Stack, redis_url: str, key: str, per_minute: int) -> RuntimeProcess:
    """An API with Redis and one API key (a fresh one per test: the rate-limit buckets are
    per verified key)."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return stack.start("api", "batched", OCR_REDIS_URL=redis_url, OCR_API_KEY_HASHES=digest,
                       OCR_RATE_LIMIT_PER_MINUTE=str(per_minute))  # fmt: skip


def wait_for_a_fresh_minute() -> None:
    if time.time() % 60 > 50:  # the limit window is the wall-clock minute: start in one
        time.sleep(61 - time.time() % 60)


def test_redis_suppresses_duplicates_and_limits_rate(stack: Stack, redis_url: str) -> None:
    key = f"run-{uuid.uuid4().hex}"
    api = guarded_api(stack, redis_url, key, 6)
    wait_for_a_fresh_minute()
    image = png(uuid.uuid4().int % 2**24)
    other = png((uuid.uuid4().int % 2**24) ^ 1)
    with httpx.Client(base_url=api.url) as client:
        client.headers["Authorization"] = f"Bearer {key}"

        def post(data: bytes) -> httpx.Response:
            return client.post("/v1/jobs", files={"image": ("a.png", data, "image/png")})

        first, again, different = post(image), post(image), post(other)
        assert first.status_code == again.status_code == different.status_code == 202
        assert again.json()["job_id"] == first.json()["job_id"]
        assert different.json()["job_id"] != first.json()["job_id"]
        statuses = [post(other).status_code for _ in range(4)]
        assert statuses == [202, 202, 202, 429]
        limited = post(image)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) > 0
    assert len(stack.db.rows()) == 2  # the duplicates created no job


def test_api_works_when_redis_is_unreachable(stack: Stack) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    api = stack.start("api", "batched", OCR_REDIS_URL=dead_redis, OCR_RATE_LIMIT_PER_MINUTE="1")
    with httpx.Client(base_url=api.url) as client:
        image = png(7)
        answers = [
            client.post("/v1/jobs", files={"image": ("a.png", image, "image/png")})
            for _ in range(3)
        ]
    # Fail open: no rate limit, no duplicate suppression, every upload accepted.
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.json()["job_id"] for a in answers}) == 3


def test_the_guard_runs_after_auth_keyed_by_the_verified_key(stack: Stack, redis_url: str) -> None:
    key = f"run-{uuid.uuid4().hex}"
    api = guarded_api(stack, redis_url, key, 3)
    redis = Redis.from_url(redis_url)
    wait_for_a_fresh_minute()
    before = set(redis.scan_iter("ocr:rl:*"))
    with httpx.Client(base_url=api.url) as client:

        def post(authorization: str, seed: int) -> int:
            files = {"image": ("a.png", png(seed), "image/png")}
            headers = {"Authorization": authorization}
            return client.post("/v1/jobs", files=files, headers=headers).status_code

        strangers = [post(f"Bearer wrong-{n}", n) for n in range(10)]
        assert set(strangers) == {401}
        # Unauthenticated requests cost no Redis round trip: no bucket was created for them
        # (older buckets may expire meanwhile).
        assert set(redis.scan_iter("ocr:rl:*")) <= before
        spellings = [f"Bearer {key}", f"bearer {key}", f"BEARER  {key}", f"bEaReR {key}"]
        answers = [post(spelling, 100 + n) for n, spelling in enumerate(spellings)]
    assert answers == [202, 202, 202, 429]  # one bucket, however the header is spelled
    redis.close()
