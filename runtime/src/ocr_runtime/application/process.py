"""Use case: process a batch of jobs on an engine, in steps that a caller can retry one by
one (claim, fetch the images, infer), so that a storage error never re-runs inference nor
spends an attempt. Failures stay with their own job: a bad image fails alone, an engine error
is retried until the job's attempts run out, and a job that was already running when it was
delivered (its previous attempt died with its process) runs alone, never in a batch."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from ocr_runtime.application.documents import read_document
from ocr_runtime.application.images import ImageLimits
from ocr_runtime.application.messages import JobMessage, JobOutcome
from ocr_runtime.application.ports import BlobStore, Image, JobRepository, OcrEngine
from ocr_runtime.domain import (
    InvalidImage,
    JobError,
    JobErrorCode,
    JobStatus,
    OcrPage,
    OcrResult,
    TextLayer,
)

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
# A document page: pixels to recognise, or a page already read from the PDF's text layer.
PageInput = Image | OcrPage
# Exponents of the backoff stop growing here (2**16 times the first delay is hours).
MAX_BACKOFF_EXPONENT = 16


@dataclass(slots=True)
class Claim:
    """What `claim` found: jobs to run now, in one batch, with their attempt number; jobs
    found running (suspects: run each alone with `claim_one`); jobs given up without running;
    jobs with nothing to do (finished already, or unknown)."""

    runnable: list[tuple[JobMessage, int]] = field(default_factory=list)
    suspects: list[JobMessage] = field(default_factory=list)
    outcomes: list[JobOutcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BatchReport:
    """What happened to each message of a batch."""

    outcomes: list[JobOutcome] = field(default_factory=list)
    # Messages to deliver again after `retry_delay_s`; `attempt` is the attempt to come.
    retries: list[JobMessage] = field(default_factory=list)
    # Job ids with nothing to do: already finished, or unknown to the database.
    skipped: list[str] = field(default_factory=list)
    inference_s: float = 0.0
    images: int = 0


def retry_delay_s(attempt: int, backoff_ms: int) -> float:
    """Delay before delivering attempt `attempt` (2, 3, ...): the backoff doubles each time."""
    exponent = min(max(attempt - 2, 0), MAX_BACKOFF_EXPONENT)
    return float(backoff_ms) / 1000.0 * float(2**exponent)


def _unique(messages: Sequence[JobMessage]) -> list[JobMessage]:
    seen: dict[str, JobMessage] = {}
    for message in messages:
        seen.setdefault(message.job_id, message)
    return list(seen.values())


class BatchProcessor:
    """Runs batches through the engine on one dedicated thread (engines are not thread-safe
    and must never run on the event loop). Attempts live in the database in every mode, so a
    job that kills its process is counted whoever picks it up next."""

    def __init__(
        self,
        engine: OcrEngine,
        blobs: BlobStore,
        limits: ImageLimits,
        *,
        max_attempts: int,
        repository: JobRepository,
        executor: Executor | None = None,
    ) -> None:
        self._engine = engine
        self._blobs = blobs
        self._limits = limits
        self._max_attempts = max_attempts
        self._repository = repository
        self._executor = executor

    async def claim(self, messages: Sequence[JobMessage]) -> Claim:
        """Start an attempt on the queued jobs; set the running ones apart as suspects."""
        unique = _unique(messages)
        jobs = await self._repository.claim([m.job_id for m in unique])
        claim = Claim()
        for message in unique:
            job = jobs.get(message.job_id)
            if job is None or job.status.is_terminal:
                claim.skipped.append(message.job_id)
            elif job.status is JobStatus.RUNNING:
                claim.suspects.append(message)
            else:
                self._admit(message, job.attempts + 1, claim)
        return claim

    async def claim_one(self, message: JobMessage) -> Claim:
        """Start an attempt on one job, running or not (a suspect, about to run alone)."""
        jobs = await self._repository.mark_running([message.job_id])
        claim = Claim()
        job = jobs.get(message.job_id)
        if job is None or job.status.is_terminal:
            claim.skipped.append(message.job_id)
        else:
            self._admit(message, job.attempts, claim)
        return claim

    def _admit(self, message: JobMessage, attempt: int, claim: Claim) -> None:
        if attempt > self._max_attempts:
            text = f"gave up after {attempt - 1} attempts"
            claim.outcomes.append(failed_outcome(message, JobErrorCode.ATTEMPTS_EXHAUSTED, text))
        else:
            claim.runnable.append((replace(message, attempt=attempt), attempt))

    async def fetch(self, runnable: Sequence[tuple[JobMessage, int]]) -> dict[str, bytes]:
        """The images of the runnable jobs (a missing one is absent)."""
        if not runnable:
            return {}
        return await self._blobs.get_many([m.blob_id for m, _ in runnable])

    async def requeue(self, messages: Sequence[JobMessage]) -> None:
        await self._repository.requeue([m.job_id for m in messages])

    async def infer(
        self, runnable: Sequence[tuple[JobMessage, int]], blobs: Mapping[str, bytes]
    ) -> BatchReport:
        """Decode and recognise; touches no storage, so it is never worth repeating."""
        report = BatchReport()
        present: list[tuple[JobMessage, bytes]] = []
        for message, _ in runnable:
            data = blobs.get(message.blob_id)
            if data is None:
                text = "the image of this job is gone"
                report.outcomes.append(failed_outcome(message, JobErrorCode.INVALID_IMAGE, text))
            else:
                present.append((message, data))
        await self._run_engine(present, report)
        return report

    async def _run_engine(
        self, runnable: list[tuple[JobMessage, bytes]], report: BatchReport
    ) -> None:
        if not runnable:
            return
        documents = await self._decode_all(runnable, report)
        if not documents:
            return
        # Every page to recognise, of every document, in one engine batch; each job gets its
        # pages back.
        images = [page for _, pages in documents for page in pages if not isinstance(page, OcrPage)]
        started = time.perf_counter()
        results = await self._recognize(images) if images else []
        report.inference_s = time.perf_counter() - started
        report.images = len(images)
        offset = 0
        for message, pages in documents:
            count = sum(1 for page in pages if not isinstance(page, OcrPage))
            page_results = results[offset : offset + count]
            offset += count
            self._settle(message, document_result(pages, page_results), report)

    async def _decode_all(
        self, runnable: list[tuple[JobMessage, bytes]], report: BatchReport
    ) -> list[tuple[JobMessage, list[PageInput]]]:
        """The pages of each job's document; a job whose document cannot be read fails."""
        decoded = await self._off_loop(
            lambda: [self._decode(data, message.text_layer) for message, data in runnable]
        )
        documents: list[tuple[JobMessage, list[PageInput]]] = []
        for (message, _), pages in zip(runnable, decoded, strict=True):
            if isinstance(pages, InvalidImage):
                logger.warning("undecodable document: %s", pages.message,
                               extra=message.log_context)  # fmt: skip
                report.outcomes.append(
                    failed_outcome(message, JobErrorCode.INVALID_IMAGE, pages.message)
                )
            else:
                documents.append((message, pages))
        return documents

    def _settle(
        self, message: JobMessage, result: OcrResult | Exception, report: BatchReport
    ) -> None:
        if isinstance(result, OcrResult):
            report.outcomes.append(_succeeded(message, result))
        elif message.attempt < self._max_attempts:
            logger.warning("inference failed, will retry: %s", result,
                           extra=message.log_context)  # fmt: skip
            report.retries.append(message.next_attempt())
        else:
            logger.error("inference failed on the last attempt: %s", result,
                         extra=message.log_context)  # fmt: skip
            text = f"{type(result).__name__}: {result}"
            report.outcomes.append(failed_outcome(message, JobErrorCode.ENGINE_ERROR, text))

    def _decode(self, data: bytes, text_layer: TextLayer) -> list[PageInput] | InvalidImage:
        try:
            return read_document(data, self._limits, text_layer=text_layer)
        except InvalidImage as exc:
            return exc

    async def _recognize(self, images: list[Image]) -> list[OcrResult | Exception]:
        """The whole batch at once; if that fails, each image alone, so one bad image does
        not fail its neighbours."""
        try:
            results = await self._off_loop(lambda: self._engine.recognize_batch(images))
            if len(results) != len(images):
                raise RuntimeError(f"engine returned {len(results)} results for {len(images)}")
            return list(results)
        except Exception as exc:
            if len(images) == 1:
                return [exc]
            logger.warning("batch inference failed (%s); retrying image by image", exc)
        return [await self._recognize_one(image) for image in images]

    async def _recognize_one(self, image: Image) -> OcrResult | Exception:
        try:
            results = await self._off_loop(lambda: self._engine.recognize_batch([image]))
            if len(results) != 1:
                raise RuntimeError(f"engine returned {len(results)} results for 1 image")
            return results[0]
        except Exception as exc:
            return exc

    async def _off_loop(self, work: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)


