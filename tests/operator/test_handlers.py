"""Unit tests of the reconcile loop's timing: the delay after a pass, and a sleep that a
change or a stop cuts short (the e2e deletion tests prove the kopf side)."""

from __future__ import annotations

import asyncio
import gc

from ocr_operator.handlers import (
    GC_THRESHOLDS,
    next_delay,
    sleep_until_woken,
    tune_garbage_collector,
)
from ocr_operator.reconcile import ReconcileOutcome
from ocr_operator.settings import OperatorSettings

SETTINGS = OperatorSettings(resync_seconds=30, wait_seconds=1, error_backoff_seconds=15)
A_LONG_TIME = 3600.0


def outcome(retry_after: float | None) -> ReconcileOutcome:
    return ReconcileOutcome(None, None, ready=False, retry_after=retry_after, message="")


class FakeStop:
    def __init__(self) -> None:
        self.event = asyncio.Event()

    def is_set(self) -> bool:
        return self.event.is_set()

    async def wait(self, timeout: float | None = None) -> object:
        return await asyncio.wait_for(self.event.wait(), timeout)


def test_a_settled_stack_waits_for_the_resync_period() -> None:
    assert next_delay(outcome(None), SETTINGS) == 30


def test_a_waiting_transition_asks_for_its_own_delay_but_never_past_the_resync() -> None:
    assert next_delay(outcome(1.5), SETTINGS) == 1.5
    assert next_delay(outcome(600), SETTINGS) == 30


def test_a_change_wakes_the_sleeping_loop() -> None:
    async def scenario() -> bool:
        wakeup, stop = asyncio.Event(), FakeStop()
        sleeping = asyncio.create_task(sleep_until_woken(wakeup, stop, A_LONG_TIME))
        await asyncio.sleep(0)
        wakeup.set()
        await asyncio.wait_for(sleeping, timeout=5)
        return stop.is_set()

    assert asyncio.run(scenario()) is False


def test_a_stop_wakes_the_sleeping_loop() -> None:
    async def scenario() -> bool:
        wakeup, stop = asyncio.Event(), FakeStop()
        sleeping = asyncio.create_task(sleep_until_woken(wakeup, stop, A_LONG_TIME))
        await asyncio.sleep(0)
        stop.event.set()
        await asyncio.wait_for(sleeping, timeout=5)
        return wakeup.is_set()

    assert asyncio.run(scenario()) is False


def test_once_started_the_collector_skips_the_startup_heap_and_collects_young_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
