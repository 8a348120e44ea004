from dataclasses import dataclass

import pytest

from ocr_runtime.application import (
    BatchProcessor,
    BatchReport,
    ImageLimits,
    JobMessage,
    RecordingOutcomeSink,
    RecordOutcomes,
    retry_delay_s,
)
from ocr_runtime.application.process import Claim
from ocr_runtime.domain import Job, JobErrorCode, JobStatus
from tests.runtime.unit.runtime_fakes import (
    FakeBlobStore,
    FakeEngine,
    FakeRepository,
    ListSink,
    png_bytes,
)
from tests.support.pdfs import encrypted_pdf, tiff_pages

LIMITS = ImageLimits(max_bytes=5_000_000, max_pixels=5_000_000)


async def enqueue(repo: FakeRepository, blobs: FakeBlobStore, data: bytes) -> JobMessage:
    blob_id = await blobs.put(data)
    job = await repo.add(Job.submit(blob_id, width=1, height=1))
    return JobMessage(job.job_id, blob_id, 1, 1, submitted_at=1.0)


@dataclass
class Run:
    """The processor's steps composed as the inference handler runs them, without its
    retries, bound to a sink."""

    inner: BatchProcessor
    sink: ListSink

    async def process(self, messages: list[JobMessage]) -> BatchReport:
        """Every step once, without retries: suspects alone, then the batch; outcomes to the
        sink, engine failures requeued."""
        claim = await self.inner.claim(messages)
        report = BatchReport(outcomes=list(claim.outcomes), skipped=list(claim.skipped))
        groups = [await self.inner.claim_one(m) for m in claim.suspects]
        for group in [*groups, Claim(runnable=claim.runnable)]:
            report.outcomes.extend(group.outcomes)
            report.skipped.extend(group.skipped)
            part = await self.inner.infer(group.runnable, await self.inner.fetch(group.runnable))
            report.outcomes.extend(part.outcomes)
            report.retries.extend(part.retries)
            report.images += part.images
        if report.outcomes:
            await self.sink.deliver(report.outcomes)
        if report.retries:
            await self.inner.requeue(report.retries)
        return report


def processor(
    engine: FakeEngine,
    blobs: FakeBlobStore,
    sink: ListSink,
    repo: FakeRepository,
    max_attempts: int = 3,
) -> Run:
    return Run(
        BatchProcessor(engine, blobs, LIMITS, max_attempts=max_attempts, repository=repo), sink
    )


async def test_a_batch_runs_in_one_engine_call() -> None:
    repo, blobs, sink, engine = FakeRepository(), FakeBlobStore(), ListSink(), FakeEngine()
    messages = [await enqueue(repo, blobs, png_bytes(w, 10)) for w in (11, 12, 13)]
    report = await processor(engine, blobs, sink, repo).process(messages)
    assert engine.calls == [3]
    assert [o.result.text for o in sink.delivered if o.result] == ["11", "12", "13"]
    assert report.images == 3 and not report.retries
    assert all(repo.jobs[m.job_id].status is JobStatus.RUNNING for m in messages)


async def test_one_bad_image_fails_only_its_own_job() -> None:
    repo, blobs, sink, engine = FakeRepository(), FakeBlobStore(), ListSink(), FakeEngine()
    good = await enqueue(repo, blobs, png_bytes(21, 10))
    corrupt = await enqueue(repo, blobs, b"garbage")
    report = await processor(engine, blobs, sink, repo).process([good, corrupt])
    by_job = {o.job_id: o for o in report.outcomes}
    assert by_job[good.job_id].result is not None
    error = by_job[corrupt.job_id].error
    assert error is not None and error.code is JobErrorCode.INVALID_IMAGE


async def test_engine_crash_on_one_image_falls_back_to_single_calls() -> None:
    repo, blobs, sink = FakeRepository(), FakeBlobStore(), ListSink()
    engine = FakeEngine(poison={66})
    good = await enqueue(repo, blobs, png_bytes(31, 10))
    poison = await enqueue(repo, blobs, png_bytes(66, 10))
    report = await processor(engine, blobs, sink, repo).process([good, poison])
    assert engine.calls == [2, 1, 1]
    assert [o.job_id for o in report.outcomes] == [good.job_id]
    assert [m.job_id for m in report.retries] == [poison.job_id]
    assert report.retries[0].attempt == 2
    assert repo.jobs[poison.job_id].status is JobStatus.QUEUED


async def test_engine_error_fails_the_job_on_its_last_attempt() -> None:
    repo, blobs, sink = FakeRepository(), FakeBlobStore(), ListSink()
    message = await enqueue(repo, blobs, png_bytes(66, 10))
    run = processor(FakeEngine(poison={66}), blobs, sink, repo, max_attempts=2)
    first = await run.process([message])
    second = await run.process(first.retries)
    assert not second.retries
    [outcome] = second.outcomes
    assert outcome.error is not None and outcome.error.code is JobErrorCode.ENGINE_ERROR
    assert repo.jobs[message.job_id].attempts == 2


async def test_a_job_started_too_often_is_given_up_without_running() -> None:
    repo, blobs, sink, engine = FakeRepository(), FakeBlobStore(), ListSink(), FakeEngine()
    message = await enqueue(repo, blobs, png_bytes(12, 10))
    repo.jobs[message.job_id] = repo.jobs[message.job_id].start().start()  # crashed twice
    report = await processor(engine, blobs, sink, repo, max_attempts=2).process([message])
    assert engine.calls == []
    assert report.outcomes[0].error is not None
    assert report.outcomes[0].error.code is JobErrorCode.ATTEMPTS_EXHAUSTED


