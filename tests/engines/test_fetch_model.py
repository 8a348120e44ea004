"""`ocr-runtime fetch-model` against a real HTTP server (the standard library's, serving a
folder): archives and manifest folders in, a checked model folder out; every refusal names
the file and exits with the status the operator reads."""

from __future__ import annotations

import functools
import json
import shutil
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ocr_runtime.adapters.engines import ModelError, resolve_models, write_manifest
from ocr_runtime.adapters.model_fetch import ModelUnreachableError, fetch_model, http_location
from ocr_runtime.bootstrap import cli
from ocr_runtime.core.settings import Settings
from tests.engines.model_dirs import NAME, VERSION, onnx_model_dir


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, folder it serves) holding `model/` and `model.tar.gz` of the wheel's models."""
    root = tmp_path_factory.mktemp("served")
    onnx_model_dir(root / "model", cls=False)
    with tarfile.open(root / "model.tar.gz", "w:gz") as tar:
        tar.add(root / "model", arcname="model")
    handler = functools.partial(_Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/model.tar.gz", "/model/", "/model/MANIFEST.json"])
def test_fetches_a_folder_the_runtime_loads(
    served: tuple[str, Path], tmp_path: Path, path: str
) -> None:
    base, _ = served
    dest = tmp_path / "models"
    dest.mkdir()
    (dest / "stale.onnx").write_bytes(b"left by an earlier attempt")
    fetch_model(base + path, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["MANIFEST.json", "det.onnx", "rec.onnx"]
    identity = resolve_models(Settings(model_dir=dest)).identity
    assert (identity.name, identity.version) == (NAME, VERSION)


def test_a_file_unlike_its_manifest_is_refused_by_name(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = served
    tampered = root / "tampered"
    shutil.copytree(root / "model", tampered)
    (tampered / "rec.onnx").write_bytes(b"not the model the manifest names")
    with pytest.raises(ModelError, match=r"/models/rec\.onnx: checksum mismatch \(sha256 "):
        fetch_model(base + "/tampered/", tmp_path / "models")


def test_a_manifest_naming_a_path_outside_the_folder_is_refused(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = served
    escaping = root / "escaping"
    escaping.mkdir()
    digest = "0" * 64
    body = {"name": "x", "version": "1", "files": {"../model/det.onnx": digest}}
    (escaping / "MANIFEST.json").write_text(json.dumps(body))
    with pytest.raises(ModelError, match="is not a path inside the model folder"):
        fetch_model(base + "/escaping/", tmp_path / "models")


def test_a_missing_file_is_unreachable_with_its_url(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    base, _ = served
    with pytest.raises(
        ModelUnreachableError, match=r"GET http://.*/nowhere/MANIFEST\.json: HTTP 404"
    ):
        fetch_model(base + "/nowhere/", tmp_path / "models")


def test_mlflow_artifacts_go_through_the_tracking_server() -> None:
    assert http_location("mlflow-artifacts:/1/abc/artifacts/model", "http://mlflow:5000/") == (
        "http://mlflow:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model"
    )
    with pytest.raises(ModelError, match="needs --tracking-uri"):
        http_location("mlflow-artifacts:/1/abc", None)
    with pytest.raises(ModelError, match="not an http"):
        http_location("s3://bucket/model", None)


def test_cli_exits_with_the_cause_for_the_operator(
    served: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, _ = served
    monkeypatch.setattr(cli, "TERMINATION_LOG", tmp_path / "termination-log")
    dest = tmp_path / "models"
    with pytest.raises(SystemExit) as exited:
        cli.main(["fetch-model", "--from", base + "/model.tar.gz", "--to", str(dest)])
    assert exited.value.code == 0
    assert f"fetched model {NAME} {VERSION}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli.main(["fetch-model", "--from", base + "/gone.tar.gz", "--to", str(dest)])
    assert exited.value.code == cli.EXIT_MODEL_UNREACHABLE
    assert (tmp_path / "termination-log").read_text().startswith("model unreachable: GET ")


def test_cli_refuses_a_folder_the_engine_cannot_load(
    served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = served
    partial = root / "no-rec"
    shutil.copytree(root / "model", partial)
    (partial / "rec.onnx").unlink()
    write_manifest(partial, NAME, VERSION)  # a true manifest of a folder without rec.onnx
    monkeypatch.setattr(cli, "TERMINATION_LOG", tmp_path / "termination-log")
    with pytest.raises(SystemExit) as exited:
        cli.main(["fetch-model", "--from", base + "/no-rec/", "--to", str(tmp_path / "m")])
    assert exited.value.code == cli.EXIT_MODEL_REFUSED
    message = (tmp_path / "termination-log").read_text()
    assert message.startswith("model refused: ") and "/m/rec.onnx: missing" in message
