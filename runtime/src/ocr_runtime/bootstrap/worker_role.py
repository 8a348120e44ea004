"""`ocr-runtime worker`: the inference worker of every mode.

standard: one job per batch, results into the database. batched: micro-batches bounded by
`OCR_BATCH_MAX_SIZE`, `OCR_BATCH_MAX_WAIT_MS` and `OCR_BATCH_MAX_PIXELS`, results into the
database. writer: same batching, results to the result topic (no database writes; image
blobs are still read from the blob store).

The model folder is checked before anything else (`resolve_models`), and loaded before the
worker waits on Kafka: a model that must not be served stops the process at once with a
message naming the file (see `cli.EXIT_MODEL_REFUSED`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import uvloop

from ocr_contract import Role
from ocr_runtime.adapters.engines import ModelFiles, build_engine, engine_models
from ocr_runtime.adapters.kafka import (
    KafkaDeadLetterPublisher,
    KafkaProducerClient,
    KafkaRecordSource,
    KafkaResultPublisher,
)
from ocr_runtime.application import (
    BatchProcessor,
    ImageLimits,
    JobMessage,
    RecordingOutcomeSink,
    RecordOutcomes,
)
from ocr_runtime.application.model import ModelIdentity
from ocr_runtime.application.ports import OutcomeSink
from ocr_runtime.bootstrap import _dataplane as dp
from ocr_runtime.core.logging import configure_logging
from ocr_runtime.core.settings import Mode, Settings
from ocr_runtime.worker import (
    BatchLimits,
    ConsumeLoop,
    DataPlaneMetrics,
    EngineCalls,
    InferenceHandler,
    InstrumentedEngine,
    ObservedSink,
    ProbeServer,
    ReadinessChecks,
    SinkTarget,
    UtilisationSampler,
    probe_app,
)

log = logging.getLogger(__name__)

ROLE = Role.WORKER
# Standard mode: jobs handed to the handler together. The engine still sees one job at a
# time; the group shares its claim, image read and offset commit, and its outcomes share a
# transaction per flush, which is what moves a quick engine from ~160 to 500+ jobs/s.
STANDARD_GROUP = 32
STANDARD_FLUSH_S = 0.02


def batch_limits(settings: Settings) -> BatchLimits:
    if settings.mode is Mode.STANDARD:
        # No waiting: the jobs already fetched, up to a group (the pixel budget bounds the
        # images held in memory); the handler runs them through the engine one by one.
        return BatchLimits(
            max_size=STANDARD_GROUP, max_wait_s=0.0, max_cost=settings.batch_max_pixels
        )
    return BatchLimits(
        max_size=settings.batch_max_size,
        max_wait_s=settings.batch_max_wait_ms / 1000,
        max_cost=settings.batch_max_pixels,
        latency_target_s=settings.batch_latency_target_ms / 1000,
    )


def engine_calls(settings: Settings) -> EngineCalls:
    if settings.mode is Mode.STANDARD:
        return EngineCalls.ONE_JOB_AT_A_TIME
    return EngineCalls.WHOLE_BATCH


def run(settings: Settings) -> int:
    configure_logging(settings.log_level)
    # uvloop, as uvicorn gives the API: the loop's own overhead per record is lower.
    return uvloop.run(_serve(settings, engine_models(settings)))


def info_labels(settings: Settings, models: ModelFiles | None) -> dict[str, str]:
    """Labels of `ocr_runtime_info`: `model_version` is `name:version@checksum` of the
    loaded model (OCR_MODEL_VERSION for the engines without model files)."""
    return {
        "role": ROLE,
        "mode": settings.mode.value,
        "engine": settings.engine.value,
        "model_version": models.identity.label if models else settings.model_version,
    }


async def _serve(settings: Settings, models: ModelFiles | None) -> int:
    metrics = DataPlaneMetrics()
    metrics.runtime_info.labels(**info_labels(settings, models)).set(1)
    engine = InstrumentedEngine(build_engine(settings, models), metrics)
    # One thread owns the engine: engines are not thread-safe, and the loop never blocks.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
    sampler = UtilisationSampler(engine, metrics)

    async def model_loaded() -> bool:
        return engine.loaded

    checks: dict[str, Callable[[], Awaitable[bool]]] = {
        "model": model_loaded,
        "consumer": dp.consumer_not_started,
    }
    try:
        async with contextlib.AsyncExitStack() as stack:
            identity = models.identity if models else None
            await stack.enter_async_context(_probes(settings, checks, identity))
            await asyncio.get_running_loop().run_in_executor(executor, engine.load)
            served = identity.label if identity else "no model files"
            log.info("engine %s loaded (%s); mode %s", engine.name, served, settings.mode.value)
            await dp.prepare_topics(settings)
            storage = await stack.enter_async_context(dp.open_storage(settings))
            checks["database"] = dp.database_check(storage)
            kafka = await stack.enter_async_context(dp.open_producer(settings, ROLE))
            loop = _consume_loop(
                settings,
                metrics=metrics,
                engine=engine,
                executor=executor,
                storage=storage,
                kafka=kafka,
            )
            sampler.start()
            return await dp.run_consumer(loop, settings, metrics, checks)
    finally:
        await sampler.aclose()
        executor.shutdown(wait=False, cancel_futures=True)


@contextlib.asynccontextmanager
async def _probes(
    settings: Settings, checks: ReadinessChecks, model: ModelIdentity | None
) -> AsyncIterator[None]:
    """/healthz, /readyz (with the model served) and /metrics from the start: liveness while
    the model loads; `checks` is read at each request, so checks join as components start."""
    probes = ProbeServer(probe_app(checks, model=model), settings.http_host, settings.http_port)
    await probes.start()
    try:
        yield
    finally:
        await probes.aclose()


def _sink(
    settings: Settings, metrics: DataPlaneMetrics, storage: dp.Storage, kafka: KafkaProducerClient
) -> OutcomeSink:
    if settings.mode is Mode.WRITER:
        publisher = KafkaResultPublisher(kafka, settings.results_topic)
        return ObservedSink(publisher, metrics, SinkTarget.RESULT_TOPIC)
    record = RecordOutcomes(storage.repository, storage.blobs, settings.blob_retention)
    return ObservedSink(RecordingOutcomeSink(record), metrics, SinkTarget.DATABASE)


def _consume_loop(
    settings: Settings,
    *,
    metrics: DataPlaneMetrics,
    engine: InstrumentedEngine,
    executor: ThreadPoolExecutor,
    storage: dp.Storage,
    kafka: KafkaProducerClient,
) -> ConsumeLoop[JobMessage]:
    sink = _sink(settings, metrics, storage, kafka)
    processor = BatchProcessor(
        engine,
        storage.blobs,
        ImageLimits.from_settings(settings),
        max_attempts=settings.max_attempts,
        # Every mode, writer included: attempts must outlive a process that a job kills.
        repository=storage.repository,
        executor=executor,
        # A long document is drawn and recognised a batch's pixel budget at a time.
        pixels_per_call=settings.batch_max_pixels,
    )
    handler = InferenceHandler(
        processor,
        sink,
        KafkaDeadLetterPublisher(kafka, settings.dead_letter_topic),
        dp.retry_policy(settings),
        metrics,
        retry_backoff_ms=settings.retry_backoff_ms,
        engine_calls=engine_calls(settings),
        flush_after_s=STANDARD_FLUSH_S,
    )
    return ConsumeLoop(
        _job_source(settings),
        decode=JobMessage.from_delivery,
        cost=lambda message: message.pixels,
        handle=handler,
        limits=batch_limits(settings),
        metrics=metrics,
        group=settings.consumer_group,
        revoke_wait_s=settings.drain_seconds,
        commit_interval_s=settings.commit_interval_ms / 1000,
    )


def _job_source(settings: Settings) -> KafkaRecordSource:
    """The jobs topic's consumer, whose fetches wait no longer than a batch would. With a
    latency target the tuner picks the wait from what it measures, and a wait at the broker
    is outside that: such a consumer is answered at once."""
    limits = batch_limits(settings)
    wait_s = 0.0 if limits.latency_target_s else limits.max_wait_s
    return dp.record_source(settings, settings.jobs_topic, settings.consumer_group, ROLE,
                            batch_wait_ms=round(wait_s * 1000))  # fmt: skip
