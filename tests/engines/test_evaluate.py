"""`ocr-runtime evaluate` end to end on the real ONNX engine: rendered pages with known text,
a model folder made from the wheel's files, the JSON and table reports, and the exit code of
the `--min-accuracy` gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from ocr_runtime.bootstrap.cli import main
from tests.engines.model_dirs import NAME, VERSION, onnx_model_dir
from tests.support.documents import render_document

pytestmark = pytest.mark.slow

PAGES = {
    "invoice.png": ["invoice 4821", "payment due Seoul"],
    "receipt.png": ["total 129.50", "paid by card"],
}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pages")
    for name, lines in PAGES.items():
        Image.fromarray(render_document(lines).image).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_model_dir(tmp_path_factory.mktemp("models") / "candidate", cls=False)


def _evaluate(args: list[str]) -> int:
    with pytest.raises(SystemExit) as stopped:
        main(["evaluate", *args])
    code = stopped.value.code
    assert isinstance(code, int)
    return code


def _truth(tmp_path: Path, truth: dict[str, list[str]]) -> Path:
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(truth))
    return path


def test_clean_lines_score_one_and_pass_the_gate(
    tmp_path: Path, images: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = _truth(tmp_path, PAGES)
    args = ["--images", str(images), "--truth", str(truth), "--model-dir", str(model_dir)]
    assert _evaluate([*args, "--json", "--min-accuracy", "1.0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["line_accuracy"] == 1.0
    assert report["passed"] is True
    assert report["model"]["name"] == NAME
    assert report["model"]["version"] == VERSION
    assert [image["matched"] for image in report["images"]] == [2, 2]
    assert 0 < report["seconds_per_image"] < 30


def test_wrong_truth_lowers_accuracy_and_fails_the_gate(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = {**PAGES, "receipt.png": ["total 999.99", "paid by card"]}
    args = ["--images", str(images), "--truth", str(_truth(tmp_path, wrong))]
    assert _evaluate([*args, "--min-accuracy", "0.9"]) == 1  # the image's own models
    table = capsys.readouterr().out
    assert "line accuracy      0.7500" in table
    assert "missed: total 999.99" in table
    assert "minimum accuracy   0.9000: FAILED" in table
    assert "model rapidocr-" in table


def test_bad_truth_file_is_a_usage_error(tmp_path: Path, images: Path) -> None:
    truth = _truth(tmp_path, {"absent.png": ["x"]})
    assert _evaluate(["--images", str(images), "--truth", str(truth)]) == 2
