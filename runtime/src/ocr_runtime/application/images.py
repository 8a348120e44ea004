"""Image validation and decoding. Untrusted bytes are checked in order of cost: size, header
(format, dimensions of every page: the decompression-bomb guard), then a full decode so a
truncated file is refused before anything is stored. A multi-page TIFF is a document: each
page is checked against the pixel limit and decoded as a page of its own."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

import numpy as np
import pillow_heif
from PIL import Image as PilImage
from PIL import ImageOps, UnidentifiedImageError

from ocr_runtime.application.ports import Image
from ocr_runtime.core.settings import Settings
from ocr_runtime.domain import (
    ImageTooLarge,
    InvalidImage,
    TooManyPages,
    TooManyPixels,
    UnsupportedMediaType,
)

# Pillow format name -> media type. Only formats common for scans and photos: every extra
# decoder is attack surface.
SUPPORTED_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "HEIF": "image/heic",
    # Not a Pillow format: PDFs are rasterised by PDFium (see `pdf`), never by Pillow.
    "PDF": "application/pdf",
}
_SUPPORTED_MEDIA_TYPES = frozenset(SUPPORTED_FORMATS.values()) | {
    "image/jpg",
    "image/x-ms-bmp",
    "image/heif",
    "image/heic-sequence",
    "image/heif-sequence",
}
# Formats whose frames are pages of a document; other formats are read from their first frame
# (an animated WebP is one picture, not a document).
_PAGED_FORMATS = frozenset({"TIFF"})
# Clients that do not know the type send these; the bytes decide.
_UNTYPED_MEDIA_TYPES = frozenset({"", "application/octet-stream"})
# Decoding errors Pillow raises on corrupt or truncated data.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError)


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int  # per page
    max_pages: int = 100
    pdf_dpi: int = 200
    # Longest rasterisation of one document, checked between its pages.
    render_timeout_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageLimits:
        return cls(
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_pixels,
            max_pages=settings.max_pages,
            pdf_dpi=settings.pdf_dpi,
            render_timeout_s=settings.render_timeout_s,
        )


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """Of a document of several pages: the widest page's width and the pages' total height
    (the pages stacked), so that `pixels` bounds the work of the whole document."""

    width: int
    height: int
    format: str
    pages: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height


def stacked(sizes: list[tuple[int, int]], fmt: str) -> ImageInfo:
    """The info of a document whose pages have `sizes` (width, height)."""
    return ImageInfo(
        width=max(w for w, _ in sizes),
        height=sum(h for _, h in sizes),
        format=fmt,
        pages=len(sizes),
    )


@cache
def _register_heif() -> None:
    # Once per process: Pillow then opens HEIC/HEIF like any of its own formats.
    pillow_heif.register_heif_opener()


def install_pixel_guard(max_pixels: int) -> None:
    """Make Pillow itself refuse bombs too (process-wide: it raises above twice the value),
    as a second line behind our own dimension check."""
    PilImage.MAX_IMAGE_PIXELS = max_pixels


def check_page_pixels(width: int, height: int, page: int, limits: ImageLimits) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImage(f"page {page} has no pixels")
    if width * height > limits.max_pixels:
        raise TooManyPixels(
            f"page {page} has {width}x{height} = {width * height} pixels; the limit is "
            f"{limits.max_pixels}"
        )


def check_page_count(pages: int, limits: ImageLimits) -> None:
    if pages > limits.max_pages:
        raise TooManyPages(f"the document has {pages} pages; the limit is {limits.max_pages}")


def check_media_type(content_type: str | None) -> None:
    """Refuse a declared media type we do not decode (415) before reading the bytes."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base in _UNTYPED_MEDIA_TYPES or base in _SUPPORTED_MEDIA_TYPES:
        return
    raise UnsupportedMediaType(
        f"media type {base!r} is not supported; send one of "
        f"{', '.join(sorted(SUPPORTED_FORMATS.values()))}"
    )


def open_image(data: bytes, limits: ImageLimits) -> tuple[PilImage.Image, ImageInfo]:
    """Read the headers only (cheap): format, pages and dimensions, checked against the
    limits."""
    if not data:
        raise InvalidImage("the image is empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"image has {len(data)} bytes; the limit is {limits.max_bytes}")
    _register_heif()
    try:
        image = PilImage.open(io.BytesIO(data))
    except PilImage.DecompressionBombError as exc:
        raise TooManyPixels(f"image exceeds the pixel limit of {limits.max_pixels}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("the data is not an image in a known format") from exc
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"the image header is corrupt: {exc}") from exc
    try:
        return image, _check_header(image, limits)
    except InvalidImage:
        image.close()
        raise


def _check_header(image: PilImage.Image, limits: ImageLimits) -> ImageInfo:
    fmt = image.format or ""
    if fmt not in SUPPORTED_FORMATS or fmt == "PDF":
        raise UnsupportedMediaType(
            f"image format {fmt or 'unknown'} is not supported; send one of "
            f"{', '.join(sorted(SUPPORTED_FORMATS))}"
        )
    pages = _frame_count(image)
    check_page_count(pages, limits)
    sizes = []
    for index in range(pages):
        _seek(image, index)
        check_page_pixels(image.width, image.height, index + 1, limits)
        sizes.append((image.width, image.height))
    _seek(image, 0)
    return stacked(sizes, fmt)


def _frame_count(image: PilImage.Image) -> int:
    if image.format not in _PAGED_FORMATS:
        return 1
    try:
        return int(getattr(image, "n_frames", 1))
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"the image's pages cannot be counted: {exc}") from exc


def _seek(image: PilImage.Image, index: int) -> None:
    if index == 0 and image.format not in _PAGED_FORMATS:
        return
    try:
        image.seek(index)
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"page {index + 1} of the image is corrupt: {exc}") from exc


def _load(image: PilImage.Image) -> None:
    try:
        image.load()
    except PilImage.DecompressionBombError as exc:
        raise TooManyPixels("the image decodes to more pixels than allowed") from exc
    except MemoryError as exc:
        raise TooManyPixels("the image is too large to decode") from exc
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"the image is truncated or corrupt: {exc}") from exc


def finish_inspection(image: PilImage.Image, info: ImageInfo) -> None:
    """Decode every pixel of every page of an opened image (blocking; seconds for huge
    images), then close it."""
    try:
        for index in range(info.pages):
            _seek(image, index)
            _load(image)
    finally:
        image.close()


def inspect_image(data: bytes, limits: ImageLimits) -> ImageInfo:
    """Full validation: header checks and a complete decode. Blocking."""
    image, info = open_image(data, limits)
    finish_inspection(image, info)
    return info


def decode_image(data: bytes, limits: ImageLimits) -> Image:
    """Bytes to an RGB array for an engine (the first page). Blocking."""
    return decode_image_pages(data, limits)[0]


def decode_image_pages(data: bytes, limits: ImageLimits) -> list[Image]:
    """Bytes to one RGB array per page, upright per the EXIF orientation. Blocking."""
    image, info = open_image(data, limits)
    try:
        pages = []
        for index in range(info.pages):
            _seek(image, index)
            pages.append(_to_rgb(image))
        return pages
    finally:
        image.close()


def _to_rgb(image: PilImage.Image) -> Image:
    _load(image)
    try:
        try:
            upright = ImageOps.exif_transpose(image)
        except _DECODE_ERRORS:
            upright = image  # a broken EXIF block should not cost the OCR
        rgb = upright.convert("RGB")
        return np.asarray(rgb, dtype=np.uint8)
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"the image could not be converted: {exc}") from exc
