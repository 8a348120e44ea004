"""Reads the multipart upload into memory with a hard byte limit, so an oversized body is
refused (413) while it streams in, before it reaches any disk or decoder, then finds its
image field."""

from __future__ import annotations

from fastapi import Request
from python_multipart.multipart import parse_options_header

from ocr_runtime.api.errors import BadRequest, EmptyBody, MissingField
from ocr_runtime.api.multipart import FilePart, find_field
from ocr_runtime.domain import ImageTooLarge, UnsupportedMediaType

# Multipart framing (boundaries, part headers, small extra fields) on top of the image.
MULTIPART_OVERHEAD = 64 * 1024


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
    body = await _read_body(request, limit, max_bytes)
    if not body:
        raise EmptyBody(f"empty body; send the image in the multipart field '{name}'")
    found = find_field(body, boundary, name.encode())
    if found is None:
        raise MissingField(f"multipart field '{name}' is missing")
    return found


async def _read_body(request: Request, limit: int, max_bytes: int) -> bytes:
    """The body, refused (413) as soon as it streams past `limit` bytes."""
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise ImageTooLarge(f"request body exceeds the image limit of {max_bytes} bytes")
        if chunk:
            chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
