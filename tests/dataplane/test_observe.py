"""Unit tests of the measuring decorators: the inference busy ratio and the sink counters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from ocr_runtime.application import JobOutcome
from ocr_runtime.application.ports import Image
from ocr_runtime.domain import JobError, JobErrorCode, OcrResult
from ocr_runtime.worker import (
    DataPlaneMetrics,
    InstrumentedEngine,
    ObservedSink,
    SinkTarget,
    UtilisationSampler,
)


class SleepyEngine:
    name = "sleepy"
    loaded = True

    def load(self) -> None:
        pass

    def recognize_batch(self, images: Sequence[Image]) -> list[OcrResult]:
        time.sleep(0.05)
        return [OcrResult() for _ in images]


async def test_busy_ratio_follows_the_inference_thread() -> None:
    registry = CollectorRegistry()
    metrics = DataPlaneMetrics(registry)
    engine = InstrumentedEngine(SleepyEngine(), metrics)
    sampler = UtilisationSampler(engine, metrics, interval_s=0.3)
    sampler.start()
    stop = time.monotonic() + 0.65
    while time.monotonic() < stop:  # busy about five sixths of the time
        await asyncio.to_thread(engine.recognize_batch, [])
        await asyncio.sleep(0.01)
    await sampler.aclose()
    ratio = registry.get_sample_value("ocr_inference_busy_ratio")
    assert ratio is not None
    assert 0.3 < ratio <= 1.0
    calls = registry.get_sample_value("ocr_inference_seconds_count")
    assert calls is not None
    assert calls >= 5
    busy = registry.get_sample_value("ocr_inference_busy_seconds_total")
    assert busy is not None
    assert busy == pytest.approx(engine.busy_seconds)
    assert busy >= 0.05 * calls
    assert (
        not sampler.has_gpu
        or registry.get_sample_value("ocr_gpu_utilization_ratio", {"gpu": "0"}) is not None
    )


class ListSink:
    def __init__(self) -> None:
        self.got: list[JobOutcome] = []

    async def deliver(self, outcomes: Sequence[JobOutcome]) -> None:
        self.got.extend(outcomes)


async def test_observed_sink_counts_outcomes_and_latency_when_final() -> None:
    registry = CollectorRegistry()
    metrics = DataPlaneMetrics(registry)
    now = datetime.now(UTC)
    outcomes = [
        JobOutcome("a", now, result=OcrResult(), submitted_at=now.timestamp() - 2),
        JobOutcome("b", now, error=JobError(JobErrorCode.INVALID_IMAGE, "x"), submitted_at=0.0),
    ]
    await ObservedSink(ListSink(), metrics, SinkTarget.DATABASE).deliver(outcomes)
    await ObservedSink(ListSink(), metrics, SinkTarget.RESULT_TOPIC).deliver(outcomes[:1])
    assert registry.get_sample_value("ocr_jobs_succeeded_total") == 2
    assert registry.get_sample_value("ocr_jobs_failed_total", {"code": "invalid_image"}) == 1
    # Latency only where the result is final (the database), not at the result topic.
    assert registry.get_sample_value("ocr_job_latency_seconds_count") == 2
    assert registry.get_sample_value("ocr_result_publish_seconds_count") == 1
    db = {"operation": "record_outcomes"}
    assert registry.get_sample_value("ocr_db_write_seconds_count", db) == 1
