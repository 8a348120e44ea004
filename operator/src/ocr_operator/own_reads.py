"""When kopf's live copy of an OCRServing may stand in for a read of it.

kopf keeps each resource's body current from its watch, and hands it to the reconcile loop
and the advisor. Reading the resource from the apiserver at the start of every pass and of
every advisor evaluation was one request in seven of the operator's with 200 stacks
converging. The live copy lags the apiserver only by the watch's delay; what a pass must
see is the operator's own last status write (conditions, the active mode, the pinned model
version), which it builds on. So the copy stands in once it shows the resourceVersion that
the last write returned, or that a read made since returned; until then the object is read.
kopf may skip an event that a later one replaces, so a copy that moved past the awaited
version is read once more too, and that read says what to wait for next.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class OwnVersions:
    """Per OCRServing uid, the resourceVersion of the newest state this process wrote or
    read that kopf's live copy has not shown yet."""

    def __init__(self) -> None:
        self._awaited: dict[str, str] = {}

    def returned(self, body: Mapping[str, Any]) -> None:
        """Record the object as a status write or a read returned it."""
        uid, version = _identity(body)
        if uid and version:
            self._awaited[uid] = version

    def shows(self, live: Mapping[str, Any]) -> bool:
        """True when `live` shows everything this process wrote to or read of its resource;
        then nothing is awaited for it any more."""
        uid, version = _identity(live)
        awaited = self._awaited.get(uid)
        if awaited is None:
            return True
        if awaited != version:
            return False
        del self._awaited[uid]
        return True

    def forget(self, uid: str) -> None:
        """The resource is gone, or no longer this process's to reconcile."""
        self._awaited.pop(uid, None)


def _identity(body: Mapping[str, Any]) -> tuple[str, str]:
    metadata = body.get("metadata") or {}
    return str(metadata.get("uid") or ""), str(metadata.get("resourceVersion") or "")
