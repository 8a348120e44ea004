"""`BlobStore` in the database (the default): images in `blob_chunks`, several rows per
image when it exceeds one chunk."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from ocr_runtime.adapters.failures import boundary
from ocr_runtime.adapters.sql.repository import _chunks, ids_in
from ocr_runtime.adapters.sql.tables import blob_chunks

# Below MariaDB's default max_allowed_packet (16 MiB) even when escaped as text.
CHUNK_BYTES = 4 * 1024 * 1024
# Built once, like the repository's per-batch statements: a batch binds its ids only.
_SELECT = blob_chunks.select().where(ids_in(blob_chunks.c.blob_id))
_DELETE = blob_chunks.delete().where(ids_in(blob_chunks.c.blob_id))


@boundary
class DatabaseBlobStore:
    def __init__(self, engine: AsyncEngine, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._engine = engine
        self._chunk_bytes = chunk_bytes

    async def put(self, data: bytes) -> str:
        blob_id = uuid.uuid4().hex
        size = self._chunk_bytes
        async with self._engine.begin() as conn:
            # One statement per chunk: a multi-row INSERT could exceed the packet limit.
            for seq, start in enumerate(range(0, max(len(data), 1), size)):
                await conn.execute(
                    blob_chunks.insert().values(
                        blob_id=blob_id, seq=seq, data=data[start : start + size]
                    )
                )
        return blob_id

    async def get_many(self, blob_ids: Sequence[str]) -> dict[str, bytes]:
        parts: defaultdict[str, list[tuple[int, bytes]]] = defaultdict(list)
        async with self._engine.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(blob_ids))):
                rows = await conn.execute(_SELECT, {"ids": list(chunk)})
                for row in rows:
                    parts[row.blob_id].append((row.seq, bytes(row.data)))
        return {
            blob_id: b"".join(data for _, data in sorted(pieces))
            for blob_id, pieces in parts.items()
        }

    async def delete_many(self, blob_ids: Sequence[str]) -> None:
        async with self._engine.begin() as conn:
            for chunk in _chunks(list(dict.fromkeys(blob_ids))):
                await conn.execute(_DELETE, {"ids": list(chunk)})
