"""Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: the leader renews
the Lease every retry period; a standby takes it over once it has seen no renewal for a
whole lease duration; a leader that could not renew within its renew deadline steps down
before anyone may take over (renew deadline < lease duration).

The operator starts kopf only once it leads, so every handler (and kopf's own bookkeeping
of finalizers and annotations) runs in one process at a time. kopf's peering is no lock:
operators of equal priority all freeze, so it cannot elect one of two identical replicas.

Expiry is judged on this process's monotonic clock, from when it last saw the Lease change,
never by comparing the holder's wall-clock timestamps: clocks of two nodes may disagree.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from ocr_operator.ports import Body, KubeError

log = logging.getLogger(__name__)

_MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class LeaseTimings:
    duration_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_seconds < self.renew_deadline_seconds < self.duration_seconds:
            raise ValueError("lease timings need retry < renew deadline < duration")


@dataclass(frozen=True)
class LeaseRecord:
    """The fields of a Lease that election reads and writes."""

    holder: str | None
    duration_seconds: int
    renew_time: str | None
    acquire_time: str | None
    transitions: int
    resource_version: str | None = None

    @classmethod
    def parse(cls, body: Body) -> LeaseRecord:
        spec = body.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or None,
            duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            renew_time=spec.get("renewTime"),
            acquire_time=spec.get("acquireTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=(body.get("metadata") or {}).get("resourceVersion"),
        )

    def spec(self) -> Body:
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_seconds,
            "renewTime": self.renew_time,
            "acquireTime": self.acquire_time,
            "leaseTransitions": self.transitions,
        }


class Claim(enum.Enum):
    """What this process may do with the Lease as it stands."""

    RENEW = "renew"  # we hold it
    TAKE = "take"  # free: released, or not renewed for a whole lease duration
    WAIT = "wait"  # someone else holds it


def claim(record: LeaseRecord, me: str, unchanged_for: float) -> Claim:
    """Pure decision; `unchanged_for`: seconds since this process saw the record change."""
    if record.holder == me:
        return Claim.RENEW
    if record.holder is None or unchanged_for >= record.duration_seconds:
        return Claim.TAKE
    return Claim.WAIT


def claimed(record: LeaseRecord | None, me: str, duration: float, now: datetime) -> LeaseRecord:
    """The record to write when `me` renews or takes the Lease."""
    stamp = now.strftime(_MICRO_TIME)
    if record is None:
        return LeaseRecord(me, round(duration), stamp, stamp, 0)
    if record.holder == me:
        return replace(record, renew_time=stamp, duration_seconds=round(duration))
    return replace(
        record,
        holder=me,
        duration_seconds=round(duration),
        renew_time=stamp,
        acquire_time=stamp,
        transitions=record.transitions + 1,
    )


class LeaseApi(Protocol):
    """Reads and writes one Lease (a fake in the unit tests)."""

    async def read(self) -> LeaseRecord | None: ...

    async def create(self, record: LeaseRecord) -> None: ...

    async def replace(self, record: LeaseRecord) -> None:
        """Optimistic: fails with a 409 KubeError when the resourceVersion is stale."""
        ...


class LeaderElector:
    """Acquires, holds and releases the Lease for `identity`."""

    def __init__(
        self,
        api: LeaseApi,
        identity: str,
        timings: LeaseTimings,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] = lambda _leading: None,
    ) -> None:
        self.identity = identity
        self._api = api
        self._timings = timings
        self._clock = clock
        self._on_change = on_change
        self._seen: LeaseRecord | None = None
        self._seen_at = 0.0
        self.leading = False

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this process holds the Lease afterwards."""
        try:
            record = await self._api.read()
            now = self._clock()
            if record is None:
                await self._api.create(claimed(None, self.identity, self._duration, _utcnow()))
                return self._set_leading(True)
            if self._seen is None or _changed(self._seen, record):
                self._seen, self._seen_at = record, now
            if claim(record, self.identity, now - self._seen_at) is Claim.WAIT:
                return self._set_leading(False)
            await self._api.replace(claimed(record, self.identity, self._duration, _utcnow()))
        except KubeError as error:
            if error.status != 409:  # a conflict only means someone else wrote first
                log.warning("lease %s: %s", "renewal" if self.leading else "acquisition", error)
            return False
        return self._set_leading(True)

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Try every retry period until this process leads (True) or `stop` is set."""
        while not stop.is_set():
            if await self.try_acquire_or_renew():
                log.info("leading as %s", self.identity)
                return True
            await _sleep_or_stop(stop, self._timings.retry_seconds)
        return False

    async def hold(self, stop: asyncio.Event) -> bool:
        """Renew every retry period until `stop` (True) or until a renewal has not
        succeeded within the renew deadline, or another holder appears (False: lost)."""
        last_renewal = self._clock()
        while not await _sleep_or_stop(stop, self._timings.retry_seconds):
            if await self.try_acquire_or_renew():
                last_renewal = self._clock()
            elif self._seen is not None and self._seen.holder not in (None, self.identity):
                return self._lost(f"taken over by {self._seen.holder}")
            elif self._clock() - last_renewal >= self._timings.renew_deadline_seconds:
                return self._lost("not renewed within the renew deadline")
        return True

    async def release(self) -> None:
        """Give the Lease up at once (graceful stop), so a standby need not wait it out."""
        try:
            record = await self._api.read()
            if record is not None and record.holder == self.identity:
                await self._api.replace(replace(record, holder=None, duration_seconds=1))
        except KubeError as error:
            log.warning("lease release: %s", error)
        self._set_leading(False)

    @property
    def _duration(self) -> float:
        return self._timings.duration_seconds

    def _lost(self, why: str) -> bool:
        log.error("lost the lead as %s: %s", self.identity, why)
        self._set_leading(False)
        return False

    def _set_leading(self, leading: bool) -> bool:
        if leading != self.leading:
            self.leading = leading
            self._on_change(leading)
        return leading


def _changed(before: LeaseRecord, after: LeaseRecord) -> bool:
    return (before.holder, before.renew_time, before.resource_version) != (
        after.holder,
        after.renew_time,
        after.resource_version,
    )


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`; True when `stop` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


def _utcnow() -> datetime:
    return datetime.now(UTC)
