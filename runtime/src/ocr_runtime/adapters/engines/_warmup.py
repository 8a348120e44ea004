"""A small synthetic page for the warm-up inference every engine runs in `load()`."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont


def warmup_image() -> npt.NDArray[np.uint8]:
    """Two lines of printed text, RGB, so that detection, classification and recognition
    all run once (ONNX Runtime and Paddle allocate and plan on their first call)."""
    font = ImageFont.load_default(size=28)
    page = Image.new("RGB", (480, 120), "white")
    draw = ImageDraw.Draw(page)
    draw.text((16, 16), "Warm up 0123456789", font=font, fill="black")
    draw.text((16, 66), "OCR engine ready", font=font, fill="black")
    return np.asarray(page, dtype=np.uint8).copy()
