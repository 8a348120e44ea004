"""Serving processes freeze their startup heap once ready, so CPython's full collections do not
walk it again (a 100 to 150 ms stall each in the API and the worker before)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from ocr_runtime.api import create_app
from ocr_runtime.bootstrap import _dataplane as dp
from ocr_runtime.core.heap import freeze_startup_heap
from ocr_runtime.core.settings import Settings
from ocr_runtime.worker import ConsumeLoop, DataPlaneMetrics
from tests.runtime.unit.runtime_fakes import FakeBlobStore, FakePublisher, FakeRepository


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_freezing_collects_startup_garbage_first_and_freezes_the_rest() -> None:
    kept = [_Cycle() for _ in range(100)]
    garbage = _Cycle()
    collected = weakref.ref(garbage)
    del garbage

    frozen = freeze_startup_heap()

    assert collected() is None  # a cycle only the collector frees: freed, not frozen
    assert frozen == gc.get_freeze_count()
    assert frozen >= len(kept)
    assert not any(o is kept[0] for o in gc.get_objects())  # the collector no longer walks it


async def test_the_api_freezes_its_heap_once_its_resources_are_started() -> None:
    app = create_app(Settings(), FakeRepository(), FakeBlobStore(), FakePublisher())
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0


class _OneBatchLoop:
    """Stands in for the consume loop: notes what was frozen when consuming began."""

    ready = True

    def __init__(self) -> None:
        self.frozen_at_start: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        self.frozen_at_start = gc.get_freeze_count()


async def test_a_consumer_freezes_its_heap_before_it_consumes() -> None:
    loop = _OneBatchLoop()
    metrics = DataPlaneMetrics(CollectorRegistry())

    code = await dp.run_consumer(cast(ConsumeLoop[Any], loop), Settings(), metrics, {})

    assert code == 0
    assert loop.frozen_at_start is not None and loop.frozen_at_start > 0
