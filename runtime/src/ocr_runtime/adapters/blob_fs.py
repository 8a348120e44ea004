"""`BlobStore` on a filesystem (a local disk or a shared volume). Blocking file calls run in
threads; writes are atomic (temporary file, then rename)."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Sequence
from pathlib import Path

from ocr_runtime.adapters.failures import boundary

_BLOB_ID = re.compile(r"[0-9a-f]{32}")


@boundary
class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, blob_id: str) -> Path | None:
        # Ids come back from queues and databases: never let one name a path outside root.
        if not _BLOB_ID.fullmatch(blob_id):
            return None
        return self._root / blob_id[:2] / blob_id

    async def put(self, data: bytes) -> str:
        blob_id = uuid.uuid4().hex
        path = self._path(blob_id)
        assert path is not None
        await asyncio.to_thread(_write_atomically, path, data)
        return blob_id

    async def get_many(self, blob_ids: Sequence[str]) -> dict[str, bytes]:
        return await asyncio.to_thread(self._read_many, list(dict.fromkeys(blob_ids)))

    async def delete_many(self, blob_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self._delete_many, list(blob_ids))

    def _read_many(self, blob_ids: list[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for blob_id in blob_ids:
            path = self._path(blob_id)
            if path is None:
                continue
            try:
                found[blob_id] = path.read_bytes()
            except FileNotFoundError:
                continue
        return found

    def _delete_many(self, blob_ids: list[str]) -> None:
        for blob_id in blob_ids:
            path = self._path(blob_id)
            if path is not None:
                path.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
