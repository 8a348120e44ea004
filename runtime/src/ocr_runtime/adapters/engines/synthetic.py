"""A test engine for failure drills: no model, zero cost, and a result that proves which image
it read. Row 0 of the image carries a number in black pixels (bit i at column i, 24 bits);
the text of the single line is `seed <number>`. Marker pixels at column 0 of row 1 make it
misbehave on purpose: pure red kills the process the way the kernel's OOM killer would
(SIGKILL, no cleanup), pure blue raises, as a model that cannot read an image does."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence

from ocr_runtime.application.ports import Image
from ocr_runtime.domain import OcrLine, OcrResult

SEED_BITS = 24
CRASH_MARKER = (255, 0, 0)
ERROR_MARKER = (0, 0, 255)
_BOX = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def read_seed(image: Image) -> int:
    width = min(SEED_BITS, image.shape[1])
    row = image[0, :width]
    return sum(1 << bit for bit in range(width) if int(row[bit].max()) < 128)


def _marker(image: Image) -> tuple[int, int, int] | None:
    if image.shape[0] < 2:
        return None
    r, g, b = (int(v) for v in image[1, 0, :3])
    return (r, g, b)


class SyntheticEngine:
    def __init__(self) -> None:
        self._loaded = False

    @property
    def name(self) -> str:
        return "synthetic"

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        self._loaded = True

    def recognize_batch(self, images: Sequence[Image]) -> list[OcrResult]:
        if not self._loaded:
            raise RuntimeError("engine synthetic is not loaded: call load() first")
        for image in images:
            marker = _marker(image)
            if marker == CRASH_MARKER:
                os.kill(os.getpid(), signal.SIGKILL)
            if marker == ERROR_MARKER:
                raise RuntimeError("synthetic engine: error marker")
        return [_read(image) for image in images]


def _read(image: Image) -> OcrResult:
    return OcrResult(lines=(OcrLine(text=f"seed {read_seed(image)}", confidence=1.0, box=_BOX),))
