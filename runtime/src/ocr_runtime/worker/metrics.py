"""Prometheus metrics of the data plane (worker and writer). The names and labels are a
contract: the operator's advisor and the dashboards read them (see docs/metrics.md)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from ocr_contract import Metric

_BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0)
_WORK_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class DataPlaneMetrics:
    """One instance per process (registered once in the given registry)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        r = registry
        self.runtime_info = Gauge(
            "ocr_runtime_info", "Always 1; labels describe the process.",
            ["role", "mode", "engine", "model_version"], registry=r,
        )  # fmt: skip
        self.jobs_consumed = Counter(
            Metric.JOBS_CONSUMED, "Job messages taken from the jobs topic.", registry=r
        )
        self.jobs_succeeded = Counter(
            "ocr_jobs_succeeded_total", "Jobs whose result was delivered.", registry=r
        )
        self.jobs_failed = Counter(
            "ocr_jobs_failed_total", "Jobs delivered as failed, by error code.", ["code"],
            registry=r,
        )  # fmt: skip
        self.jobs_dead_lettered = Counter(
            "ocr_jobs_dead_lettered_total", "Messages sent to the dead-letter topic.",
            ["reason", "stage"], registry=r,
        )  # fmt: skip
        self.batch_retries = Counter(
            "ocr_batch_retries_total", "Batches retried after a transient error.", registry=r
        )
        self.batch_size = Histogram(
            "ocr_batch_size", "Jobs per inference batch.", buckets=_BATCH_SIZE_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.batch_wait = Histogram(
            "ocr_batch_wait_seconds", "Time from a batch's first message to its release.",
            buckets=_WAIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_size_limit = Gauge(
            "ocr_batch_size_limit", "Most jobs the next batch may hold (tuned online when "
            "OCR_BATCH_LATENCY_TARGET_MS is set).", registry=r,
        )  # fmt: skip
        self.batch_wait_limit = Gauge(
            "ocr_batch_wait_limit_seconds", "Longest wait of the next batch for more jobs.",
            registry=r,
        )  # fmt: skip
        self.batch_tuning_steps = Counter(
            "ocr_batch_tuning_steps_total", "Decisions of the online batch tuner, by step "
            "(increase, decrease, hold).", ["step"], registry=r,
        )  # fmt: skip
        self.inference = Histogram(
            "ocr_inference_seconds", "Duration of one engine call (a whole batch).",
            buckets=_WORK_BUCKETS, registry=r,
        )  # fmt: skip
        self.inference_busy = Counter(
            "ocr_inference_busy_seconds_total", "Seconds the inference thread spent in the "
            "engine; rate() of it is the busy ratio.", registry=r,
        )  # fmt: skip
        self.inference_busy_ratio = Gauge(
            Metric.INFERENCE_BUSY, "Share of wall time the inference thread was busy "
            "over the last sampling window (accelerator utilisation without a GPU).",
            registry=r,
        )  # fmt: skip
        self.gpu_utilization = Gauge(
            Metric.GPU_UTILIZATION, "GPU utilisation reported by NVML (0-1).", ["gpu"],
            registry=r,
        )  # fmt: skip
        self.gpu_memory_used = Gauge(
            "ocr_gpu_memory_used_bytes", "GPU memory in use reported by NVML.", ["gpu"],
            registry=r,
        )  # fmt: skip
        self.db_write = Histogram(
            Metric.DB_WRITE_SECONDS, "One database write transaction.", ["operation"],
            buckets=_WORK_BUCKETS, registry=r,
        )  # fmt: skip
        self.result_publish = Histogram(
            "ocr_result_publish_seconds", "Publishing a batch of results to the result topic "
            "until acknowledged (writer mode).", buckets=_WORK_BUCKETS, registry=r,
        )  # fmt: skip
        self.job_latency = Histogram(
            "ocr_job_latency_seconds", "End to end: submission to durable result.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.consumer_lag = Gauge(
            Metric.CONSUMER_LAG, "Log end offset minus committed offset.",
            ["group", "topic", "partition"], registry=r,
        )  # fmt: skip
        self.commit_failures = Counter(
            "ocr_offset_commit_failures_total", "Offset commits that failed.", registry=r
        )
        self.results_consumed = Counter(
            "ocr_results_consumed_total", "Result messages taken from the result topic.",
            registry=r,
        )  # fmt: skip
        self.results_written = Counter(
            "ocr_results_written_total", "Jobs changed by the writer (duplicates excluded).",
            registry=r,
        )  # fmt: skip
        self.writer_batch_size = Histogram(
            "ocr_writer_batch_size", "Results per writer transaction.",
            buckets=_BATCH_SIZE_BUCKETS, registry=r,
        )  # fmt: skip
        self.draining = Gauge(
            "ocr_draining", "1 while the process finishes in-flight work before exiting.",
            registry=r,
        )  # fmt: skip
