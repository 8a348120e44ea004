"""The submission routes' parameters, read straight from the request. Those routes carry every
job, and FastAPI's per-request dependency solving and response validation cost more CPU than
the submission use case itself (66 against 54 us per upload, in process); so they take only
the `Request`, and `submission_parameters` documents in OpenAPI what this module checks."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fastapi import Request

from ocr_runtime.api.errors import InvalidParameter
from ocr_runtime.domain import TextLayer

IDEMPOTENCY_HEADER = "Idempotency-Key"
TEXT_LAYER_QUERY = "text_layer"
TIMEOUT_QUERY = "timeout"
# An Idempotency-Key: printable ASCII, no spaces (it lands in logs and in a database key).
_KEY_CHARS = r"\x21-\x7e"
_KEY_MAX = 128
_IDEMPOTENCY_KEY = re.compile(f"[{_KEY_CHARS}]{{1,{_KEY_MAX}}}")
_TEXT_LAYERS = {layer.value: layer for layer in TextLayer}


@dataclass(frozen=True, slots=True)
class SubmissionParams:
    idempotency_key: str | None
    text_layer: TextLayer


def submission_params(request: Request) -> SubmissionParams:
    """The Idempotency-Key header and the text_layer query parameter. Raises 422."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidParameter(
            f"header.{IDEMPOTENCY_HEADER}: 1 to {_KEY_MAX} printable ASCII characters, no spaces"
        )
    raw_layer = request.query_params.get(TEXT_LAYER_QUERY)
    layer = TextLayer.IGNORE if raw_layer is None else _TEXT_LAYERS.get(raw_layer)
    if layer is None:
        choices = " or ".join(repr(value) for value in _TEXT_LAYERS)
        raise InvalidParameter(f"query.{TEXT_LAYER_QUERY}: one of {choices}")
    return SubmissionParams(key, layer)


def wait_seconds(request: Request, *, default: float, maximum: float) -> float:
    """The timeout query parameter of a synchronous request: seconds in (0, maximum]."""
    raw = request.query_params.get(TIMEOUT_QUERY)
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= maximum:  # false for nan as well
        raise InvalidParameter(f"query.{TIMEOUT_QUERY}: seconds above 0, at most {maximum:g}")
    return seconds


def submission_parameters(
    *, wait_default_s: float | None = None, wait_max_s: float | None = None
) -> list[dict[str, object]]:
    """The OpenAPI parameter objects of what `submission_params` reads, and with the wait's
    default and maximum, what `wait_seconds` reads."""
    parameters: list[dict[str, object]] = [
        {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": False,
            "description": "Repeat a request with the same key to get the same job back.",
            "schema": {"type": "string", "minLength": 1, "maxLength": _KEY_MAX,
                       "pattern": f"^[{_KEY_CHARS}]+$"},
        },
        {
            "name": TEXT_LAYER_QUERY,
            "in": "query",
            "required": False,
            "description": "PDF pages that carry text: `ignore` it and recognise the pixels, "
            "or `prefer` it (those pages come back with source `text_layer`; pages without "
            "text, and other formats, are recognised).",
            "schema": {"type": "string", "enum": list(_TEXT_LAYERS), "default": "ignore"},
        },
    ]  # fmt: skip
    if wait_default_s is not None and wait_max_s is not None:
        parameters.append({
            "name": TIMEOUT_QUERY,
            "in": "query",
            "required": False,
            "description": f"Seconds to wait (default {wait_default_s:g}).",
            "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": wait_max_s},
        })  # fmt: skip
    return parameters
