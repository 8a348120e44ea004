"""Does this image carry the engine the settings ask for? Each image is built with one
engine extra (onnx, paddle, onnx-gpu, paddle-gpu); a worker started with another engine or
device says so at once instead of failing later inside the model load."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

from ocr_runtime.core.settings import Device, EngineKind

# Per (engine, device): groups of distributions; each group needs one of its members.
_NEEDS: dict[tuple[EngineKind, Device], tuple[tuple[str, ...], ...]] = {
    (EngineKind.ONNX, Device.CPU): (("rapidocr",), ("onnxruntime", "onnxruntime-gpu")),
    (EngineKind.ONNX, Device.GPU): (("rapidocr",), ("onnxruntime-gpu",)),
    (EngineKind.PADDLE, Device.CPU): (("paddleocr",), ("paddlepaddle", "paddlepaddle-gpu")),
    (EngineKind.PADDLE, Device.GPU): (("paddleocr",), ("paddlepaddle-gpu",)),
}
_VARIANTS = {
    "onnx": ("rapidocr", "onnxruntime"),
    "onnx-gpu": ("rapidocr", "onnxruntime-gpu"),
    "paddle": ("paddleocr", "paddlepaddle"),
    "paddle-gpu": ("paddleocr", "paddlepaddle-gpu"),
}


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def engine_mismatch(
    kind: EngineKind, device: Device, installed: Callable[[str], bool] = _installed
) -> str | None:
    """None when the engine can run here, else a message naming the mismatch."""
    needs = _NEEDS.get((kind, device))
    if needs is None:  # noop: in every image
        return None
    missing = [" or ".join(group) for group in needs if not any(installed(d) for d in group)]
    if not missing:
        return None
    present = [v for v, dists in _VARIANTS.items() if all(installed(d) for d in dists)]
    wanted = kind.value + ("-gpu" if device is Device.GPU else "")
    return (
        f"engine mismatch: OCR_ENGINE={kind.value} OCR_DEVICE={device.value} needs "
        f"{', '.join(missing)}, which this image lacks (it carries: "
        f"{', '.join(present) or 'no OCR engine'}); run the image variant {wanted}"
    )