def document_result(
    pages: Sequence[PageInput], results: Sequence[OcrResult | Exception]
) -> OcrResult | Exception:
    """A job's result from its pages: those read from a text layer as they are, the others
    from the engine's `results` (one per such page, in order). The first failed page fails
    the document."""
    recognised: list[OcrResult] = []
    for result in results:
        if isinstance(result, Exception):
            return result
        recognised.append(result)
    engine_results = iter(recognised)
    built = []
    for number, page in enumerate(pages, start=1):
        if isinstance(page, OcrPage):
            built.append(replace(page, page=number))
        else:
            lines = next(engine_results).lines
            built.append(OcrPage(number, int(page.shape[1]), int(page.shape[0]), lines))
    return OcrResult.of_pages(built)


def _succeeded(message: JobMessage, result: OcrResult) -> JobOutcome:
    return JobOutcome(
        job_id=message.job_id,
        finished_at=datetime.now(UTC),
        result=result,
        submitted_at=message.submitted_at,
        blob_id=message.blob_id,
        request_id=message.request_id,
    )


def failed_outcome(message: JobMessage, code: JobErrorCode, text: str) -> JobOutcome:
    return JobOutcome(
        job_id=message.job_id,
        finished_at=datetime.now(UTC),
        error=JobError(code, text),
        submitted_at=message.submitted_at,
        blob_id=message.blob_id,
        request_id=message.request_id,
    )
