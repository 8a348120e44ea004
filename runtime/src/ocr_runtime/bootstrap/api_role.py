"""`ocr-runtime api`: the HTTP API of the standard, batched and writer modes alike. It stores
each job and its image, publishes the job to Kafka (acks=all, idempotent producer) and never
runs the model. Redis, when `OCR_REDIS_URL` is set, adds duplicate-submission suppression and
per-client rate limiting in front of the API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import uvicorn
from prometheus_client import REGISTRY
from starlette.types import ASGIApp

from ocr_contract import Role
from ocr_runtime.adapters.kafka import KafkaJobPublisher, KafkaProducerClient
from ocr_runtime.adapters.redis_guard import RedisGuard
from ocr_runtime.adapters.sql import GroupCommitIntake, SqlJobRepository, create_database_engine
from ocr_runtime.api import create_app
from ocr_runtime.application.errors import AccessDenied
from ocr_runtime.application.outbox import OutboxSweeper, SweepReport
from ocr_runtime.bootstrap._dataplane import producer_options, until_reachable
from ocr_runtime.bootstrap.storage import build_blob_store
from ocr_runtime.core.logging import configure_logging
from ocr_runtime.core.metrics import OutboxMetrics
from ocr_runtime.core.settings import BlobBackend, Settings

log = logging.getLogger(__name__)

ROLE = Role.API


def build_app(settings: Settings, refused: list[AccessDenied] | None = None) -> ASGIApp:
    """The API with its adapters; resources start and stop in the app's lifespan. A refused
    Kafka login at start is appended to `refused` (uvicorn logs a failed startup and exits
    without the error)."""
    database = create_database_engine(settings.database_url, pool_size=settings.database_pool_size)
    blobs = build_blob_store(settings, database)
    kafka = KafkaProducerClient(producer_options(settings, ROLE))
    guard = RedisGuard.from_settings(settings)
    # Database blobs share the job's transaction, and concurrent submissions share one.
    intake = GroupCommitIntake(database) if settings.blob_backend is BlobBackend.DATABASE else None

    repository = SqlJobRepository(database)
    publisher = KafkaJobPublisher(kafka, settings.jobs_topic)
    outbox = OutboxMetrics(REGISTRY)

    def observe(report: SweepReport) -> None:
        outbox.oldest_unfinished_age.set(report.oldest_unfinished_age_s)
        outbox.republished.inc(report.republished)

    sweeper = OutboxSweeper(repository, publisher, on_sweep=observe)

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        try:
            await until_reachable(kafka.start, "Kafka")
        except AccessDenied as error:
            if refused is not None:
                refused.append(error)
            raise
        sweeping = asyncio.create_task(sweeper.run(), name="outbox-sweeper")
        try:
            yield
        finally:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
            if intake is not None:
                await intake.aclose()
            await kafka.stop()
            if guard is not None:
                await guard.aclose()
            await database.dispose()

    app = create_app(
        settings,
        repository,
        blobs,
        publisher,
        registry=REGISTRY,
        lifespan=lifespan,
        intake=intake,
        guard=guard,
    )
    return app


def run(settings: Settings) -> int:
    """Serve until SIGTERM; a refused Kafka login at start is raised (the entry point turns
    it into the `access denied` exit the operator names)."""
    configure_logging(settings.log_level)
    refused: list[AccessDenied] = []
    try:
        uvicorn.run(
            build_app(settings, refused),
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,  # keep the JSON logging configured above
            access_log=False,
            # Kubernetes sends SIGTERM, then waits terminationGracePeriodSeconds.
            timeout_graceful_shutdown=int(settings.drain_seconds),
        )
    except SystemExit:
        if refused:
            raise refused[0] from None
        raise
    return 0
