"""A metrics endpoint the tests drive: it exposes the runtime's metric names (docs/metrics.md)
with values the test sets, for a real Prometheus to scrape.

Lag grows (or shrinks) at the set slope between scrapes, the consumed-jobs and sync-timeout
counters grow at their set rates, and the histograms gain observations
at the set latency at a steady rate, so PromQL's deriv() and histogram_quantile(rate()) see
what a real stack under that load would show.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OBSERVATIONS_PER_SECOND = 50.0


@dataclass
class Histogram:
    name: str
    latency: float | None = None  # None: no new observations
    counts: list[float] = field(default_factory=lambda: [0.0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def advance(self, seconds: float) -> None:
        if self.latency is None:
            return
        n = OBSERVATIONS_PER_SECOND * seconds
        index = next((i for i, le in enumerate(BUCKETS) if self.latency <= le), len(BUCKETS))
        self.counts[index] += n
        self.total += n * self.latency

    def render(self) -> list[str]:
        lines, cumulative = [f"# TYPE {self.name} histogram"], 0.0
        for le, count in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            cumulative += count
            lines.append(f'{self.name}_bucket{{le="{le}"}} {cumulative}')
        lines += [f"{self.name}_sum {self.total}", f"{self.name}_count {cumulative}"]
        return lines


@dataclass
class Load:
    """What the exporter shows; change fields at any time (under `lock`)."""

    gpu_percent: float | None = 50.0  # ocr_gpu_utilization_ratio (None: not exposed)
    dcgm_percent: float | None = None  # DCGM_FI_DEV_GPU_UTIL for pod `dcgm_pod`
    dcgm_pod: str = ""
    lag: float = 0.0
    lag_slope: float = 0.0  # messages per second, applied between scrapes
    consume_rate: float = 10.0  # ocr_jobs_consumed_total grows this much per second
    consumed: float = 0.0
    sync_timeout_rate: float = 0.0  # ocr_sync_timeouts_total grows this much per second
    sync_timeouts: float = 0.0
    consumer_group: str = "ocr-workers"
    jobs_topic: str = "ocr-jobs"
    db_write: Histogram = field(default_factory=lambda: Histogram("ocr_db_write_seconds"))
    api: Histogram = field(default_factory=lambda: Histogram("ocr_http_request_duration_seconds"))


class Exporter:
    """`with Exporter() as exporter:` serves on 127.0.0.1:<port>/metrics until the block ends."""

    def __init__(self) -> None:
        self.load = Load()
        self.lock = threading.Lock()
        self._last = time.monotonic()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def set(self, **changes: object) -> None:
        with self.lock:
            self._advance()
            for key, value in changes.items():
                if key == "db_write_latency":
                    self.load.db_write.latency = value  # type: ignore[assignment]
                elif key == "api_latency":
                    self.load.api.latency = value  # type: ignore[assignment]
                else:
                    setattr(self.load, key, value)

    def _advance(self) -> None:
        now = time.monotonic()
        seconds, self._last = now - self._last, now
        load = self.load
        load.lag = max(0.0, load.lag + load.lag_slope * seconds)
        load.consumed += load.consume_rate * seconds
        load.sync_timeouts += load.sync_timeout_rate * seconds
        load.db_write.advance(seconds)
        load.api.advance(seconds)

    def render(self) -> str:
        with self.lock:
            self._advance()
            load, lines = self.load, []
            if load.gpu_percent is not None:
                lines.append(f'ocr_gpu_utilization_ratio{{gpu="0"}} {load.gpu_percent / 100}')
            if load.dcgm_percent is not None:
                lines.append(
                    f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",pod="{load.dcgm_pod}"}} {load.dcgm_percent}'
                )
            lines.append(
                f'ocr_consumer_lag{{group="{load.consumer_group}",topic="{load.jobs_topic}",'
                f'partition="0"}} {load.lag}'
            )
            lines += [
                "# TYPE ocr_jobs_consumed_total counter",
                f"ocr_jobs_consumed_total {load.consumed}",
                "# TYPE ocr_sync_timeouts_total counter",
                f"ocr_sync_timeouts_total {load.sync_timeouts}",
            ]
            lines += load.db_write.render() + load.api.render()
        return "\n".join(lines) + "\n"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
