from datetime import UTC, datetime

import pytest

from ocr_runtime.domain import (
    TRANSITIONS,
    IllegalTransition,
    Job,
    JobError,
    JobErrorCode,
    JobStatus,
    OcrLine,
    OcrResult,
    statuses_allowing,
)

RESULT = OcrResult(lines=(OcrLine("hello", 0.99, ((0, 0), (5, 0), (5, 2), (0, 2))),))
ERROR = JobError(JobErrorCode.ENGINE_ERROR, "boom")


def job_in(status: JobStatus) -> Job:
    job = Job.submit("blob", width=10, height=5)
    if status is JobStatus.RUNNING:
        return job.start()
    if status is JobStatus.SUCCEEDED:
        return job.start().succeed(RESULT)
    if status is JobStatus.FAILED:
        return job.start().fail(ERROR)
    return job


def move(job: Job, target: JobStatus) -> Job:
    if target is JobStatus.RUNNING:
        return job.start()
    if target is JobStatus.SUCCEEDED:
        return job.succeed(RESULT)
    if target is JobStatus.FAILED:
        return job.fail(ERROR)
    return job.requeue()


def test_a_new_job_is_queued_with_no_attempt() -> None:
    job = Job.submit("blob", width=10, height=5, idempotency_key="k")
    assert (job.status, job.attempts, job.pixels) == (JobStatus.QUEUED, 0, 50)
    assert job.idempotency_key == "k"
    assert len(job.job_id) == 32


@pytest.mark.parametrize("source", list(JobStatus))
@pytest.mark.parametrize("target", list(JobStatus))
def test_transition_table_is_enforced(source: JobStatus, target: JobStatus) -> None:
    job = job_in(source)
    allowed = target in TRANSITIONS[source]
    same = source is target
    terminal_start = source.is_terminal and target is JobStatus.RUNNING
    if allowed or same or terminal_start:
        moved = move(job, target)
        expected = source if terminal_start else target
        assert moved.status is expected
    else:
        with pytest.raises(IllegalTransition):
            move(job, target)


def test_completion_twice_is_a_no_op() -> None:
    done = job_in(JobStatus.RUNNING).succeed(RESULT)
    again = done.succeed(OcrResult())
    assert again is done
    assert again.result == RESULT


def test_failure_twice_keeps_the_first_error() -> None:
    failed = job_in(JobStatus.RUNNING).fail(ERROR)
    assert failed.fail(JobError(JobErrorCode.TIMEOUT, "late")).error == ERROR


def test_terminal_jobs_refuse_the_other_terminal_status() -> None:
    with pytest.raises(IllegalTransition):
        job_in(JobStatus.SUCCEEDED).fail(ERROR)
    with pytest.raises(IllegalTransition):
        job_in(JobStatus.FAILED).succeed(RESULT)


def test_starting_counts_attempts_and_a_restart_counts_again() -> None:
    job = Job.submit("blob", width=1, height=1).start()
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)
    assert job.started_at is not None
    assert job.start().attempts == 2
    assert job.requeue().start().attempts == 2


def test_starting_a_finished_job_changes_nothing() -> None:
    done = job_in(JobStatus.SUCCEEDED)
    assert done.start() is done


def test_attempts_left() -> None:
    job = Job.submit("blob", width=1, height=1).start()
    assert job.attempts_left(2)
    assert not job.start().attempts_left(2)


def test_finish_time_comes_from_the_outcome() -> None:
    at = datetime(2030, 1, 2, tzinfo=UTC)
    assert job_in(JobStatus.QUEUED).succeed(RESULT, at=at).finished_at == at


def test_statuses_allowing_follows_the_table() -> None:
    assert statuses_allowing(JobStatus.SUCCEEDED) == {JobStatus.QUEUED, JobStatus.RUNNING}
    assert statuses_allowing(JobStatus.QUEUED) == {JobStatus.RUNNING}


def test_full_text_joins_lines() -> None:
    box = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
    result = OcrResult(lines=(OcrLine("a", 1.0, box), OcrLine("b", 1.0, box)))
    assert result.text == "a\nb"
