"""RapidOCR 3.x on ONNX Runtime with inference batched across the images of a call.

RapidOCR's own `__call__` handles one image. `recognize_batch` reuses its pre- and
post-processing classes and ONNX sessions but reorders the work: detection per image (or
padded into batches where the device gains, see `det_batch_size`), then every text-line crop
of every image goes through the angle classifier and the recogniser together, sorted by
aspect ratio, and the lines are split back per image. Models are the files shipped in the
`rapidocr` wheel or those of `OCR_MODEL_DIR` (see `_model_dir`); nothing is downloaded."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ocr_runtime.adapters.engines._batching import (
    FloatArray,
    UInt8Array,
    build_result,
    chunked,
    flatten,
    package_dir,
    pad_stack,
    rgb_to_bgr,
    split,
    to_box,
)
from ocr_runtime.adapters.engines._buckets import Buckets, Output, wrap
from ocr_runtime.adapters.engines._model_dir import ModelError, ModelFiles
from ocr_runtime.adapters.engines._warmup import warmup_image
from ocr_runtime.application.ports import Image
from ocr_runtime.core.settings import Device, LineOrientation
from ocr_runtime.domain import Box, OcrResult

log = logging.getLogger(__name__)

DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
CLS_MODEL = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"
CUDA_PROVIDER = "CUDAExecutionProvider"
# Pages whose long side ends up above this many times RapidOCR's `max_side_len` after its
# resizing are slivers with nothing readable (see `_prepare`).
SLIVER_FACTOR = 2


def wheel_onnx_files() -> tuple[Path, Path, Path]:
    """(det, rec, cls): the ONNX models the `rapidocr` wheel ships."""
    root = package_dir("rapidocr") / "models"
    return root / DET_MODEL, root / REC_MODEL, root / CLS_MODEL


@dataclass(frozen=True, slots=True)
class RapidOcrOptions:
    device: Device = Device.CPU
    threads: int = 0  # ONNX Runtime intra-op threads; 0 keeps its default
    det_batch_size: int = 1  # images per detection call; 1 runs RapidOCR's own detector
    rec_batch_size: int = 6  # text lines per classifier and recogniser call
    models: ModelFiles | None = None  # None: the files in the rapidocr wheel
    min_score: float = 0.5  # lines below this recognition confidence are dropped
    orientation: LineOrientation = LineOrientation.UPRIGHT
    shape_buckets: bool = False  # pad session inputs to repeating shapes (see `_buckets`)


@dataclass(slots=True)
class _Page:
    """One image on its way through the pipeline, in RapidOCR's coordinates."""

    source_size: tuple[int, int]  # (height, width) of the caller's image
    image: UInt8Array  # BGR, resized within bounds and padded as RapidOCR does
    op_record: dict[str, Any]  # RapidOCR's record of those steps, to map boxes back
    boxes: FloatArray | None = None  # (n, 4, 2), reading order
    crops: list[UInt8Array] = field(default_factory=list)
    readable: bool = True  # False: skipped, its result is empty


