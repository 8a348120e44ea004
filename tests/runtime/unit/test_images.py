import io

import numpy as np
import pillow_heif
import pytest
from PIL import Image as PilImage

from ocr_runtime.application import (
    ImageLimits,
    RenderTimeout,
    check_media_type,
    decode_document,
    decode_image,
    inspect_document,
    inspect_image,
)
from ocr_runtime.application.pdf import render_pdf
from ocr_runtime.domain import (
    EncryptedDocument,
    ImageTooLarge,
    InvalidImage,
    TooManyPages,
    TooManyPixels,
    UnsupportedMediaType,
)
from tests.runtime.unit.runtime_fakes import png_bytes
from tests.support.pdfs import blank_pdf, dark_square_page, encrypted_pdf, pdf_of_images, tiff_pages

LIMITS = ImageLimits(max_bytes=1_000_000, max_pixels=1_000_000)
# So that the tests can write HEIC files (the runtime registers it for reading on its own).
pillow_heif.register_heif_opener()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "HEIF"])
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
    "declared",
    ["image/png", "image/jpeg; q=1", "", None, "application/octet-stream", "application/pdf",
     "image/heic", "image/heif", "image/tiff"],
)  # fmt: skip
def test_declared_types_accepted(declared: str | None) -> None:
    check_media_type(declared)


@pytest.mark.parametrize("declared", ["application/zip", "text/plain", "image/gif"])
def test_declared_types_refused(declared: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        check_media_type(declared)


def test_multi_page_tiff_is_a_document_of_pages() -> None:
    data = tiff_pages((40, 20), (30, 50), (10, 10))
    info = inspect_document(data, LIMITS)
    assert (info.pages, info.width, info.height) == (3, 40, 80)
    pages = decode_document(data, LIMITS)
    assert [page.shape for page in pages] == [(20, 40, 3), (50, 30, 3), (10, 10, 3)]
    assert [int(page[0, 0, 0]) for page in pages] == [10, 20, 30]


def test_tiff_page_count_and_every_page_size_are_checked() -> None:
    with pytest.raises(TooManyPages) as caught:
        inspect_document(tiff_pages(*[(8, 8)] * 4), ImageLimits(10**6, 10**6, max_pages=3))
    assert (caught.value.code, caught.value.http_status) == ("too_many_pages", 422)
    # A small first page does not let a huge second one through.
    with pytest.raises(TooManyPixels, match="page 2"):
        inspect_document(tiff_pages((10, 10), (1200, 1000)), ImageLimits(10**7, 10**6))


def test_heic_decodes_to_rgb() -> None:
    buffer = io.BytesIO()
    PilImage.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="HEIF", quality=100)
    (page,) = decode_document(buffer.getvalue(), LIMITS)
    assert page.shape == (48, 64, 3)
    assert abs(int(page[24, 32, 0]) - 200) < 12 and int(page[24, 32, 1]) < 60


def test_pdf_pages_are_sized_and_rendered_at_the_dpi() -> None:
    data = pdf_of_images([dark_square_page(), dark_square_page()], dpi=100.0)  # 2 x 2 inches
    limits = ImageLimits(10**6, 10**6, pdf_dpi=150)
    info = inspect_document(data, limits)
    assert (info.format, info.pages, info.width, info.height) == ("PDF", 2, 300, 600)
    pages = decode_document(data, limits)
    assert [page.shape for page in pages] == [(300, 300, 3)] * 2
    # The square drawn at 50..100 of 200 pixels is at 75..150 of 300.
    assert int(pages[1][110, 110].max()) < 40 and int(pages[1][200, 200].min()) > 220


BAD_PDFS = [
    ("password-protected", encrypted_pdf(), EncryptedDocument, "encrypted_document"),
    ("huge page", blank_pdf(14_400, 14_400), TooManyPixels, "too_many_pixels"),
    ("thousands of pages", blank_pdf(pages=5000), TooManyPages, "too_many_pages"),
    ("no pages", blank_pdf(pages=0), InvalidImage, "invalid_image"),
    ("malformed", b"%PDF-1.7\n1 0 obj << /Type /Catalog", InvalidImage, "invalid_image"),
    ("truncated", blank_pdf(pages=3)[:150], InvalidImage, "invalid_image"),
]


@pytest.mark.parametrize(("data", "error", "code"), [b[1:] for b in BAD_PDFS],
                         ids=[b[0] for b in BAD_PDFS])  # fmt: skip
def test_bad_pdfs_are_refused_before_rendering(
    data: bytes, error: type[InvalidImage], code: str
) -> None:
    limits = ImageLimits(max_bytes=10**6, max_pixels=40_000_000)
    with pytest.raises(error) as caught:
        inspect_document(data, limits)
    assert (caught.value.code, caught.value.http_status) == (code, 422)
    with pytest.raises(error):
        decode_document(data, limits)  # the worker checks the same before drawing a page


def test_rendering_stops_once_its_time_is_spent() -> None:
    ticks = iter(range(100))  # every look at the clock is one second later
    limits = ImageLimits(10**6, 10**6, pdf_dpi=72, render_timeout_s=2.5)
    with pytest.raises(RenderTimeout, match="page 3 of 5") as caught:
        render_pdf(blank_pdf(100, 100, pages=5), limits, clock=lambda: float(next(ticks)))
    assert caught.value.code == "render_timeout"
