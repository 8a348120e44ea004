"""Reads the multipart upload into memory with a hard byte limit, so an oversized body is
refused (413) while it streams in, before it reaches any disk or decoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ocr_runtime.api.errors import BadRequest, EmptyBody, MissingField
from ocr_runtime.domain import ImageTooLarge, UnsupportedMediaType

# Multipart framing (boundaries, part headers, small extra fields) on top of the image.
MULTIPART_OVERHEAD = 64 * 1024
_MAX_PARTS = 16


@dataclass(frozen=True, slots=True)
class FilePart:
    data: bytes
    content_type: str | None


@dataclass
class _Collector:
    """python-multipart callbacks keeping only the wanted field."""

    wanted: bytes
    parts: int = 0
    found: FilePart | None = None
    # Whether the current part is the wanted field, known once its headers are read.
    _in_wanted: bool = False
    _header_name: bytearray = field(default_factory=bytearray)
    _header_value: bytearray = field(default_factory=bytearray)
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _data: bytearray = field(default_factory=bytearray)

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > _MAX_PARTS:
            raise BadRequest(f"more than {_MAX_PARTS} form fields")
        self._headers.clear()
        self._data.clear()
        self._in_wanted = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._in_wanted = options.get(b"name") == self.wanted

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_wanted:
            self._data += data[start:end]

    def on_part_end(self) -> None:
        if self._in_wanted and self.found is None:
            raw_type = self._headers.get(b"content-type")
            self.found = FilePart(
                data=bytes(self._data),
                content_type=None if raw_type is None else raw_type.decode("latin-1"),
            )
            self._data = bytearray()  # from here on the body is held once, as bytes


def _declared_length(request: Request, limit: int) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequest("invalid Content-Length")
    length = int(raw)
    if length > limit:
        raise ImageTooLarge(
            f"request body has {length} bytes; the image limit is {limit - MULTIPART_OVERHEAD}"
        )
    return length


async def read_file_field(request: Request, name: str, max_bytes: int) -> FilePart:
    """The field `name` of a multipart/form-data body. Raises 400/413/415/422 errors."""
    limit = max_bytes + MULTIPART_OVERHEAD
    length = _declared_length(request, limit)
    content_type = request.headers.get("content-type", "")
    media, options = parse_options_header(content_type)
    if media != b"multipart/form-data":
        if length == 0 or not content_type:
            raise EmptyBody(f"send multipart/form-data with the image in the field '{name}'")
        raise UnsupportedMediaType(
            f"request body must be multipart/form-data, not {media.decode('latin-1')!r}"
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart body without a boundary")
    collector = _Collector(wanted=name.encode())
    received = 0
    try:
        parser = MultipartParser(boundary, callbacks=_callbacks(collector))
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise ImageTooLarge(f"request body exceeds the image limit of {max_bytes} bytes")
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from exc
    if received == 0:
        raise EmptyBody(f"empty body; send the image in the multipart field '{name}'")
    if collector.found is None:
        raise MissingField(f"multipart field '{name}' is missing")
    return collector.found


def _callbacks(collector: _Collector) -> Any:
    return {
        "on_part_begin": collector.on_part_begin,
        "on_part_data": collector.on_part_data,
        "on_part_end": collector.on_part_end,
        "on_header_field": collector.on_header_field,
        "on_header_value": collector.on_header_value,
        "on_header_end": collector.on_header_end,
        "on_headers_finished": collector.on_headers_finished,
    }
