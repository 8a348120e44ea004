"""Results of several pages through the result topic and the database column, and results
written before pages existed."""

import json
from datetime import UTC, datetime

import pytest

from ocr_runtime.adapters.sql._mapping import result_from_json, result_to_json
from ocr_runtime.application import JobOutcome
from ocr_runtime.domain import OcrLine, OcrPage, OcrResult, PageSource

BOX = ((0.0, 0.0), (4.0, 0.0), (4.0, 2.0), (0.0, 2.0))
RESULT = OcrResult.of_pages([
    OcrPage(1, 1700, 2200, (OcrLine("invoice", 0.98, BOX), OcrLine("total", 0.9, BOX))),
    OcrPage(2, 1700, 2200, (), PageSource.TEXT_LAYER),
    OcrPage(3, 800, 600, (OcrLine("due", 0.7, BOX),)),
])  # fmt: skip


def test_pages_survive_the_result_topic() -> None:
    outcome = JobOutcome("j1", datetime.now(UTC), RESULT, blob_id="b1")
    back = JobOutcome.from_bytes(outcome.to_bytes())
    assert back.result == RESULT
    assert back.result.text == "invoice\ntotal\f\fdue"


def test_pages_survive_the_database_column() -> None:
    assert result_from_json(result_to_json(RESULT)) == RESULT


def test_results_without_pages_still_read() -> None:
    lines = [{"text": "hello", "confidence": 0.9, "box": [list(p) for p in BOX]}]
    from_column = result_from_json(json.dumps(lines))
    body = {"job_id": "j", "finished_at": datetime.now(UTC).isoformat(), "result": lines}
    from_topic = JobOutcome.from_bytes(json.dumps(body).encode()).result
    assert from_column == from_topic == OcrResult(lines=(OcrLine("hello", 0.9, BOX),))


def test_a_reader_without_pages_sees_every_line() -> None:
    body = json.loads(JobOutcome("j1", datetime.now(UTC), RESULT).to_bytes())
    assert [line["text"] for line in body["result"]] == ["invoice", "total", "due"]


def test_pages_that_do_not_add_up_are_refused() -> None:
    body = json.loads(JobOutcome("j1", datetime.now(UTC), RESULT).to_bytes())
    body["pages"][0]["line_count"] = 5
    with pytest.raises(ValueError, match="add up"):
        JobOutcome.from_bytes(json.dumps(body).encode())
