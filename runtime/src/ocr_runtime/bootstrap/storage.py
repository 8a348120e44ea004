"""Storage adapters chosen by the settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from ocr_runtime.adapters.blob_fs import FilesystemBlobStore
from ocr_runtime.adapters.sql import DatabaseBlobStore
from ocr_runtime.application.ports import BlobStore
from ocr_runtime.core.settings import BlobBackend, Settings


def build_blob_store(settings: Settings, database: AsyncEngine) -> BlobStore:
    if settings.blob_backend is BlobBackend.FILESYSTEM:
        return FilesystemBlobStore(settings.blob_dir)
    return DatabaseBlobStore(database)
