"""`ocr-runtime all-in-one`: the whole service in one process on one machine. The API on
127.0.0.1:8000, SQLite (by default), an in-process queue and the worker on the real default
engine; no service to install."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from ocr_runtime.adapters.inprocess_queue import InProcessJobQueue
from ocr_runtime.adapters.sql import GroupCommitIntake, SqlJobRepository, create_database_engine
from ocr_runtime.api import create_app
from ocr_runtime.application import (
    BatchProcessor,
    ImageLimits,
    JobCompletions,
    RecordingOutcomeSink,
    RecordOutcomes,
)
from ocr_runtime.application.model import ModelIdentity
from ocr_runtime.application.outbox import job_message
from ocr_runtime.application.ports import OcrEngine
from ocr_runtime.bootstrap._inprocess_worker import InProcessWorker
from ocr_runtime.bootstrap.storage import build_blob_store
from ocr_runtime.core.logging import configure_logging
from ocr_runtime.core.settings import BlobBackend, Settings
from ocr_runtime.migrations import upgrade_database
from ocr_runtime.worker.metrics import DataPlaneMetrics
from ocr_runtime.worker.observe import InstrumentedEngine, ObservedSink, SinkTarget

log = logging.getLogger(__name__)


def build_all_in_one_app(
    settings: Settings,
    engine: OcrEngine,
    *,
    registry: CollectorRegistry | None = None,
    model: ModelIdentity | None = None,
) -> FastAPI:
    """The API wired to SQL storage, the in-process queue and a worker on `engine`; the
    engine loads (off the event loop) and the worker starts in the app's lifespan. The
    database must be migrated already."""
    registry = registry if registry is not None else CollectorRegistry()
    database = create_database_engine(settings.database_url, pool_size=settings.database_pool_size)
    repository = SqlJobRepository(database)
    blobs = build_blob_store(settings, database)
    # Database blobs share the job's transaction, and concurrent submissions share one.
    intake = GroupCommitIntake(database) if settings.blob_backend is BlobBackend.DATABASE else None
    queue = InProcessJobQueue(settings.inprocess_queue_size)
    metrics = DataPlaneMetrics(registry)
    completions = JobCompletions()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocr-engine")
    engine = InstrumentedEngine(engine, metrics)
    sink = ObservedSink(
        RecordingOutcomeSink(
            RecordOutcomes(repository, blobs, settings.blob_retention), completions
        ),
        metrics,
        SinkTarget.DATABASE,
    )
    processor = BatchProcessor(
        engine,
        blobs,
        ImageLimits.from_settings(settings),
        max_attempts=settings.max_attempts,
        repository=repository,
        executor=executor,
        # A long document is drawn and recognised a batch's pixel budget at a time.
        pixels_per_call=settings.batch_max_pixels,
    )
    worker = InProcessWorker(settings, queue, processor, sink, metrics)

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        loading = asyncio.get_running_loop().run_in_executor(executor, _load, engine)
        await _recover(repository, queue)
        await worker.start(loading)
        try:
            yield
        finally:
            queue.close()
            await worker.aclose(settings.drain_seconds)
            if loading.done() and not loading.cancelled():
                loading.exception()  # retrieved: a failed load was logged already
            else:
                loading.cancel()  # a load still running must not hold the shutdown up
            executor.shutdown(wait=False, cancel_futures=True)
            if intake is not None:
                await intake.aclose()
            await database.dispose()

    return create_app(
        settings,
        repository,
        blobs,
        queue,
        engine_ready=lambda: engine.loaded,
        model=model,
        registry=registry,
        lifespan=lifespan,
        completions=completions,
        intake=intake,
    )


def _load(engine: OcrEngine) -> None:
    started = time.perf_counter()
    try:
        engine.load()
    except Exception:
        log.exception("loading the OCR engine %s failed; /readyz stays failing", engine.name)
        raise
    log.info("engine %s loaded in %.1f s", engine.name, time.perf_counter() - started)


async def _recover(repository: SqlJobRepository, queue: InProcessJobQueue) -> None:
    """Jobs accepted before a restart are still in the database: queue them again."""
    # Jobs left `running` stay so: the worker runs them alone, as suspects (one of them may
    # be what killed the process).
    unfinished = await repository.unfinished()
    for job in unfinished:
        queue.redeliver(job_message(job))
    if unfinished:
        log.info("re-queued %d unfinished jobs from before the restart", len(unfinished))


def run(settings: Settings) -> int:
    configure_logging(settings.log_level)
    upgrade_database(settings.database_url)
    # Imported here: the engine libraries are heavy and only this role and the worker need them.
    from ocr_runtime.adapters.engines import build_engine, engine_models  # noqa: PLC0415

    models = engine_models(settings)
    identity = models.identity if models is not None else None
    app = build_all_in_one_app(settings, build_engine(settings, models), model=identity)
    log.info("all-in-one OCR server on http://%s:%d", settings.http_host, settings.http_port)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.drain_seconds),
    )
    return 0
