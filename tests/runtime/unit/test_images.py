import io

import numpy as np
import pytest
from PIL import Image as PilImage
from runtime_fakes import png_bytes

from ocr_runtime.application import ImageLimits, check_media_type, decode_image, inspect_image
from ocr_runtime.domain import ImageTooLarge, InvalidImage, TooManyPixels, UnsupportedMediaType

LIMITS = ImageLimits(max_bytes=1_000_000, max_pixels=1_000_000)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
def test_supported_formats_pass(fmt: str) -> None:
    info = inspect_image(png_bytes(40, 20, fmt), LIMITS)
    assert (info.width, info.height, info.format) == (40, 20, fmt)


def test_decode_gives_rgb_array() -> None:
    buffer = io.BytesIO()
    PilImage.new("L", (7, 3), 128).save(buffer, format="PNG")
    array = decode_image(buffer.getvalue(), LIMITS)
    assert array.shape == (3, 7, 3)
    assert array.dtype == np.uint8
    assert int(array[0, 0, 0]) == 128


def test_empty_bytes_are_invalid() -> None:
    with pytest.raises(InvalidImage):
        inspect_image(b"", LIMITS)


def test_text_is_not_an_image() -> None:
    with pytest.raises(InvalidImage) as caught:
        inspect_image(b"hello, I am not an image", LIMITS)
    assert caught.value.http_status == 422


def test_truncated_image_is_refused() -> None:
    data = png_bytes(300, 300, "JPEG")
    with pytest.raises(InvalidImage) as caught:
        inspect_image(data[: len(data) // 2], LIMITS)
    assert type(caught.value) is InvalidImage


def test_byte_limit_gives_413() -> None:
    with pytest.raises(ImageTooLarge) as caught:
        inspect_image(png_bytes(), ImageLimits(max_bytes=10, max_pixels=10**6))
    assert caught.value.http_status == 413


def test_pixel_limit_is_checked_from_the_header() -> None:
    with pytest.raises(TooManyPixels) as caught:
        inspect_image(png_bytes(2000, 1000), LIMITS)
    assert caught.value.http_status == 422


def test_gif_is_an_unsupported_media_type() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        inspect_image(png_bytes(10, 10, "GIF"), LIMITS)
    assert caught.value.http_status == 415


@pytest.mark.parametrize(
    "declared", ["image/png", "image/jpeg; q=1", "", None, "application/octet-stream"]
)
def test_declared_types_accepted(declared: str | None) -> None:
    check_media_type(declared)


@pytest.mark.parametrize("declared", ["application/pdf", "text/plain", "image/gif"])
def test_declared_types_refused(declared: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        check_media_type(declared)
