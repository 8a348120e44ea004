"""Idempotency keys are scoped and honest, on the real API and MariaDB: a key belongs to the
API key that used it (to the client address when auth is off); the same key with another
image is refused (422) instead of answering with a job for a different image; a job that
failed only because the queue was away can be submitted again under its key; and keys are
compared exactly (binary collation: `Abc` is not `abc`)."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest

from ocr_runtime.adapters.kafka import KafkaJobPublisher, KafkaProducerClient, ProducerOptions
from ocr_runtime.adapters.sql import DatabaseBlobStore, SqlJobRepository, create_database_engine
from ocr_runtime.application import ImageLimits, JobMessage, QueueUnavailable, SubmitJob, Upload
from ocr_runtime.domain import Job, JobStatus
from tests.dataplane.conftest import Stack
from tests.dataplane.faults import seeded_png

pytestmark = pytest.mark.integration

LIMITS = ImageLimits(max_bytes=5_000_000, max_pixels=5_000_000)
KEYS = ("key-of-alice", "key-of-bob")


def post(api_url: str, image: bytes, key: str, **client: object) -> httpx.Response:
    headers = {"Idempotency-Key": key}
    if "token" in client:
        headers["Authorization"] = f"Bearer {client['token']}"
    transport = httpx.HTTPTransport(local_address=str(client.get("source", "127.0.0.1")))
    with httpx.Client(base_url=api_url, timeout=30.0, transport=transport) as http:
        return http.post("/v1/jobs", headers=headers,
                         files={"image": ("page.png", image, "image/png")})  # fmt: skip


def test_a_key_reused_with_another_image_is_refused(stack: Stack) -> None:
    api = stack.start("api", "batched")
    first = post(api.url, seeded_png(1), "order-17")
    again = post(api.url, seeded_png(1), "order-17")
    other = post(api.url, seeded_png(2), "order-17")
    assert first.status_code == again.status_code == 202
    assert again.json()["job_id"] == first.json()["job_id"]
    assert other.status_code == 422, other.text
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert "different image" in other.json()["error"]["message"]


def test_keys_are_scoped_per_api_key(stack: Stack) -> None:
    hashes = ",".join(hashlib.sha256(k.encode()).hexdigest() for k in KEYS)
    api = stack.start("api", "batched", OCR_API_KEY_HASHES=hashes)
    alice = post(api.url, seeded_png(1), "invoice-1", token=KEYS[0])
    bob = post(api.url, seeded_png(1), "invoice-1", token=KEYS[1])
    alice_again = post(api.url, seeded_png(1), "invoice-1", token=KEYS[0])
    assert alice.status_code == bob.status_code == alice_again.status_code == 202
    assert alice.json()["job_id"] != bob.json()["job_id"]
    assert alice_again.json()["job_id"] == alice.json()["job_id"]


def test_without_auth_keys_are_scoped_per_client(stack: Stack) -> None:
    api = stack.start("api", "batched", OCR_HTTP_HOST="0.0.0.0")
    one = post(api.url, seeded_png(1), "k", source="127.0.0.1")
    two = post(api.url, seeded_png(1), "k", source="127.0.0.2")
    assert one.status_code == two.status_code == 202
    assert one.json()["job_id"] != two.json()["job_id"]


class _QueueAway:
    async def publish(self, message: JobMessage) -> None:
        raise ConnectionError("broker unreachable")

    async def ping(self) -> None:
        raise ConnectionError("broker unreachable")


async def _resubmit_and_case(stack: Stack) -> tuple[Job, Job, Job]:
    engine = create_database_engine(stack.db.async_url)
    repository, blobs = SqlJobRepository(engine), DatabaseBlobStore(engine)
    client = KafkaProducerClient(ProducerOptions(stack.bootstrap, "idempotency-test"))
    await client.start()
    try:
        with pytest.raises(QueueUnavailable):
            await SubmitJob(repository, blobs, _QueueAway(), LIMITS)(
                Upload(seeded_png(5), "image/png", "retry-me")
            )
        working = SubmitJob(repository, blobs, KafkaJobPublisher(client, stack.topics.jobs), LIMITS)
        resubmitted = await working(Upload(seeded_png(5), "image/png", "retry-me"))
        upper = await working(Upload(seeded_png(6), "image/png", "Abc"))
        lower = await working(Upload(seeded_png(7), "image/png", "abc"))
        return resubmitted, upper, lower
    finally:
        await client.stop()
        await engine.dispose()


def test_a_job_refused_by_the_queue_can_be_resubmitted_and_keys_are_exact(stack: Stack) -> None:
    resubmitted, upper, lower = asyncio.run(_resubmit_and_case(stack))
    refused = [j for j, r in stack.db.rows().items() if r.error_code == "queue_unavailable"]
    assert len(refused) == 1 and resubmitted.job_id != refused[0]
    assert resubmitted.status is JobStatus.QUEUED
    assert upper.job_id != lower.job_id
