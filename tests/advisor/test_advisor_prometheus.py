"""Integration: a real Prometheus scrapes an exporter that the test drives; the advisor's
default queries read it, and the rules decide from what they read."""

from __future__ import annotations

import asyncio
import http.server
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from ocr_operator.advisor.metrics import Observation, PrometheusSource
from ocr_operator.advisor.queries import StackRef, resolve_queries
from ocr_operator.advisor.rules import AdvisorWindow, Signal, Verdict, decide, observe
from ocr_operator.model.advisor import AdvisorQueries, AdvisorSpec
from ocr_operator.model.enums import Mode
from tests.advisor.exporter import Exporter

pytestmark = pytest.mark.integration

STACK = StackRef(
    namespace="advisor-it",
    name="stack",
    consumer_group="ocr-workers",
    writer_group="ocr-writers",
    jobs_topic="ocr-jobs",
    results_topic="ocr-results",
)
SPEC = AdvisorSpec(
    rate_window_seconds=6, window_seconds=4, recovery_window_seconds=4, cooldown_seconds=0,
    min_samples=3, query_timeout_seconds=5,
)  # fmt: skip
WAIT_S = 60.0


@pytest.fixture
def exporter(
    prometheus_targets: Callable[..., None],
) -> Iterator[Exporter]:
    with Exporter() as running:
        prometheus_targets(
            [running.address], labels={"namespace": STACK.namespace, "ocrserving": STACK.name}
        )
        yield running


async def read(
    prometheus_url: str, spec: AdvisorSpec = SPEC, stack: StackRef = STACK
) -> Observation:
    source = PrometheusSource()
    observation: Observation = await source.observe(
        prometheus_url, resolve_queries(spec, stack), datetime.now(UTC), spec.query_timeout_seconds
    )
    return observation


async def read_until(
    prometheus_url: str, accept: Callable[[Observation], bool], what: str
) -> Observation:
    """Polls until Prometheus has enough samples for `accept` (rates need a few scrapes)."""
    deadline, last = time.monotonic() + WAIT_S, None
    while time.monotonic() < deadline:
        last = await read(prometheus_url)
        if accept(last):
            return last
        await asyncio.sleep(0.5)
    pytest.fail(f"Prometheus never showed {what}; last read: {last}")


async def test_default_queries_read_the_runtime_metrics(
    prometheus_url: str, exporter: Exporter
) -> None:
    # The lag starts at 0 and grows: once it passed 20/s * rate window, deriv() sees only
    # the slope.
    exporter.set(gpu_percent=85.0, lag_slope=20.0, db_write_latency=0.7, api_latency=0.03,
                 consume_rate=8.0, sync_timeout_rate=2.0)  # fmt: skip
    observation = await read_until(
        prometheus_url,
        lambda o: (
            o.evidence.lag_trend is not None
            and o.evidence.lag_trend > 10
            and (o.evidence.db_write_p95 or 0) > 0
            and (o.evidence.sync_timeouts or 0) > 1.4
            and (o.evidence.consume_rate or 0) > 5.6  # rate() needs a full range of samples
        ),
        "a growing lag, DB writes and sync timeouts",
    )
    evidence = observation.evidence
    assert evidence.gpu_utilization == pytest.approx(85.0)
    assert evidence.lag_trend == pytest.approx(20.0, rel=0.3)
    assert evidence.db_write_p95 is not None and 0.5 < evidence.db_write_p95 <= 1.0
    assert evidence.api_p95 is not None and 0.025 < evidence.api_p95 <= 0.05
    assert evidence.consume_rate == pytest.approx(8.0, rel=0.3)
    assert evidence.time_to_drain is not None and evidence.lag is not None
    assert evidence.consume_rate is not None
    assert evidence.time_to_drain == pytest.approx(evidence.lag / evidence.consume_rate)
    assert evidence.sync_timeouts == pytest.approx(2.0, rel=0.3)
    # The baselines read the same histograms over the long range (all of this test's writes).
    assert (
        evidence.db_write_p95_baseline is not None and 0.5 < evidence.db_write_p95_baseline <= 1.0
    )
    assert evidence.api_p95_baseline is not None and evidence.api_p95_baseline <= 0.05
    assert observation.problems == {}


