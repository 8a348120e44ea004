"""Names of the runtime's metrics that the operator's advisor queries (docs/metrics.md).

The runtime defines its metrics with these names; the advisor's default PromQL uses them.
Counters carry their exported name (with `_total`), histograms their base name.
"""

from __future__ import annotations

from enum import StrEnum


class Metric(StrEnum):
    CONSUMER_LAG = "ocr_consumer_lag"  # labels: group, topic, partition
    JOBS_CONSUMED = "ocr_jobs_consumed_total"
    GPU_UTILIZATION = "ocr_gpu_utilization_ratio"
    INFERENCE_BUSY = "ocr_inference_busy_ratio"
    DB_WRITE_SECONDS = "ocr_db_write_seconds"  # histogram
    HTTP_REQUEST_DURATION = "ocr_http_request_duration_seconds"  # histogram; label: route
    SYNC_TIMEOUTS = "ocr_sync_timeouts_total"
