"""When the advisor starts judging a stack: one interval after its start, once it has been
Ready (kopf's live copy, or the event that shows it)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf

from ocr_operator.advisor.handlers import _until_first_evaluation
from ocr_operator.conditions import has_been_ready
from ocr_operator.handlers import served_of
from tests.operator._fakes import spec


def _body(status: dict[str, Any] | None) -> dict[str, Any]:
    return {"metadata": {"name": "s"}, "spec": {}, "status": status}


def test_a_stack_still_being_created_is_not_judged_yet() -> None:
    assert not has_been_ready(_body(None))
    assert not has_been_ready(_body({"conditions": [{"type": "Ready", "status": "False"}]}))
    assert not has_been_ready(_body({"conditions": [{"type": "Progressing", "status": "True"}]}))


def test_a_ready_stack_or_one_the_advisor_reported_on_is_judged() -> None:
    ready = {"conditions": [{"type": "Progressing", "status": "False"},
                            {"type": "Ready", "status": "True"}]}  # fmt: skip
    assert has_been_ready(_body(ready))
    # Not Ready now (a transition the advisor started), but judged before: keep judging.
    moving = {"conditions": [{"type": "Ready", "status": "False"}], "advisor": {"samples": 4}}
    assert has_been_ready(_body(moving))


_SPEC = spec("Standard", advisor={"intervalSeconds": 7})


class _Stop:
    """kopf's `stopped` flag, never set; notes every timed wait."""

    def __init__(self) -> None:
        self.waits: list[float | None] = []

    def __bool__(self) -> bool:
        return False

    def is_set(self) -> bool:
        return False

    async def wait(self, timeout: float | None = None) -> object:
        self.waits.append(timeout)
        if timeout is None:
            await asyncio.Event().wait()  # until cancelled
        return self


async def test_the_first_evaluation_waits_for_the_stacks_events_without_polling() -> None:
    memo, stop = kopf.Memo(), _Stop()
    body = {"metadata": {"name": "s"}, "spec": _SPEC}
    waiting = asyncio.create_task(
        _until_first_evaluation(cast(kopf.Body, body), memo, cast(kopf.DaemonStopped, stop))
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done()

    served_of(memo).set()  # what the resource's event handler does once it shows Ready
    await asyncio.wait_for(waiting, timeout=5)

    assert stop.waits == [7.0, None]  # one interval, then the event: no poll


async def test_a_stack_that_has_served_is_judged_after_one_interval() -> None:
    stop = _Stop()
    body = {"spec": _SPEC, "status": {"advisor": {"samples": 1}}}
    await asyncio.wait_for(
        _until_first_evaluation(cast(kopf.Body, body), kopf.Memo(), cast(kopf.DaemonStopped, stop)),
        timeout=5,
    )
    assert stop.waits == [7.0]
