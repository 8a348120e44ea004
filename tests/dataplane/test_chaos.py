"""Chaos per mode: kill -9 the worker (and the writer) in the middle of the work and restart
it; restart the Kafka broker under load. Afterwards every accepted job has exactly one
result, none is lost and none stays queued or running."""

from __future__ import annotations

import asyncio

import pytest

from tests.dataplane.conftest import Stack
from tests.dataplane.support import (
    Load,
    RuntimeProcess,
    assert_exactly_one_result_each,
    read_topic,
    restart_broker,
    wait_until,
)

pytestmark = pytest.mark.integration

JOBS = 300
MODES = ["standard", "batched", "writer"]


def start_plane(stack: Stack, mode: str) -> dict[str, RuntimeProcess]:
    roles = ["api", "worker"] + (["writer"] if mode == "writer" else [])
    started = {role: stack.start(role, mode, wait=False) for role in roles}
    for process in started.values():
        process.wait_ready()
    return started


def progress(stack: Stack, load: Load) -> int:
    return stack.db.count_done(list(load.ids))


def assert_clean_finish(stack: Stack, ids: list[str]) -> None:
    stack.db.wait_all_done(ids)
    assert_exactly_one_result_each(stack.db, ids)
    dead = asyncio.run(read_topic(stack.bootstrap, stack.topics.dead_letters, timeout_s=1.0))
    assert dead == [], "a healthy job was dead-lettered"


@pytest.mark.parametrize("mode", MODES)
def test_worker_killed_mid_batch_and_restarted(stack: Stack, mode: str) -> None:
    plane = start_plane(stack, mode)
    load = Load(plane["api"].url, JOBS).start()
    if mode == "writer":
        wait_until(lambda: progress(stack, load) >= 30, 60, "first results")
    else:
        # A job marked running is a batch in flight: kill the worker right then.
        wait_until(lambda: stack.db.statuses(list(load.ids))["running"] > 0 and
                   progress(stack, load) >= 30, 60, "a batch in flight")  # fmt: skip
    plane["worker"].kill9()
    stranded = stack.db.statuses()
    ids = load.join()
    stack.start("worker", mode)
    assert_clean_finish(stack, ids)
    if mode != "writer":
        assert stranded["running"] + stranded["queued"] > 0  # the kill left work behind


def test_writer_killed_mid_batch_and_restarted(stack: Stack) -> None:
    plane = start_plane(stack, "writer")
    load = Load(plane["api"].url, JOBS).start()
    wait_until(lambda: progress(stack, load) >= 30, 60, "first results written")
    plane["writer"].kill9()
    ids = load.join()
    assert stack.db.count_done(ids) < len(ids)  # results are waiting for a writer
    stack.start("writer", "writer")
    assert_clean_finish(stack, ids)


@pytest.mark.parametrize("mode", MODES)
def test_broker_restart_under_load(stack: Stack, mode: str) -> None:
    plane = start_plane(stack, mode)
    load = Load(plane["api"].url, JOBS).start()
    wait_until(lambda: progress(stack, load) >= 30, 60, "first results")
    restart_broker()
    ids = load.join()
    assert_clean_finish(stack, ids)
    for process in plane.values():
        assert process.popen is not None
        assert process.popen.poll() is None, f"{process.name} died: {process.tail()}"
