"""Unit tests of the pure decision logic: each rule at its edges, windows, cooldown, flapping
and noisy inputs, missing data. No service needed."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ocr_operator.advisor.rules import (
    RULES_BY_NAME,
    AdvisorWindow,
    Effect,
    Evidence,
    RuleName,
    Verdict,
    decide,
    observe,
)
from ocr_operator.model.advisor import AdvisorSpec
from ocr_operator.model.enums import Mode

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULTS = AdvisorSpec()
NO_COOLDOWN = AdvisorSpec(cooldown_seconds=0)


def ev(
    t: float = 0,
    *,
    gpu: float | None = 70.0,
    lag: float | None = 0.0,
    trend: float | None = 0.0,
    rate: float | None = 10.0,
    db: float | None = 0.05,
    dbb: float | None = None,
    api: float | None = 0.1,
) -> Evidence:
    """Evidence at T0 + t; with the default rate of 10 jobs/s the time to drain is lag / 10
    seconds and the backlog grows by 6 x trend seconds per minute."""
    return Evidence(
        at=T0 + timedelta(seconds=t),
        gpu_utilization=gpu,
        lag=lag,
        lag_trend=trend,
        consume_rate=rate,
        db_write_p95=db,
        db_write_p95_baseline=dbb,
        api_p95=api,
    )


# Evidence shapes used across the tests (consumption 10 jobs/s).
SATURATED = {"gpu": 90.0, "lag": 500.0, "trend": 5.0, "db": 0.05}  # 50 s to drain, +30 s/min
BOUND = {"gpu": 40.0, "lag": 500.0, "trend": 5.0, "db": 0.9}
IDLE = {"gpu": 5.0, "lag": 0.0, "trend": 0.0, "db": 0.05}
CALM = {"gpu": 70.0, "lag": 150.0, "trend": 0.3, "db": 0.3}  # in every dead band


def moves(window: AdvisorWindow) -> list[RuleName]:
    """The mode-changing rules whose streak runs (caps and advice aside)."""
    return [name for name in window.streaks if RULES_BY_NAME[name].effect is Effect.MOVE]


def feed(mode: Mode, samples: list[Evidence], spec: AdvisorSpec = NO_COOLDOWN) -> AdvisorWindow:
    window = AdvisorWindow()
    for sample in samples:
        window = observe(window, mode, sample, spec)
    return window


def every(seconds: float, until: float, **shape: float) -> list[Evidence]:
    count = int(until // seconds) + 1
    return [ev(i * seconds, **shape) for i in range(count)]


@pytest.mark.parametrize(
    ("mode", "shape", "expected"),
    [
        # Standard -> Batched: GPU >= 80 %, >= 30 s to drain, growing > 3 s per minute
        (Mode.STANDARD, {"gpu": 80.0, "lag": 300.0, "trend": 0.51}, RuleName.GPU_SATURATED),
        (Mode.STANDARD, {"gpu": 79.99, "lag": 3000.0, "trend": 50.0}, None),
        (Mode.STANDARD, {"gpu": 100.0, "lag": 299.0, "trend": 5.0}, None),
        (Mode.STANDARD, {"gpu": 100.0, "lag": 3000.0, "trend": 0.5}, None),
        (Mode.STANDARD, {"gpu": 95.0, "trend": -3.0, "lag": 9000.0}, None),
        # The same backlog and growth at ten times the consumption is seconds of work: fine.
        (Mode.STANDARD, {"gpu": 90.0, "lag": 500.0, "trend": 5.0, "rate": 100.0}, None),
        (Mode.STANDARD, {"gpu": 90.0, "lag": 50.0, "trend": 1.0, "rate": 1.0},
         RuleName.GPU_SATURATED),
        # A backlog with nothing consumed never drains.
        (Mode.STANDARD, {"gpu": 90.0, "lag": 5.0, "trend": 0.1, "rate": 0.0},
         RuleName.GPU_SATURATED),
        # -> Writer: GPU < 60 %, behind and growing, DB p95 >= 0.5 s or >= 2x its baseline
        (Mode.STANDARD, {"gpu": 59.9, "lag": 300.0, "trend": 1.0, "db": 0.5},
         RuleName.DOWNSTREAM_BOUND),
        (Mode.STANDARD, {"gpu": 60.0, "lag": 300.0, "trend": 1.0, "db": 0.9}, None),
        (Mode.STANDARD, {"gpu": 40.0, "lag": 300.0, "trend": 1.0, "db": 0.499}, None),
        (Mode.STANDARD, {"gpu": 40.0, "lag": 300.0, "trend": 1.0, "db": 0.3, "dbb": 0.15},
         RuleName.DOWNSTREAM_BOUND),
        (Mode.STANDARD, {"gpu": 40.0, "lag": 300.0, "trend": 1.0, "db": 0.3, "dbb": 0.16}, None),
        (Mode.STANDARD, {"gpu": 40.0, "lag": 300.0, "trend": 1.0, "db": 0.2, "dbb": 0.01}, None),
        (Mode.STANDARD, {"gpu": 40.0, "lag": 300.0, "trend": 0.5, "db": 0.9}, None),
        (Mode.BATCHED, {"gpu": 59.9, "lag": 300.0, "trend": 1.0, "db": 0.5},
         RuleName.DOWNSTREAM_BOUND),
        (Mode.BATCHED, {"gpu": 60.0, "lag": 300.0, "trend": 1.0, "db": 0.5}, None),
        # Batched saturated: no lighter or heavier mode helps (scale workers instead)
        (Mode.BATCHED, {"gpu": 99.0, "lag": 900.0, "trend": 9.0, "db": 0.05}, None),
        # Batched -> Standard: GPU <= 60 %, <= 2 s to drain, growing <= 0.5 s per minute
        (Mode.BATCHED, {"gpu": 60.0, "lag": 20.0, "trend": 0.08}, RuleName.GPU_IDLE),
        (Mode.BATCHED, {"gpu": 60.1, "lag": 0.0, "trend": 0.0}, None),
        (Mode.BATCHED, {"gpu": 5.0, "lag": 20.5, "trend": 0.0}, None),
        (Mode.BATCHED, {"gpu": 5.0, "lag": 0.0, "trend": 0.09}, None),
        (Mode.STANDARD, {"gpu": 0.0, "lag": 0.0, "trend": 0.0}, None),
        # Writer -> Batched: DB p95 <= 0.2 s, <= 10 s to drain, not growing
        (Mode.WRITER, {"db": 0.2, "lag": 100.0, "trend": 0.08}, RuleName.DOWNSTREAM_RECOVERED),
        (Mode.WRITER, {"db": 0.05, "trend": -40.0, "lag": 100.0}, RuleName.DOWNSTREAM_RECOVERED),
        (Mode.WRITER, {"db": 0.05, "trend": -40.0, "lag": 5000.0}, None),  # not caught up yet
        (Mode.WRITER, {"db": 0.21, "trend": 0.0}, None),
        (Mode.WRITER, {"db": 0.1, "trend": 0.09}, None),
        (Mode.WRITER, {"gpu": 95.0, "lag": 500.0, "trend": 5.0, "db": 0.9}, None),
    ],
)  # fmt: skip
def test_each_rule_trips_exactly_at_its_threshold(
    mode: Mode, shape: dict[str, float], expected: RuleName | None
) -> None:
    window = feed(mode, [ev(0, **shape)])
    assert moves(window) == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("mode", "shape", "target"),
    [
        (Mode.STANDARD, SATURATED, Mode.BATCHED),
        (Mode.STANDARD, BOUND, Mode.WRITER),
        (Mode.BATCHED, BOUND, Mode.WRITER),
        (Mode.BATCHED, IDLE, Mode.STANDARD),
        (Mode.WRITER, IDLE, Mode.BATCHED),
    ],
)
def test_a_condition_held_for_its_window_recommends_its_target(
    mode: Mode, shape: dict[str, float], target: Mode
) -> None:
    window = feed(mode, every(30, 900, **shape))
    decision = decide(window, window.latest.at if window.latest else T0, NO_COOLDOWN)
    assert decision.verdict is Verdict.RECOMMEND
    assert decision.target is target
    assert decision.since == T0
    assert decision.evidence is not None and decision.evidence.numbers()["lag"] == shape["lag"]


@pytest.mark.parametrize(
    ("interval", "until", "shape", "mode", "verdict"),
    [
        (30, 300, SATURATED, Mode.STANDARD, Verdict.RECOMMEND),  # held exactly 5 min
        (30, 270, SATURATED, Mode.STANDARD, Verdict.PENDING),
        (150, 300, SATURATED, Mode.STANDARD, Verdict.RECOMMEND),  # 3 evaluations: enough
        (300, 300, SATURATED, Mode.STANDARD, Verdict.PENDING),  # 2 evaluations: too few
        (30, 600, IDLE, Mode.BATCHED, Verdict.PENDING),  # the way back needs 15 min
        (30, 900, IDLE, Mode.BATCHED, Verdict.RECOMMEND),
        (30, 870, IDLE, Mode.WRITER, Verdict.PENDING),
    ],
)
def test_window_needs_both_duration_and_several_evaluations(
    interval: float, until: float, shape: dict[str, float], mode: Mode, verdict: Verdict
) -> None:
    window = feed(mode, every(interval, until, **shape))
    decision = decide(window, T0 + timedelta(seconds=until), NO_COOLDOWN)
    assert decision.verdict is verdict


def test_one_failing_evaluation_restarts_the_window() -> None:
    samples = every(30, 600, **SATURATED)
    samples[15] = ev(450, **CALM)  # a single calm reading at 7.5 min
    window = feed(Mode.STANDARD, samples)
    decision = decide(window, T0 + timedelta(seconds=600), NO_COOLDOWN)
    assert decision.verdict is Verdict.PENDING
    assert decision.since == T0 + timedelta(seconds=480)


def test_a_gap_longer_than_the_window_restarts_it() -> None:
    samples = [ev(0, **SATURATED), ev(30, **SATURATED), ev(400, **SATURATED), ev(430, **SATURATED)]
    window = feed(Mode.STANDARD, samples)
    assert window.streaks[RuleName.GPU_SATURATED].since == T0 + timedelta(seconds=400)
    assert decide(window, T0 + timedelta(seconds=430), NO_COOLDOWN).verdict is Verdict.PENDING


def test_a_window_shorter_than_the_interval_still_fills() -> None:
    spec = AdvisorSpec(interval_seconds=60, window_seconds=10, recovery_window_seconds=10,
                       cooldown_seconds=0, min_samples=3)  # fmt: skip
    window = feed(Mode.STANDARD, every(61, 122, **SATURATED), spec)  # jitter: 61 s apart
    assert decide(window, T0 + timedelta(seconds=122), spec).verdict is Verdict.RECOMMEND
    window = feed(Mode.STANDARD, [ev(0, **SATURATED), ev(200, **SATURATED)], spec)
    assert window.streaks[RuleName.GPU_SATURATED].count == 1  # > 3 intervals: restarted


@pytest.mark.parametrize(
    ("now", "verdict"),
    [(300, Verdict.COOLDOWN), (899, Verdict.COOLDOWN), (900, Verdict.RECOMMEND)],
)
def test_cooldown_runs_from_the_last_mode_change(now: float, verdict: Verdict) -> None:
    window = feed(Mode.STANDARD, every(30, now, **SATURATED), DEFAULTS)
    decision = decide(window, T0 + timedelta(seconds=now), DEFAULTS)
    assert decision.verdict is verdict
    assert decision.target is Mode.BATCHED


def test_a_mode_change_restarts_streaks_and_cooldown() -> None:
    window = feed(Mode.STANDARD, every(30, 1200, **BOUND), DEFAULTS)
    assert decide(window, T0 + timedelta(seconds=1200), DEFAULTS).verdict is Verdict.RECOMMEND
    window = observe(window, Mode.WRITER, ev(1230, **IDLE), DEFAULTS)
    assert window.mode_since == T0 + timedelta(seconds=1230)
    assert window.streaks[RuleName.DOWNSTREAM_RECOVERED].count == 1
    assert decide(window, T0 + timedelta(seconds=1230), DEFAULTS).verdict is Verdict.PENDING


@pytest.mark.parametrize(
    "missing",
    [{"gpu": None}, {"lag": None}, {"trend": None}, {"rate": None}, {"db": None}],
)
def test_missing_data_is_unavailable_and_restarts_the_window(
    missing: dict[str, float | None],
) -> None:
    samples = every(30, 900, **SATURATED)
    samples.append(ev(930, **(SATURATED | missing)))
    window = feed(Mode.STANDARD, samples)
    decision = decide(window, T0 + timedelta(seconds=930), NO_COOLDOWN)
    assert decision.verdict is Verdict.UNAVAILABLE
    assert decision.target is None
    assert "missing metrics" in decision.message
    assert window.streaks == {}
    assert window.held == {}
    window = observe(window, Mode.STANDARD, ev(960, **SATURATED), NO_COOLDOWN)
    assert decide(window, T0 + timedelta(seconds=960), NO_COOLDOWN).verdict is Verdict.PENDING


def test_api_p95_is_reported_but_not_required() -> None:
    window = feed(Mode.STANDARD, [*every(30, 300, **SATURATED), ev(330, api=None, **SATURATED)])
    decision = decide(window, T0 + timedelta(seconds=330), NO_COOLDOWN)
    assert decision.verdict is Verdict.RECOMMEND
    assert "apiP95" not in (decision.evidence.numbers() if decision.evidence else {"apiP95": 0})


def test_no_evaluation_yet_is_unavailable() -> None:
    assert decide(AdvisorWindow(), T0, DEFAULTS).verdict is Verdict.UNAVAILABLE


def test_the_window_survives_a_round_trip_through_status() -> None:
    window = feed(Mode.BATCHED, every(30, 600, **IDLE), DEFAULTS)
    restored = AdvisorWindow.model_validate(window.wire())
    assert restored == window
    assert decide(restored, T0 + timedelta(seconds=600), DEFAULTS) == decide(
        window, T0 + timedelta(seconds=600), DEFAULTS
    )


@dataclass(frozen=True)
class Move:
    at: datetime
    source: Mode
    target: Mode


def simulate(samples: list[Evidence], mode: Mode, spec: AdvisorSpec) -> list[Move]:
    """The Auto policy in a loop: every recommendation is applied at once."""
    window, moves = AdvisorWindow(), []
    for sample in samples:
        window = observe(window, mode, sample, spec)
        decision = decide(window, sample.at, spec)
        if decision.verdict is Verdict.RECOMMEND and decision.target is not None:
            moves.append(Move(sample.at, mode, decision.target))
            mode = decision.target
    return moves


def square_wave(
    phase: float, until: float, first: dict[str, float], second: dict[str, float]
) -> list[Evidence]:
    return [ev(t, **(first if (t // phase) % 2 == 0 else second)) for t in range(0, int(until), 30)]


@pytest.mark.parametrize(
    ("first", "second", "mode"),
    [(SATURATED, IDLE, Mode.STANDARD), (BOUND, IDLE, Mode.BATCHED), (IDLE, BOUND, Mode.WRITER)],
)
def test_input_flapping_faster_than_the_window_never_moves(
    first: dict[str, float], second: dict[str, float], mode: Mode
) -> None:
    samples = square_wave(phase=240, until=6 * 3600, first=first, second=second)
    assert simulate(samples, mode, DEFAULTS) == []


def test_every_other_evaluation_flapping_never_moves() -> None:
    samples = square_wave(phase=30, until=6 * 3600, first=SATURATED, second=IDLE)
    assert simulate(samples, Mode.STANDARD, DEFAULTS) == []


def test_slow_flapping_moves_at_most_once_per_cooldown_and_never_straight_back() -> None:
    samples = square_wave(phase=1200, until=6 * 3600, first=SATURATED, second=IDLE)
    moves = simulate(samples, Mode.STANDARD, DEFAULTS)
    assert moves, "a 20-minute phase is longer than window and cooldown: the advisor follows"
    for before, after in itertools.pairwise(moves):
        assert after.at - before.at >= timedelta(seconds=DEFAULTS.cooldown_seconds)
        if after.target is before.source:  # a way back must have waited for its long window
            assert after.at - before.at >= timedelta(seconds=DEFAULTS.recovery_window_seconds)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noise_around_the_thresholds_never_moves(seed: int) -> None:
    rng = random.Random(seed)
    samples = [
        ev(
            t,
            gpu=rng.uniform(70, 90),  # straddles the 80 % edge
            lag=rng.uniform(0, 600),  # 0-60 s to drain: straddles 30 s
            trend=rng.uniform(-2, 2),  # -12..12 s per minute: straddles both growth edges
            db=rng.uniform(0.1, 0.6),
        )
        for t in range(0, 6 * 3600, 30)
    ]
    assert simulate(samples, Mode.STANDARD, DEFAULTS) == []


def test_the_full_ladder_and_back() -> None:
    spec = AdvisorSpec(window_seconds=60, recovery_window_seconds=120, cooldown_seconds=60)
    phases = [SATURATED, BOUND, IDLE, IDLE]
    samples = [ev(t, **phases[min(t // 300, 3)]) for t in range(0, 1200, 10)]
    moves = simulate(samples, Mode.STANDARD, spec)
    path = [(move.source, move.target) for move in moves]
    assert path == [
        (Mode.STANDARD, Mode.BATCHED),
        (Mode.BATCHED, Mode.WRITER),
        (Mode.WRITER, Mode.BATCHED),
        (Mode.BATCHED, Mode.STANDARD),
    ]
