"""PDF documents, through PDFium (the pypdfium2 wheel carries its own binary: no system tool
at run time). The API only checks a PDF (page count, page sizes at the rendering DPI,
encryption), which reads its cross-reference table and page tree but draws nothing; the
worker rasterises it, or reads a page's text layer instead when the job prefers it. Every
limit is checked before a page is drawn, so a PDF bomb (huge pages, thousands of pages) is
refused without rendering anything."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ocr_runtime.application.images import (
    ImageInfo,
    ImageLimits,
    check_page_count,
    check_page_pixels,
    stacked,
)
from ocr_runtime.application.ports import Image
from ocr_runtime.domain import (
    EncryptedDocument,
    ImageTooLarge,
    InvalidImage,
    OcrLine,
    OcrPage,
    PageSource,
)

# What the job's own text layer is worth against the engine's guesses: it is the text.
TEXT_LAYER_CONFIDENCE = 1.0

# PDFium is not thread-safe: one call at a time per process (the API's decode threads and an
# all-in-one worker's engine thread share it).
_PDFIUM = threading.Lock()
# PDF points per inch: page sizes are in points, rendering scales by dpi / 72.
POINTS_PER_INCH = 72.0
# The header may follow some bytes of garbage; PDF readers look in the first KiB.
_HEADER_WINDOW = 1024
_LOCKED = frozenset({pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY})


class RenderTimeout(InvalidImage):
    """Rasterising the document took longer than the rendering time limit."""

    code = "render_timeout"


def is_pdf(data: bytes) -> bool:
    return b"%PDF-" in data[:_HEADER_WINDOW]


@contextmanager
def _document(data: bytes, limits: ImageLimits) -> Iterator[pdfium.PdfDocument]:
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"document has {len(data)} bytes; the limit is {limits.max_bytes}")
    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            # PDFium's error code outlives the call that set it (a later failure may not reset
            # it): only a document that declares encryption is called password-protected.
            if exc.err_code in _LOCKED and b"/Encrypt" in data:
                raise EncryptedDocument("the PDF is password-protected; send it unlocked") from exc
            raise InvalidImage(f"the data is not a readable PDF: {exc}") from exc
        try:
            yield pdf
        finally:
            pdf.close()


def _page_sizes(pdf: pdfium.PdfDocument, limits: ImageLimits) -> list[tuple[int, int]]:
    """Each page's size in pixels at the rendering DPI, checked against the limits."""
    pages = len(pdf)
    if pages == 0:
        raise InvalidImage("the PDF has no pages")
    check_page_count(pages, limits)
    scale = limits.pdf_dpi / POINTS_PER_INCH
    sizes = []
    for index in range(pages):
        try:
            width_pt, height_pt = pdf.get_page_size(index)
        except pdfium.PdfiumError as exc:
            raise InvalidImage(f"page {index + 1} of the PDF is corrupt: {exc}") from exc
        if not (math.isfinite(width_pt) and math.isfinite(height_pt)):
            raise InvalidImage(f"page {index + 1} of the PDF has no valid size")
        width, height = math.ceil(width_pt * scale), math.ceil(height_pt * scale)
        check_page_pixels(width, height, index + 1, limits)
        sizes.append((width, height))
    return sizes


def inspect_pdf(data: bytes, limits: ImageLimits) -> ImageInfo:
    """Open the PDF and check its pages against the limits, drawing nothing. Blocking."""
    with _document(data, limits) as pdf:
        return stacked(_page_sizes(pdf, limits), "PDF")


@dataclass(frozen=True, slots=True)
class PageToDraw:
    """A checked PDF page not drawn yet: its index and its size in pixels at the DPI."""

    index: int
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def plan_pdf(data: bytes, limits: ImageLimits, *, read_text: bool) -> list[OcrPage | PageToDraw]:
    """Every page checked against the limits, none drawn: with `read_text`, a page that
    carries a text layer comes back as that text (an `OcrPage` from the text layer, in the
    pixels of the rendering DPI); any other page as its size, to draw later. Blocking."""
    with _document(data, limits) as pdf:
        plans: list[OcrPage | PageToDraw] = []
        for index, size in enumerate(_page_sizes(pdf, limits)):
            text = _text_layer_page(pdf, index, size, limits.pdf_dpi) if read_text else None
            plans.append(text if text is not None else PageToDraw(index, *size))
        return plans


def draw_pdf_pages(
    data: bytes,
    limits: ImageLimits,
    indices: Sequence[int],
    *,
    budget_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> list[Image]:
    """The pages `indices` (from 0) as RGB arrays at the rendering DPI. Blocking; gives up
    with `RenderTimeout` once `budget_s` is spent (checked between pages: PDFium cannot be
    interrupted)."""
    deadline = clock() + budget_s
    with _document(data, limits) as pdf:
        images = []
        for index in indices:
            if clock() > deadline:
                raise RenderTimeout(
                    f"rendering stopped at page {index + 1} of {len(pdf)}: it took longer "
                    f"than {limits.render_timeout_s:g} s"
                )
            images.append(_render_page(pdf, index, limits))
        return images


def render_pdf(
    data: bytes, limits: ImageLimits, clock: Callable[[], float] = time.monotonic
) -> list[Image]:
    """Every page at the rendering DPI, within the rendering time limit. Blocking."""
    pages = plan_pdf(data, limits, read_text=False)
    indices = [page.index for page in pages if isinstance(page, PageToDraw)]
    return draw_pdf_pages(data, limits, indices, budget_s=limits.render_timeout_s, clock=clock)


def _text_layer_page(
    pdf: pdfium.PdfDocument, index: int, size: tuple[int, int], dpi: int
) -> OcrPage | None:
    """The page's text runs as lines, boxes in pixels; None when it carries no text."""
    page = pdf[index]
    try:
        text_page = page.get_textpage()
        try:
            lines = tuple(_text_lines(text_page, page.get_height(), dpi / POINTS_PER_INCH))
        finally:
            text_page.close()
    except pdfium.PdfiumError as exc:
        raise InvalidImage(f"the text of page {index + 1} of the PDF is unreadable: {exc}") from exc
    finally:
        page.close()
    if not lines:
        return None
    width, height = size
    return OcrPage(index + 1, width, height, lines, source=PageSource.TEXT_LAYER)


def _text_lines(text_page: pdfium.PdfTextPage, height_pt: float, scale: float) -> Iterator[OcrLine]:
    # PDF space has its origin at the bottom left, in points; page pixels at the top left.
    for rect in range(text_page.count_rects()):
        left, bottom, right, top = text_page.get_rect(rect)
        text = text_page.get_text_bounded(left, bottom, right, top).strip()
        if not text:
            continue
        x0, x1 = left * scale, right * scale
        y0, y1 = (height_pt - top) * scale, (height_pt - bottom) * scale
        yield OcrLine(text, TEXT_LAYER_CONFIDENCE, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


def _render_page(pdf: pdfium.PdfDocument, index: int, limits: ImageLimits) -> Image:
    page = pdf[index]
    try:
        bitmap = page.render(scale=limits.pdf_dpi / POINTS_PER_INCH, rev_byteorder=True)
        try:
            return np.array(bitmap.to_numpy()[:, :, :3], dtype=np.uint8)
        finally:
            bitmap.close()
    except pdfium.PdfiumError as exc:
        raise InvalidImage(f"page {index + 1} of the PDF cannot be rendered: {exc}") from exc
    finally:
        page.close()
