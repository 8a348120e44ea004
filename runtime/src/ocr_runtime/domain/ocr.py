"""Value objects for what an OCR engine produces, and what a job returns: one result per page
of the submitted document (a single image is a document of one page)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

# Four (x, y) corners, clockwise from top-left, in source-image pixels.
Box = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]

# Pages of a document's text are separated by a form feed, as `pdftotext` does.
PAGE_SEPARATOR = "\f"


@dataclass(frozen=True, slots=True)
class OcrLine:
    text: str
    confidence: float
    box: Box


class PageSource(StrEnum):
    """Where a page's text came from: recognised from its pixels, or read from the text layer
    a PDF page carries."""

    OCR = "ocr"
    TEXT_LAYER = "text_layer"


class TextLayer(StrEnum):
    """What to do with the text a PDF page already carries: `ignore` it and recognise the
    page's pixels, or `prefer` it (a page without text is still recognised)."""

    IGNORE = "ignore"
    PREFER = "prefer"


@dataclass(frozen=True, slots=True)
class OcrPage:
    """One page: its number (from 1), its size in pixels, and its lines in that page's
    pixel coordinates."""

    page: int
    width: int
    height: int
    lines: tuple[OcrLine, ...] = ()
    source: PageSource = PageSource.OCR

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@dataclass(frozen=True, slots=True)
class OcrResult:
    """`lines`: every line, pages in order (what an engine returns for one image). `pages`:
    the same lines page by page; empty for an engine's raw result and for results stored
    before documents existed."""

    lines: tuple[OcrLine, ...] = field(default_factory=tuple)
    pages: tuple[OcrPage, ...] = field(default_factory=tuple)

    @classmethod
    def of_pages(cls, pages: Iterable[OcrPage]) -> OcrResult:
        pages = tuple(pages)
        return cls(lines=tuple(line for page in pages for line in page.lines), pages=pages)

    @property
    def text(self) -> str:
        """Full text: the lines in reading order, one per row; pages separated by `\\f`."""
        if self.pages:
            return PAGE_SEPARATOR.join(page.text for page in self.pages)
        return "\n".join(line.text for line in self.lines)
