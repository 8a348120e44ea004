"""An engine that reads nothing: it returns an empty result at once, so benchmarks can
measure the serving plumbing (queue, database, batching) without inference cost."""

from __future__ import annotations

from collections.abc import Sequence

from ocr_runtime.application.ports import Image
from ocr_runtime.domain import OcrResult


class NoopEngine:
    def __init__(self) -> None:
        self._loaded = False

    @property
    def name(self) -> str:
        return "noop"

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        self._loaded = True

    def recognize_batch(self, images: Sequence[Image]) -> list[OcrResult]:
        if not self._loaded:
            raise RuntimeError("engine noop is not loaded: call load() first")
        return [OcrResult() for _ in images]
