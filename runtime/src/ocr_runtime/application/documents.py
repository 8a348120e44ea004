"""Documents: what a submission may be (an image, a multi-page TIFF, a PDF) and how each is
checked (API) and turned into page images (worker). The bytes decide, not the declared type."""

from __future__ import annotations

from ocr_runtime.application.images import (
    ImageInfo,
    ImageLimits,
    decode_image_pages,
    inspect_image,
)
from ocr_runtime.application.pdf import inspect_pdf, is_pdf, read_pdf, render_pdf
from ocr_runtime.application.ports import Image
from ocr_runtime.domain import OcrPage, TextLayer


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


def read_document(
    data: bytes, limits: ImageLimits, *, text_layer: TextLayer
) -> list[Image | OcrPage]:
    """`decode_document`, except that with `TextLayer.PREFER` a PDF page that carries text
    comes back as that text instead of pixels (other inputs have no text layer). Blocking."""
    if text_layer is TextLayer.PREFER and is_pdf(data):
        return read_pdf(data, limits)
    return list(decode_document(data, limits))