async def test_dcgm_wins_over_the_runtime_gauge(prometheus_url: str, exporter: Exporter) -> None:
    exporter.set(gpu_percent=10.0, dcgm_percent=93.0, dcgm_pod="stack-worker-5d8f-abcde")
    observation = await read_until(
        prometheus_url, lambda o: o.evidence.gpu_utilization == 93.0, "the DCGM value"
    )
    assert observation.evidence.gpu_utilization == 93.0
    exporter.set(dcgm_percent=None, gpu_percent=None)
    observation = await read_until(
        prometheus_url, lambda o: o.evidence.gpu_utilization is None, "no GPU metric at all"
    )
    assert observation.problems[Signal.GPU_UTILIZATION] == "no data (no matching series)"


async def test_no_writes_reads_as_zero_p95_but_missing_series_is_a_problem(
    prometheus_url: str, exporter: Exporter
) -> None:
    exporter.set(gpu_percent=5.0, lag=0.0, lag_slope=0.0)
    observation = await read_until(
        prometheus_url, lambda o: o.evidence.lag_trend is not None, "a lag trend"
    )
    assert observation.evidence.db_write_p95 == 0.0  # histograms exist, no observations
    assert observation.evidence.missing() == []
    other = StackRef(**{**STACK.__dict__, "name": "no-such-stack"})
    missing = await read(prometheus_url, stack=other)
    # An API that never timed out may not expose the counter: no series reads as 0.
    assert set(missing.problems) == set(Signal) - {Signal.SYNC_TIMEOUTS}
    assert missing.evidence.sync_timeouts == 0.0
    window = observe(AdvisorWindow(), Mode.BATCHED, missing.evidence, SPEC)
    assert decide(window, missing.evidence.at, SPEC).verdict is Verdict.UNAVAILABLE


async def test_query_errors_are_reported_per_signal(
    prometheus_url: str, exporter: Exporter
) -> None:
    spec = SPEC.model_copy(update={"queries": AdvisorQueries(lag="sum(rate(ocr_consumer_lag[)")})
    observation = await read(prometheus_url, spec=spec)
    assert observation.problems[Signal.LAG].startswith("query rejected: ")
    assert "parse error" in observation.problems[Signal.LAG]
    unreachable = await PrometheusSource().observe(
        "http://127.0.0.1:9", resolve_queries(SPEC, STACK), datetime.now(UTC), 2.0
    )
    assert set(unreachable.problems) == set(Signal)
    assert unreachable.problems[Signal.GPU_UTILIZATION].startswith("Prometheus unreachable")
    assert unreachable.evidence.missing() == [
        Signal.GPU_UTILIZATION, Signal.LAG, Signal.LAG_TREND, Signal.CONSUME_RATE,
        Signal.DB_WRITE_P95,
    ]  # fmt: skip


def _behind_on_a_busy_gpu(observation: Observation) -> bool:
    evidence = observation.evidence
    rate = evidence.consume_rate or math.inf
    return (
        (evidence.lag_trend or 0) > 10
        and evidence.db_write_p95 is not None
        and (evidence.gpu_utilization or 0) >= SPEC.thresholds.gpu_saturated_percent
        and (evidence.lag or 0) / rate >= SPEC.thresholds.drain_behind_seconds
    )


async def test_the_advisor_recommends_batched_from_what_prometheus_shows(
    prometheus_url: str, exporter: Exporter
) -> None:
    # 5 jobs/s consumed: the lag passes 30 s to drain (150 jobs) within seconds.
    exporter.set(gpu_percent=90.0, lag=50.0, lag_slope=30.0, consume_rate=5.0,
                 db_write_latency=0.02)  # fmt: skip
    # Until Prometheus shows every signal of the rule (the lag starts at 50, under 30 s to
    # drain), a first decision could be Steady on a slow machine.
    await read_until(prometheus_url, _behind_on_a_busy_gpu, "a growing lag past 30 s to drain")
    window, decisions = AdvisorWindow(), []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        observation = await read(prometheus_url)
        window = observe(window, Mode.STANDARD, observation.evidence, SPEC)
        decisions.append(decide(window, observation.evidence.at, SPEC))
        if decisions[-1].verdict is Verdict.RECOMMEND:
            break
        await asyncio.sleep(1.0)
    assert decisions[0].verdict is Verdict.PENDING
    assert decisions[-1].verdict is Verdict.RECOMMEND, decisions[-1].message
    assert decisions[-1].target is Mode.BATCHED


async def test_a_prometheus_that_answers_503_reads_as_unreachable() -> None:
    # What a proxy in front of a Prometheus that is down answers: no query got evaluated.
    class Unavailable(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        down = await PrometheusSource().observe(
            url, resolve_queries(SPEC, STACK), datetime.now(UTC), 2.0
        )
    finally:
        server.shutdown()
    assert set(down.problems) == set(Signal)
    assert all(p.startswith("Prometheus unreachable") for p in down.problems.values())
