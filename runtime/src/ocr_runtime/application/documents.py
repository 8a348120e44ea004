"""Documents: what a submission may be (an image, a multi-page TIFF, a PDF) and how each is
checked (API) and turned into page images (worker). The bytes decide, not the declared type."""

from __future__ import annotations

from ocr_runtime.application.images import (
    ImageInfo,
    ImageLimits,
    decode_image_pages,
    inspect_image,
)
from ocr_runtime.application.pdf import inspect_pdf, is_pdf, render_pdf
from ocr_runtime.application.ports import Image


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
