"""Unit tests of the Lease election: who may take the Lease when, and an elector that renews,
waits, takes over a silent leader, steps down when it cannot renew, and releases on stop.
The apiserver is an in-memory Lease with optimistic concurrency; the clock is driven."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ocr_operator.leader import (
    Claim,
    LeaderElector,
    LeaseRecord,
    LeaseTimings,
    claim,
    claimed,
)
from ocr_operator.ports import KubeError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeLease:
    """One Lease; `replace` fails with 409 on a stale resourceVersion, like the apiserver.
    Each call moves `clock` by `step` seconds (the time a retry period takes)."""

    def __init__(self, clock: Clock, step: float = 0.0) -> None:
        self.record: LeaseRecord | None = None
        self.version = 0
        self.down = False  # the apiserver does not answer
        self.clock, self.step = clock, step

    async def read(self) -> LeaseRecord | None:
        self._check()
        return self.record

    async def create(self, record: LeaseRecord) -> None:
        self._check()
        if self.record is not None:
            raise KubeError(409, "already exists")
        self.store(record)

    async def replace(self, record: LeaseRecord) -> None:
        self._check()
        assert self.record is not None
        if record.resource_version != self.record.resource_version:
            raise KubeError(409, "the object has been modified")
        self.store(record)

    def store(self, record: LeaseRecord) -> None:
        self.version += 1
        self.record = replace(record, resource_version=str(self.version))

    def _check(self) -> None:
        self.clock.now += self.step
        if self.down:
            raise KubeError(0, "connection refused")


# Real sleeps of a millisecond between attempts; the driven clock decides expiry.
TIMINGS = LeaseTimings(duration_seconds=15, renew_deadline_seconds=10, retry_seconds=0.001)


def elector(lease: FakeLease, name: str, changes: list[bool] | None = None) -> LeaderElector:
    sink = changes if changes is not None else []
    return LeaderElector(lease, name, TIMINGS, clock=lease.clock, on_change=sink.append)


HELD = LeaseRecord("a", 15, "t", "t", 0)


@pytest.mark.parametrize(
    ("record", "me", "unchanged_for", "expected"),
    [
        (HELD, "a", 100.0, Claim.RENEW),
        (HELD, "b", 14.9, Claim.WAIT),
        (HELD, "b", 15.0, Claim.TAKE),
        (replace(HELD, holder=None), "b", 0.0, Claim.TAKE),  # released
    ],
)
def test_claim(record: LeaseRecord, me: str, unchanged_for: float, expected: Claim) -> None:
    assert claim(record, me, unchanged_for) is expected


def test_taking_over_counts_a_transition_and_renewing_does_not() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    taken = claimed(HELD, "b", 15, now)
    assert (taken.holder, taken.transitions) == ("b", 1)
    assert taken.acquire_time == taken.renew_time == "2026-01-01T00:00:00.000000Z"
    renewed = claimed(taken, "b", 15, now)
    assert (renewed.transitions, renewed.acquire_time) == (1, taken.acquire_time)


def test_timings_must_leave_the_leader_time_to_step_down() -> None:
    with pytest.raises(ValueError, match="retry < renew deadline < duration"):
        LeaseTimings(duration_seconds=10, renew_deadline_seconds=10, retry_seconds=2)


def test_one_of_two_leads_and_the_other_takes_over_only_after_a_silent_lease_duration() -> None:
    async def scenario() -> None:
        clock = Clock()
        lease, changes = FakeLease(clock), list[bool]()
        a, b = elector(lease, "a"), elector(lease, "b", changes)
        assert await a.try_acquire_or_renew() is True
        assert await b.try_acquire_or_renew() is False
        clock.now += 14
        assert await a.try_acquire_or_renew() is True  # renewed: b's wait starts over
        clock.now += 14
        assert await b.try_acquire_or_renew() is False
        clock.now += 14.9  # a is gone: nothing renews...
        assert await b.try_acquire_or_renew() is False
        clock.now += 0.1  # ...for a whole lease duration
        assert await b.try_acquire_or_renew() is True
        assert lease.record is not None
        assert (lease.record.holder, lease.record.transitions) == ("b", 1)
        assert changes == [True]
        assert await a.try_acquire_or_renew() is False  # a, back, finds b holding it

    asyncio.run(scenario())


def test_a_leader_that_cannot_renew_steps_down_before_anyone_may_take_over() -> None:
    async def scenario() -> tuple[bool, list[bool], float]:
        clock = Clock()
        lease, changes = FakeLease(clock, step=2.0), list[bool]()
        a = elector(lease, "a", changes)
        assert await a.try_acquire_or_renew() is True
        renewed_at = clock.now
        lease.down = True
        held = await a.hold(asyncio.Event())
        return held, changes, clock.now - renewed_at

    held, changes, silent_for = asyncio.run(scenario())
    assert held is False
    assert changes == [True, False]
    assert TIMINGS.renew_deadline_seconds <= silent_for < TIMINGS.duration_seconds


def test_a_leader_whose_lease_was_taken_steps_down_at_the_next_renewal() -> None:
    async def scenario() -> tuple[bool, bool]:
        lease = FakeLease(Clock())
        a = elector(lease, "a")
        assert await a.try_acquire_or_renew() is True
        assert lease.record is not None
        lease.store(replace(lease.record, holder="intruder"))
        return await a.hold(asyncio.Event()), a.leading

    assert asyncio.run(scenario()) == (False, False)


def test_stop_releases_the_lease_so_a_standby_takes_it_at_once() -> None:
    async def scenario() -> tuple[bool, bool]:
        lease = FakeLease(Clock())
        a, b = elector(lease, "a"), elector(lease, "b")
        assert await a.try_acquire_or_renew() is True
        assert await b.try_acquire_or_renew() is False
        stop = asyncio.Event()
        stop.set()
        held = await a.hold(stop)
        await a.release()
        return held, await b.try_acquire_or_renew()

    assert asyncio.run(scenario()) == (True, True)


def test_acquire_returns_when_stopped_while_standing_by() -> None:
    async def scenario() -> tuple[bool, bool]:
        lease = FakeLease(Clock())
        assert await elector(lease, "a").try_acquire_or_renew()
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stop.set)
        standby = elector(lease, "b")
        return await standby.acquire(stop), standby.leading

    assert asyncio.run(scenario()) == (False, False)
