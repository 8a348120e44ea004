"""Engines are loaded once per session (loading and warming up costs seconds), with every
model download path patched to fail: the engines must run on the files in the wheels."""

from __future__ import annotations

import importlib
from unittest import mock

import pytest
from rapidocr.utils.download_file import DownloadFile

from ocr_runtime.adapters.engines.paddle import PaddleOcrEngine
from ocr_runtime.adapters.engines.rapid import RapidOcrEngine, RapidOcrOptions
from ocr_runtime.domain import OcrResult
from tests.support.documents import RenderedDocument, render_corpus

# Small enough for a 2-core machine, large enough that 95% means something (40+ lines).
CORPUS_SIZE = 8


def _no_download(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("an engine tried to download a model at run time")


@pytest.fixture(scope="session")
def rapid_engine() -> RapidOcrEngine:
    engine = RapidOcrEngine(RapidOcrOptions(det_batch_size=1, rec_batch_size=6))
    with mock.patch.object(DownloadFile, "run", side_effect=_no_download):
        engine.load()
    return engine


@pytest.fixture(scope="session")
def corpus() -> list[RenderedDocument]:
    return render_corpus(CORPUS_SIZE, seed=7)


@pytest.fixture(scope="session")
def corpus_results(rapid_engine: RapidOcrEngine, corpus: list[RenderedDocument]) -> list[OcrResult]:
    """The whole corpus read in one batched call."""
    return rapid_engine.recognize_batch([document.image for document in corpus])


@pytest.fixture(scope="session")
def paddle_engine() -> PaddleOcrEngine:
    engine = PaddleOcrEngine()
    # paddleocr puts its own folder on sys.path; its downloader lives in `ppocr` there.
    importlib.import_module("paddleocr")
    network = importlib.import_module("ppocr.utils.network")
    with mock.patch.object(network, "download_with_progressbar", side_effect=_no_download):
        engine.load()
    return engine
