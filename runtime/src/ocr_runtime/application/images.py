"""Image validation and decoding. Untrusted bytes are checked in order of cost: size, header
(format, dimensions: the decompression-bomb guard), then a full decode so a truncated file is
refused before anything is stored."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image as PilImage
from PIL import ImageOps, UnidentifiedImageError

from ocr_runtime.application.ports import Image
from ocr_runtime.domain import ImageTooLarge, InvalidImage, TooManyPixels, UnsupportedMediaType

# Pillow format name -> media type. Only formats common for scans and photos: every extra
# decoder is attack surface.
SUPPORTED_FORMATS: dict[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
_SUPPORTED_MEDIA_TYPES = frozenset(SUPPORTED_FORMATS.values()) | {"image/jpg", "image/x-ms-bmp"}
# Clients that do not know the type send these; the bytes decide.
_UNTYPED_MEDIA_TYPES = frozenset({"", "application/octet-stream"})
# Decoding errors Pillow raises on corrupt or truncated data.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError)


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int


@dataclass(frozen=True, slots=True)
class ImageInfo:
    width: int
    height: int
    format: str

    @property
    def pixels(self) -> int:
        return self.width * self.height


def install_pixel_guard(max_pixels: int) -> None:
    """Make Pillow itself refuse bombs too (process-wide: it raises above twice the value),
    as a second line behind our own dimension check."""
    PilImage.MAX_IMAGE_PIXELS = max_pixels


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
    """Read the header only (cheap): format and dimensions, checked against the limits."""
    if not data:
        raise InvalidImage("the image is empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"image has {len(data)} bytes; the limit is {limits.max_bytes}")
    try:
        image = PilImage.open(io.BytesIO(data))
    except PilImage.DecompressionBombError as exc:
        raise TooManyPixels(f"image exceeds the pixel limit of {limits.max_pixels}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("the data is not an image in a known format") from exc
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"the image header is corrupt: {exc}") from exc
    info = ImageInfo(width=image.width, height=image.height, format=image.format or "")
    if info.format not in SUPPORTED_FORMATS:
        image.close()
        raise UnsupportedMediaType(
            f"image format {info.format or 'unknown'} is not supported; send one of "
            f"{', '.join(sorted(SUPPORTED_FORMATS))}"
        )
    if info.width <= 0 or info.height <= 0:
        image.close()
        raise InvalidImage("the image has no pixels")
    if info.pixels > limits.max_pixels:
        image.close()
        raise TooManyPixels(
            f"image has {info.width}x{info.height} = {info.pixels} pixels; the limit is "
            f"{limits.max_pixels}"
        )
    return image, info


def _load(image: PilImage.Image) -> None:
    try:
        image.load()
    except PilImage.DecompressionBombError as exc:
        raise TooManyPixels("the image decodes to more pixels than allowed") from exc
    except MemoryError as exc:
        raise TooManyPixels("the image is too large to decode") from exc
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"the image is truncated or corrupt: {exc}") from exc


def finish_inspection(image: PilImage.Image) -> None:
    """Decode every pixel of an opened image (blocking; seconds for huge images), then close."""
    try:
        _load(image)
    finally:
        image.close()


def inspect_image(data: bytes, limits: ImageLimits) -> ImageInfo:
    """Full validation: header checks and a complete decode. Blocking."""
    image, info = open_image(data, limits)
    finish_inspection(image)
    return info


def decode_image(data: bytes, limits: ImageLimits) -> Image:
    """Bytes to an RGB array for an engine, upright per the EXIF orientation. Blocking."""
    image, _ = open_image(data, limits)
    try:
        _load(image)
        try:
            upright = ImageOps.exif_transpose(image)
        except _DECODE_ERRORS:
            upright = image  # a broken EXIF block should not cost the OCR
        rgb = upright.convert("RGB")
        return np.asarray(rgb, dtype=np.uint8)
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"the image could not be converted: {exc}") from exc
    finally:
        image.close()