class RapidOcrEngine:
    """The default engine (`OCR_ENGINE=onnx`)."""

    def __init__(self, options: RapidOcrOptions | None = None) -> None:
        self._options = options or RapidOcrOptions()
        self._lock = threading.Lock()  # RapidOCR's detector keeps per-call state
        self._ocr: Any = None
        self._warmed_up = False  # readiness: models loaded and one inference done
        self._providers: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "rapidocr-onnx"

    @property
    def loaded(self) -> bool:
        return self._warmed_up

    @property
    def options(self) -> RapidOcrOptions:
        return self._options

    @property
    def providers(self) -> tuple[str, ...]:
        """ONNX Runtime execution providers in use, best first (empty before `load`)."""
        return self._providers

    def load(self) -> None:
        with self._lock:
            if self._ocr is not None:
                return
            self._ocr = self._build()
            self._providers = tuple(self._ocr.text_det.session.session.get_providers())
        if self._options.device is Device.GPU and CUDA_PROVIDER not in self._providers:
            log.warning("device=gpu but ONNX Runtime runs on %s", ", ".join(self._providers))
        try:
            self.recognize_batch([warmup_image()])
        except Exception as exc:
            folder = self._files()[0].parent
            raise ModelError(f"{folder}: warm-up inference on its models failed ({exc})") from exc
        self._warmed_up = True
        log.info("engine %s loaded on %s", self.name, ", ".join(self._providers))

    def recognize_batch(self, images: Sequence[Image]) -> list[OcrResult]:
        sources = [rgb_to_bgr(image, index) for index, image in enumerate(images)]
        with self._lock:
            ocr = self._require_loaded()
            pages = [self._prepare(ocr, source) for source in sources]
            self._detect(ocr, pages)
            crops, counts = flatten([page.crops for page in pages])
            texts, scores = self._read_lines(ocr, crops)
        per_page = zip(pages, split(texts, counts), split(scores, counts), strict=True)
        return [self._result(page, t, s) for page, t, s in per_page]

    def recognize_unbatched(self, images: Sequence[Image]) -> list[OcrResult]:
        """RapidOCR's own single-image pipeline, one call per image: the reference that
        `recognize_batch` must agree with, and the baseline of the benchmarks."""
        sources = [rgb_to_bgr(image, index) for index, image in enumerate(images)]
        results = []
        with self._lock:
            ocr = self._require_loaded()
            for source in sources:
                output = ocr(source)
                if getattr(output, "txts", None) is None:  # nothing found
                    results.append(OcrResult())
                    continue
                boxes = [to_box(box) for box in output.boxes]
                texts = list(output.txts)
                scores = [float(score) for score in output.scores]
                results.append(build_result(boxes, texts, scores, self._options.min_score))
        return results

    def _build(self) -> Any:
        """RapidOCR with its three sessions built now, not on the first request; a file
        ONNX Runtime cannot load is named in the `ModelError`."""
        from rapidocr import RapidOCR  # noqa: PLC0415

        det, rec, cls = self._files()
        ocr: Any = RapidOCR(params=self._params())
        steps = [(ocr._load_det_model, det), (ocr._load_rec_model, rec)]
        if ocr.use_cls:
            steps.insert(1, (ocr._load_cls_model, cls))
        with _no_downloads(rec):
            for step, path in steps:
                try:
                    step()
                except ModelError:
                    raise
                except Exception as exc:
                    raise ModelError(f"{path}: ONNX Runtime cannot load it ({exc})") from exc
        if self._options.shape_buckets:
            self._bucket_sessions(ocr)
        dictionary = self._options.models.dict if self._options.models else None
        if dictionary is not None:
            from rapidocr.ch_ppocr_rec.utils import CTCLabelDecode  # noqa: PLC0415

            # A dict.txt beside the model wins over the list embedded in rec.onnx.
            ocr.text_rec.postprocess_op = CTCLabelDecode(character_path=dictionary)
        return ocr

    def _bucket_sessions(self, ocr: Any) -> None:
        # Detection inputs are multiples of 32 already; a step of 128 leaves a page's shape
        # one of a few dozen. Recognition inputs are 48 px high; widths step by 64.
        options = self._options
        wrap(ocr.text_det, Buckets(128, 128, options.det_batch_size), Output.MAP)
        wrap(ocr.text_rec, Buckets(1, 64, options.rec_batch_size), Output.ROWS)
        if ocr.use_cls:
            wrap(ocr.text_cls, Buckets(1, 1, options.rec_batch_size), Output.ROWS)

    # --- pipeline steps ---

    def _prepare(self, ocr: Any, source: UInt8Array) -> _Page:
        from rapidocr.utils.process_img import apply_vertical_padding  # noqa: PLC0415

        image, op_record = ocr.preprocess_img(source)
        height, width = source.shape[:2]
        if max(image.shape[:2]) > SLIVER_FACTOR * ocr.max_side_len:
            # A sliver (2 x 900 px, say): RapidOCR scales its short side up to 30 px and pads
            # it square-ish, turning a few bytes into tens of megapixels of detection work.
            # Its text, if any, is a few pixels tall: nothing a model can read.
            log.warning("image of %d x %d px is too thin to read: empty result", width, height)
            return _Page(source_size=(height, width), image=source, op_record={}, readable=False)
        if ocr.cfg.Global.use_vertical_padding:
            image, op_record = apply_vertical_padding(
                image, op_record, ocr.width_height_ratio, ocr.min_height
            )
        else:
            op_record["padding_1"] = {"top": 0, "left": 0}
        return _Page(source_size=(height, width), image=image, op_record=op_record)

    def _detect(self, ocr: Any, pages: list[_Page]) -> None:
        from rapidocr.utils.process_img import get_rotate_crop_image  # noqa: PLC0415

        readable = [page for page in pages if page.readable]
        if self._options.det_batch_size <= 1:
            for page in readable:
                page.boxes = ocr.text_det(page.image).boxes
        else:
            # Neighbours in size share a run, so little of each run is padding.
            by_size = sorted(readable, key=lambda page: page.image.shape[:2])
            for group in chunked(by_size, self._options.det_batch_size):
                self._detect_padded(ocr.text_det, group)
        for page in readable:
            boxes = page.boxes if page.boxes is not None else ()
            page.crops = [get_rotate_crop_image(page.image, box.copy()) for box in boxes]

    @staticmethod
    def _detect_padded(detector: Any, pages: Sequence[_Page]) -> None:
        """One detection session run for several images padded to a common size; each
        probability map is cropped back to its image before RapidOCR's post-processing."""
        tensors = {i: detector.get_preprocess()(page.image) for i, page in enumerate(pages)}
        usable = {i: tensor for i, tensor in tensors.items() if tensor is not None}
        if not usable:
            return
        batch, shapes = pad_stack(list(usable.values()))
        maps = detector.session(batch)
        for row, (index, (height, width)) in enumerate(zip(usable, shapes, strict=True)):
            page = pages[index]
            probability = maps[row : row + 1, :, :height, :width]
            boxes, _ = detector.postprocess_op(probability, page.image.shape[:2])
            if len(boxes) > 0:
                page.boxes = detector.sorted_boxes(boxes)

    def _read_lines(self, ocr: Any, crops: list[UInt8Array]) -> tuple[list[str], list[float]]:
        """Angle classification and recognition over the crops of every image at once; the
        classes sort by aspect ratio and batch `rec_batch_size` lines per session run."""
        if not crops:
            return [], []
        from rapidocr.ch_ppocr_rec import TextRecInput  # noqa: PLC0415

        if ocr.use_cls:
            crops = ocr.text_cls(crops).img_list
        output = ocr.text_rec(TextRecInput(img=crops, return_word_box=False))
        return list(output.txts), [float(score) for score in output.scores]

    def _result(self, page: _Page, texts: list[str], scores: list[float]) -> OcrResult:
        from rapidocr.utils.process_img import map_boxes_to_original  # noqa: PLC0415

        if page.boxes is None or not texts:
            return OcrResult()
        height, width = page.source_size
        mapped = map_boxes_to_original(page.boxes.astype(np.float32), page.op_record, height, width)
        boxes: list[Box] = [to_box(box) for box in mapped]
        return build_result(boxes, texts, scores, self._options.min_score)

    # --- configuration ---

    def _require_loaded(self) -> Any:
        if self._ocr is None:
            raise RuntimeError(f"engine {self.name} is not loaded: call load() first")
        return self._ocr

    def _params(self) -> dict[str, Any]:
        options = self._options
        det, rec, cls = self._files()
        params: dict[str, Any] = {
            "Global.log_level": "warning",
            "Global.text_score": options.min_score,
            "Global.use_cls": options.orientation is LineOrientation.DETECT,
            # Explicit files: RapidOCR downloads a model only when no path is given.
            "Det.model_path": str(det),
            "Rec.model_path": str(rec),
            "Cls.model_path": str(cls),
            "Rec.rec_batch_num": options.rec_batch_size,
            "Cls.cls_batch_num": options.rec_batch_size,
        }
        if options.models is not None and options.models.dict is not None:
            params["Rec.rec_keys_path"] = str(options.models.dict)
        if options.threads > 0:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = options.threads
        if options.device is Device.GPU:
            params["EngineConfig.onnxruntime.use_cuda"] = True
            # Shapes change with every batch (line widths, page sizes): an exhaustive cuDNN
            # search per new shape would cost more than it saves.
            params["EngineConfig.onnxruntime.cuda_ep_cfg.cudnn_conv_algo_search"] = "HEURISTIC"
        return params

    def _files(self) -> tuple[Path, Path, Path]:
        """(det, rec, cls) model files; a folder without cls.onnx keeps the wheel's
        classifier path, which RapidOCR only opens with `OCR_LINE_ORIENTATION=detect` (and
        `resolve_models` refuses that combination)."""
        models = self._options.models
        wheel = wheel_onnx_files()
        if models is None:
            return wheel
        return models.det, models.rec, models.cls or wheel[2]


@contextlib.contextmanager
def _no_downloads(rec: Path) -> Iterator[None]:
    """RapidOCR downloads a character list when the recogniser carries none and no file is
    given; serving must not fetch anything, so that becomes a refusal naming the model."""
    from rapidocr.utils.download_file import DownloadFile  # noqa: PLC0415

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise ModelError(f"{rec}: carries no character list; put its dict.txt beside it")

    original = DownloadFile.__dict__["run"]  # the classmethod itself, to put back as it was
    setattr(DownloadFile, "run", refuse)  # noqa: B010
    try:
        yield
    finally:
        setattr(DownloadFile, "run", original)  # noqa: B010
