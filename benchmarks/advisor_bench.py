"""The advisor's reaction time: a stack in policy Auto reads four signals from Prometheus;
the benchmark serves them from its own exporter (scraped by the real Prometheus every second),
holds them at "healthy Standard", then switches them at once to "GPU saturated, lag growing"
and times how long it takes until `status.activeMode` becomes Batched. The goal is the
advisor's window plus one evaluation interval.

The spec overrides the advisor's PromQL with queries on the exporter's gauges, so the timing
is the advisor's loop, not the runtime's metric pipeline (the default queries are covered by
the advisor's own tests).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from benchmarks import procs
from benchmarks.context import Ctx

INTERVAL_S, WINDOW_S, MIN_SAMPLES = 2, 10, 3
HEALTHY = {"gpu": 20.0, "lag": 0.0, "lag_trend": 0.0, "consume_rate": 10.0, "db_p95": 0.01}
SATURATED = {"gpu": 95.0, "lag": 500.0, "lag_trend": 25.0, "consume_rate": 10.0, "db_p95": 0.01}


class Exporter:
    """Serves `bench_advisor_<signal>{run="..."}` gauges with values the benchmark sets."""

    def __init__(self, run_id: str) -> None:
        self.run_id, self.values = run_id, dict(HEALTHY)
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                return

        self.port = procs.free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def render(self) -> str:
        return "".join(
            f'bench_advisor_{key}{{run="{self.run_id}"}} {value}\n'
            for key, value in self.values.items()
        )

    def __enter__(self) -> Exporter:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()


class ScrapeTarget:
    """Adds the exporter to Prometheus's file_sd list and restores the list afterwards."""

    def __init__(self, port: int) -> None:
        self.path = Path(
            os.environ.get("PROMETHEUS_TARGETS_FILE", ".local/prometheus/targets.json")
        )
        self.port, self.saved = port, ""

    def __enter__(self) -> ScrapeTarget:
        self.saved = self.path.read_text() if self.path.exists() else "[]"
        groups = json.loads(self.saved or "[]")
        groups.append({"targets": [f"127.0.0.1:{self.port}"], "labels": {"job": "bench"}})
        self.path.write_text(json.dumps(groups))
        return self

    def __exit__(self, *_: object) -> None:
        self.path.write_text(self.saved)


def _queries(run_id: str) -> dict[str, str]:
    def q(key: str) -> str:
        return f'max(bench_advisor_{key}{{run="{run_id}"}})'

    return {
        "gpuUtilization": q("gpu"),
        "lag": q("lag"),
        "lagTrend": q("lag_trend"),
        "consumeRate": q("consume_rate"),
        "dbWriteP95": q("db_p95"),
    }


def _wait_scraped(prometheus: str, run_id: str, expected: float, timeout: float = 60) -> None:
    """Until Prometheus answers `expected` for the exporter's GPU gauge."""
    query = f'bench_advisor_gpu{{run="{run_id}"}}'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = httpx.get(
                f"{prometheus}/api/v1/query", params={"query": query}, timeout=5
            ).json()
            result = data["data"]["result"]
            if result and float(result[0]["value"][1]) == expected:
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Prometheus never scraped the benchmark exporter ({query})")


def _poll(
    get: Callable[[str], dict[str, Any]], check: Callable[[dict[str, Any]], bool], timeout: float
) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check(get("advisor")):
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = obj.get("status", {})
    return status


def measure(
    ctx: Ctx,
    create: Callable[[dict[str, Any]], None],
    get: Callable[[str], dict[str, Any]],
    resource: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    prometheus = ctx.services.prometheus_url
    if not prometheus:
        return {"seconds": None, "detail": "PROMETHEUS_URL unset"}
    with Exporter(run_id) as exporter, ScrapeTarget(exporter.port):
        _wait_scraped(prometheus, run_id, HEALTHY["gpu"])
        body = resource("advisor", "External", mode="Standard", policy="Auto")
        body["spec"]["advisor"] = {
            "prometheusUrl": prometheus,
            "intervalSeconds": INTERVAL_S,
            "windowSeconds": WINDOW_S,
            "recoveryWindowSeconds": WINDOW_S,
            "cooldownSeconds": 0,
            "minSamples": MIN_SAMPLES,
            "rateWindowSeconds": 10,
            "queries": _queries(run_id),
        }
        create(body)
        # the advisor has seen the healthy values before anything changes
        evaluated = _poll(
            get,
            lambda o: _status(o).get("advisor", {}).get("gpuUtilization") == HEALTHY["gpu"],
            120,
        )
        if evaluated is None:
            return {"seconds": None, "detail": "the advisor never reported an evaluation"}
        exporter.values = dict(SATURATED)
        flipped = time.monotonic()
        _wait_scraped(prometheus, run_id, SATURATED["gpu"])
        visible = time.monotonic() - flipped
        switched = _poll(get, lambda o: _status(o).get("activeMode") == "Batched", 120)
    budget = float(WINDOW_S + INTERVAL_S)
    reaction = None if switched is None else switched + visible
    detail = (
        f"interval {INTERVAL_S}s, window {WINDOW_S}s, minSamples {MIN_SAMPLES}, "
        "Prometheus scrape 1s; signals switched to GPU 95% + lag growing"
    )
    if reaction is None:
        detail += "; activeMode never became Batched within 120s"
    else:
        detail += f"; {visible:.1f}s of it before Prometheus showed the change"
    # the goal is judged from the moment the change is visible in Prometheus
    since_visible = None if switched is None else switched
    return {
        "seconds": reaction,
        "seconds_after_visible": since_visible,
        "budget_s": budget,
        "detail": detail,
    }
