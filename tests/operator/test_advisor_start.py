"""When the advisor starts judging a stack: once it has been Ready (kopf's live copy)."""

from __future__ import annotations

from typing import Any

from ocr_operator.advisor.handlers import has_been_ready


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
