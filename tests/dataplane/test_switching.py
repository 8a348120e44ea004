"""Switching a running system between modes (stop the workers of one mode, start those of
the other) under continuous load loses nothing. The sequence covers every ordered pair."""

from __future__ import annotations

import pytest

from tests.dataplane.conftest import Stack
from tests.dataplane.support import (
    Load,
    assert_exactly_one_result_each,
    metric_value,
    wait_until,
)

pytestmark = pytest.mark.integration

# standard->batched->writer->standard->writer->batched->standard: all six ordered pairs.
SEQUENCE = ["standard", "batched", "writer", "standard", "writer", "batched", "standard"]


def test_switching_between_every_pair_of_modes_loses_nothing(stack: Stack) -> None:
    api = stack.launch("api", "standard")
    # The writer stays up throughout: results published in writer mode must still be
    # written after the switch away (the operator keeps writers until their lag is zero).
    writer = stack.launch("writer", "writer")
    api.wait_ready()
    writer.wait_ready()
    load = Load(api.url, 5000, concurrency=2, pause_s=0.05).start()
    for mode in SEQUENCE:
        worker = stack.start("worker", mode)
        before = stack.db.count_done(list(load.ids))
        wait_until(lambda b=before: stack.db.count_done(list(load.ids)) >= b + 20, 60,
                   f"progress in {mode} mode")  # fmt: skip
        consumed = metric_value(worker.metrics(), "ocr_jobs_consumed_total")
        assert consumed > 0, f"the {mode} worker consumed nothing"
        assert worker.terminate() == 0, f"{mode} worker did not drain cleanly: {worker.tail()}"
    ids = load.stop()
    stack.start("worker", "batched")  # whatever was queued after the last switch
    assert len(ids) > 100
    stack.db.wait_all_done(ids)
    assert_exactly_one_result_each(stack.db, ids)
