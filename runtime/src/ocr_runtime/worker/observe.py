"""Decorators that measure the engine and the outcome sink without changing what they do,
plus the accelerator-utilisation sampler (NVML when a GPU is present, the inference
thread's busy ratio always)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ocr_runtime.application.messages import JobOutcome
from ocr_runtime.application.ports import Image, OcrEngine, OutcomeSink
from ocr_runtime.domain import OcrResult
from ocr_runtime.worker.metrics import DataPlaneMetrics

log = logging.getLogger(__name__)


class InstrumentedEngine:
    """Times every engine call and accumulates the inference thread's busy time."""

    def __init__(self, inner: OcrEngine, metrics: DataPlaneMetrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self._lock = threading.Lock()
        self._busy_s = 0.0

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def loaded(self) -> bool:
        return self._inner.loaded

    @property
    def busy_seconds(self) -> float:
        with self._lock:
            return self._busy_s

    def load(self) -> None:
        self._inner.load()

    def recognize_batch(self, images: Sequence[Image]) -> list[OcrResult]:
        started = time.perf_counter()
        try:
            return self._inner.recognize_batch(images)
        finally:
            spent = time.perf_counter() - started
            with self._lock:
                self._busy_s += spent
            self._metrics.inference.observe(spent)
            self._metrics.inference_busy.inc(spent)


class SinkTarget(StrEnum):
    DATABASE = "database"  # standard and batched: the outcome is final once delivered
    RESULT_TOPIC = "result_topic"  # writer mode: the writer makes it final later


class ObservedSink:
    """Counts delivered outcomes, times the delivery and, when the sink is the database,
    observes end-to-end latency (the result is durable at that point)."""

    def __init__(self, inner: OutcomeSink, metrics: DataPlaneMetrics, target: SinkTarget) -> None:
        self._inner = inner
        self._metrics = metrics
        self._target = target

    async def deliver(self, outcomes: Sequence[JobOutcome]) -> None:
        started = time.perf_counter()
        await self._inner.deliver(outcomes)
        spent = time.perf_counter() - started
        m = self._metrics
        if self._target is SinkTarget.DATABASE:
            m.db_write.labels(operation="record_outcomes").observe(spent)
            observe_latency(m, outcomes)
        else:
            m.result_publish.observe(spent)
        for outcome in outcomes:
            if outcome.error is None:
                m.jobs_succeeded.inc()
            else:
                m.jobs_failed.labels(code=outcome.error.code.value).inc()


def observe_latency(metrics: DataPlaneMetrics, outcomes: Sequence[JobOutcome]) -> None:
    now = datetime.now(UTC).timestamp()
    for outcome in outcomes:
        if outcome.submitted_at is not None:
            metrics.job_latency.observe(max(0.0, now - outcome.submitted_at))


class UtilisationSampler:
    """Every `interval_s`, sets the busy-ratio gauge from the engine's busy time and, when
    NVML finds GPUs, their utilisation and memory."""

    def __init__(
        self, engine: InstrumentedEngine, metrics: DataPlaneMetrics, interval_s: float = 5.0
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._interval_s = interval_s
        self._nvml: Any = _load_nvml()
        self._task: asyncio.Task[None] | None = None

    @property
    def has_gpu(self) -> bool:
        return self._nvml is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="utilisation-sampler")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()

    async def _run(self) -> None:
        last_wall = time.perf_counter()
        last_busy = self._engine.busy_seconds
        while True:
            await asyncio.sleep(self._interval_s)
            wall, busy = time.perf_counter(), self._engine.busy_seconds
            ratio = (busy - last_busy) / (wall - last_wall) if wall > last_wall else 0.0
            self._metrics.inference_busy_ratio.set(min(1.0, max(0.0, ratio)))
            last_wall, last_busy = wall, busy
            if self._nvml is not None:
                self._sample_gpus()

    def _sample_gpus(self) -> None:
        nvml = self._nvml
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                util = nvml.nvmlDeviceGetUtilizationRates(handle)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                self._metrics.gpu_utilization.labels(gpu=str(index)).set(util.gpu / 100.0)
                self._metrics.gpu_memory_used.labels(gpu=str(index)).set(memory.used)
        except Exception:  # a GPU that vanished must not stop the worker
            log.warning("NVML sampling failed", exc_info=True)


def _load_nvml() -> Any:
    """The pynvml module when a GPU driver answers, else None (CPU machines)."""
    try:
        import pynvml  # noqa: PLC0415  (optional: only in the GPU image)

        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() < 1:
            return None
        return pynvml
    except Exception:
        return None
