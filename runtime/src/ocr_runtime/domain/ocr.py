"""Value objects for what an OCR engine produces."""

from __future__ import annotations

from dataclasses import dataclass, field

# Four (x, y) corners, clockwise from top-left, in source-image pixels.
Box = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


@dataclass(frozen=True, slots=True)
class OcrLine:
    text: str
    confidence: float
    box: Box


@dataclass(frozen=True, slots=True)
class OcrResult:
    lines: tuple[OcrLine, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        """Full text: the lines in reading order, one per row."""
        return "\n".join(line.text for line in self.lines)
