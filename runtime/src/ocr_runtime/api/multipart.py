"""Finds one field of a multipart/form-data body held in memory (RFC 7578, framing of
RFC 2046 5.1.1).

The upload route reads the body whole, under its byte limit, before it parses it: a parse
is then a handful of `bytes.find` calls, where a streaming parser walks the framing byte by
byte in Python and costs more CPU than the rest of a small upload's checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from python_multipart.multipart import parse_options_header

from ocr_runtime.api.errors import BadRequest

MAX_PARTS = 16
_CRLF = b"\r\n"
_HEADERS_END = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class FilePart:
    data: bytes
    content_type: str | None


def find_field(body: bytes, boundary: bytes, wanted: bytes) -> FilePart | None:
    """The first part named `wanted`, or None when no complete part has that name (a body
    cut short ends with the last complete part). Raises `BadRequest` for broken framing or
    more than MAX_PARTS parts."""
    delimiter = _CRLF + b"--" + boundary
    if body.startswith(delimiter[2:]):  # the first delimiter may open the body
        position = len(delimiter) - 2
    else:
        start = body.find(delimiter)  # after a preamble
        if start < 0:
            return None
        position = start + len(delimiter)
    for _ in range(MAX_PARTS):
        if body.startswith(b"--", position):  # the closing delimiter
            return None
        line_end = body.find(_CRLF, position)
        if line_end < 0:
            return None
        if body[position:line_end].strip(b" \t"):  # only transport padding may follow
            raise BadRequest("malformed multipart body: text after a boundary")
        data_end = body.find(delimiter, line_end)
        if data_end < 0:  # cut short: this part never ends
            return None
        headers_end = body.find(_HEADERS_END, line_end, data_end + 2)
        if headers_end < 0:
            raise BadRequest("malformed multipart body: no blank line after a part's headers")
        headers = _headers(body[line_end + 2 : headers_end])
        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        if options.get(b"name") == wanted:
            raw_type = headers.get(b"content-type")
            content_type = None if raw_type is None else raw_type.decode("latin-1")
            return FilePart(body[headers_end + 4 : data_end], content_type)
        position = data_end + len(delimiter)
    raise BadRequest(f"more than {MAX_PARTS} form fields")


def _headers(block: bytes) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = {}
    for line in block.split(_CRLF) if block else ():
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise BadRequest("malformed multipart body: a part header without a name")
        headers[name.strip().lower()] = value.strip()
    return headers
