"""Unit tests of the consume loop and its handlers with an in-memory source and fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from ocr_runtime.application import BatchReport, JobMessage, JobOutcome
from ocr_runtime.application.errors import ConflictError
from ocr_runtime.application.process import Claim
from ocr_runtime.application.stream import (
    DeadLetter,
    DeadLetterReason,
    Delivery,
    PartitionKey,
    RevokeHook,
)
from ocr_runtime.domain import JobErrorCode, OcrResult
from ocr_runtime.worker import (
    BatchLimits,
    ConsumeLoop,
    DataPlaneMetrics,
    Decoded,
    EngineCalls,
    InferenceHandler,
    RetryPolicy,
    WriterHandler,
)

TOPIC = "jobs"


class MemorySource:
    def __init__(self, values: Sequence[bytes]) -> None:
        self.pending = [Delivery(TOPIC, 0, i, v) for i, v in enumerate(values)]
        self.commits: list[dict[PartitionKey, int]] = []
        self.on_revoke: RevokeHook | None = None
        self.stopped = False
        self.keep_alives = 0

    async def start(self, on_revoke: RevokeHook) -> None:
        self.on_revoke = on_revoke

    async def keep_alive(self) -> None:
        self.keep_alives += 1

    async def fetch(self, max_records: int) -> Sequence[Delivery]:
        if not self.pending:
            await asyncio.sleep(0.01)
            return []
        taken, self.pending = self.pending[:max_records], self.pending[max_records:]
        return taken

    async def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        self.commits.append(dict(next_offsets))

    def assigned(self) -> frozenset[PartitionKey]:
        return frozenset({PartitionKey(TOPIC, 0)})

    async def lag(self) -> dict[PartitionKey, int]:
        return {}

    async def stop(self) -> None:
        self.stopped = True


class Letters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        self.letters.extend(letters)


class Sink:
    def __init__(self) -> None:
        self.outcomes: list[JobOutcome] = []

    async def deliver(self, outcomes: Sequence[JobOutcome]) -> None:
        self.outcomes.extend(outcomes)


class FakeProcessor:
    """Claims every job as a fresh first attempt and "recognises" each one; records which
    jobs were claimed and how often inference ran."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.inferred: list[list[str]] = []

    async def claim(self, messages: Sequence[JobMessage]) -> Claim:
        self.batches.append([m.job_id for m in messages])
        return Claim(runnable=[(m, 1) for m in messages])

    async def claim_one(self, message: JobMessage) -> Claim:
        return Claim(runnable=[(message, 1)])

    async def fetch(self, runnable: Sequence[tuple[JobMessage, int]]) -> dict[str, bytes]:
        return {}

    async def requeue(self, messages: Sequence[JobMessage]) -> None:
        return None

    async def infer(
        self, runnable: Sequence[tuple[JobMessage, int]], blobs: Mapping[str, bytes]
    ) -> BatchReport:
        self.inferred.append([m.job_id for m, _ in runnable])
        now = datetime.now(UTC)
        return BatchReport(
            outcomes=[JobOutcome(m.job_id, now, result=OcrResult()) for m, _ in runnable]
        )


def job(n: int) -> bytes:
    return JobMessage(f"job{n}", f"blob{n}", 10, 10, 0.0).to_bytes()


def build(
    source: MemorySource,
    processor: FakeProcessor,
    letters: Letters,
    sink: Sink,
    size: int = 4,
    *,
    engine_calls: EngineCalls = EngineCalls.WHOLE_BATCH,
    flush_after_s: float = 0.02,
    metrics: DataPlaneMetrics | None = None,
    commit_interval_s: float = 0.0,
) -> ConsumeLoop[JobMessage]:
    metrics = metrics or DataPlaneMetrics(CollectorRegistry())
    handler = InferenceHandler(
        processor,  # type: ignore[arg-type]
        sink,
        letters,
        RetryPolicy(max_attempts=2, first_backoff_s=0.0),
        metrics,
        retry_backoff_ms=0,
        engine_calls=engine_calls,
        flush_after_s=flush_after_s,
    )
    wait = 0.0 if engine_calls is EngineCalls.ONE_JOB_AT_A_TIME else 0.01
    return ConsumeLoop(
        source,
        decode=JobMessage.from_delivery,
        cost=lambda m: m.pixels,
        handle=handler,
        limits=BatchLimits(max_size=size, max_wait_s=wait, max_cost=10**9),
        metrics=metrics,
        group="g",
        revoke_wait_s=1.0,
        commit_interval_s=commit_interval_s,
    )


