"""Time to drain, trends against a baseline, the sync-timeout advice, and what a person reads
about every decision (status records and Events). Pure: no service needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ocr_operator.advisor.evaluate import evaluate
from ocr_operator.advisor.evidence import UNBOUNDED_SECONDS, Evidence, Observation
from ocr_operator.advisor.report import AdvisorReason, Event, build_report
from ocr_operator.advisor.rules import AdvisorWindow, RuleName, Verdict, decide, observe
from ocr_operator.model import Mode, OCRServingSpec, OCRServingStatus
from ocr_operator.model.advisor import AdvisorSpec
from ocr_operator.simulate.drive import merge_patch

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lag", "trend", "rate", "drain", "growth"),
    [
        (500.0, 5.0, 10.0, 50.0, 30.0),
        (500.0, 5.0, 100.0, 5.0, 3.0),  # same backlog, ten times the consumers
        (0.0, 0.0, 0.0, 0.0, 0.0),  # idle: nothing queued, nothing consumed
        (5.0, 0.1, 0.0, UNBOUNDED_SECONDS, UNBOUNDED_SECONDS),  # stuck: never drains
        (100.0, -20.0, 10.0, 10.0, -120.0),  # shrinking
    ],
)
def test_time_to_drain_is_lag_over_the_measured_consumption(
    lag: float, trend: float, rate: float, drain: float, growth: float
) -> None:
    e = Evidence(at=T0, lag=lag, lag_trend=trend, consume_rate=rate)
    assert e.time_to_drain == pytest.approx(drain)
    assert e.drain_growth == pytest.approx(growth)
    numbers = e.numbers()
    assert numbers["lag"] == lag  # the raw lag stays in status
    assert numbers["timeToDrainSeconds"] == pytest.approx(drain)
    assert Evidence(at=T0, lag=lag).time_to_drain is None


def bound(t: float, db: float, baseline: float | None) -> Evidence:
    return Evidence(
        at=T0 + timedelta(seconds=t), gpu_utilization=40.0, lag=500.0, lag_trend=5.0,
        consume_rate=10.0, db_write_p95=db, db_write_p95_baseline=baseline,
    )  # fmt: skip


def run(samples: list[Evidence], mode: Mode, spec: AdvisorSpec) -> AdvisorWindow:
    window = AdvisorWindow()
    for sample in samples:
        window = observe(window, mode, sample, spec)
    return window


def test_a_database_p95_risen_over_its_baseline_is_slow_below_the_absolute_level() -> None:
    spec = AdvisorSpec(cooldown_seconds=0)
    risen = run([bound(t, 0.3, 0.05) for t in range(0, 301, 30)], Mode.BATCHED, spec)
    decision = decide(risen, T0 + timedelta(seconds=300), spec)
    assert (decision.verdict, decision.rule) == (Verdict.RECOMMEND, RuleName.DOWNSTREAM_BOUND)
    db = next(r for r in decision.readings if r.finding.check.value == "dbWriteSlow")
    assert (db.finding.value, db.finding.baseline) == (0.3, 0.05)
    assert "baseline 0.05s" in db.describe()
    # The same 0.3 s against a baseline of 0.2 s is how this database always is.
    usual = run([bound(t, 0.3, 0.2) for t in range(0, 301, 30)], Mode.BATCHED, spec)
    assert decide(usual, T0 + timedelta(seconds=300), spec).verdict is Verdict.STEADY


def stack(policy: str = "Auto") -> OCRServingSpec:
    return OCRServingSpec.model_validate({
        "architecture": {"mode": "Standard", "policy": policy},
        "kafka": {"bootstrapServers": "kafka:9092"},
        "database": {"urlSecretRef": {"name": "db"}},
    })  # fmt: skip


def day(shape: dict[str, float], until: float, spec: OCRServingSpec) -> tuple[Any, list[Event]]:
    """Evaluations every 30 s through the operator's code; the status and all Events."""
    status: dict[str, Any] = {"activeMode": "Standard", "specMode": "Standard"}
    events: list[Event] = []
    for t in range(0, int(until) + 1, 30):
        evidence = Evidence.model_validate({"at": T0 + timedelta(seconds=t), **shape})
        evaluation = evaluate(spec, status, {}, evidence.at, Observation(evidence))
        report = build_report(evaluation, status, 1)
        status = merge_patch(status, report.patch)
        events += report.events
    return status, events


CALM = {"gpu_utilization": 55.0, "lag": 0.0, "lag_trend": 0.0, "consume_rate": 10.0,
        "db_write_p95": 0.05}  # fmt: skip
