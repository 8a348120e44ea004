"""Composition helpers shared by the api, worker and writer roles: storage, Kafka clients,
the retry policy that knows which errors are transient, and the run-until-SIGTERM-then-drain
skeleton of the consumer processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ocr_contract import Role
from ocr_runtime.adapters.failures import is_transient
from ocr_runtime.adapters.kafka import (
    ConsumerOptions,
    KafkaProducerClient,
    KafkaRecordSource,
    KafkaSecurity,
    ProducerOptions,
    ensure_topics,
    missing_topics,
)
from ocr_runtime.adapters.sql import SqlJobRepository, create_database_engine
from ocr_runtime.application.ports import BlobStore
from ocr_runtime.bootstrap.storage import build_blob_store
from ocr_runtime.core.heap import freeze_startup_heap
from ocr_runtime.core.settings import Mode, Settings
from ocr_runtime.worker import ConsumeLoop, DataPlaneMetrics, ProbeServer, RetryPolicy, probe_app
from ocr_runtime.worker.probes import ReadinessChecks

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 10.0
_STARTUP_PATIENCE_S = 60.0
_TOPIC_POLL_S = 2.0


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.max_attempts,
        first_backoff_s=settings.retry_backoff_ms / 1000,
        max_backoff_s=_MAX_BACKOFF_S,
    )


def client_id(role: str) -> str:
    return f"ocr-{role}-{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Storage:
    engine: AsyncEngine
    repository: SqlJobRepository
    blobs: BlobStore


@contextlib.asynccontextmanager
async def open_storage(settings: Settings) -> AsyncIterator[Storage]:
    engine = create_database_engine(settings.database_url, pool_size=settings.database_pool_size)
    try:
        yield Storage(engine, SqlJobRepository(engine), build_blob_store(settings, engine))
    finally:
        await engine.dispose()


async def until_reachable(
    start: Callable[[], Awaitable[None]], what: str, timeout_s: float = _STARTUP_PATIENCE_S
) -> None:
    """Run `start` until it stops failing for transient reasons (a broker or database still
    starting or restarting), for at most `timeout_s`; then let the error out (the process
    exits and Kubernetes restarts it with its own backoff)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    delay = 0.5
    while True:
        try:
            await start()
            return
        except Exception as exc:
            if not is_transient(exc) or asyncio.get_running_loop().time() + delay > deadline:
                raise
            log.warning("%s unreachable, retrying in %.1fs: %s", what, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def producer_options(settings: Settings, role: str) -> ProducerOptions:
    """Only the API lingers: its requests each publish one job, and at a few hundred a second
    an immediate send was a produce request per job, which cost the broker half as much CPU
    as the API's own work on the job (0.65 to 0.88 ms a job at 500/s; 0.29 to 0.34 with 5 ms).
    A worker or writer sends a whole batch at once, which a linger would only delay."""
    return ProducerOptions(
        settings.kafka_bootstrap,
        client_id(role),
        linger_ms=settings.kafka_job_linger_ms if role == Role.API else 0,
        security=KafkaSecurity.from_settings(settings),
    )


@contextlib.asynccontextmanager
async def open_producer(settings: Settings, role: str) -> AsyncIterator[KafkaProducerClient]:
    client = KafkaProducerClient(producer_options(settings, role))
    await until_reachable(client.start, "Kafka")
    try:
        yield client
    finally:
        await client.stop()


async def prepare_topics(
    settings: Settings,
    *,
    poll_s: float = _TOPIC_POLL_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Create the topics (OCR_KAFKA_CREATE_TOPICS on) or wait until whoever owns them (the
    operator, Strimzi) created the ones this process uses, saying which are missing."""
    if not settings.kafka_create_topics:
        await wait_for_topics(settings, poll_s=poll_s, sleep=sleep)
        return

    async def create() -> None:
        created = await ensure_topics(
            settings.kafka_bootstrap,
            [settings.jobs_topic, settings.results_topic, settings.dead_letter_topic],
            partitions=settings.kafka_partitions,
            replication=settings.kafka_replication,
            security=KafkaSecurity.from_settings(settings),
        )
        if created:
            log.info("created topics %s", created)

    await until_reachable(create, "Kafka")


def needed_topics(settings: Settings) -> list[str]:
    """Topics this process reads or writes: results only in writer mode (workers publish to
    it, writers consume it)."""
    topics = [settings.jobs_topic, settings.dead_letter_topic]
    if settings.mode is Mode.WRITER:
        topics.insert(1, settings.results_topic)
    return topics


async def wait_for_topics(
    settings: Settings, *, poll_s: float, sleep: Callable[[float], Awaitable[None]]
) -> None:
    announced: list[str] = []
    found: list[list[str]] = []

    async def check() -> None:
        found.append(
            await missing_topics(
                settings.kafka_bootstrap,
                needed_topics(settings),
                security=KafkaSecurity.from_settings(settings),
            )
        )

    while True:
        await until_reachable(check, "Kafka")
        missing = found.pop()
        if not missing:
            if announced:
                log.info("topics %s exist now", announced)
            return
        if missing != announced:
            log.warning(
                "waiting for Kafka topics %s to be created (OCR_KAFKA_CREATE_TOPICS is off: "
                "their owner, e.g. the operator, creates them)",
                missing,
            )
            announced = missing
        await sleep(poll_s)


# A batching consumer lets the broker hold a fetch until about this much has arrived (some
# 25 job messages) or the batch wait has passed: at 500 jobs/s an answer per arriving
# record cost the broker a fifth of a core and the worker a sixth of its CPU.
BATCH_FETCH_MIN_BYTES = 8 * 1024
# Without a batch wait: answered as soon as anything arrives, long-polled while idle.
IMMEDIATE_FETCH = (1, 100)


def fetch_limits(batch_wait_ms: int) -> tuple[int, int]:
    """(fetch_min_bytes, fetch_max_wait_ms) of a consumer whose batches wait up to
    `batch_wait_ms` to fill: the fetch waits no longer than a batch would."""
    if batch_wait_ms <= 0:
        return IMMEDIATE_FETCH
    return BATCH_FETCH_MIN_BYTES, batch_wait_ms


def record_source(
    settings: Settings, topic: str, group: str, role: str, *, batch_wait_ms: int
) -> KafkaRecordSource:
    min_bytes, max_wait_ms = fetch_limits(batch_wait_ms)
    return KafkaRecordSource(
        ConsumerOptions(
            bootstrap=settings.kafka_bootstrap,
            topic=topic,
            group=group,
            client_id=client_id(role),
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(1000, settings.kafka_session_timeout_ms // 5),
            fetch_min_bytes=min_bytes,
            fetch_max_wait_ms=max_wait_ms,
            security=KafkaSecurity.from_settings(settings),
        )
    )


def database_check(storage: Storage) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        await storage.repository.ping()
        return True

    return check


async def consumer_not_started() -> bool:
    """The consumer check until `run_consumer` replaces it: a process whose Kafka login or
    topic setup is still pending (or is about to fail) must never answer Ready."""
    return False


@contextlib.asynccontextmanager
async def serving_probes(settings: Settings, checks: ReadinessChecks) -> AsyncIterator[None]:
    """/healthz, /readyz and /metrics from the start (liveness during model load); `checks`
    is read at each request, so the caller may add checks as components come up."""
    probes = ProbeServer(probe_app(checks), settings.http_host, settings.http_port)
    await probes.start()
    try:
        yield
    finally:
        await probes.aclose()


async def run_consumer(
    loop: ConsumeLoop[Any],
    settings: Settings,
    metrics: DataPlaneMetrics,
    checks: dict[str, Callable[[], Awaitable[bool]]],
) -> int:
    """Consume until SIGTERM/SIGINT, then drain within `drain_seconds`. Exit code 0 after a
    clean drain, 1 when the drain ran out of time or the loop failed."""
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(sig, stop.set)

    async def consuming() -> bool:
        return loop.ready

    checks["consumer"] = consuming
    freeze_startup_heap()
    task = asyncio.create_task(loop.run(stop), name="consume-loop")
    try:
        await asyncio.wait(
            {task, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        if not task.done():
            metrics.draining.set(1)
            log.info("stop requested: draining for at most %.1fs", settings.drain_seconds)
            try:
                await asyncio.wait_for(asyncio.shield(task), settings.drain_seconds)
            except TimeoutError:
                log.error("drain did not finish in %.1fs; exiting", settings.drain_seconds)
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                return 1
        task.result()  # re-raise a loop failure
        log.info("stopped cleanly")
        return 0
    except Exception:
        log.exception("consume loop failed")
        return 1
