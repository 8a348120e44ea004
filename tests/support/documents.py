"""Document-like images with known text, rendered with Pillow, for OCR tests and benchmarks.

Fonts come from wheels in the lock only (matplotlib's DejaVu faces and Pillow's built-in
Aileron), so every machine renders the same pixels and nothing is installed at test time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from ocr_runtime.domain import OcrResult

Font = ImageFont.FreeTypeFont

# Words that appear on invoices, receipts and letters. No capital I: in sans-serif faces it is
# the same glyph as a lowercase l, so no reader, human or model, can tell them apart.
_WORDS = (
    "invoice", "total", "amount", "date", "account", "order", "customer", "payment",
    "shipping", "address", "number", "quantity", "price", "tax", "due", "balance",
    "reference", "item", "service", "delivery", "report", "contract", "period", "branch",
    "office", "Seoul", "Busan", "Gwangju", "Daegu", "monthly", "statement", "receipt",
    "paid", "pending", "approved", "summary", "charges", "discount", "subtotal", "terms",
    "Street", "Road", "Company", "Limited", "Bank", "Transfer", "Card", "Cash",
)  # fmt: skip
_FACES = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")
BuiltinFace = "Aileron"  # Pillow's own scalable font, always present


@dataclass(frozen=True, slots=True)
class RenderedDocument:
    """An RGB page (height x width x 3, uint8) and the text it shows, top to bottom."""

    image: npt.NDArray[np.uint8]
    lines: tuple[str, ...]
    # Pixel rectangle (left, top, right, bottom) of each line's ink, in `lines` order.
    line_boxes: tuple[tuple[int, int, int, int], ...]
    face: str
    size: int


def font_faces() -> tuple[str, ...]:
    """Names accepted by `load_font`: the DejaVu faces in matplotlib and Pillow's Aileron."""
    return (*_FACES, BuiltinFace)


@cache
def load_font(face: str, size: int) -> Font:
    if face == BuiltinFace:
        builtin = ImageFont.load_default(size=size)
        assert isinstance(builtin, ImageFont.FreeTypeFont), "Pillow lacks FreeType"
        return builtin
    return ImageFont.truetype(str(_matplotlib_font_dir() / face), size=size)


def _matplotlib_font_dir() -> Path:
    import matplotlib  # noqa: PLC0415  (heavy; only when a DejaVu face is asked for)

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def text_line(rng: random.Random) -> str:
    """Three to six tokens: words, amounts, dates and reference numbers."""
    tokens: list[str] = []
    for _ in range(rng.randint(3, 6)):
        kind = rng.random()
        if kind < 0.6:
            word = rng.choice(_WORDS)
            capitalise = rng.random() < 0.3 and not word.startswith("i")
            tokens.append(word.capitalize() if capitalise else word)
        elif kind < 0.75:
            tokens.append(f"{rng.randint(10, 99_999):,}")
        elif kind < 0.85:
            tokens.append(f"{rng.randint(1, 9_999)}.{rng.randint(0, 99):02d}")
        elif kind < 0.93:
            tokens.append(
                f"{rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            )
        else:
            tokens.append(str(rng.randint(100, 99_999)))
    return " ".join(tokens)


def render_document(
    lines: Sequence[str],
    *,
    face: str = "DejaVuSans.ttf",
    size: int = 32,
    margin: int = 48,
    width: int | None = None,
) -> RenderedDocument:
    """Black text on a white page, one line per row with 1.8x line spacing."""
    font = load_font(face, size)
    pitch = int(size * 1.8)
    widest = max(int(font.getlength(line)) for line in lines) if lines else 0
    page_w = width if width is not None else widest + 2 * margin
    page_h = 2 * margin + pitch * len(lines)
    page = Image.new("RGB", (max(page_w, 1), max(page_h, 1)), "white")
    draw = ImageDraw.Draw(page)
    boxes: list[tuple[int, int, int, int]] = []
    for row, line in enumerate(lines):
        origin = (margin, margin + row * pitch)
        draw.text(origin, line, font=font, fill=(20, 20, 20))
        left, top, right, bottom = draw.textbbox(origin, line, font=font)
        boxes.append((int(left), int(top), int(right), int(bottom)))
    return RenderedDocument(
        image=np.asarray(page, dtype=np.uint8).copy(),
        lines=tuple(lines),
        line_boxes=tuple(boxes),
        face=face,
        size=size,
    )


def render_corpus(
    count: int,
    *,
    seed: int = 7,
    lines_per_document: tuple[int, int] = (5, 8),
    sizes: tuple[int, int] = (28, 40),
) -> list[RenderedDocument]:
    """`count` documents cycling through the font faces, sizes drawn in `sizes` (inclusive)."""
    rng = random.Random(seed)
    faces = font_faces()
    documents = []
    for index in range(count):
        lines = [text_line(rng) for _ in range(rng.randint(*lines_per_document))]
        documents.append(
            render_document(lines, face=faces[index % len(faces)], size=rng.randint(*sizes))
        )
    return documents


def read_rows(document: RenderedDocument, result: OcrResult) -> list[str]:
    """What the engine read on each rendered line: the recognised lines whose box centre
    falls in that line's band, left to right, joined by one space. A detector may cut one
    printed line into several boxes; the row, not the box, is what a reader sees."""
    rows: list[list[tuple[float, str]]] = [[] for _ in document.lines]
    for line in result.lines:
        xs = [x for x, _ in line.box]
        ys = [y for _, y in line.box]
        centre_y = (min(ys) + max(ys)) / 2
        for row, (_, top, _, bottom) in enumerate(document.line_boxes):
            slack = (bottom - top) * 0.25
            if top - slack <= centre_y <= bottom + slack:
                rows[row].append((min(xs), line.text))
                break
    return [" ".join(text for _, text in sorted(row)) for row in rows]


def normalise(text: str) -> str:
    """Runs of whitespace become one space; the ends are trimmed."""
    return " ".join(text.split())
