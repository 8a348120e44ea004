"""What the operator applied last, per OCRServing: a pass applies a child only when its
rendered manifest differs from the one applied last, and prunes only when the set of wanted
children changed.

Every server-side apply costs the apiserver a read, an admission and a comparison even
when nothing changes, and the ownership check in front of it a GET more; with one pass
every few seconds per stack while it converges, the unchanged re-applies were most of the
apiserver's work. Drift (someone edited or deleted a child) is still corrected: the reconcile
loop forgets a stack's entries before each resync pass, and an entry older than `max_age`
counts as unknown for a stack that never gets to one.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ocr_operator.render import Kind, Manifest

ChildKey = tuple[Kind, str]


def manifest_digest(manifest: Manifest) -> str:
    """A stable digest of what an apply of `manifest` sends (the owner reference aside:
    the memo is per owner already)."""
    payload = json.dumps([manifest.owned, manifest.body], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def desired_digest(desired: Iterable[ChildKey]) -> str:
    payload = json.dumps(sorted([kind.value, name] for kind, name in desired))
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class _Entry:
    digest: str
    at: float


@dataclass
class AppliedMemo:
    """Digests of the manifests applied (and of the wanted set pruned against) per owner
    uid, each with when it was recorded; `clock` is monotonic seconds."""

    max_age: float
    clock: Callable[[], float] = time.monotonic
    _owners: dict[str, dict[ChildKey | str, _Entry]] = field(default_factory=dict)

    def unchanged(self, uid: str, manifest: Manifest) -> bool:
        """True when `manifest` was applied as it is now, less than `max_age` ago."""
        return self._fresh(uid, manifest.key, manifest_digest(manifest))

    def applied(self, uid: str, manifest: Manifest) -> None:
        self._record(uid, manifest.key, manifest_digest(manifest))

    def pruned_for(self, uid: str, desired: Iterable[ChildKey]) -> bool:
        """True when a prune against this same wanted set succeeded less than `max_age`
        ago: only the operator creates children with its owner reference, so none that
        would need deleting can have appeared since."""
        return self._fresh(uid, _PRUNE, desired_digest(desired))

    def pruned(self, uid: str, desired: Iterable[ChildKey]) -> None:
        self._record(uid, _PRUNE, desired_digest(desired))

    def created(self, uid: str, key: ChildKey) -> None:
        """Record a child made once and never applied again (a migration Job), so that a
        prune that does not list (`take_born`) still knows it exists."""
        self._record(uid, key, "")

    def born(self, uid: str) -> None:
        """Record that this process found the stack before anything of it existed: no
        reported status, no Deployments, no pods."""
        self._record(uid, _BORN, "")

    def take_born(self, uid: str) -> bool:
        """True once for a stack `born` in this process (the entry is removed): what
        carries its owner reference is what this process applied since (`applied_keys`),
        so its first prune need not list. An entry forgotten before (a failed pass, a
        resync) leaves that prune to list, which also deletes what an earlier operator
        process that stopped mid-way may have left."""
        entries = self._owners.get(uid, {})
        fresh = self._fresh(uid, _BORN, "")
        entries.pop(_BORN, None)
        return fresh

    def applied_keys(self, uid: str) -> set[ChildKey]:
        """The children applied for `uid` that the memo still holds."""
        return {key for key in self._owners.get(uid, {}) if isinstance(key, tuple)}

    def forget(self, uid: str, key: ChildKey | None = None) -> None:
        """Forget one child (its apply failed, or it was deleted) or, with no key, the whole
        owner (a failed pass, or the OCRServing is gone)."""
        if key is None:
            self._owners.pop(uid, None)
            return
        entries = self._owners.get(uid)
        if entries is not None:
            entries.pop(key, None)
            entries.pop(_PRUNE, None)  # a child deleted behind our back: list again too

    def _fresh(self, uid: str, key: ChildKey | str, digest: str) -> bool:
        entry = self._owners.get(uid, {}).get(key)
        if entry is None or entry.digest != digest:
            return False
        return self.clock() - entry.at < self.max_age

    def _record(self, uid: str, key: ChildKey | str, digest: str) -> None:
        self._owners.setdefault(uid, {})[key] = _Entry(digest, self.clock())


_PRUNE = "prune"
_BORN = "born"
