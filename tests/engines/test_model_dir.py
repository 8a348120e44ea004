"""`OCR_MODEL_DIR` with the ONNX engine on real model files (copied from the rapidocr wheel):
the engine loads from the folder and reports what it serves; a missing file, a truncated
model and a checksum mismatch are refused with the file named, by the engine and by the
worker process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import httpx
import onnxruntime
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from rapidocr.utils.download_file import DownloadFile

from ocr_runtime.adapters.engines import ModelError, build_engine, resolve_models
from ocr_runtime.adapters.engines.rapid import RapidOcrEngine
from ocr_runtime.bootstrap.cli import EXIT_MODEL_REFUSED
from ocr_runtime.bootstrap.worker_role import info_labels
from ocr_runtime.core.settings import LineOrientation, Settings
from ocr_runtime.worker import DataPlaneMetrics, probe_app
from tests.engines.model_dirs import NAME, VERSION, expected_checksum, onnx_model_dir, truncate
from tests.support.documents import render_document
from tests.support.ports import free_port

pytestmark = pytest.mark.slow

LINE = "order 12345 total"
ONNX_FILES = ["cls.onnx", "det.onnx", "rec.onnx"]


def _no_download(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the engine tried to download a model")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return onnx_model_dir(tmp_path_factory.mktemp("models") / "v1")


@pytest.fixture(scope="module")
def folder_engine(model_dir: Path) -> RapidOcrEngine:
    engine = build_engine(Settings(model_dir=model_dir))
    assert isinstance(engine, RapidOcrEngine)
    with mock.patch.object(DownloadFile, "run", side_effect=_no_download):
        engine.load()
    return engine


def _copy(model_dir: Path, target: Path) -> Path:
    shutil.copytree(model_dir, target)
    return target


def test_engine_serves_the_folder_and_names_it(
    model_dir: Path, folder_engine: RapidOcrEngine
) -> None:
    models = resolve_models(Settings(model_dir=model_dir))
    assert (models.identity.name, models.identity.version) == (NAME, VERSION)
    assert models.identity.checksum == expected_checksum(model_dir, ONNX_FILES)
    assert folder_engine.options.models is not None
    assert folder_engine.options.models.rec == model_dir / "rec.onnx"
    (page,) = folder_engine.recognize_batch([render_document([LINE]).image])
    assert [line.text for line in page.lines] == [LINE]


async def test_worker_reports_the_model_in_readyz_and_the_info_metric(model_dir: Path) -> None:
    settings = Settings(model_dir=model_dir, model_version="ignored-with-a-manifest")
    models = resolve_models(settings)
    checksum = expected_checksum(model_dir, ONNX_FILES)
    labels = info_labels(settings, models)
    assert labels["model_version"] == f"{NAME}:{VERSION}@{checksum[:12]}"
    assert set(labels) == {"role", "mode", "engine", "model_version"}
    registry = CollectorRegistry()
    DataPlaneMetrics(registry).runtime_info.labels(**labels).set(1)
    assert f'model_version="{NAME}:{VERSION}@{checksum[:12]}"' in generate_latest(registry).decode()

    async def loaded() -> bool:
        return True

    app = probe_app({"model": loaded}, registry, model=models.identity)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        body = (await client.get("/readyz")).json()
    assert body["model"] == {"name": NAME, "version": VERSION, "checksum": checksum}
    assert body["status"] == "ready"


def test_folder_without_manifest_reports_the_declared_version(
    tmp_path: Path, model_dir: Path
) -> None:
    folder = _copy(model_dir, tmp_path / "plain")
    (folder / "MANIFEST.json").unlink()
    models = resolve_models(Settings(model_dir=folder, model_version="pp-ocrv6"))
    assert (models.identity.name, models.identity.version) == ("plain", "pp-ocrv6")
    assert models.identity.checksum == expected_checksum(folder, ONNX_FILES)


def test_checksum_mismatch_is_refused_naming_the_file(tmp_path: Path, model_dir: Path) -> None:
    folder = _copy(model_dir, tmp_path / "tampered")
    with (folder / "rec.onnx").open("ab") as stream:
        stream.write(b"\0")
    with pytest.raises(ModelError, match=r"/tampered/rec\.onnx: checksum mismatch"):
        resolve_models(Settings(model_dir=folder))


def test_missing_and_unlisted_files_are_refused(tmp_path: Path, model_dir: Path) -> None:
    folder = _copy(model_dir, tmp_path / "partial")
    (folder / "det.onnx").unlink()
    with pytest.raises(ModelError, match=r"/partial/det\.onnx: missing"):
        resolve_models(Settings(model_dir=folder))
    shutil.copyfile(model_dir / "det.onnx", folder / "det.onnx")
    (folder / "dict.txt").write_text("a\nb\n")
    with pytest.raises(ModelError, match=r"/partial/dict\.txt: not listed in .*MANIFEST\.json"):
        resolve_models(Settings(model_dir=folder))
    (folder / "dict.txt").unlink()
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    manifest["files"]["notes.txt"] = "0" * 64  # listed, never loaded: it still has to be there
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r"/partial/notes\.txt: listed in .* but missing"):
        resolve_models(Settings(model_dir=folder))


def test_detect_orientation_needs_a_classifier(tmp_path: Path) -> None:
    folder = onnx_model_dir(tmp_path / "nocls", cls=False)
    assert resolve_models(Settings(model_dir=folder)).cls is None
    detect = Settings(model_dir=folder, line_orientation=LineOrientation.DETECT)
    with pytest.raises(ModelError, match=r"/nocls/cls\.onnx: missing"):
        resolve_models(detect)


def test_truncated_model_is_refused_at_load_naming_the_file(
    tmp_path: Path, model_dir: Path
) -> None:
    folder = _copy(model_dir, tmp_path / "truncated")
    (folder / "MANIFEST.json").unlink()  # no checksums: only loading can tell
    truncate(folder / "det.onnx")
    engine = build_engine(Settings(model_dir=folder))
    with pytest.raises(ModelError, match=r"/truncated/det\.onnx: ONNX Runtime cannot load it"):
        engine.load()
    assert not engine.loaded


def test_dict_txt_beside_the_model_wins_over_the_embedded_list(
    tmp_path: Path, model_dir: Path
) -> None:
    folder = _copy(model_dir, tmp_path / "shouting")
    (folder / "MANIFEST.json").unlink()
    session = onnxruntime.InferenceSession(str(folder / "rec.onnx"))
    embedded = session.get_modelmeta().custom_metadata_map["character"].splitlines()
    # The same classes printed in capitals: only this file can make the engine shout.
    (folder / "dict.txt").write_text("\n".join(ch.upper() for ch in embedded) + "\n")
    engine = build_engine(Settings(model_dir=folder))
    engine.load()
    (page,) = engine.recognize_batch([render_document([LINE]).image])
    assert [line.text for line in page.lines] == [LINE.upper()]


def _run_worker(folder: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OCR_MODEL_DIR": str(folder),
        "OCR_HTTP_PORT": str(free_port()),
        "OCR_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # never reached: the model fails first
        "OCR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ocr.db",
    }
    command = [sys.executable, "-m", "ocr_runtime.bootstrap", "worker"]
    return subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=180
    )


def test_worker_process_exits_naming_a_refused_file(tmp_path: Path, model_dir: Path) -> None:
    tampered = _copy(model_dir, tmp_path / "tampered")
    manifest = json.loads((tampered / "MANIFEST.json").read_text())
    manifest["files"]["det.onnx"] = "0" * 64
    (tampered / "MANIFEST.json").write_text(json.dumps(manifest))
    refused = _run_worker(tampered, tmp_path)
    assert refused.returncode == EXIT_MODEL_REFUSED, refused.stderr
    assert f"model refused: {tampered}/det.onnx: checksum mismatch" in refused.stderr

    truncated = _copy(model_dir, tmp_path / "truncated")
    (truncated / "MANIFEST.json").unlink()
    truncate(truncated / "rec.onnx")
    broken = _run_worker(truncated, tmp_path)
    assert broken.returncode == EXIT_MODEL_REFUSED, broken.stderr
    assert f"model refused: {truncated}/rec.onnx: ONNX Runtime cannot load it" in broken.stderr
