"""Unit tests of the operator's JSON log lines: the runtime's field names, and kopf's
per-resource records with their resource as `object` (and none of kopf's internals)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ocr_operator.logs import CHILD_EVENT_HANDLER, LogFormat, configure_logging


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    configure_logging(logging.INFO, LogFormat.JSON)
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:] = saved
    root.setLevel(level)


def test_a_record_is_one_json_line_with_the_runtime_fields(captured: io.StringIO) -> None:
    logging.getLogger("ocr_operator.leader").warning("lease %s: %s", "renewal", "refused")
    (line,) = captured.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "WARNING"
    assert record["logger"] == "ocr_operator.leader"
    assert record["message"] == "lease renewal: refused"
    assert "time" in record


def test_a_kopf_resource_record_names_its_object_and_drops_kopf_internals(
    captured: io.StringIO,
) -> None:
    ref = {"kind": "OCRServing", "namespace": "ocr", "name": "standard"}
    extra = {"k8s_ref": ref, "k8s_skip": False, "settings": object()}
    # The extras kopf's per-object logger adds (not kopf.objects itself: its Event poster
    # would read the settings).
    logging.getLogger("tests.kopf_style").info("Handler succeeded.", extra=extra)
    record = json.loads(captured.getvalue())
    assert record["object"] == ref
    assert "settings" not in record and "k8s_skip" not in record and "k8s_ref" not in record


def test_handled_child_events_are_not_logged_but_their_failures_are(
    captured: io.StringIO,
) -> None:
    kopf_objects = logging.getLogger("kopf.objects.test")
    kopf_objects.info("Handler %r succeeded.", CHILD_EVENT_HANDLER)
    kopf_objects.error("Handler %r failed with an exception.", CHILD_EVENT_HANDLER)
    kopf_objects.info("Handler 'reconcile' succeeded.")
    messages = [json.loads(line)["message"] for line in captured.getvalue().splitlines()]
    assert messages == [
        "Handler 'child-event' failed with an exception.",
        "Handler 'reconcile' succeeded.",
    ]
