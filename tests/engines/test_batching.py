"""Unit tests of the batching pieces shared by the engines: no model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pytest

from ocr_runtime.adapters.engines import (
    AUTO_DET_BATCH,
    AUTO_REC_BATCH,
    ModelError,
    NoopEngine,
    build_engine,
)
from ocr_runtime.adapters.engines._batching import (
    build_result,
    chunked,
    flatten,
    pad_stack,
    rgb_to_bgr,
    split,
    to_box,
)
from ocr_runtime.adapters.engines._model_dir import wheel_models
from ocr_runtime.adapters.engines.paddle import PaddleOcrEngine, PaddleOcrOptions, _paddle_ocr
from ocr_runtime.adapters.engines.rapid import RapidOcrEngine, _Page
from ocr_runtime.core.cpu import available_cpus
from ocr_runtime.core.settings import Device, EngineKind, LineOrientation, Settings
from ocr_runtime.domain import InvalidImage, OcrResult

SQUARE = ((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0))


def test_chunked_keeps_order_and_bounds_size() -> None:
    assert [list(c) for c in chunked([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    assert list(chunked([], 3)) == []
    with pytest.raises(ValueError, match="at least 1"):
        list(chunked([1], 0))


def test_split_undoes_flatten_including_empty_groups() -> None:
    groups = [["a", "b"], [], ["c"], [], ["d", "e", "f"]]
    items, counts = flatten(groups)
    assert items == ["a", "b", "c", "d", "e", "f"]
    assert counts == [2, 0, 1, 0, 3]
    assert split(items, counts) == groups


def test_split_refuses_counts_that_do_not_add_up() -> None:
    with pytest.raises(ValueError, match="cannot be split"):
        split([1, 2, 3], [1, 1])


def test_pad_stack_pads_bottom_right_with_zeros_and_reports_sizes() -> None:
    small = np.ones((1, 3, 2, 3), dtype=np.float32)
    large = np.full((1, 3, 4, 2), 2.0, dtype=np.float32)
    batch, shapes = pad_stack([small, large])
    assert batch.shape == (2, 3, 4, 3)
    assert shapes == [(2, 3), (4, 2)]
    assert np.all(batch[0, :, :2, :3] == 1.0)
    assert np.all(batch[0, :, 2:, :] == 0.0)
    assert np.all(batch[1, :, :, :2] == 2.0)
    assert np.all(batch[1, :, :, 2:] == 0.0)


def test_rgb_to_bgr_swaps_channels() -> None:
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    image[..., 0] = 255  # pure red in RGB
    converted = rgb_to_bgr(image, 0)
    assert converted[0, 0].tolist() == [0, 0, 255]
    assert converted.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((4, 4), dtype=np.uint8),  # grey, no channel axis
        np.zeros((4, 4, 4), dtype=np.uint8),  # RGBA
        np.zeros((4, 4, 3), dtype=np.float32),  # not uint8
        np.zeros((0, 4, 3), dtype=np.uint8),  # no pixels
    ],
)
def test_rgb_to_bgr_rejects_what_the_port_does_not_allow(image: Any) -> None:
    with pytest.raises(InvalidImage, match="image 3"):
        rgb_to_bgr(image, 3)


def test_to_box_gives_four_float_corners() -> None:
    box = to_box(np.array([[0, 0], [10, 0], [10, 5], [0, 5]], dtype=np.int32))
    assert box == SQUARE
    assert all(isinstance(v, float) for corner in box for v in corner)


def test_build_result_drops_blank_and_unsure_lines_and_keeps_order() -> None:
    result = build_result(
        [SQUARE] * 4, ["first", "  ", "unsure", "last"], [0.9, 0.99, 0.4, 0.5], min_score=0.5
    )
    assert [line.text for line in result.lines] == ["first", "last"]
    assert result.text == "first\nlast"
    assert result.lines[0].box == SQUARE


class _FakeDetector:
    """Stands in for RapidOCR's TextDetector: records what the padded batch looked like."""

    def __init__(self, sizes: dict[int, tuple[int, int] | None]) -> None:
        self._sizes = sizes  # image height -> preprocessed (h, w), None: unusable
        self.batches: list[tuple[int, ...]] = []
        self.postprocessed: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def get_preprocess(self) -> Any:
        def preprocess(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32] | None:
            size = self._sizes[image.shape[0]]
            if size is None:
                return None
            return np.full((1, 3, *size), float(image.shape[0]), dtype=np.float32)

        return preprocess

    def session(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        self.batches.append(batch.shape)
        return batch[:, :1]  # a "probability map" that remembers whose pixels it holds

    def postprocess_op(
        self, pred: npt.NDArray[np.float32], shape: tuple[int, int]
    ) -> tuple[Any, list[float]]:
        self.postprocessed.append((pred.shape, shape))
        marker = float(pred.max())
        return np.array([[[marker, 0], [1, 0], [1, 1], [marker, 1]]], dtype=np.float32), [1.0]

    @staticmethod
    def sorted_boxes(boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return boxes


def _page(height: int) -> _Page:
    image = np.zeros((height, 8, 3), dtype=np.uint8)
    return _Page(source_size=(height, 8), image=image, op_record={})


def test_padded_detection_gives_each_page_its_own_map() -> None:
    detector = _FakeDetector({10: (32, 64), 20: (64, 32), 30: None})
    pages = [_page(10), _page(30), _page(20)]
    RapidOcrEngine._detect_padded(detector, pages)
    assert detector.batches == [(2, 3, 64, 64)]  # one run, padded to the largest sides
    assert [shape for shape, _ in detector.postprocessed] == [(1, 1, 32, 64), (1, 1, 64, 32)]
    assert [size for _, size in detector.postprocessed] == [(10, 8), (20, 8)]
    assert pages[0].boxes is not None and pages[0].boxes[0, 0, 0] == 10.0
    assert pages[1].boxes is None  # its preprocessing gave nothing: no boxes, no crash
    assert pages[2].boxes is not None and pages[2].boxes[0, 0, 0] == 20.0


def test_engines_refuse_to_run_before_load() -> None:
    image = np.full((8, 8, 3), 255, dtype=np.uint8)
    for engine in (RapidOcrEngine(), PaddleOcrEngine(), NoopEngine()):
        assert not engine.loaded
        with pytest.raises(RuntimeError, match="not loaded"):
            engine.recognize_batch([image])


def test_invalid_array_fails_before_any_inference() -> None:
    grey = cast(Any, np.zeros((4, 4)))
    with pytest.raises(InvalidImage, match="image 1"):
        RapidOcrEngine().recognize_batch([np.zeros((4, 4, 3), np.uint8), grey])


def test_noop_engine_returns_one_empty_result_per_image() -> None:
    engine = NoopEngine()
    engine.load()
    images = [np.zeros((4, 4, 3), dtype=np.uint8)] * 3
    assert engine.loaded
    assert engine.recognize_batch(images) == [OcrResult()] * 3


def test_build_engine_follows_settings() -> None:
    rapid = build_engine(Settings(engine=EngineKind.ONNX, device=Device.GPU))
    assert isinstance(rapid, RapidOcrEngine)
    assert rapid.options.det_batch_size == AUTO_DET_BATCH[Device.GPU]
    assert rapid.options.rec_batch_size == AUTO_REC_BATCH[Device.GPU]
    assert rapid.options.shape_buckets  # on the GPU only: padding costs compute on a CPU
    assert rapid.options.threads == available_cpus()  # the quota, not the host's cores
    tuned = build_engine(Settings(det_batch_size=3, rec_batch_size=17, engine_threads=2))
    assert isinstance(tuned, RapidOcrEngine)
    assert (tuned.options.det_batch_size, tuned.options.rec_batch_size) == (3, 17)
    assert tuned.options.threads == 2
    assert not tuned.options.shape_buckets
    assert tuned.options.orientation is LineOrientation.UPRIGHT
    turning = build_engine(Settings(line_orientation=LineOrientation.DETECT))
    assert isinstance(turning, RapidOcrEngine)
    assert turning.options.orientation is LineOrientation.DETECT
    assert isinstance(build_engine(Settings(engine=EngineKind.NOOP)), NoopEngine)
    assert not build_engine(Settings()).loaded


def test_paddle_gets_the_quota_of_cpu_threads_not_its_default_ten(tmp_path: Path) -> None:
    paddle = build_engine(Settings(engine=EngineKind.PADDLE))
    assert isinstance(paddle, PaddleOcrEngine)
    assert paddle.options.threads == available_cpus()
    seen: dict[str, Any] = {}

    def factory(**kwargs: Any) -> None:
        seen.update(kwargs)

    folders = (tmp_path / "det", tmp_path / "rec", tmp_path / "cls", tmp_path / "dict.txt")
    _paddle_ocr(factory, folders, use_gpu=False, options=PaddleOcrOptions(threads=3))
    assert seen["cpu_threads"] == 3
    seen.clear()
    _paddle_ocr(factory, folders, use_gpu=False, options=PaddleOcrOptions())
    assert "cpu_threads" not in seen  # 0: PaddleOCR's own default


def test_paddle_model_folders_come_from_settings_or_the_wheel(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"det/inference\.pdmodel: missing"):
        build_engine(Settings(engine=EngineKind.PADDLE, model_dir=tmp_path))
    shipped = wheel_models(EngineKind.PADDLE)  # the offline default is really there
    assert shipped.det.name == "ch_PP-OCRv4_det_infer"
    assert shipped.dict is not None
    assert shipped.dict.is_file()
    assert isinstance(build_engine(Settings(engine=EngineKind.PADDLE)), PaddleOcrEngine)
