"""Wakes a stack's reconcile loop when one of its children changes, so that a rollout or a
migration that finishes is seen at once instead of at the next poll, and a child deleted
behind the operator's back is applied again at the next pass (its memo entry forgotten).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ocr_operator import KIND
from ocr_operator.applied import AppliedMemo
from ocr_operator.ports import Body
from ocr_operator.render import Kind


class ChildWakeups:
    """The wakeup event of each running reconcile loop, by the uid of its OCRServing."""

    def __init__(self) -> None:
        self._loops: dict[str, asyncio.Event] = {}

    def register(self, uid: str, wakeup: asyncio.Event) -> None:
        self._loops[uid] = wakeup

    def unregister(self, uid: str) -> None:
        self._loops.pop(uid, None)

    def child_changed(
        self, event_type: str | None, body: Mapping[str, Any], memo: AppliedMemo
    ) -> bool:
        """Wake the loop of the OCRServing that controls `body`; True if there was one."""
        metadata = body.get("metadata") or {}
        for ref in metadata.get("ownerReferences") or []:
            if ref.get("kind") != KIND or not ref.get("controller"):
                continue
            uid = str(ref.get("uid"))
            if event_type == "DELETED":
                _forget_child(memo, uid, str(body.get("kind")), str(metadata.get("name")))
            wakeup = self._loops.get(uid)
            if wakeup is not None:
                wakeup.set()
                return True
        return False


def _forget_child(memo: AppliedMemo, uid: str, kind: str, name: str) -> None:
    try:
        memo.forget(uid, (Kind(kind), name))
    except ValueError:  # a kind the operator does not render: nothing remembered
        return


class MigrationJobs:
    """The migration Jobs of each stack (by the uid of its OCRServing) as the watch of Jobs
    last showed them, or as a read found them finished (a finished Job does not change
    until it is deleted): a pass reads its Job only when nothing is known of it. Without
    this, every pass of every stack read its Job, about a tenth of the operator's calls with
    200 stacks converging. Only what a pass looks at is kept (name and conditions), and a
    stack's entries are dropped at each resync pass and after a failed pass, so a Job
    deleted while the watch was down is read (and made) again."""

    def __init__(self) -> None:
        self._jobs: dict[str, dict[str, Body]] = {}

    def get(self, uid: str, name: str) -> Body | None:
        return self._jobs.get(uid, {}).get(name)

    def remember(self, uid: str, job: Mapping[str, Any]) -> None:
        metadata = job.get("metadata") or {}
        name = str(metadata.get("name"))
        conditions = (job.get("status") or {}).get("conditions") or []
        self._jobs.setdefault(uid, {})[name] = {
            "metadata": {"name": name},
            "status": {"conditions": list(conditions)},
        }

    def job_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of a Job that an OCRServing controls."""
        metadata = body.get("metadata") or {}
        for ref in metadata.get("ownerReferences") or []:
            if ref.get("kind") != KIND or not ref.get("controller"):
                continue
            uid = str(ref.get("uid"))
            if event_type != "DELETED":
                self.remember(uid, body)
            else:
                self._jobs.get(uid, {}).pop(str(metadata.get("name")), None)

    def forget(self, uid: str) -> None:
        self._jobs.pop(uid, None)
