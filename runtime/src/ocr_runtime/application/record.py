"""Use case: record finished attempts. Idempotent on job_id: the first terminal outcome of a
job wins, duplicates (redelivered messages) change nothing."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ocr_runtime.application.messages import JobOutcome
from ocr_runtime.application.ports import BlobStore, JobRepository
from ocr_runtime.application.queries import JobCompletions
from ocr_runtime.core.settings import BlobRetention

logger = logging.getLogger(__name__)


class RecordOutcomes:
    def __init__(
        self,
        repository: JobRepository,
        blobs: BlobStore,
        retention: BlobRetention = BlobRetention.DELETE_ON_FINISH,
    ) -> None:
        self._repository = repository
        self._blobs = blobs
        self._retention = retention

    async def __call__(self, outcomes: Sequence[JobOutcome]) -> int:
        """Persist the outcomes in one transaction; return how many jobs changed."""
        if not outcomes:
            return 0
        changed = await self._repository.record_outcomes(outcomes)
        if self._retention is BlobRetention.DELETE_ON_FINISH:
            # The outcomes are durable first: a crash here leaves an orphan image, never a
            # job without its image.
            blob_ids = sorted({o.blob_id for o in outcomes if o.blob_id is not None})
            if blob_ids:
                try:
                    await self._blobs.delete_many(blob_ids)
                except Exception:
                    # The outcomes are recorded: failing here would make the caller retry
                    # or refuse outcomes that are already durable. An orphan image is all
                    # that is left.
                    logger.warning("deleting %d finished images failed", len(blob_ids),
                                   exc_info=True)  # fmt: skip
        return changed


class RecordingOutcomeSink:
    """The `OutcomeSink` of the standard and batched modes: straight into the database, then
    (all-in-one) a signal to requests waiting in this process."""

    def __init__(self, record: RecordOutcomes, completions: JobCompletions | None = None) -> None:
        self._record = record
        self._completions = completions

    async def deliver(self, outcomes: Sequence[JobOutcome]) -> None:
        await self._record(outcomes)
        if self._completions is not None:
            self._completions.notify(o.job_id for o in outcomes)
