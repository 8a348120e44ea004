"""A result as plain data (JSON), for the result topic and the database alike. Lines are kept
as one list, as before pages existed, and each page says how many of them are its own: a
reader that knows nothing of pages still reads every line, and one that does rebuilds them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ocr_runtime.domain import Box, OcrLine, OcrPage, OcrResult, PageSource

Payload = list[dict[str, Any]]


def lines_payload(result: OcrResult) -> Payload:
    return [
        {"text": ln.text, "confidence": ln.confidence, "box": [list(p) for p in ln.box]}
        for ln in result.lines
    ]


def pages_payload(result: OcrResult) -> Payload:
    return [
        {"page": p.page, "width": p.width, "height": p.height, "source": p.source.value,
         "line_count": len(p.lines)}
        for p in result.pages
    ]  # fmt: skip


def _line(raw: dict[str, Any]) -> OcrLine:
    corners = tuple((float(x), float(y)) for x, y in raw["box"])
    box: Box = (corners[0], corners[1], corners[2], corners[3])
    return OcrLine(text=str(raw["text"]), confidence=float(raw["confidence"]), box=box)


def result_from_payload(lines: Payload, pages: Sequence[dict[str, Any]] | None) -> OcrResult:
    """Raises ValueError/KeyError/TypeError on malformed data."""
    all_lines = tuple(_line(raw) for raw in lines)
    if not pages:
        return OcrResult(lines=all_lines)
    if sum(int(p["line_count"]) for p in pages) != len(all_lines):
        raise ValueError("the pages' line counts do not add up to the lines")
    built, start = [], 0
    for raw in pages:
        end = start + int(raw["line_count"])
        built.append(
            OcrPage(page=int(raw["page"]), width=int(raw["width"]), height=int(raw["height"]),
                    lines=all_lines[start:end], source=PageSource(raw.get("source", "ocr")))
        )  # fmt: skip
        start = end
    return OcrResult(lines=all_lines, pages=tuple(built))
