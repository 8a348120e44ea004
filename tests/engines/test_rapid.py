"""The default engine on real models: batched results agree with RapidOCR's own
one-image-at-a-time pipeline, odd images do not break a batch, and rendered documents are
read accurately."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from ocr_runtime.adapters.engines.rapid import RapidOcrEngine
from ocr_runtime.core.settings import LineOrientation
from ocr_runtime.domain import OcrResult
from tests.support.documents import RenderedDocument, normalise, read_rows, render_document

pytestmark = pytest.mark.slow

# Recognition pads each batch to its widest line, so a line's confidence moves a little
# with its batch neighbours; the text and the box must not.
CONFIDENCE_TOLERANCE = 0.05
# Padding a page for a shared detection run changes the network's view of its border.
PADDED_BOX_TOLERANCE_PX = 4.0
# Shape buckets pad a page by up to 127 px more; a box near the border moves a little more.
BUCKETED_BOX_TOLERANCE_PX = 8.0


def _texts(result: OcrResult) -> list[str]:
    return [line.text for line in result.lines]


def _boxes(result: OcrResult) -> npt.NDArray[np.float64]:
    return np.array([line.box for line in result.lines], dtype=np.float64).reshape(-1, 4, 2)


def test_engine_is_loaded_on_the_wheel_models(rapid_engine: RapidOcrEngine) -> None:
    assert rapid_engine.loaded
    assert rapid_engine.name == "rapidocr-onnx"
    assert "CPUExecutionProvider" in rapid_engine.providers


def test_batch_matches_one_image_at_a_time(
    rapid_engine: RapidOcrEngine,
    corpus: list[RenderedDocument],
    corpus_results: list[OcrResult],
) -> None:
    sample = [0, 3, 5]  # three different fonts and sizes
    alone = rapid_engine.recognize_unbatched([corpus[i].image for i in sample])
    for index, reference in zip(sample, alone, strict=True):
        batched = corpus_results[index]
        assert _texts(batched) == _texts(reference), f"document {index}"
        np.testing.assert_array_equal(_boxes(batched), _boxes(reference))
        for mine, theirs in zip(batched.lines, reference.lines, strict=True):
            assert mine.confidence == pytest.approx(theirs.confidence, abs=CONFIDENCE_TOLERANCE)


def test_padded_detection_batch_matches_one_image_at_a_time(
    rapid_engine: RapidOcrEngine, corpus: list[RenderedDocument]
) -> None:
    """The GPU path (pages padded to one detection run) checked on the CPU."""
    padded = RapidOcrEngine(replace(rapid_engine.options, det_batch_size=4))
    padded.load()
    images = [corpus[i].image for i in (1, 2, 4)]  # different page sizes
    batched = padded.recognize_batch(images)
    alone = rapid_engine.recognize_unbatched(images)
    for mine, reference in zip(batched, alone, strict=True):
        assert _texts(mine) == _texts(reference)
        np.testing.assert_allclose(_boxes(mine), _boxes(reference), atol=PADDED_BOX_TOLERANCE_PX)


def test_odd_images_give_empty_results_without_breaking_the_batch(
    rapid_engine: RapidOcrEngine,
    corpus: list[RenderedDocument],
    corpus_results: list[OcrResult],
) -> None:
    one_pixel = np.full((1, 1, 3), 255, dtype=np.uint8)
    blank_page = np.full((600, 400, 3), 255, dtype=np.uint8)
    thin_strip = np.zeros((2, 900, 3), dtype=np.uint8)  # RapidOCR alone would blow it up
    results = rapid_engine.recognize_batch([one_pixel, corpus[0].image, blank_page, thin_strip])
    assert len(results) == 4
    assert results[0] == OcrResult()
    assert results[2] == OcrResult()
    assert results[3] == OcrResult()
    assert _texts(results[1]) == _texts(corpus_results[0])


def test_empty_batch_gives_no_results(rapid_engine: RapidOcrEngine) -> None:
    assert rapid_engine.recognize_batch([]) == []


def test_boxes_lie_inside_their_source_image(
    corpus: list[RenderedDocument], corpus_results: list[OcrResult]
) -> None:
    for document, result in zip(corpus, corpus_results, strict=True):
        height, width = document.image.shape[:2]
        boxes = _boxes(result)
        assert len(boxes) >= len(document.lines)
        assert boxes[..., 0].min() >= 0 and boxes[..., 0].max() <= width
        assert boxes[..., 1].min() >= 0 and boxes[..., 1].max() <= height


def test_reads_at_least_95_percent_of_rendered_lines_exactly(
    corpus: list[RenderedDocument], corpus_results: list[OcrResult]
) -> None:
    misses = []
    total = 0
    for document, result in zip(corpus, corpus_results, strict=True):
        for expected, got in zip(document.lines, read_rows(document, result), strict=True):
            total += 1
            if normalise(got) != expected:
                misses.append(f"{document.face} {document.size}px: {expected!r} read {got!r}")
    assert total == sum(len(document.lines) for document in corpus) >= 40
    assert len(misses) <= total * 0.05, "\n".join(misses)


UPSIDE_DOWN_LINES = (
    "Monthly statement for your account",
    "Payment received with thanks",
    "Delivery to the Seoul branch office",
)


def test_line_orientation_detect_reads_an_upside_down_page(
    rapid_engine: RapidOcrEngine,
) -> None:
    page = render_document(UPSIDE_DOWN_LINES, face="DejaVuSans.ttf", size=36)
    upside_down = np.ascontiguousarray(np.rot90(page.image, 2))
    detecting = RapidOcrEngine(replace(rapid_engine.options, orientation=LineOrientation.DETECT))
    detecting.load()
    turned = {normalise(line.text) for line in detecting.recognize_batch([upside_down])[0].lines}
    assert set(UPSIDE_DOWN_LINES) <= turned
    as_is = {normalise(line.text) for line in rapid_engine.recognize_batch([upside_down])[0].lines}
    assert not set(UPSIDE_DOWN_LINES) & as_is  # the default does not turn lines


def test_shape_buckets_read_the_same_text_as_one_image_at_a_time(
    rapid_engine: RapidOcrEngine, corpus: list[RenderedDocument]
) -> None:
    """The GPU path (inputs padded to repeating shapes) checked on the CPU."""
    bucketed = RapidOcrEngine(replace(rapid_engine.options, shape_buckets=True, det_batch_size=4))
    bucketed.load()
    images = [corpus[i].image for i in (0, 1, 2, 4)]  # different page sizes
    batched = bucketed.recognize_batch(images)
    alone = rapid_engine.recognize_unbatched(images)
    for mine, reference in zip(batched, alone, strict=True):
        assert _texts(mine) == _texts(reference)
        np.testing.assert_allclose(_boxes(mine), _boxes(reference), atol=BUCKETED_BOX_TOLERANCE_PX)