SYNC_TROUBLE = CALM | {"api_p95": 30.0, "api_p95_baseline": 0.2, "sync_timeouts": 0.5}


def test_sync_timeouts_with_a_risen_api_p95_advise_async_clients_with_their_evidence() -> None:
    status, events = day(SYNC_TROUBLE, 600, stack())
    advice = status["advisor"]["advice"]
    assert [a["rule"] for a in advice] == ["SyncTimeouts"]
    assert advice[0]["message"].startswith("move clients of the synchronous endpoint")
    signals = {s["check"]: s for s in advice[0]["signals"]}
    assert signals["apiSlow"]["value"] == 30.0 and signals["apiSlow"]["baseline"] == 0.2
    assert signals["syncTimeouts"]["value"] == 0.5 and signals["syncTimeouts"]["threshold"] == 0
    assert signals["apiSlow"]["heldSeconds"] == 600.0
    warnings = [e for e in events if e.reason is AdvisorReason.ASYNC_CLIENTS_RECOMMENDED]
    assert len(warnings) == 1 and warnings[0].warning  # once, while the advice stands
    assert status["activeMode"] == "Standard"  # advice moves nothing
    OCRServingStatus.model_validate(status)  # what the CRD schema accepts


@pytest.mark.parametrize(
    "change",
    [
        {"sync_timeouts": 0.0},  # slow API, but nobody times out
        {"api_p95_baseline": 20.0},  # always this slow: not a rise
        {"api_p95": 0.5, "api_p95_baseline": 0.1},  # risen, but still fast
    ],
)
def test_no_async_advice_without_both_signs(change: dict[str, float]) -> None:
    status, events = day(SYNC_TROUBLE | change, 600, stack())
    assert status["advisor"].get("advice", []) == []
    assert not [e for e in events if e.reason is AdvisorReason.ASYNC_CLIENTS_RECOMMENDED]


SATURATED = {"gpu_utilization": 91.0, "lag": 700.0, "lag_trend": 4.0, "consume_rate": 10.0,
             "db_write_p95": 0.05, "db_write_p95_baseline": 0.04}  # fmt: skip


def test_a_transition_names_the_rule_each_signal_its_threshold_and_how_long_it_held() -> None:
    status, events = day(SATURATED, 900, stack())
    (transition,) = status["transitions"]
    assert (transition["from"], transition["to"], transition["rule"]) == (
        "Standard", "Batched", "GpuSaturated")  # fmt: skip
    signals = {s["check"]: s for s in transition["signals"]}
    assert set(signals) == {"gpuSaturated", "behind", "backlogGrowing"}
    assert signals["gpuSaturated"] | {"since": None, "text": None} == {
        "check": "gpuSaturated", "signal": "gpuUtilization", "value": 91.0, "threshold": 80.0,
        "baseline": None, "heldSeconds": 900.0, "since": None, "text": None,
    }  # fmt: skip
    assert signals["behind"]["signal"] == "timeToDrainSeconds"
    assert signals["behind"]["value"] == 70.0 and signals["behind"]["threshold"] == 30.0
    assert signals["backlogGrowing"]["value"] == pytest.approx(24.0)  # 4/s over 10/s, per minute
    applied = [e for e in events if e.reason is AdvisorReason.TRANSITION_APPLIED]
    assert len(applied) == 1
    message = applied[0].message
    assert message.startswith("Standard -> Batched: GpuSaturated (Standard -> Batched): ")
    for part in ("gpuUtilization 91% >= 80% for 15m00s", "timeToDrainSeconds 70s >= 30s",
                 "drainGrowthSecondsPerMinute 24s/min > 3s/min"):  # fmt: skip
        assert part in message
    assert status["advisor"]["timeToDrainSeconds"] == 70.0  # the Lag column
    assert status["advisor"]["lag"] == 700.0
    OCRServingStatus.model_validate(status)


def test_a_recommendation_carries_the_same_explanation() -> None:
    status, events = day(SATURATED, 900, stack("Recommend"))  # held past the cooldown
    recommendation = status["recommendation"]
    assert recommendation["rule"] == "GpuSaturated"
    assert {s["check"] for s in recommendation["signals"]} == {
        "gpuSaturated", "behind", "backlogGrowing"}  # fmt: skip
    assert all(s["heldSeconds"] == 900.0 for s in recommendation["signals"])
    assert recommendation["evidence"]["timeToDrainSeconds"] == 70.0
    (event,) = [e for e in events if e.reason is AdvisorReason.TRANSITION_RECOMMENDED]
    assert "for 15m00s" in event.message and not event.warning
    assert status["activeMode"] == "Standard"
