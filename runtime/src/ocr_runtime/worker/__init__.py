"""Consumers of the data plane: the micro-batcher, the consume loop with its commit and
shutdown rules, the inference handler (worker) and the result writer, their metrics and the
probe server of the worker and writer processes."""

from ocr_runtime.worker.batcher import Batch, MicroBatcher
from ocr_runtime.worker.consume import BatchLimits, ConsumeLoop, Decoded, OffsetLedger
from ocr_runtime.worker.inference import EngineCalls, InferenceHandler
from ocr_runtime.worker.metrics import DataPlaneMetrics
from ocr_runtime.worker.observe import (
    InstrumentedEngine,
    ObservedSink,
    SinkTarget,
    UtilisationSampler,
)
from ocr_runtime.worker.probes import ProbeServer, ReadinessChecks, probe_app
from ocr_runtime.worker.retry import AttemptsExhaustedError, RetryPolicy, retry
from ocr_runtime.worker.writer import WriterHandler

__all__ = [
    "AttemptsExhaustedError",
    "Batch",
    "BatchLimits",
    "ConsumeLoop",
    "DataPlaneMetrics",
    "Decoded",
    "EngineCalls",
    "InferenceHandler",
    "InstrumentedEngine",
    "MicroBatcher",
    "ObservedSink",
    "OffsetLedger",
    "ProbeServer",
    "ReadinessChecks",
    "RetryPolicy",
    "SinkTarget",
    "UtilisationSampler",
    "WriterHandler",
    "probe_app",
    "retry",
]