async def test_finished_and_unknown_jobs_are_skipped_and_duplicates_merged() -> None:
    repo, blobs, engine = FakeRepository(), FakeBlobStore(), FakeEngine()
    sink = ListSink()
    message = await enqueue(repo, blobs, png_bytes(12, 10))
    run = processor(engine, blobs, sink, repo)
    await RecordingOutcomeSink(RecordOutcomes(repo, blobs)).deliver(
        (await run.process([message, message])).outcomes
    )
    assert engine.calls == [1]
    ghost = JobMessage("ghost", "none", 1, 1, 0.0)
    report = await run.process([message, ghost])
    assert sorted(report.skipped) == sorted([message.job_id, "ghost"])
    assert engine.calls == [1]


async def test_missing_image_fails_the_job() -> None:
    repo, blobs, sink, engine = FakeRepository(), FakeBlobStore(), ListSink(), FakeEngine()
    message = await enqueue(repo, blobs, png_bytes())
    await blobs.delete_many([message.blob_id])
    report = await processor(engine, blobs, sink, repo).process([message])
    assert report.outcomes[0].error is not None
    assert report.outcomes[0].error.code is JobErrorCode.INVALID_IMAGE


async def test_jobs_found_running_run_alone_and_are_charged_only_when_they_run() -> None:
    repo, blobs, sink, engine = FakeRepository(), FakeBlobStore(), ListSink(), FakeEngine()
    fresh = [await enqueue(repo, blobs, png_bytes(w, 10)) for w in (11, 12)]
    crashed = [await enqueue(repo, blobs, png_bytes(w, 10)) for w in (21, 22)]
    for message in crashed:  # their attempt died with the previous worker
        repo.jobs[message.job_id] = repo.jobs[message.job_id].start()
    inner = BatchProcessor(engine, blobs, LIMITS, max_attempts=3, repository=repo)
    claim = await inner.claim([*fresh, *crashed])
    assert [m.job_id for m, _ in claim.runnable] == [m.job_id for m in fresh]
    assert [m.job_id for m in claim.suspects] == [m.job_id for m in crashed]
    assert all(repo.jobs[m.job_id].attempts == 1 for m in crashed)  # not charged yet
    await repo.requeue([m.job_id for m in fresh])
    report = await processor(engine, blobs, sink, repo).process([*fresh, *crashed])
    assert sorted(engine.calls) == [1, 1, 2]  # each suspect alone, the fresh pair together
    assert not report.retries and len(report.outcomes) == 4
    assert [repo.jobs[m.job_id].attempts for m in crashed] == [2, 2]


async def test_sink_failure_propagates_so_nothing_is_acknowledged() -> None:
    class BrokenSink(ListSink):
        async def deliver(self, outcomes: object) -> None:
            raise ConnectionError("db down")

    repo, blobs = FakeRepository(), FakeBlobStore()
    message = await enqueue(repo, blobs, png_bytes())
    with pytest.raises(ConnectionError):
        await processor(FakeEngine(), blobs, BrokenSink(), repo).process([message])


def test_retry_delay_doubles() -> None:
    assert [retry_delay_s(a, 100) for a in (2, 3, 4)] == [0.1, 0.2, 0.4]


async def test_every_page_of_every_document_runs_in_one_engine_call() -> None:
    repo, blobs, sink, engine = FakeRepository(), FakeBlobStore(), ListSink(), FakeEngine()
    documents = [tiff_pages((21, 5), (22, 6), (23, 7)), png_bytes(30, 8)]
    messages = [await enqueue(repo, blobs, data) for data in documents]
    report = await processor(engine, blobs, sink, repo).process(messages)
    assert engine.calls == [4] and report.images == 4
    results = {o.job_id: o.result for o in report.outcomes}
    tiff, png = results[messages[0].job_id], results[messages[1].job_id]
    assert tiff is not None and png is not None
    assert [(p.page, p.width, p.height, p.text) for p in tiff.pages] == [
        (1, 21, 5, "21"), (2, 22, 6, "22"), (3, 23, 7, "23")]  # fmt: skip
    assert tiff.text == "21\f22\f23" and [ln.text for ln in tiff.lines] == ["21", "22", "23"]
    assert [(p.page, p.width, p.height) for p in png.pages] == [(1, 30, 8)]


async def test_a_failing_page_fails_its_document_alone() -> None:
    repo, blobs, sink = FakeRepository(), FakeBlobStore(), ListSink()
    engine = FakeEngine(poison={22})
    bad = await enqueue(repo, blobs, tiff_pages((21, 5), (22, 6)))
    good = await enqueue(repo, blobs, png_bytes(30, 8))
    report = await processor(engine, blobs, sink, repo, max_attempts=1).process([bad, good])
    by_job = {o.job_id: o for o in report.outcomes}
    assert by_job[good.job_id].result is not None
    assert by_job[good.job_id].result.text == "30"  # type: ignore[union-attr]
    error = by_job[bad.job_id].error
    assert error is not None and error.code is JobErrorCode.ENGINE_ERROR


async def test_an_unreadable_pdf_fails_as_an_invalid_image() -> None:
    repo, blobs, sink, engine = FakeRepository(), FakeBlobStore(), ListSink(), FakeEngine()
    message = await enqueue(repo, blobs, encrypted_pdf())
    report = await processor(engine, blobs, sink, repo).process([message])
    (outcome,) = report.outcomes
    assert outcome.error is not None and outcome.error.code is JobErrorCode.INVALID_IMAGE
    assert "password" in outcome.error.message and engine.calls == []
