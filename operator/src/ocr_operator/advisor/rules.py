"""The switching table of the architecture seed as pure code: evidence in, decision out.

No Prometheus or Kubernetes import (an import-linter contract checks it). The caller feeds one
`Evidence` per evaluation into `observe`, persists the returned `AdvisorWindow` (it is small:
one streak per rule and per check, not the raw samples) and asks `decide` what to do.
docs/advisor.md explains the rules and their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field

from ocr_operator.advisor.checks import Check, Finding, run_checks
from ocr_operator.advisor.evidence import REQUIRED_SIGNALS, Derived, Evidence, Signal
from ocr_operator.model._base import WireModel
from ocr_operator.model.advisor import AdvisorSpec, SignalReading
from ocr_operator.model.enums import Mode

__all__ = [
    "REQUIRED_SIGNALS",
    "AdvisorWindow",
    "Decision",
    "Derived",
    "Effect",
    "Evidence",
    "Reading",
    "Rule",
    "RuleName",
    "Signal",
    "Streak",
    "Verdict",
    "cooldown_until",
    "decide",
    "fmt_duration",
    "judge",
    "observe",
    "signal_readings",
]


class Verdict(StrEnum):
    """What one evaluation concluded."""

    UNAVAILABLE = "Unavailable"  # evidence incomplete: keep the mode
    STEADY = "Steady"  # no rule of the current mode holds
    PENDING = "Pending"  # a rule holds, not yet for its whole window
    COOLDOWN = "Cooldown"  # a rule held for its window, but the last change is too recent
    RECOMMEND = "Recommend"  # move to `Decision.target`


class RuleName(StrEnum):
    """Why a move (or advice, or a replica cap) is proposed; also the reason of the
    TransitionRecommended condition and of the Events."""

    GPU_SATURATED = "GpuSaturated"
    DOWNSTREAM_BOUND = "DownstreamBound"
    DOWNSTREAM_RECOVERED = "DownstreamRecovered"
    GPU_IDLE = "GpuIdle"
    SYNC_TIMEOUTS = "SyncTimeouts"
    BACK_PRESSURE = "DownstreamBackPressure"
    BACK_PRESSURE_RELIEVED = "DownstreamRelieved"


class Effect(StrEnum):
    MOVE = "Move"  # change the architecture to `target`
    ADVISE = "Advise"  # tell a person (nothing the operator can change)
    CAP = "Cap"  # cap the autoscaler of the database's client
    RELEASE = "Release"  # lift that cap


_ALL_MODES = (Mode.STANDARD, Mode.BATCHED, Mode.WRITER)


@dataclass(frozen=True)
class Rule:
    name: RuleName
    sources: tuple[Mode, ...]
    effect: Effect
    checks: tuple[Check, ...]
    target: Mode | None = None
    recovery: bool = False  # judged over the longer recovery window


# Between the rules of one source mode the checks exclude each other (GPU >= saturated vs
# < low; backlog growing vs flat), so at most one move holds at a time.
RULES: tuple[Rule, ...] = (
    Rule(
        RuleName.GPU_SATURATED,
        (Mode.STANDARD,),
        Effect.MOVE,
        (Check.GPU_SATURATED, Check.BEHIND, Check.BACKLOG_GROWING),
        Mode.BATCHED,
    ),
    # The downstream, not the GPU, holds the stack back: batching would not help, so Standard
    # goes straight to Writer, like Batched does.
    Rule(
        RuleName.DOWNSTREAM_BOUND,
        (Mode.STANDARD, Mode.BATCHED),
        Effect.MOVE,
        (Check.GPU_LOW, Check.BEHIND, Check.BACKLOG_GROWING, Check.DB_WRITE_SLOW),
        Mode.WRITER,
    ),
    Rule(
        RuleName.GPU_IDLE,
        (Mode.BATCHED,),
        Effect.MOVE,
        (Check.GPU_IDLE, Check.DRAINED, Check.BACKLOG_FLAT),
        Mode.STANDARD,
        recovery=True,
    ),
    Rule(
        RuleName.DOWNSTREAM_RECOVERED,
        (Mode.WRITER,),
        Effect.MOVE,
        (Check.DB_WRITE_NORMAL, Check.CAUGHT_UP, Check.BACKLOG_FLAT),
        Mode.BATCHED,
        recovery=True,
    ),
    # The seed's first row: callers of the synchronous endpoint time out while the API slows
    # down. No mode fixes that; the clients have to submit jobs and poll.
    Rule(RuleName.SYNC_TIMEOUTS, _ALL_MODES, Effect.ADVISE, (Check.SYNC_TIMEOUTS, Check.API_SLOW)),
    # A slow database behind a backlog: more consumers would add writes to a database that is
    # already the bottleneck, so the autoscaler of whoever writes to it is capped.
    Rule(RuleName.BACK_PRESSURE, _ALL_MODES, Effect.CAP, (Check.DB_WRITE_SLOW, Check.BEHIND)),
    Rule(
        RuleName.BACK_PRESSURE_RELIEVED,
        _ALL_MODES,
        Effect.RELEASE,
        (Check.DB_WRITE_NORMAL,),
        recovery=True,
    ),
)
RULES_BY_NAME = {rule.name: rule for rule in RULES}


def rules_from(mode: Mode, effect: Effect | None = None) -> tuple[Rule, ...]:
    return tuple(
        rule for rule in RULES if mode in rule.sources and (effect is None or rule.effect is effect)
    )


class Streak(WireModel):
    """A run of consecutive evaluations in which one rule (or one check) held."""

    since: datetime
    last: datetime
    count: int = Field(ge=1)


class AdvisorWindow(WireModel):
    """What the advisor remembers between evaluations (persisted in status.advisor.window)."""

    mode: Mode | None = None  # mode the streaks were observed under
    mode_since: datetime | None = None  # when that mode became active, as far as known
    streaks: dict[RuleName, Streak] = Field(default_factory=dict)
    held: dict[Check, Streak] = Field(default_factory=dict)  # per check: how long it held
    latest: Evidence | None = None


def observe(
    window: AdvisorWindow, mode: Mode, evidence: Evidence, spec: AdvisorSpec
) -> AdvisorWindow:
    """Fold one evaluation into the window.

    A mode change (by the advisor, the user or the first evaluation) restarts every streak and
    the cooldown. Incomplete evidence ends every streak: no move is ever based on missing data.
    A gap between evaluations longer than the rule's window (and than three intervals, so a
    window shorter than the interval still fills) also ends its streak: an operator that was
    down does not bridge two unrelated observations.
    """
    if window.mode != mode:
        window = AdvisorWindow(mode=mode, mode_since=evidence.at)
    streaks: dict[RuleName, Streak] = {}
    held: dict[Check, Streak] = {}
    if not evidence.missing():
        findings = run_checks(evidence, spec.thresholds)
        longest = max(spec.recovery_window_seconds, 3 * spec.interval_seconds)
        for check, finding in findings.items():
            if finding.holds:
                gap = timedelta(seconds=longest)
                held[check] = _extend(window.held.get(check), evidence.at, gap)
        for rule in rules_from(mode):
            if not all(findings[check].holds for check in rule.checks):
                continue
            max_gap = max(_window_of(rule, spec), timedelta(seconds=3 * spec.interval_seconds))
            streaks[rule.name] = _extend(window.streaks.get(rule.name), evidence.at, max_gap)
    return window.model_copy(update={"streaks": streaks, "held": held, "latest": evidence})


def _extend(streak: Streak | None, at: datetime, max_gap: timedelta) -> Streak:
    if streak is None or at <= streak.last or at - streak.last > max_gap:
        return Streak(since=at, last=at, count=1)
    return Streak(since=streak.since, last=at, count=streak.count + 1)


def _window_of(rule: Rule, spec: AdvisorSpec) -> timedelta:
    seconds = spec.recovery_window_seconds if rule.recovery else spec.window_seconds
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Reading:
    """One check of a rule as it stood at the decision: what it compared and how long it
    has held."""

    finding: Finding
    since: datetime | None
    held: timedelta

    def describe(self) -> str:
        return f"{self.finding.text} for {fmt_duration(self.held)}"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    mode: Mode
    message: str
    target: Mode | None = None
    rule: RuleName | None = None
    since: datetime | None = None  # when the rule started to hold
    evidence: Evidence | None = None
    readings: tuple[Reading, ...] = ()


def decide(window: AdvisorWindow, now: datetime, spec: AdvisorSpec) -> Decision:
    """What the advisor concludes about the mode; never a move on missing data."""
    evidence, mode = window.latest, window.mode
    if evidence is None or mode is None:
        return Decision(Verdict.UNAVAILABLE, mode or Mode.STANDARD, "no evaluation yet")
    missing = evidence.missing()
    if missing:
        names = ", ".join(signal.value for signal in missing)
        return Decision(Verdict.UNAVAILABLE, mode, f"missing metrics: {names}", evidence=evidence)
    for rule in rules_from(mode, Effect.MOVE):
        decision = judge(rule, window, now, spec, cooldown_until(window, spec))
        if decision is not None:
            return decision
    return Decision(Verdict.STEADY, mode, f"{mode.value}: no rule holds", evidence=evidence)


def judge(
    rule: Rule,
    window: AdvisorWindow,
    now: datetime,
    spec: AdvisorSpec,
    cooldown_end: datetime | None,
) -> Decision | None:
    """How far `rule` is: None when it does not hold now, else Pending (not yet held for its
    window and minSamples), Cooldown (held, but `cooldown_end` is still ahead) or Recommend."""
    streak, evidence, mode = window.streaks.get(rule.name), window.latest, window.mode
    if streak is None or evidence is None or mode is None:
        return None
    readings = _readings(rule, window, spec)
    needed, held = _window_of(rule, spec), streak.last - streak.since
    arrow = f" ({mode.value} -> {rule.target.value})" if rule.target else ""
    base = f"{rule.name.value}{arrow}: " + "; ".join(r.describe() for r in readings)
    if held < needed or streak.count < spec.min_samples:
        verdict = Verdict.PENDING
        message = (
            f"{base}; rule held {fmt_duration(held)} of {fmt_duration(needed)} over "
            f"{streak.count} of at least {spec.min_samples} evaluations"
        )
    elif cooldown_end is not None and now < cooldown_end:
        verdict = Verdict.COOLDOWN
        message = f"{base}; cooling down until {cooldown_end.isoformat()}"
    else:
        verdict = Verdict.RECOMMEND
        message = f"{base}; rule held {fmt_duration(held)} over {streak.count} evaluations"
    return Decision(
        verdict,
        mode,
        message,
        target=rule.target,
        rule=rule.name,
        since=streak.since,
        evidence=evidence,
        readings=readings,
    )


def _readings(rule: Rule, window: AdvisorWindow, spec: AdvisorSpec) -> tuple[Reading, ...]:
    assert window.latest is not None
    findings = run_checks(window.latest, spec.thresholds)
    out = []
    for check in rule.checks:
        streak = window.held.get(check)
        since = streak.since if streak is not None else None
        held = (streak.last - streak.since) if streak is not None else timedelta(0)
        out.append(Reading(findings[check], since, held))
    return tuple(out)


def cooldown_until(window: AdvisorWindow, spec: AdvisorSpec) -> datetime | None:
    if window.mode_since is None:
        return None
    return window.mode_since + timedelta(seconds=spec.cooldown_seconds)


def fmt_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def signal_readings(readings: tuple[Reading, ...]) -> list[SignalReading]:
    """The readings as status records (recommendation, transition, cap, advice)."""
    return [
        SignalReading(
            check=r.finding.check.value,
            signal=r.finding.signal,
            value=r.finding.value,
            threshold=r.finding.threshold,
            baseline=r.finding.baseline,
            held_seconds=r.held.total_seconds(),
            since=r.since.strftime("%Y-%m-%dT%H:%M:%SZ") if r.since else None,
            text=r.describe()[:1024],
        )
        for r in readings
    ]
