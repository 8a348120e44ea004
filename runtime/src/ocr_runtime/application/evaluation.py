"""Scoring a model against known text: how many expected lines it reads exactly.

A line counts when, spaces removed, it equals one of the lines the engine recognised on that
image (each recognised line matches one expected line at most). Spaces are ignored because
recognisers differ in how they space Latin words while reading every character right."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


def normalise(line: str) -> str:
    return "".join(line.split())


@dataclass(frozen=True, slots=True)
class ImageScore:
    image: str
    expected: int  # lines in the truth
    matched: int  # of those, lines read exactly
    seconds: float  # engine time for this image
    missed: tuple[str, ...]  # expected lines not read, as written in the truth

    @property
    def accuracy(self) -> float:
        return self.matched / self.expected if self.expected else 1.0


@dataclass(frozen=True, slots=True)
class Evaluation:
    scores: tuple[ImageScore, ...]

    @property
    def line_accuracy(self) -> float:
        expected = sum(score.expected for score in self.scores)
        matched = sum(score.matched for score in self.scores)
        return matched / expected if expected else 1.0

    @property
    def seconds_per_image(self) -> float:
        if not self.scores:
            return 0.0
        return sum(score.seconds for score in self.scores) / len(self.scores)

    def as_dict(self) -> dict[str, object]:
        return {
            "line_accuracy": self.line_accuracy,
            "seconds_per_image": self.seconds_per_image,
            "images": [
                {
                    "image": score.image,
                    "expected": score.expected,
                    "matched": score.matched,
                    "accuracy": score.accuracy,
                    "seconds": score.seconds,
                    "missed": list(score.missed),
                }
                for score in self.scores
            ],
        }


def score_image(
    image: str, expected: Sequence[str], recognised: Sequence[str], seconds: float
) -> ImageScore:
    available = Counter(normalise(line) for line in recognised)
    missed = []
    for line in expected:
        key = normalise(line)
        if available[key] > 0:
            available[key] -= 1
        else:
            missed.append(line)
    return ImageScore(
        image=image,
        expected=len(expected),
        matched=len(expected) - len(missed),
        seconds=seconds,
        missed=tuple(missed),
    )
