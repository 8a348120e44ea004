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

from ocr_runtime.application.documents import Document, PagePlan, open_document, page_pixels
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
# A page of a batch: the document's place in the batch and the page's index in it.
PageKey = tuple[int, int]
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
        pixels_per_call: int | None = None,
    ) -> None:
        """`pixels_per_call`: most pixels drawn and held for one engine call (a long
        document is recognised in several); None: the whole batch in one call."""
        self._pixels_per_call = pixels_per_call
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
        documents = await self._open_all(runnable, report)
        if not documents:
            return
        # The pages to recognise, of every document, in engine calls of a bounded pixel
        # count: drawn just before their call and dropped after it.
        pages: dict[PageKey, OcrPage | Exception] = {}
        opened = [document for _, document in documents]
        chunks = page_chunks([d.pages for d in opened], self._pixels_per_call)
        for number, chunk in enumerate(chunks, start=1):
            await self._recognize_chunk(opened, chunk, pages, report)
            if number < len(chunks):
                await self._record_progress(documents, pages)
        for number, (message, document) in enumerate(documents):
            done = [
                page if isinstance(page, OcrPage) else pages[(number, index)]
                for index, page in enumerate(document.pages)
            ]
            self._settle(message, document_result(done), report)

    async def _recognize_chunk(
        self,
        documents: Sequence[Document],
        chunk: Sequence[PageKey],
        pages: dict[PageKey, OcrPage | Exception],
        report: BatchReport,
    ) -> None:
        drawn = await self._off_loop(lambda: draw_chunk(documents, chunk))
        keys: list[PageKey] = []
        images: list[Image] = []
        for key, image in drawn.items():
            if isinstance(image, InvalidImage):
                pages[key] = image  # fails its document
            else:
                keys.append(key)
                images.append(image)
        if not images:
            return
        started = time.perf_counter()
        results = await self._recognize(images)
        report.inference_s += time.perf_counter() - started
        report.images += len(images)
        for (document, index), image, result in zip(keys, images, results, strict=True):
            pages[(document, index)] = (
                result if isinstance(result, Exception)
                else OcrPage(index + 1, int(image.shape[1]), int(image.shape[0]), result.lines)
            )  # fmt: skip

    async def _record_progress(
        self,
        documents: Sequence[tuple[JobMessage, Document]],
        pages: Mapping[PageKey, OcrPage | Exception],
    ) -> None:
        """Pages done so far of the documents not finished yet. Best effort: a lost update
        only delays what a poller sees, so it never fails or retries the batch."""
        progress: dict[str, tuple[int, int]] = {}
        for number, (message, document) in enumerate(documents):
            total = len(document.pages)
            done = sum(
                1
                for index, page in enumerate(document.pages)
                if isinstance(page, OcrPage) or (number, index) in pages
            )
            if 0 < done < total:
                progress[message.job_id] = (done, total)
        if not progress:
            return
        try:
            await self._repository.record_progress(progress)
        except Exception:
            logger.warning("could not record the progress of %d documents", len(progress),
                           exc_info=True)  # fmt: skip

    async def _open_all(
        self, runnable: list[tuple[JobMessage, bytes]], report: BatchReport
    ) -> list[tuple[JobMessage, Document]]:
        """Each job's document, checked and planned; a job whose document cannot be read
        fails."""
        opened = await self._off_loop(
            lambda: [self._open(data, message.text_layer) for message, data in runnable]
        )
        documents: list[tuple[JobMessage, Document]] = []
        for (message, _), document in zip(runnable, opened, strict=True):
            if isinstance(document, InvalidImage):
                logger.warning("undecodable document: %s", document.message,
                               extra=message.log_context)  # fmt: skip
                report.outcomes.append(
                    failed_outcome(message, JobErrorCode.INVALID_IMAGE, document.message)
                )
            else:
                documents.append((message, document))
        return documents

    def _settle(
        self, message: JobMessage, result: OcrResult | Exception, report: BatchReport
    ) -> None:
        if isinstance(result, OcrResult):
            report.outcomes.append(_succeeded(message, result))
        elif isinstance(result, InvalidImage):  # a page that could not be drawn
            logger.warning("undrawable page: %s", result.message, extra=message.log_context)
            report.outcomes.append(
                failed_outcome(message, JobErrorCode.INVALID_IMAGE, result.message)
            )
        elif message.attempt < self._max_attempts:
            logger.warning("inference failed, will retry: %s", result,
                           extra=message.log_context)  # fmt: skip
            report.retries.append(message.next_attempt())
        else:
            logger.error("inference failed on the last attempt: %s", result,
                         extra=message.log_context)  # fmt: skip
            text = f"{type(result).__name__}: {result}"
            report.outcomes.append(failed_outcome(message, JobErrorCode.ENGINE_ERROR, text))

    def _open(self, data: bytes, text_layer: TextLayer) -> Document | InvalidImage:
        try:
            return open_document(data, self._limits, text_layer=text_layer)
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


def page_chunks(documents: Sequence[Sequence[PagePlan]], budget: int | None) -> list[list[PageKey]]:
    """The pages to recognise (not those read from a text layer), in order, cut into engine
    calls of at most `budget` pixels; a page above it goes alone. None: one call."""
    chunks: list[list[PageKey]] = []
    current: list[PageKey] = []
    pixels = 0
    for number, pages in enumerate(documents):
        for index, page in enumerate(pages):
            if isinstance(page, OcrPage):
                continue
            cost = page_pixels(page)
            if current and budget is not None and pixels + cost > budget:
                chunks.append(current)
                current, pixels = [], 0
            current.append((number, index))
            pixels += cost
    if current:
        chunks.append(current)
    return chunks


def draw_chunk(
    documents: Sequence[Document], chunk: Sequence[PageKey]
) -> dict[PageKey, Image | InvalidImage]:
    """The pixels of a chunk's pages; a document that cannot draw its pages fails them."""
    by_document: dict[int, list[int]] = {}
    for number, index in chunk:
        by_document.setdefault(number, []).append(index)
    drawn: dict[PageKey, Image | InvalidImage] = {}
    for number, indices in by_document.items():
        try:
            images: Sequence[Image | InvalidImage] = documents[number].draw(indices)
        except InvalidImage as exc:
            images = [exc] * len(indices)
        drawn.update(((number, index), image) for index, image in zip(indices, images, strict=True))
    return drawn


def document_result(pages: Sequence[OcrPage | Exception]) -> OcrResult | Exception:
    """A job's result from its pages, in order: the first failed page fails the document."""
    for page in pages:
        if isinstance(page, Exception):
            return page
    return OcrResult.of_pages(page for page in pages if isinstance(page, OcrPage))


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
