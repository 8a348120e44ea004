"""Input shapes rounded up to a few buckets before an ONNX session runs, for the GPU.

ONNX Runtime's CUDA provider prepares each new input shape before the GPU runs it: on an
H200 a 640 x 640 detection took about a second the first time and 3 to 5 ms after. Every
page has its own size and every batch of text lines its own count and width, so without
buckets nearly every call pays that preparation. Padding the batch (rows to a power of two,
height and width to a step) makes the shapes repeat; the padding is zeros, the value
RapidOCR already pads with, and the output is cropped back to the caller's rows and size."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from ocr_runtime.adapters.engines._batching import FloatArray


class Output(StrEnum):
    """What a session's output is, so it can be cropped back to the caller's batch."""

    MAP = "map"  # (N, 1, H, W) at the input's size: detection's probability map
    ROWS = "rows"  # (N, ...) per row: recognition's (N, T, classes), the classifier's (N, 2)


@dataclass(frozen=True, slots=True)
class Buckets:
    height_step: int  # input heights round up to a multiple of this (1: unchanged)
    width_step: int
    max_rows: int  # rows round up to a power of two, never past this (or the batch itself)


def round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def bucket_rows(rows: int, max_rows: int) -> int:
    """The next power of two at or above `rows`, at most `max(rows, max_rows)`."""
    return max(rows, min(1 << (rows - 1).bit_length(), max_rows))


def pad_to(batch: FloatArray, rows: int, height: int, width: int) -> FloatArray:
    n, channels, h, w = batch.shape
    if (rows, height, width) == (n, h, w):
        return batch
    padded = np.zeros((rows, channels, height, width), dtype=batch.dtype)
    padded[:n, :, :h, :w] = batch
    return padded


class BucketedSession:
    """Wraps one of RapidOCR's sessions (called with an (N, C, H, W) float batch, returns
    its first output); everything else (its character list, the ONNX session inside) is
    the wrapped session's."""

    def __init__(self, session: Any, buckets: Buckets, output: Output) -> None:
        self._session = session
        self._buckets = buckets
        self._output = output

    def __call__(self, batch: FloatArray) -> Any:
        n, _channels, h, w = batch.shape
        rows = bucket_rows(n, self._buckets.max_rows)
        height = round_up(h, self._buckets.height_step)
        width = round_up(w, self._buckets.width_step)
        result = self._session(pad_to(batch, rows, height, width))
        if self._output is Output.MAP:
            return result[:n, :, :h, :w]
        return result[:n]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def wrap(owner: Any, buckets: Buckets, output: Output) -> None:
    """Replace `owner.session` (a RapidOCR detector, classifier or recogniser) in place."""
    owner.session = BucketedSession(owner.session, buckets, output)
