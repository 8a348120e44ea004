"""Documents: what a submission may be (an image, a multi-page TIFF, a PDF) and how each is
checked (API) and turned into page images (worker). The bytes decide, not the declared type."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ocr_runtime.application.images import (
    ImageInfo,
    ImageLimits,
    decode_image_pages,
    inspect_image,
)
from ocr_runtime.application.pdf import (
    PageToDraw,
    draw_pdf_pages,
    inspect_pdf,
    is_pdf,
    plan_pdf,
    render_pdf,
)
from ocr_runtime.application.ports import Image
from ocr_runtime.domain import OcrPage, TextLayer

# A page of an opened document: pixels (images decode whole), text read from a PDF's text
# layer, or a PDF page to draw when its turn in the engine comes.
PagePlan = Image | OcrPage | PageToDraw


def inspect_document(data: bytes, limits: ImageLimits) -> ImageInfo:
    """Full validation of any accepted input, drawing no PDF page. Blocking."""
    if is_pdf(data):
        return inspect_pdf(data, limits)
    return inspect_image(data, limits)


def decode_document(data: bytes, limits: ImageLimits) -> list[Image]:
    """One RGB array per page (a PDF rasterised at the rendering DPI). Blocking."""
    if is_pdf(data):
        return render_pdf(data, limits)
    return decode_image_pages(data, limits)


class Document:
    """A checked document whose PDF pages are drawn a few at a time (`draw`), so a long PDF
    never holds every page's pixels at once. Its rendering time adds up over the calls and
    is bounded by the rendering time limit as a whole."""

    def __init__(
        self,
        data: bytes,
        pages: Sequence[PagePlan],
        limits: ImageLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pages: tuple[PagePlan, ...] = tuple(pages)
        self._data = data
        self._limits = limits
        self._clock = clock
        self._render_s = 0.0

    def draw(self, indices: Sequence[int]) -> list[Image]:
        """The pixels of the pages `indices` (none of them read from a text layer). Blocking;
        raises `InvalidImage` (`RenderTimeout` included) when a page cannot be drawn."""
        to_draw = [i for i in indices if isinstance(self.pages[i], PageToDraw)]
        drawn: dict[int, Image] = {}
        if to_draw:
            started = self._clock()
            budget_s = self._limits.render_timeout_s - self._render_s
            images = draw_pdf_pages(self._data, self._limits, to_draw, budget_s=budget_s,
                                    clock=self._clock)  # fmt: skip
            self._render_s += self._clock() - started
            drawn = dict(zip(to_draw, images, strict=True))
        pixels = []
        for index in indices:
            page = self.pages[index]
            if isinstance(page, OcrPage):
                raise ValueError(f"page {index + 1} was read from its text layer")
            pixels.append(page if not isinstance(page, PageToDraw) else drawn[index])
        return pixels


def open_document(data: bytes, limits: ImageLimits, *, text_layer: TextLayer) -> Document:
    """Check a document and plan its pages, drawing no PDF page: with `TextLayer.PREFER` a
    PDF page that carries text is read from it (other inputs have no text layer). Blocking;
    raises `InvalidImage`."""
    if is_pdf(data):
        prefer = text_layer is TextLayer.PREFER
        return Document(data, plan_pdf(data, limits, read_text=prefer), limits)
    return Document(data, decode_image_pages(data, limits), limits)


def page_pixels(page: PagePlan) -> int:
    """What drawing and recognising the page costs, in pixels (nothing for read text)."""
    if isinstance(page, OcrPage):
        return 0
    if isinstance(page, PageToDraw):
        return page.pixels
    return int(page.shape[0]) * int(page.shape[1])
