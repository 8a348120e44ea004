"""SQL storage (SQLAlchemy 2 async): SQLite through aiosqlite, MySQL/MariaDB through aiomysql."""

from ocr_runtime.adapters.sql.blobs import DatabaseBlobStore
from ocr_runtime.adapters.sql.engine import create_database_engine
from ocr_runtime.adapters.sql.intake import GroupCommitIntake
from ocr_runtime.adapters.sql.repository import SqlJobRepository
from ocr_runtime.adapters.sql.tables import blob_chunks, jobs, metadata

__all__ = [
    "DatabaseBlobStore",
    "GroupCommitIntake",
    "SqlJobRepository",
    "blob_chunks",
    "create_database_engine",
    "jobs",
    "metadata",
]
