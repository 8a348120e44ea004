"""JSON log lines on stderr with the runtime's field names (`time`, `level`, `logger`,
`message`), so one log pipeline reads both; kopf's per-resource records also carry
`object` ({namespace, name, ...} of the resource they are about)."""

from __future__ import annotations

import enum
import logging
import sys
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# kopf's per-object logger adds these to every record; `k8s_ref` becomes `object`.
_KOPF_ATTRS = frozenset({"k8s_skip", "k8s_ref", "settings"})
# The id of the handler of the stacks' Deployment and Job events (`handlers.register`).
CHILD_EVENT_HANDLER = "child-event"
_CHILD_EVENT_DONE = f"Handler {CHILD_EVENT_HANDLER!r} succeeded."


class LogFormat(enum.StrEnum):
    JSON = "json"
    TEXT = "text"


class _OperatorJsonFormatter(JsonFormatter):
    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        ref = getattr(record, "k8s_ref", None)
        if ref is not None:
            log_record["object"] = ref


class _QuietChildEvents(logging.Filter):
    """kopf logs each handled event at INFO; a rollout changes its Deployment many times
    a second, and those lines would drown the ones about the stacks. Failures still log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and record.getMessage() == _CHILD_EVENT_DONE)


def configure_logging(level: int, log_format: LogFormat) -> None:
    """One handler on the root logger (idempotent); kopf's and ours go through it."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.JSON:
        handler.setFormatter(
            _OperatorJsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                reserved_attrs=[*RESERVED_ATTRS, *_KOPF_ATTRS],
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(_QuietChildEvents())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