async def run_until_committed(loop: ConsumeLoop[JobMessage], source: MemorySource, n: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    for _ in range(500):
        if source.commits and max(c[PartitionKey(TOPIC, 0)] for c in source.commits) >= n:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5.0)


async def test_poison_is_dead_lettered_and_its_batch_neighbours_processed() -> None:
    source = MemorySource([job(0), b"{not json", job(2), job(3)])
    processor, letters, sink = FakeProcessor(), Letters(), Sink()
    loop = build(source, processor, letters, sink)
    await run_until_committed(loop, source, 4)
    assert [ln.reason for ln in letters.letters] == [DeadLetterReason.POISON]
    assert letters.letters[0].delivery.offset == 1
    assert sorted(j for b in processor.batches for j in b) == ["job0", "job2", "job3"]
    assert source.commits[-1] == {PartitionKey(TOPIC, 0): 4}
    assert source.stopped


class RefusingSink(Sink):
    """Fails twice for a transient reason, then refuses job1's result for good."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def deliver(self, outcomes: Sequence[JobOutcome]) -> None:
        self.calls += 1
        if self.calls <= 2:
            raise ConnectionError("database restarting")
        if any(o.job_id == "job1" and o.result is not None for o in outcomes):
            raise ValueError("data too long")
        await super().deliver(outcomes)


async def test_sink_errors_rerun_no_inference_and_a_refused_result_fails_alone() -> None:
    source = MemorySource([job(0), job(1), job(2)])
    processor, letters, sink = FakeProcessor(), Letters(), RefusingSink()
    loop = build(source, processor, letters, sink)
    await run_until_committed(loop, source, 3)
    assert processor.inferred == [["job0", "job1", "job2"]]  # once, whatever the sink did
    assert processor.batches == [["job0", "job1", "job2"]]  # no attempt spent on isolation
    by_job = {o.job_id: o for o in sink.outcomes}
    assert by_job["job0"].result is not None and by_job["job2"].result is not None
    refused = by_job["job1"].error
    assert refused is not None and refused.code is JobErrorCode.UNWRITABLE
    assert [(ln.reason, ln.delivery.offset) for ln in letters.letters] == [
        (DeadLetterReason.UNWRITABLE, 1)
    ]
    assert source.commits[-1] == {PartitionKey(TOPIC, 0): 3}


async def test_revoke_waits_for_the_batch_and_drops_buffered_records() -> None:
    source = MemorySource([job(i) for i in range(3)])
    gate = asyncio.Event()
    seen: list[list[str]] = []

    async def slow(items: Sequence[Decoded[JobMessage]]) -> None:
        seen.append([i.message.job_id for i in items if i.message is not None])
        await gate.wait()

    metrics = DataPlaneMetrics(CollectorRegistry())
    loop = ConsumeLoop(
        source, decode=JobMessage.from_delivery, cost=lambda m: 1, handle=slow,
        limits=BatchLimits(1, 0.0, 10), metrics=metrics, group="g", revoke_wait_s=5.0,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    while not seen:
        await asyncio.sleep(0.01)
    hook = source.on_revoke
    assert hook is not None

    async def revoking() -> None:
        await hook(frozenset({PartitionKey(TOPIC, 0)}))

    revoke = asyncio.create_task(revoking())
    await asyncio.sleep(0.05)
    assert not revoke.done()  # waits for the in-flight batch
    gate.set()
    await asyncio.wait_for(revoke, 2.0)
    stop.set()
    await asyncio.wait_for(task, 5.0)
    assert source.commits[0] == {PartitionKey(TOPIC, 0): 1}  # the finished batch, committed
    assert len(seen) <= 2  # buffered records were dropped, not all processed


def outcome_item(n: int, offset: int) -> Decoded[JobOutcome]:
    outcome = JobOutcome(job_id=f"job{n}", finished_at=datetime.now(UTC), result=OcrResult())
    return Decoded(Delivery("results", 0, offset, outcome.to_bytes()), outcome)


async def test_writer_dead_letters_only_the_result_the_database_refuses() -> None:
    written: list[list[str]] = []
    failures: list[JobErrorCode] = []
    calls = 0

    async def record(outcomes: Sequence[JobOutcome]) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database restarting")  # transient: retried, not counted
        if any(o.job_id == "job1" and o.result is not None for o in outcomes):
            raise ValueError("data too long")  # permanent, for job1's result only
        written.append([o.job_id for o in outcomes])
        failures.extend(o.error.code for o in outcomes if o.error is not None)
        return len(outcomes)

    letters = Letters()
    handler = WriterHandler(
        record, letters, RetryPolicy(max_attempts=2, first_backoff_s=0.0),
        DataPlaneMetrics(CollectorRegistry()),
    )  # fmt: skip
    items = [outcome_item(0, 0), outcome_item(1, 1), outcome_item(0, 2), outcome_item(2, 3)]
    await handler(items)
    # The duplicate of job0 was dropped; job1 got a small failure in place of its result.
    assert written == [["job0"], ["job1"], ["job2"]]
    assert failures == [JobErrorCode.UNWRITABLE]
    assert [(ln.reason, ln.delivery.offset) for ln in letters.letters] == [
        (DeadLetterReason.UNWRITABLE, 1)
    ]


async def test_writer_splits_a_batch_that_keeps_losing_lock_races() -> None:
    written: list[list[str]] = []

    async def record(outcomes: Sequence[JobOutcome]) -> int:
        if len(outcomes) > 4:  # a large transaction never wins its lock race
            raise ConflictError("OperationalError: (1213, deadlock)")
        written.append([o.job_id for o in outcomes])
        return len(outcomes)

    policy = RetryPolicy(max_attempts=2, first_backoff_s=0.0)
    letters = Letters()
    handler = WriterHandler(record, letters, policy, DataPlaneMetrics(CollectorRegistry()))
    await asyncio.wait_for(handler([outcome_item(n, n) for n in range(20)]), 10.0)
    assert sorted(j for batch in written for j in batch) == sorted(f"job{n}" for n in range(20))
    assert max(len(batch) for batch in written) == 3  # 20 -> 10 -> 5 -> 2 + 3
    assert letters.letters == []


class SlowCommitSource(MemorySource):
    """Commits wait until released: the loop must keep handling batches meanwhile."""

    def __init__(self, values: Sequence[bytes]) -> None:
        super().__init__(values)
        self.release = asyncio.Event()

    async def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        await self.release.wait()
        await super().commit(next_offsets)


async def test_batches_go_on_while_a_commit_is_in_flight_and_stop_commits_the_rest() -> None:
    source = SlowCommitSource([job(n) for n in range(5)])
    processor = FakeProcessor()
    loop = build(source, processor, Letters(), Sink(), size=1)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    for _ in range(500):
        if len(processor.batches) == 5:
            break
        await asyncio.sleep(0.01)
    assert len(processor.batches) == 5 and source.commits == []  # the first commit still waits
    source.release.set()
    stop.set()
    await asyncio.wait_for(task, 5.0)
    assert max(c[PartitionKey(TOPIC, 0)] for c in source.commits) == 5


async def run_batches(
    loop: ConsumeLoop[JobMessage], processor: FakeProcessor, n: int
) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    for _ in range(500):
        if len(processor.batches) == n:
            break
        await asyncio.sleep(0.01)
    assert len(processor.batches) == n
    return task, stop


async def test_batches_within_the_commit_interval_share_a_commit_and_stop_commits_at_once() -> None:
    """The first batch is committed at once; those finished within the interval after it
    wait for one commit, which stopping makes at once instead of an hour later."""
    source = MemorySource([job(n) for n in range(5)])
    processor = FakeProcessor()
    loop = build(source, processor, Letters(), Sink(), size=1, commit_interval_s=3600.0)
    task, stop = await run_batches(loop, processor, 5)
    await asyncio.sleep(0.05)
    assert len(source.commits) == 1 and source.commits[0][PartitionKey(TOPIC, 0)] < 5
    stop.set()
    await asyncio.wait_for(task, 5.0)
    assert len(source.commits) == 2 and source.commits[-1] == {PartitionKey(TOPIC, 0): 5}


async def test_a_revoke_commits_at_once_whatever_the_commit_interval() -> None:
    source = MemorySource([job(n) for n in range(3)])
    processor = FakeProcessor()
    loop = build(source, processor, Letters(), Sink(), size=1, commit_interval_s=3600.0)
    task, stop = await run_batches(loop, processor, 3)
    hook = source.on_revoke
    assert hook is not None
    await asyncio.wait_for(hook(frozenset({PartitionKey(TOPIC, 0)})), 2.0)
    assert source.commits[-1] == {PartitionKey(TOPIC, 0): 3}
    stop.set()
    await asyncio.wait_for(task, 5.0)


def test_a_negative_commit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="commit_interval_s"):
        build(MemorySource([]), FakeProcessor(), Letters(), Sink(), commit_interval_s=-1.0)


class GroupingSink(Sink):
    """Keeps the job ids of each delivery: one delivery is one transaction."""

    def __init__(self) -> None:
        super().__init__()
        self.deliveries: list[list[str]] = []

    async def deliver(self, outcomes: Sequence[JobOutcome]) -> None:
        self.deliveries.append([o.job_id for o in outcomes])
        await super().deliver(outcomes)


async def test_one_job_at_a_time_shares_the_claim_and_the_outcome_transaction() -> None:
    """Standard mode: each job alone in the engine; quick jobs share one claim, one
    outcome transaction and one offset commit."""
    source = MemorySource([job(n) for n in range(6)])
    processor, letters, sink = FakeProcessor(), Letters(), GroupingSink()
    metrics = DataPlaneMetrics(CollectorRegistry())
    loop = build(source, processor, letters, sink, size=32, metrics=metrics,
                 engine_calls=EngineCalls.ONE_JOB_AT_A_TIME, flush_after_s=3600.0)  # fmt: skip
    await run_until_committed(loop, source, 6)
    ids = [f"job{n}" for n in range(6)]
    assert processor.inferred == [[job_id] for job_id in ids]
    assert processor.batches == [ids]
    assert sink.deliveries == [ids]
    assert source.commits == [{PartitionKey(TOPIC, 0): 6}]
    (family,) = metrics.batch_size.collect()  # one observation of size 1 per engine call
    sizes = {s.name: s.value for s in family.samples}
    assert (sizes["ocr_batch_size_count"], sizes["ocr_batch_size_sum"]) == (6.0, 6.0)


async def test_one_job_at_a_time_delivers_each_outcome_once_the_flush_time_passed() -> None:
    """A job slower than the flush time has its outcome delivered before the next job runs;
    the offsets are still committed once, after the last outcome is durable."""
    source = MemorySource([job(n) for n in range(3)])
    processor, letters, sink = FakeProcessor(), Letters(), GroupingSink()
    loop = build(source, processor, letters, sink, size=32,
                 engine_calls=EngineCalls.ONE_JOB_AT_A_TIME, flush_after_s=0.0)  # fmt: skip
    await run_until_committed(loop, source, 3)
    assert sink.deliveries == [["job0"], ["job1"], ["job2"]]
    assert source.commits == [{PartitionKey(TOPIC, 0): 3}]
