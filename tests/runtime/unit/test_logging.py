import json
import logging

import pytest

from ocr_runtime.core.logging import configure_logging, job_context, request_id_var


def test_logs_are_json_with_request_and_job_ids(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging("INFO")
        token = request_id_var.set("req-1")
        with job_context("job-9"):
            logging.getLogger("t").info("inside")
        request_id_var.reset(token)
        logging.getLogger("t").info("outside", extra={"job_id": "explicit"})
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (inside["message"], inside["request_id"], inside["job_id"]) == (
        "inside", "req-1", "job-9")  # fmt: skip
    assert inside["level"] == "INFO" and inside["logger"] == "t"
    assert (outside["request_id"], outside["job_id"]) == (None, "explicit")
