"""Kafka producers: jobs (API -> workers), results (worker -> writer, writer mode) and dead
letters. One idempotent producer with acks=all per process: a publish returns only once every
in-sync replica has the record, and the broker drops the duplicates that producer retries
would otherwise create."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from ocr_runtime.adapters.failures import boundary
from ocr_runtime.adapters.kafka.security import PLAINTEXT, KafkaSecurity
from ocr_runtime.application.messages import REQUEST_ID_HEADER, JobMessage, JobOutcome
from ocr_runtime.application.stream import DeadLetter

_MAX_BATCH_BYTES = 256 * 1024
_MAX_REQUEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProducerOptions:
    bootstrap: str
    client_id: str
    linger_ms: int = 0  # concurrent sends still share requests while one is in flight
    request_timeout_ms: int = 30_000
    security: KafkaSecurity = PLAINTEXT


@boundary
class KafkaProducerClient:
    """Owns the one `AIOKafkaProducer` of a process; `start()` and `stop()` in lifespan."""

    def __init__(self, options: ProducerOptions) -> None:
        self._options = options
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        o = self._options
        producer = AIOKafkaProducer(
            bootstrap_servers=o.bootstrap,
            client_id=o.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=o.linger_ms,
            max_batch_size=_MAX_BATCH_BYTES,
            max_request_size=_MAX_REQUEST_BYTES,
            request_timeout_ms=o.request_timeout_ms,
            **o.security.client_options(),
        )
        await o.security.started(o.bootstrap, producer.start, producer.stop)
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()  # flushes what is pending
            self._producer = None

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("Kafka producer not started")
        return self._producer

    async def send_all(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]],
    ) -> None:
        """Send (key, value, headers) records; return once every one is acknowledged."""
        producer = self.producer
        futures = [
            await producer.send(topic, value=value, key=key, headers=headers)
            for key, value, headers in records
        ]
        await asyncio.gather(*futures)

    async def ping(self) -> None:
        """Raise unless the cluster answers a metadata request."""
        if not await self.producer.client.force_metadata_update():
            raise ConnectionError("no Kafka broker answered a metadata request")


@boundary
class KafkaJobPublisher:
    """`JobPublisher`: keyed by job id, so every delivery of one job lands on one partition."""

    def __init__(self, client: KafkaProducerClient, topic: str) -> None:
        self._client = client
        self._topic = topic

    async def publish(self, message: JobMessage) -> None:
        await self._client.send_all(
            self._topic,
            [(message.job_id.encode(), message.to_bytes(), _request_header(message.request_id))],
        )

    async def ping(self) -> None:
        await self._client.ping()


@boundary
class KafkaResultPublisher:
    """`OutcomeSink` of the writer mode: outcomes go to the result topic, keyed by job id."""

    def __init__(self, client: KafkaProducerClient, topic: str) -> None:
        self._client = client
        self._topic = topic

    async def deliver(self, outcomes: Sequence[JobOutcome]) -> None:
        await self._client.send_all(
            self._topic,
            [(o.job_id.encode(), o.to_bytes(), _request_header(o.request_id)) for o in outcomes],
        )


@boundary
class KafkaDeadLetterPublisher:
    """`DeadLetterSink`: the original bytes, unchanged, with why and where in the headers."""

    def __init__(self, client: KafkaProducerClient, topic: str) -> None:
        self._client = client
        self._topic = topic

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        await self._client.send_all(
            self._topic, [(ln.delivery.key, ln.delivery.value, _headers(ln)) for ln in letters]
        )


def _request_header(request_id: str | None) -> list[tuple[str, bytes]] | None:
    return None if request_id is None else [(REQUEST_ID_HEADER, request_id.encode())]


def _headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    d = letter.delivery
    fields = {
        "ocr-reason": letter.reason.value,
        "ocr-detail": letter.detail,
        "ocr-stage": letter.stage,
        "ocr-source-topic": d.topic,
        "ocr-source-partition": str(d.partition),
        "ocr-source-offset": str(d.offset),
        **{f"ocr-{k}": v for k, v in letter.extra.items()},
    }
    kept = (
        [(REQUEST_ID_HEADER, d.headers[REQUEST_ID_HEADER])]
        if REQUEST_ID_HEADER in d.headers
        else []
    )
    return kept + [(k, v.encode()) for k, v in fields.items()]
