"""The fixed document set of the engine comparison: rendered by the tests' own renderer
(`tests/support/documents.py`), saved once as PNG so that the bare engine and the HTTP
uploads read the very same bytes."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from tests.support.documents import render_corpus  # the tests' shared renderer


def write_documents(count: int, out_dir: Path, seed: int = 7) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.png"):
        stale.unlink()
    paths = []
    for index, document in enumerate(render_corpus(count, seed=seed)):
        buffer = io.BytesIO()
        Image.fromarray(document.image).save(buffer, format="PNG")
        path = out_dir / f"doc-{index:03d}.png"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def describe(paths: list[Path]) -> dict[str, object]:
    sizes: list[tuple[int, int]] = []
    for path in paths:
        with Image.open(path) as image:
            sizes.append(image.size)
    pixels = [w * h for w, h in sizes]
    ordered = sorted(sizes, key=_area)
    return {
        "count": len(paths),
        "mean_megapixels": round(sum(pixels) / len(pixels) / 1e6, 3) if pixels else 0.0,
        "min_size": list(ordered[0]) if ordered else [],
        "max_size": list(ordered[-1]) if ordered else [],
    }
