"""Finding a field of a multipart body (`api.multipart`), checked against python-multipart
on the bodies a real client builds, and on broken framing."""

from __future__ import annotations

import httpx
import pytest
from python_multipart.multipart import MultipartParser

from ocr_runtime.api.errors import BadRequest
from ocr_runtime.api.multipart import MAX_PARTS, find_field

BOUNDARY = b"b0undary"


def _client_body(files: dict[str, tuple[str, bytes, str]], data: dict[str, str]) -> bytes:
    """The body httpx sends for these fields, with a fixed boundary."""
    request = httpx.Request(
        "POST",
        "http://t/",
        files=files,
        data=data,
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY.decode()}"},
    )
    return request.read()


def _by_python_multipart(body: bytes) -> dict[bytes, bytes]:
    """Each part's data by its name, as python-multipart reads them."""
    parts: dict[bytes, bytes] = {}
    current: dict[str, bytes] = {"header": b"", "data": b"", "name": b""}

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value = data[start:end]
        if b"name=" in value:
            current["name"] = value.split(b'name="')[1].split(b'"')[0]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current["data"] += data[start:end]

    def on_part_end() -> None:
        parts.setdefault(current["name"], current["data"])
        current["data"] = b""

    parser = MultipartParser(
        BOUNDARY,
        callbacks={
            "on_header_value": on_header_value,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    parser.write(body)
    parser.finalize()
    return parts


@pytest.mark.parametrize(
    "image",
    [b"", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, b"--b0undar\r\n\r\n--", b"\r\n" * 3],
    ids=["empty", "binary", "almost a boundary", "blank lines"],
)
def test_the_field_is_what_python_multipart_reads_from_a_client_body(image: bytes) -> None:
    body = _client_body(
        {"other": ("a.txt", b"first", "text/plain"), "image": ("p.png", image, "image/png")},
        {"text_layer": "prefer"},
    )
    found = find_field(body, BOUNDARY, b"image")
    assert found is not None
    assert found.data == image == _by_python_multipart(body)[b"image"]
    assert found.content_type == "image/png"
    assert find_field(body, BOUNDARY, b"missing") is None


def test_a_preamble_padding_and_a_part_without_type_are_read() -> None:
    body = (
        b"preamble text\r\n--b0undary  \t\r\n"
        b'Content-Disposition: form-data; name="image"\r\n\r\nDATA\r\n--b0undary--\r\n'
    )
    found = find_field(body, BOUNDARY, b"image")
    assert found is not None and (found.data, found.content_type) == (b"DATA", None)


@pytest.mark.parametrize(
    "body",
    [
        b"--b0undary\r\nnonsense",  # never ends
        b'--b0undary\r\nContent-Disposition: form-data; name="image"\r\n\r\nDATA',  # cut short
        b"no boundary anywhere",
        b"--b0undary--\r\n",  # no parts at all
    ],
)
def test_a_body_without_a_complete_field_has_none(body: bytes) -> None:
    assert find_field(body, BOUNDARY, b"image") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"--b0undaryX\r\n\r\nDATA\r\n--b0undary--", "text after a boundary"),
        (b"--b0undary\r\nno colon here\r\n\r\nDATA\r\n--b0undary--", "header without a name"),
        (b'--b0undary\r\nname="image"\r\nDATA\r\n--b0undary--', "no blank line"),
    ],
)
def test_broken_framing_is_a_bad_request(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        find_field(body, BOUNDARY, b"image")


def test_more_parts_than_allowed_are_refused_before_the_field_is_reached() -> None:
    filler = {f"f{i}": "x" for i in range(MAX_PARTS)}
    body = _client_body({"image": ("p.png", b"DATA", "image/png")}, filler)
    assert body.index(b'name="image"') > body.index(f'name="f{MAX_PARTS - 1}"'.encode())
    with pytest.raises(BadRequest, match=f"more than {MAX_PARTS} form fields"):
        find_field(body, BOUNDARY, b"image")
