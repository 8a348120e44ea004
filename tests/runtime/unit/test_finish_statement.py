"""The statement that finishes jobs is built once per (status, length) and binds only values
(`adapters.sql.finish`); what it writes is checked against both databases in the
integration tests."""

from __future__ import annotations

from datetime import UTC, datetime

from ocr_runtime.adapters.sql.finish import Finish, finish_statement
from ocr_runtime.application import JobOutcome
from ocr_runtime.domain import JobError, JobErrorCode, JobStatus, OcrResult


def _rows(prefix: str, count: int) -> list[Finish]:
    now = datetime.now(UTC)
    return [
        Finish.of(JobOutcome(job_id=f"{prefix}{n}", finished_at=now, result=OcrResult(lines=())))
        for n in range(count)
    ]


def test_batches_of_one_length_share_one_statement_and_differ_in_values() -> None:
    first, first_params = finish_statement(JobStatus.SUCCEEDED, _rows("a", 3))
    second, second_params = finish_statement(JobStatus.SUCCEEDED, _rows("b", 3))
    other, _ = finish_statement(JobStatus.SUCCEEDED, _rows("c", 4))
    assert first is second and first is not other
    assert [first_params[f"j{n}"] for n in range(3)] == ["a0", "a1", "a2"]
    assert [second_params[f"j{n}"] for n in range(3)] == ["b0", "b1", "b2"]
    assert first_params["f0"].tzinfo is None  # naive UTC, as stored


def test_a_failure_writes_its_code_and_message_and_no_result() -> None:
    error = JobError(JobErrorCode.INVALID_IMAGE, "x" * 10_000)
    row = Finish.of(JobOutcome(job_id="j", finished_at=datetime.now(UTC), error=error))
    statement, params = finish_statement(JobStatus.FAILED, [row])
    sql = str(statement)
    assert params["c0"] == "invalid_image"
    assert len(params["t0"]) < 10_000  # cut to the column's bound
    assert "error_message = CASE job_id WHEN :j0 THEN :t0" in sql
    assert "result" not in sql
